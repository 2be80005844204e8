"""Autoregressive entropy model of the latents (ARM) and its exact, integer, bitstream form.

::

    latent grid ŷ (h,w) ──► causal context of C neighbours (zeros outside) ──► ARM MLP ──► (μ, s)
        training:  float ARM, p(ŷ) = F(ŷ+½) − F(ŷ−½), rate = −Σ log2 p          (F: Laplace or Gaussian CDF)
        coding:    IntegerARM, the same MLP in fixed point on integer latents ──► (μ, s) exactly
                   ──► constriction QuantizedLaplace / QuantizedGaussian ──► range coder

Context (COOL-CHIC v1, ``n_ctx_rowcol=2``, C=12): the 5 positions x−2..x+2 of rows y−2 and y−1 and the
2 positions x−2, x−1 of row y. The scale is ``exp(−½·clamp(s, −10, 13.8155))`` ∈ [1e-3, 150] as in
COOL-CHIC (spec ``shared/specs/codec.md`` §1.3, §2).

Decoding runs the ARM one wavefront at a time (:class:`PaddedGrid`: the grid padded once, every step's gather
indices precomputed, the integer ARM in numpy on the step's positions at once).

Why integers: the decoder recomputes (μ, s) from already decoded latents and must get *exactly* the
encoder's numbers, or the range decoder desynchronises (CompressAI #279, #309). Float matrix products
give different last bits for different batch shapes and machines; the integer ARM (weights on a
``2^−k`` lattice, activations with :data:`ACT_BITS` fractional bits, floor division) is exact everywhere,
so the encoder can run it on all positions at once and the decoder wavefront by wavefront
(:func:`wavefront_steps`). Only the final ``exp`` of the scale is float64 (numpy): bit-exact on one
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


class PaddedGrid:
    """An (h,w) int64 grid decoded in place inside one zero-padded buffer, with the flat gather indices of every
    wavefront computed once: each step reads its contexts with one fancy index and writes its symbols with another.

    ::

        buffer (h + r) x (w + 2r), zeros above, left and right; position (y,x) at flat (y + r)·W + x + r, W = w + 2r
        context of flat p: buffer[p + dy·W + dx] for the causal (dy, dx)
    """

    def __init__(self, h: int, w: int, offsets: list[tuple[int, int]], rowcol: int) -> None:
        self.h, self.w = h, w
        self.r = r = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
        self.width = w + 2 * r
        self.buffer = np.zeros((h + r) * self.width, dtype=np.int64)
        self.offsets = np.asarray([dy * self.width + dx for dy, dx in offsets], dtype=np.int64)
        steps = wavefront_steps(h, w, rowcol)
        idx = np.concatenate(steps)
        flat = (idx // w + r) * self.width + idx % w + r  # the positions moved into the padded buffer
        self.steps = np.split(flat, np.cumsum([len(s) for s in steps])[:-1])

    def context(self, pos: np.ndarray) -> np.ndarray:
        """(N, C) contexts of the flat positions ``pos`` (zeros outside the grid and not yet decoded)."""
        return self.buffer[pos[:, None] + self.offsets]

    def grid(self) -> torch.Tensor:
        """The decoded (h, w) grid."""
        r = self.r
        return torch.from_numpy(self.buffer.reshape(self.h + r, self.width)[r:, r : r + self.w].copy())


def wavefront_steps(h: int, w: int, rowcol: int = 2) -> list[np.ndarray]:
    """Flat positions (y·w + x) of an (h,w) grid grouped into steps that only depend on earlier steps.

    Position (y,x) needs (y−1, x+rowcol), so t = (rowcol+1)·y + x orders it after all its context; within a step
    positions keep raster order. The encoder writes the symbols in this order and the decoder decodes one step at
    a time.
    """
    ys, xs = np.divmod(np.arange(h * w, dtype=np.int64), w)
    t = (rowcol + 1) * ys + xs
    order = np.argsort(t, kind="stable")
    return np.split(order, np.cumsum(np.bincount(t))[:-1])


def wavefront_order(h: int, w: int, rowcol: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """:func:`wavefront_steps` as (ys, xs) tensors per step."""
    return [(torch.from_numpy(idx // w), torch.from_numpy(idx % w)) for idx in wavefront_steps(h, w, rowcol)]


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
    """The ARM in fixed point: integer contexts (N, C) -> (μ, s) as float64 (N,), exactly reproducible
    (:func:`integer_arm_np` on tensors)."""
    mu, s = integer_arm_np(ctx.numpy().astype(np.int64, copy=False), [p.numpy() for p in params], k)
    return torch.from_numpy(mu), torch.from_numpy(s)


def integer_arm_np(ctx: np.ndarray, params: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ARM in fixed point on int64 arrays: contexts (N, C) -> (μ, s) as float64 (N,) (:class:`IntegerARM`)."""
    return IntegerARM(params, k)(ctx)


