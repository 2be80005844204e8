"""Detectors of generated images: real (label 0) vs fake (label 1)."""
