"""mammosynth.training"""