class IntegerARM:
    """The ARM in fixed point, built once from its integer weights (int64 arrays ``[w0, b0, w1, b1, ...]`` on the
    ``2^−k`` lattice) and called on int64 contexts (N, C) -> (μ, s) float64 (N,).

    Activations carry :data:`ACT_BITS` fractional bits; a layer computes ``⌊(W·a + b·2^A) / 2^k⌋``. The products
    run as float64 matrix products (BLAS) when a bound on the layer's sums — max|a| times the largest row sum of |W|,
    plus max|b·2^A| — stays below 2^53, where every float64 sum of integers is exact whatever its order; otherwise as
    int64 products. Either way the numbers are the integers' own, the same on every machine.
    """

    EXACT = 2.0**53

    def __init__(self, params: list[np.ndarray], k: int) -> None:
        self.k = k
        self.layers = []
        for i in range(len(params) // 2):
            w = np.asarray(params[2 * i], dtype=np.int64)
            b = np.asarray(params[2 * i + 1], dtype=np.int64) << ACT_BITS
            bound = (
                float(np.abs(w).sum(1).max()) if w.size else 0.0,
                float(np.abs(b).max()) if b.size else 0.0,
            )
            self.layers.append(
                (w, b, np.ascontiguousarray(w.T, dtype=np.float64), b.astype(np.float64), bound)
            )

    def plan(self, max_context: int) -> list[bool]:
        """For each layer, whether its float64 product is exact for every context of magnitude at most
        ``max_context`` (a latent grid's maximum, from the file header): the first layer's bound, propagated."""
        amax, out = float(max_context) * 2**ACT_BITS, []
        for *_, (wsum, bmax) in self.layers:
            bound = amax * wsum + bmax
            out.append(bound < self.EXACT)
            amax = math.floor(bound / 2**self.k)
        return out

    def __call__(self, ctx: np.ndarray, plan: list[bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(μ, s) of the int64 contexts ``ctx`` (N, C). ``plan`` (:meth:`plan` of a bound on |ctx|) fixes each layer's
        path once for a whole grid; without it each call bounds its own sums."""
        af = np.asarray(ctx, dtype=np.int64).astype(np.float64)
        af *= 2.0**ACT_BITS
        scale = 2.0**-self.k
        last = len(self.layers) - 1
        for i, (w, b, wt, bf, (wsum, bmax)) in enumerate(self.layers):
            exact = (
                plan[i]
                if plan is not None
                else (float(np.abs(af).max()) if af.size else 0.0) * wsum + bmax < self.EXACT
            )
            if exact:  # integers below 2^53 and a power-of-two scale: every step is exact
                af = af @ wt
                af += bf
                af *= scale
                np.floor(af, out=af)
            else:
                af = ((af.astype(np.int64) @ w.T + b) >> self.k).astype(np.float64)
            if i < last:
                np.maximum(af, 0.0, out=af)
        af *= 2.0**-ACT_BITS
        return af[:, 0], af[:, 1]
