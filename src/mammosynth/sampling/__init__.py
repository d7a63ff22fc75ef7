"""mammosynth.sampling"""
