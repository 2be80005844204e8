"""Adversarial attacks on detectors: white-box PGD (L2, L∞) and a decision-based black-box attack.

pgd.py        projected gradient descent, generic over the loss it maximises (also used by TRADES in D4)
hsja.py       HopSkipJump (L2, untargeted, decision-based) under a strict per-image query budget
evaluate.py   attack_detector: adversarial accuracy of a fake-image detector on its fakes (D4's protocol)
"""

from trustvis.attacks.evaluate import ATTACKS, attack_detector, default_eps
from trustvis.attacks.hsja import HSJAResult, hop_skip_jump
from trustvis.attacks.pgd import (
    NORMS,
    batch_norms,
    normalize_gradient,
    pgd,
    project,
    random_in_ball,
    rms_to_l2,
)

__all__ = [
    "ATTACKS",
    "HSJAResult",
    "NORMS",
    "attack_detector",
    "batch_norms",
    "default_eps",
    "hop_skip_jump",
    "normalize_gradient",
    "pgd",
    "project",
    "random_in_ball",
    "rms_to_l2",
]
