"""mammosynth.report"""
