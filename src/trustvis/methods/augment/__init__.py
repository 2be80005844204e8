"""Training-time augmentations (image mixing)."""
