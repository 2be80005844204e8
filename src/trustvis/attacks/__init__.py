"""Adversarial attacks on detectors: white-box PGD (L2, L∞) and a decision-based black-box attack.

pgd.py   projected gradient descent, generic over the loss it maximises (also used by TRADES in D4)
"""

from trustvis.attacks.pgd import NORMS, batch_norms, normalize_gradient, pgd, project, random_in_ball, rms_to_l2

__all__ = ["NORMS", "batch_norms", "normalize_gradient", "pgd", "project", "random_in_ball", "rms_to_l2"]
