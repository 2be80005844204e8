"""Autoregressive entropy model of the latents (ARM) and its exact, integer, bitstream form.

::

    latent grid ŷ (h,w) ──► causal context of C neighbours (zeros outside) ──► ARM MLP ──► (μ, s)
        training:  float ARM, p(ŷ) = F(ŷ+½) − F(ŷ−½), rate = −Σ log2 p          (F: Laplace or Gaussian CDF)
        coding:    IntegerARM, the same MLP in fixed point on integer latents ──► (μ, s) exactly
                   ──► constriction QuantizedLaplace / QuantizedGaussian ──► range coder

Context (COOL-CHIC v1, ``n_ctx_rowcol=2``, C=12): the 5 positions x−2..x+2 of rows y−2 and y−1 and the
2 positions x−2, x−1 of row y. The scale is ``exp(−½·clamp(s, −10, 13.8155))`` ∈ [1e-3, 150] as in
COOL-CHIC (spec ``shared/specs/codec.md`` §1.3, §2).

Why integers: the decoder recomputes (μ, s) from already decoded latents and must get *exactly* the
encoder's numbers, or the range decoder desynchronises (CompressAI #279, #309). Float matrix products
give different last bits for different batch shapes and machines; the integer ARM (weights on a
``2^−k`` lattice, activations with :data:`ACT_BITS` fractional bits, floor division) is exact everywhere,
so the encoder can run it on all positions at once and the decoder wavefront by wavefront
(:func:`wavefront_order`). Only the final ``exp`` of the scale is float64 (numpy): bit-exact on one
machine, and the same on every IEEE platform whose libm rounds ``exp`` identically.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DISTRIBUTIONS = ("laplace", "gaussian")
ACT_BITS = 8  # fractional bits of the integer ARM's activations
LOG_SCALE_MIN, LOG_SCALE_MAX = -10.0, 13.8155  # scale in [1e-3, 150]
P_MIN = 2.0**-24  # smallest probability the training rate can assign (about the range coder's precision)


def causal_offsets(rowcol: int = 2) -> list[tuple[int, int]]:
    """(dy, dx) of the causal neighbours: rows −rowcol..−1 at dx ∈ [−rowcol, rowcol], then row 0 at dx < 0."""
    above = [(dy, dx) for dy in range(-rowcol, 0) for dx in range(-rowcol, rowcol + 1)]
    return above + [(0, dx) for dx in range(-rowcol, 0)]


def gather_context(grid: torch.Tensor, offsets: list[tuple[int, int]]) -> torch.Tensor:
    """Causal context of every position of ``grid`` (h,w), float or integer: -> (h*w, C), zeros outside."""
    r = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
    h, w = grid.shape
    pad = _pad(grid, r)
    cols = [pad[r + dy : r + dy + h, r + dx : r + dx + w] for dy, dx in offsets]
    return torch.stack(cols, -1).reshape(h * w, len(offsets))


def _pad(grid: torch.Tensor, r: int) -> torch.Tensor:
    """Zeros above, left and right of ``grid`` (h,w), ``r`` wide (keeps dtype and autograd)."""
    h, w = grid.shape
    out = grid.new_zeros(h + r, w + 2 * r)
    out[r:, r : r + w] = grid
    return out


def context_at(
    grid: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, offsets: list[tuple[int, int]]
) -> torch.Tensor:
    """Causal context of the positions (ys, xs) of an integer ``grid`` (h,w): -> (N, C), zeros outside."""
    r = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
    pad = _pad(grid, r)
    dy = torch.tensor([o[0] for o in offsets])
    dx = torch.tensor([o[1] for o in offsets])
    return pad[ys[:, None] + r + dy, xs[:, None] + r + dx]


def wavefront_order(h: int, w: int, rowcol: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Positions of an (h,w) grid grouped into steps that only depend on earlier steps.

    Position (y,x) needs (y−1, x+rowcol), so t = (rowcol+1)·y + x orders it after all its context. The
    encoder writes the symbols in this order and the decoder decodes one step at a time.
    """
    a = rowcol + 1
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    t = (a * ys + xs).flatten()
    order = torch.argsort(t, stable=True)
    counts = torch.bincount(t)
    steps, start = [], 0
    for c in counts.tolist():
        idx = order[start : start + c]
        steps.append((idx // w, idx % w))
        start += c
    return steps


def scale_from_log(s: torch.Tensor | np.ndarray):
    """Distribution scale from the ARM's second output: ``exp(−½·clamp(s, −10, 13.8155))``."""
    if isinstance(s, np.ndarray):
        return np.exp(-0.5 * np.clip(s, LOG_SCALE_MIN, LOG_SCALE_MAX))
    return torch.exp(-0.5 * s.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX))


def cdf(x: torch.Tensor, mu: torch.Tensor, scale: torch.Tensor, dist: str) -> torch.Tensor:
    """CDF of a Laplace (``scale`` = b) or Gaussian (``scale`` = σ) distribution."""
    z = x - mu
    if dist == "laplace":
        return 0.5 - 0.5 * torch.sign(z) * torch.expm1(-z.abs() / scale)
    if dist == "gaussian":
        return 0.5 * (1.0 + torch.erf(z / (scale * math.sqrt(2.0))))
    raise ValueError(f"Unknown distribution {dist!r}; choose from {list(DISTRIBUTIONS)}")


def bits(y: torch.Tensor, mu: torch.Tensor, scale: torch.Tensor, dist: str) -> torch.Tensor:
    """−log2 p(y) of integer-valued (or relaxed) ``y`` under the distribution quantised to unit bins."""
    p = cdf(y + 0.5, mu, scale, dist) - cdf(y - 0.5, mu, scale, dist)
    return -torch.log2(p.clamp_min(P_MIN))


class ARM(nn.Module):
    """Per-position MLP on the causal context: (N, C) -> (μ (N,), s (N,)); ReLU hidden layers."""

    def __init__(self, context: int = 12, hidden: tuple[int, ...] = (12, 12)) -> None:
        super().__init__()
        dims = [context, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(dims[-1], 2)

    def forward(self, ctx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C) contexts -> (μ, s), each (N,)."""
        h = ctx
        for layer in self.hidden:
            h = F.relu(layer(h))
        o = self.out(h)
        return o[:, 0], o[:, 1]

    def forward_grid(
        self, grid: torch.Tensor, offsets: list[tuple[int, int]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, s) of every position of a float ``grid`` (h,w), each (h*w,), without building the contexts.

        The first layer is linear in the context, so it is a convolution of the zero-padded grid with a
        causal kernel holding the first layer's weights at the context offsets; the rest runs on columns.
        Same numbers as ``forward(gather_context(grid, offsets))`` up to float rounding, several times faster
        to differentiate on a CPU.
        """
        r = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
        first = self.hidden[0] if len(self.hidden) else self.out
        idx = torch.tensor([(dy + r) * (2 * r + 1) + dx + r for dy, dx in offsets], device=grid.device)
        kernel = first.weight.new_zeros(first.out_features, (r + 1) * (2 * r + 1)).index_copy(
            1, idx, first.weight
        )
        h = F.conv2d(F.pad(grid[None, None], (r, r, r, 0)), kernel.view(-1, 1, r + 1, 2 * r + 1), first.bias)
        h = h.reshape(first.out_features, -1)  # (hidden, h*w)
        if len(self.hidden) == 0:
            return h[0], h[1]
        h = F.relu(h)
        for layer in self.hidden[1:]:
            h = F.relu(torch.addmm(layer.bias[:, None], layer.weight, h))
        o = torch.addmm(self.out.bias[:, None], self.out.weight, h)
        return o[0], o[1]

    def layers(self) -> list[nn.Linear]:
        return [*self.hidden, self.out]


def arm_to_integers(arm: ARM, k: int) -> list[torch.Tensor]:
    """The ARM's weights and biases on the ``2^−k`` lattice, as int64 tensors [w0, b0, w1, b1, ...]."""
    out = []
    for layer in arm.layers():
        out += [torch.round(layer.weight.detach().double() * 2**k).long(),
                torch.round(layer.bias.detach().double() * 2**k).long()]  # fmt: skip
    return out


def integer_arm(ctx: torch.Tensor, params: list[torch.Tensor], k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ARM in fixed point: integer contexts (N, C) -> (μ, s) as float64 (N,), exactly reproducible.

    Activations carry :data:`ACT_BITS` fractional bits; a layer computes ``⌊(W·a + b·2^A) / 2^k⌋`` with
    ``W, b`` the integer weights on the ``2^−k`` lattice.
    """
    a = ctx.long() << ACT_BITS
    n_layers = len(params) // 2
    for i in range(n_layers):
        w, b = params[2 * i], params[2 * i + 1]
        acc = a @ w.T + (b << ACT_BITS)
        a = torch.div(acc, 2**k, rounding_mode="floor")
        if i < n_layers - 1:
            a = a.clamp_min(0)
    out = a.double() / 2**ACT_BITS
    return out[:, 0], out[:, 1]
