"""mammosynth.metrics"""
