"""Adversarial accuracy of a fake-image detector, following D4's evaluation (Hooda et al., WACV 2024).

Only fake images are attacked; the attacker wants fake -> "real". An image is broken when the detector
calls the perturbed image real (logit of fake ≤ 0) and the perturbation fits the budget. The metric is
the adversarial accuracy, the share of fakes still flagged fake::

    fakes (N,C,H,W) in [0,1] ──► clean flag: logit_fn(x) > 0               clean_acc = mean(flag)
      ├─ "pgd-l2" / "pgd-linf": x_adv = PGD maximising BCE(logit_fn(x_adv), label 1)   (white-box)
      └─ "hsja": x_adv = HopSkipJump on the decision logit_fn(x) ≤ 0; broken iff ‖δ‖₂ ≤ eps_abs (black-box)
    still fake = clean flag AND logit_fn(x_adv) > 0 (AND, for hsja, no adversarial within budget)
                                                                           adv_acc = mean(still fake)

Budgets. ``"pgd-l2"`` and ``"hsja"`` take D4's normalised L2 (RMS) budget ``‖δ‖₂ / sqrt(C·H·W)``, turned
into an absolute radius with :func:`~trustvis.attacks.projected.rms_to_l2`; ``"pgd-linf"`` takes
``max |δ|`` in [0,1] units. See :func:`default_eps`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from trustvis.attacks import ATTACKS
from trustvis.attacks.hsja import hop_skip_jump
from trustvis.attacks.projected import batch_norms, pgd, rms_to_l2

_DEFAULT_EPS = {
    # D4's success threshold: RMS 0.0257 (ε = 10 absolute over 3x224x224, its TRADES radius too); the
    # normalised budget is resolution-free, so on 64x64 RGB it is an absolute L2 of 0.0257·√12288 ≈ 2.85
    "pgd-l2": 0.0257,
    "hsja": 0.0257,
    # the usual L∞ budget for natural images (Madry et al.'s CIFAR-scale 8/255 halved for detectors)
    "pgd-linf": 4 / 255,
}


def _check_attack(attack: str) -> None:
    if attack not in ATTACKS:
        raise ValueError(f"Unknown attack {attack!r}; choose from {list(ATTACKS)}")


def default_eps(attack: str) -> float:
    """Default budget of ``attack``, in the units :func:`attack_detector` expects.

    ``"pgd-l2"`` and ``"hsja"``: RMS 0.0257, D4's threshold (absolute L2 ≈ 2.85 on 3x64x64 images).
    ``"pgd-linf"``: 4/255 ≈ 0.0157 per pixel (at most RMS 0.0157, i.e. absolute L2 ≈ 1.74 on 3x64x64).
    """
    _check_attack(attack)
    return _DEFAULT_EPS[attack]


def _stats(values: Tensor) -> tuple[float | None, float | None]:
    """Mean and median of the finite entries, None when there are none (JSON has no inf/nan)."""
    v = values[torch.isfinite(values)]
    if v.numel() == 0:
        return None, None
    return float(v.mean()), float(v.median())


def attack_detector(
    logit_fn: Callable[[Tensor], Tensor],
    fakes: Tensor,
    attack: str,
    eps: float,
    steps: int = 10,
    queries: int = 1000,
    batch_size: int = 64,
    init: Tensor | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Attack fake images and measure how many the detector still flags.

    Args:
        logit_fn: ``images (B,C,H,W) in [0,1] -> (B,)`` logit of fake, differentiable w.r.t. the images
            (only needed for PGD). Put the model in eval mode first.
        fakes: (N,C,H,W) fake images in [0,1].
        attack: One of :data:`ATTACKS`.
        eps: Budget: RMS L2 ``‖δ‖₂/sqrt(C·H·W)`` for ``"pgd-l2"``/``"hsja"``, ``max |δ|`` for ``"pgd-linf"``.
        steps: PGD steps (step size 2.5·eps/steps, random start).
        queries: HSJA query budget per image.
        batch_size: Images per PGD batch; HSJA gradient probes per model call.
        init: Optional real images (M,C,H,W) to start HSJA from (those the detector calls real are used).
        seed: Seeds the PGD random start and HSJA's randomness.
        progress: Show a tqdm bar (batches for PGD, images for HSJA).

    Returns:
        JSON-able dict: ``attack``, ``eps`` (as given), ``norm`` ("l2"/"linf"), ``eps_abs`` (absolute
        radius), ``n``, ``clean_acc``, ``adv_acc``, ``mean_norm`` and ``median_norm`` (in the units of
        ``eps``; PGD: the perturbations applied, 0 for fakes already called real; HSJA: the smallest
        adversarial perturbation found, over the images where one was found; None if none), ``found_rate``
        (HSJA: share of fakes with any adversarial point; PGD: None), ``mean_queries`` (HSJA, else None),
        ``queries`` (HSJA budget, else None) and ``steps`` (PGD, else None).
    """
    _check_attack(attack)
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if fakes.dim() != 4:
        raise ValueError(f"fakes must be (N,C,H,W), got shape {tuple(fakes.shape)}")
    norm = "linf" if attack == "pgd-linf" else "l2"
    shape = tuple(fakes.shape[1:])
    eps_abs = rms_to_l2(eps, shape) if norm == "l2" else float(eps)
    # perturbation norms are reported in the units of eps
    scale = math.sqrt(math.prod(shape)) if norm == "l2" else 1.0
    generator = torch.Generator().manual_seed(seed)
    n = len(fakes)

    def flagged(images: Tensor) -> Tensor:
        with torch.no_grad():
            return (logit_fn(images).reshape(-1) > 0).cpu()

    clean = torch.cat([flagged(fakes[i : i + batch_size]) for i in range(0, n, batch_size)]) if n else None
    result = {"attack": attack, "eps": float(eps), "norm": norm, "eps_abs": float(eps_abs), "n": n}
    if n == 0:
        nothing = dict.fromkeys(("clean_acc", "adv_acc", "mean_norm", "median_norm", "found_rate"))
        return {**result, **nothing, "mean_queries": None, "queries": None, "steps": None}

    if attack in ("pgd-l2", "pgd-linf"):
        still, norms = [], []
        for i in tqdm(range(0, n, batch_size), desc=attack, disable=not progress, leave=False):
            x = fakes[i : i + batch_size].detach()
            target = torch.ones(len(x), device=x.device)

            def loss_fn(z: Tensor, target: Tensor = target) -> Tensor:
                return F.binary_cross_entropy_with_logits(
                    logit_fn(z).reshape(-1).float(), target, reduction="none"
                )

            x_adv = pgd(loss_fn, x, eps_abs, norm, steps=steps, generator=generator)
            was = clean[i : i + len(x)]
            still.append(was & flagged(x_adv))
            # fakes already called real are broken without any perturbation
            norms.append(torch.where(was, batch_norms(x_adv - x, norm).float().cpu(), 0.0))
        still_fake, norms = torch.cat(still), torch.cat(norms)
        found_rate, mean_queries, budget, n_steps = None, None, None, int(steps)
    else:
        pool = None
        if init is not None and len(init):
            pool = init.detach().to(fakes)
            pool = torch.cat(
                [
                    pool[j : j + batch_size][~flagged(pool[j : j + batch_size])]
                    for j in range(0, len(pool), batch_size)
                ]
            )

        def is_adversarial(z: Tensor) -> Tensor:
            return ~flagged(z)

        found, norms, used = [], [], []
        for i in tqdm(range(n), desc=attack, disable=not progress, leave=False):
            res = hop_skip_jump(
                is_adversarial,
                fakes[i : i + 1],
                max_queries=queries,
                init=pool if pool is not None and len(pool) else None,
                batch_size=batch_size,
                generator=generator,
            )
            found.append(res.success)
            norms.append(res.norms)
            used.append(res.queries)
        found, norms, used = torch.cat(found), torch.cat(norms), torch.cat(used)
        still_fake = clean & ~(found & (norms <= eps_abs))
        found_rate, mean_queries = float(found.float().mean()), float(used.float().mean())
        budget, n_steps = int(queries), None

    mean_norm, median_norm = _stats(norms / scale)
    return {
        **result,
        "clean_acc": float(clean.float().mean()),
        "adv_acc": float(still_fake.float().mean()),
        "mean_norm": mean_norm,
        "median_norm": median_norm,
        "found_rate": found_rate,
        "mean_queries": mean_queries,
        "queries": budget,
        "steps": n_steps,
    }
