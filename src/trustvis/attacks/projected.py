"""Projected gradient descent (Madry et al., ICLR 2018) in the L2 and L∞ norms, written with torch.

White-box: the attacker differentiates through the model. The attack is generic over what it
maximises: ``loss_fn(x_adv) -> (B,)`` per-image losses (for a detector, the cross-entropy of the true
label; for TRADES, the KL divergence to the clean prediction). Shapes::

    x (B,C,H,W) in [0,1] ──► δ₀ (random in the ball, or 0)
      └─► repeat `steps`: δ ← Π_ball(δ + α · normalise(∇_δ loss_fn(clip(x + δ))))   (ascent)
      └─► x_adv = clip(x + δ, 0, 1),  ‖x_adv − x‖ ≤ eps   (per image)

``eps`` is an absolute norm in [0,1] pixel units: ``‖δ‖₂ ≤ eps`` over the whole (C,H,W) image for
"l2", ``max |δ| ≤ eps`` for "linf". :func:`rms_to_l2` converts D4's resolution-free normalised L2
budget (``‖δ‖₂ / sqrt(C·H·W)``) to the absolute one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

NORMS = ("l2", "linf")


def _check_norm(norm: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"Unknown norm {norm!r}; choose from {list(NORMS)}")


def rms_to_l2(eps_rms: float, shape: tuple[int, ...]) -> float:
    """Absolute L2 radius of a normalised budget ``‖δ‖₂/sqrt(d) ≤ eps_rms`` for images of ``shape`` (C,H,W)."""
    return float(eps_rms) * math.sqrt(math.prod(shape))


def batch_norms(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-image norm of a (B, ...) perturbation; (B,)."""
    _check_norm(norm)
    flat = delta.flatten(1)
    return flat.norm(dim=1) if norm == "l2" else flat.abs().amax(dim=1)


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Project each image's perturbation onto the ``norm`` ball of radius ``eps``."""
    _check_norm(norm)
    if norm == "linf":
        return delta.clamp(-eps, eps)
    n = batch_norms(delta, "l2").clamp_min(1e-12).view(-1, *([1] * (delta.dim() - 1)))
    return delta * torch.clamp(eps / n, max=1.0)


def normalize_gradient(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """Steepest-ascent direction of unit ``norm``: g/‖g‖₂ (L2) or sign(g) (L∞)."""
    _check_norm(norm)
    if norm == "linf":
        return grad.sign()
    # a saturated BCE gives tiny but valid gradients: rescale by the largest entry first so that the norm
    # does not underflow, and never clamp it; an all-zero gradient stays zero
    shape = (-1, *([1] * (grad.dim() - 1)))
    m = batch_norms(grad, "linf")
    grad = grad / torch.where(m > 0, m, torch.ones_like(m)).view(shape)
    n = batch_norms(grad, "l2")
    return grad / torch.where(n > 0, n, torch.ones_like(n)).view(shape)


def random_in_ball(like: torch.Tensor, eps: float, norm: str, generator: torch.Generator | None = None):
    """A uniform random point of the ``norm`` ball of radius ``eps``, per image, shaped like ``like``."""
    _check_norm(norm)
    if norm == "linf":
        u = torch.rand(like.shape, generator=generator, device="cpu").to(like)
        return (2 * u - 1) * eps
    g = torch.randn(like.shape, generator=generator, device="cpu").to(like)
    d = g[0].numel()
    r = torch.rand(like.shape[0], generator=generator, device="cpu").to(like) ** (1.0 / d)
    return normalize_gradient(g, "l2") * (r * eps).view(-1, *([1] * (like.dim() - 1)))


def pgd(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    eps: float,
    norm: str = "l2",
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Maximise ``loss_fn`` within the ``norm`` ball of radius ``eps`` around ``x``; returns ``x_adv``.

    Args:
        loss_fn: ``x_adv (B,C,H,W) -> (B,)`` losses to increase (differentiable w.r.t. its input).
        x: Clean images in [0,1]; not modified.
        eps: Absolute radius (see the module docstring). ``eps = 0`` returns ``x``.
        norm: ``"l2"`` or ``"linf"``.
        steps: Ascent steps.
        step_size: Step length in the same norm; default ``2.5 · eps / steps`` (Madry et al.).
        random_start: Start from a uniform random point of the ball instead of ``x``.
        generator: CPU generator for the random start (reproducible attacks).

    Returns:
        ``x_adv`` (detached), inside the ball and inside [0,1].
    """
    _check_norm(norm)
    if eps < 0 or steps < 0:
        raise ValueError(f"eps and steps must be >= 0, got eps={eps}, steps={steps}")
    x = x.detach()
    if eps == 0 or steps == 0:
        return x.clone()
    alpha = step_size if step_size is not None else 2.5 * eps / steps
    delta = random_in_ball(x, eps, norm, generator) if random_start else torch.zeros_like(x)
    delta = (x + delta).clamp(0, 1) - x
    for _ in range(steps):
        delta.requires_grad_(True)
        with torch.enable_grad():
            loss = loss_fn(x + delta).sum()
            (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta = project(delta + alpha * normalize_gradient(grad, norm), eps, norm)
            delta = (x + delta).clamp(0, 1) - x  # stay a valid image; clipping never leaves the ball
    return (x + delta).detach()
