"""mammosynth.phantom"""
