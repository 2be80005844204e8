"""Carlini-Wagner L2 attack (untargeted, fixed constant), as D4's saliency step uses it.

Paper: Carlini, Wagner. "Towards Evaluating the Robustness of Neural Networks". IEEE S&P 2017.
arXiv 1608.04644. Used by D4 (Hooda et al., WACV 2024) with c = 1e-3, 1000 Adam steps, lr 0.01, κ = 0::

    x (B,C,H,W) in [0,1], y (B,)
      └─► w = atanh(2x − 1)                              tanh space: x_adv = (tanh(w) + 1)/2 stays in [0,1]
      └─► repeat `steps`: Adam on  Σ ‖x_adv − x‖₂ + c · max(z_y − max_{j≠y} z_j + κ, 0)
      └─► x_adv = the last misclassified iterate per image, else the last iterate

Deviations:
  * one fixed constant c, no binary search over it (D4's use); the distance term is ‖δ‖₂, not ‖δ‖₂²;
  * the returned point is the last misclassified iterate, not the smallest-distortion one;
  * started from the image (tanh space), not from the grey image D4's released code starts from;
    images never misclassified keep the last iterate.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def _margin(logits: torch.Tensor, y: torch.Tensor, kappa: float = 0.0) -> torch.Tensor:
    """CW margin ``max(z_y − max_{j≠y} z_j + κ, 0)``; (B,)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(dim=1)
    return (true - other + kappa).clamp_min(0)


def carlini_wagner_l2(
    logits_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    const: float = 1e-3,
    steps: int = 1000,
    lr: float = 0.01,
    kappa: float = 0.0,
) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """Carlini-Wagner L2 as D4's saliency step uses it: ``‖δ‖₂ + c · margin``, Adam in tanh space.

    Returns:
        ``x_adv`` (the last misclassified iterate, else the last iterate) and the objective
        ``x_adv -> (B,)`` whose gradient the saliency uses.
    """
    x = x.detach()

    def objective(x_adv: torch.Tensor) -> torch.Tensor:
        dist = ((x_adv - x).flatten(1).pow(2).sum(dim=1) + 1e-12).sqrt()
        return dist + const * _margin(logits_fn(x_adv).float(), y, kappa)

    w = torch.atanh((2 * x - 1).clamp(-1 + 1e-6, 1 - 1e-6)).requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr)
    best = x.clone()
    found = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    x_adv = x
    for _ in range(steps):
        with torch.enable_grad():
            x_adv = 0.5 * (torch.tanh(w) + 1)
            logits = logits_fn(x_adv).float()
            dist = ((x_adv - x).flatten(1).pow(2).sum(dim=1) + 1e-12).sqrt()
            loss = (dist + const * _margin(logits, y, kappa)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward(inputs=[w])
        with torch.no_grad():
            wrong = logits.argmax(dim=1) != y  # judged on the iterate the loss was taken at
            best[wrong] = x_adv.detach()[wrong]
            found |= wrong
        opt.step()
    with torch.no_grad():
        best[~found] = (0.5 * (torch.tanh(w) + 1))[~found]
    return best.detach(), objective
