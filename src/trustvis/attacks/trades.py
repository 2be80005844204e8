"""TRADES adversarial-training loss with an L2 inner maximisation, as D4 trains its members with it.

Paper: Zhang, Yu, Jiao, Xing, El Ghaoui, Jordan. "Theoretically Principled Trade-off between Robustness
and Accuracy". ICML 2019. arXiv 1901.08573. Used by D4 (Hooda et al., WACV 2024; its ``trades.py``)::

    x (B,C,H,W) in [0,1], y (B,)
      └─► p = softmax(f(x))                            module in eval mode, no gradient
      └─► x_adv = L2 PGD maximising KL(f(x_adv) ‖ p)    radius eps, step 2·eps/steps, random start
      └─► L = CE(f(x), y) + β · KL(f(x_adv) ‖ f(x))     module back in its mode; batch means

Deviations (D4's, see ``trustvis.methods.detect.d4``):
  * the inner maximisation is in L2 (D4), not L∞ (the TRADES paper);
  * PGD starts uniformly in the eps-ball (trustvis' PGD, :mod:`trustvis.attacks.projected`) instead of
    x + 0.001·N(0, 1).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from trustvis.attacks.projected import pgd


def trades_loss(
    logits_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int,
    beta: float = 1.0,
    module: nn.Module | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """TRADES with an L2 inner maximisation (Zhang et al., ICML 2019; D4's ``trades.py``).

    Args:
        logits_fn: images (B,C,H,W) in [0,1] -> class logits (B,n_classes).
        x: clean images; y: labels (B,).
        eps: absolute L2 radius per image (see :func:`trustvis.attacks.projected.rms_to_l2`).
        steps: PGD steps; step length 2·eps/steps.
        beta: weight of the robust KL term.
        module: put in eval mode while x_adv is generated, then back to its previous mode.

    Returns:
        ``CE(f(x), y) + β · KL(f(x_adv) ‖ f(x))`` (batch means) and ``{"loss_nat", "loss_rob", "x_adv"}``.
    """
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
    with torch.no_grad():
        p_clean = F.softmax(logits_fn(x).float(), dim=1)  # (B,n) fixed target of the inner attack

    def kl_to_clean(x_adv: torch.Tensor) -> torch.Tensor:  # (B,)
        logp = F.log_softmax(logits_fn(x_adv).float(), dim=1)
        return F.kl_div(logp, p_clean, reduction="none").sum(dim=1)

    step_size = 2.0 * eps / steps if steps > 0 else None
    x_adv = pgd(kl_to_clean, x, eps, "l2", steps, step_size, random_start=True)
    if module is not None:
        module.train(was_training)
    logits_nat = logits_fn(x).float()  # (B,n)
    logits_adv = logits_fn(x_adv).float()
    loss_nat = F.cross_entropy(logits_nat, y)
    loss_rob = F.kl_div(F.log_softmax(logits_adv, 1), F.softmax(logits_nat, 1), reduction="batchmean")
    return loss_nat + beta * loss_rob, {"loss_nat": loss_nat, "loss_rob": loss_rob, "x_adv": x_adv}
