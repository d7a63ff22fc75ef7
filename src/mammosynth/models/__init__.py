"""mammosynth.models"""
