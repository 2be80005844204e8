"""Adversarial attacks on detectors: white-box PGD (L2, L∞), Carlini-Wagner L2, a decision-based black-box
attack, and the TRADES adversarial-training loss.

projected.py  projected gradient descent, generic over the loss it maximises (also used by TRADES)
cw.py         Carlini-Wagner L2 (untargeted, fixed constant, Adam in tanh space), D4's saliency attack
trades.py     TRADES loss with an L2 inner maximisation (PGD on the KL), D4's adversarial training
hsja.py       HopSkipJump (L2, untargeted, decision-based) under a strict per-image query budget
evaluate.py   attack_detector: adversarial accuracy of a fake-image detector on its fakes (D4's protocol)

Importing this package does not import torch: ``ATTACKS`` is defined here, every other name is loaded
from its submodule on first access (PEP 562), so the CLI parser can read the attack names cheaply.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

ATTACKS = ("pgd-l2", "pgd-linf", "hsja")  # attack_detector's attacks

# public name -> submodule that defines it (imported on first access)
_LAZY = {
    "HSJAResult": "hsja",
    "NORMS": "projected",
    "attack_detector": "evaluate",
    "batch_norms": "projected",
    "carlini_wagner_l2": "cw",
    "default_eps": "evaluate",
    "hop_skip_jump": "hsja",
    "normalize_gradient": "projected",
    "pgd": "projected",
    "project": "projected",
    "random_in_ball": "projected",
    "rms_to_l2": "projected",
    "trades_loss": "trades",
}

__all__ = [
    "ATTACKS",
    "HSJAResult",
    "NORMS",
    "attack_detector",
    "batch_norms",
    "carlini_wagner_l2",
    "default_eps",
    "hop_skip_jump",
    "normalize_gradient",
    "pgd",
    "project",
    "random_in_ball",
    "rms_to_l2",
    "trades_loss",
]

if TYPE_CHECKING:  # for type checkers and IDEs only; never run
    from trustvis.attacks.cw import carlini_wagner_l2
    from trustvis.attacks.evaluate import attack_detector, default_eps
    from trustvis.attacks.hsja import HSJAResult, hop_skip_jump
    from trustvis.attacks.projected import (
        NORMS,
        batch_norms,
        normalize_gradient,
        pgd,
        project,
        random_in_ball,
        rms_to_l2,
    )
    from trustvis.attacks.trades import trades_loss


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later accesses skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
