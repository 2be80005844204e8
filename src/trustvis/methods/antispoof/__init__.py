"""Anti-spoofing from RGB + depth pairs: mToFNet (mtofnet.py) and its baselines (baselines.py)."""
