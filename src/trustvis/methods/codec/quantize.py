"""Training proxies for rounding the latents of an overfitted codec: noise, straight-through, SGA.

::

    y (any shape, float)  ──► noise:  y + U(−½, ½)                         (COOL-CHIC v1, first phase)
                          ──► ste:    round(y) forward, identity backward   (COOL-CHIC v1, last phase)
                          ──► sga:    w·⌊y⌋ + (1−w)·⌈y⌉, w ~ relaxed Bernoulli of temperature τ
                          ──► hard:   round(y)                             (what the bitstream holds)

SGA is Stochastic Gumbel Annealing (Yang, Bamler, Mandt, "Improving Inference for Neural Image
Compression", NeurIPS 2020, arXiv 2006.04240; spec ``shared/specs/codec.md`` §4.1): the logits of
rounding down / up are ``−atanh(clip(distance, −1+ε, 1−ε)) / τ`` and the choice is a Gumbel-softmax
sample of temperature τ; as τ → 0 the sample tends to the nearer integer, i.e. to ``round(y)``.
The temperature schedule is the paper's ``exp0`` form expressed as a fraction of the SGA phase so that
it does not depend on the iteration budget (see :func:`sga_temperature`).
"""

from __future__ import annotations

import math

import torch

QUANTIZERS = ("noise", "ste", "sga", "hard")
SGA_EPS = 1e-5


def ste_round(y: torch.Tensor) -> torch.Tensor:
    """``round(y)`` in the forward pass, identity gradient in the backward pass."""
    return y + (torch.round(y) - y).detach()


def uniform_noise(y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``y + u`` with ``u ~ U(−½, ½)`` drawn independently per element."""
    u = torch.rand(y.shape, generator=generator, device=y.device, dtype=y.dtype) - 0.5
    return y + u


def sga(y: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Stochastic Gumbel Annealing sample of ``y`` at temperature ``tau`` (> 0); same shape as ``y``.

    Gradients flow into ``y`` through the relaxed weights (the floor and ceiling carry none).
    """
    if tau <= 0:
        raise ValueError(f"SGA temperature must be > 0, got {tau}")
    down = torch.floor(y).detach()
    up = down + 1.0
    d_down = (y - down).clamp(-1 + SGA_EPS, 1 - SGA_EPS)  # in [0, 1)
    d_up = (up - y).clamp(-1 + SGA_EPS, 1 - SGA_EPS)
    logits = torch.stack([-torch.atanh(d_down) / tau, -torch.atanh(d_up) / tau], 0)  # (2, *y.shape)
    u = torch.rand(logits.shape, generator=generator, device=y.device, dtype=y.dtype)
    gumbel = -torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))  # Gumbel(0, 1)
    w = torch.softmax((logits + gumbel) / tau, dim=0)  # relaxed one-hot over {down, up}
    return w[0] * down + w[1] * up


def sga_temperature(progress: float, tau_max: float = 0.5, tau_min: float = 0.05, hold: float = 0.1) -> float:
    """Annealed temperature at ``progress`` ∈ [0, 1] of the SGA phase.

    Held at ``tau_max`` for the first ``hold`` of the phase, then decays exponentially so that it reaches
    ``tau_min`` at the end (SGA's ``exp0`` schedule, ``τ_max·exp(−r·(t−t0))``, with ``r`` set by the budget).
    """
    p = min(max(float(progress), 0.0), 1.0)
    if p <= hold:
        return tau_max
    rate = math.log(tau_max / tau_min) / max(1.0 - hold, 1e-8)
    return max(tau_max * math.exp(-rate * (p - hold)), tau_min)


def quantize(
    y: torch.Tensor, mode: str, tau: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Apply one of :data:`QUANTIZERS` to ``y``."""
    if mode == "noise":
        return uniform_noise(y, generator)
    if mode == "ste":
        return ste_round(y)
    if mode == "sga":
        return sga(y, tau, generator)
    if mode == "hard":
        return torch.round(y)
    raise ValueError(f"Unknown quantizer {mode!r}; choose from {list(QUANTIZERS)}")
