"""Autoregressive entropy model of the latents (ARM) and its exact, integer, bitstream form.

::

    latent grid ŷ (h,w) ──► causal context of C neighbours (zeros outside) ──► ARM MLP ──► (μ, s)
        training:  float ARM, p(ŷ) = F(ŷ+½) − F(ŷ−½), rate = −Σ log2 p          (F: Laplace or Gaussian CDF)
        coding:    IntegerARM, the same MLP in fixed point on integer latents ──► (μ, s) exactly
                   ──► constriction QuantizedLaplace / QuantizedGaussian ──► range coder

Context (COOL-CHIC v1, ``n_ctx_rowcol=2``, C=12): the 5 positions x−2..x+2 of rows y−2 and y−1 and the
2 positions x−2, x−1 of row y. The scale is ``exp(−½·clamp(s, −10, 13.8155))`` ∈ [1e-3, 150] as in
COOL-CHIC (spec ``shared/specs/codec.md`` §1.3, §2).

Decoding runs the ARM one wavefront at a time (:class:`LatentCanvas`: all grids padded once into one buffer, every
step's gather indices precomputed; format 3 interleaves the grids, so step t decodes wavefront t of every grid in one
integer-ARM call and one range-decoder call).

Why integers: the decoder recomputes (μ, s) from already decoded latents and must get *exactly* the
encoder's numbers, or the range decoder desynchronises (CompressAI #279, #309). Float matrix products
give different last bits for different batch shapes and machines; the integer ARM (weights on a
``2^−k`` lattice, activations with :data:`ACT_BITS` fractional bits, floor division) is exact everywhere,
so the encoder can run it on all positions at once and the decoder wavefront by wavefront
(:meth:`LatentCanvas.schedule`). Only the final ``exp`` of the scale is float64 (numpy): bit-exact on one
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
    return context_columns(grid, offsets).T


def context_columns(grid: torch.Tensor, offsets: list[tuple[int, int]]) -> torch.Tensor:
    """:func:`gather_context` as columns: (C, h*w), one shifted copy of the zero-padded grid per neighbour — the
    layout the training ARM multiplies. Differentiable: the gradient adds each column back at its shift into one
    padded buffer (autograd's own slice gradients would allocate a padded grid per neighbour)."""
    return _ContextColumns.apply(grid, tuple(offsets))


class _ContextColumns(torch.autograd.Function):
    @staticmethod
    def forward(ctx, grid: torch.Tensor, offsets: tuple[tuple[int, int], ...]) -> torch.Tensor:
        r = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
        h, w = grid.shape
        pad = _pad(grid, r)
        ctx.meta = (h, w, r, offsets)
        return torch.stack([pad[r + dy : r + dy + h, r + dx : r + dx + w] for dy, dx in offsets]).reshape(
            len(offsets), h * w
        )

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        h, w, r, offsets = ctx.meta
        out = grad.new_zeros(h + r, w + 2 * r)
        grad = grad.reshape(len(offsets), h, w)
        for c, (dy, dx) in enumerate(offsets):
            out[r + dy : r + dy + h, r + dx : r + dx + w] += grad[c]
        return out[r:, r : r + w], None


def _pad(grid: torch.Tensor, r: int) -> torch.Tensor:
    """Zeros above, left and right of ``grid`` (h,w), ``r`` wide (keeps dtype and autograd)."""
    h, w = grid.shape
    out = grid.new_zeros(h + r, w + 2 * r)
    out[r:, r : r + w] = grid
    return out


class LatentCanvas:
    """The latent grids of one file in one zero-padded float64 buffer, decoded in place, with the flat positions of
    every wavefront step computed once: a step reads its contexts with one fancy index and writes its symbols with
    another.

    ::

        buffer: the grids stacked top to bottom, each below r zero rows, r zero columns left and right of the
        widest; grid i's (y,x) at flat (top_i + y)·W + r + x, W = max w_i + 2r
        context of flat p: buffer[p + dy·W + dx] for the causal (dy, dx) — zeros outside any grid

    :meth:`schedule` gives the coding order: grid by grid (formats 1, 2), or interleaved (format 3: step t holds
    wavefront t of every coded grid, in grid order then raster order, so a file's latents take as many steps as its
    largest grid has wavefronts). Values are integers held in float64 (exact below 2^53; the format bounds them by
    2^16).
    """

    def __init__(self, shapes: list[tuple[int, int]], offsets: list[tuple[int, int]], rowcol: int,
                 coded: list[bool] | None = None) -> None:  # fmt: skip
        self.shapes = [(int(h), int(w)) for h, w in shapes]
        self.rowcol = rowcol
        self.coded = [True] * len(self.shapes) if coded is None else [bool(c) for c in coded]
        self.r = r = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
        self.width = max(w for _, w in self.shapes) + 2 * r
        self.tops, row = [], 0
        for h, _ in self.shapes:
            self.tops.append(row + r)
            row += h + r
        self.buffer = np.zeros(row * self.width, dtype=np.float64)
        self.offsets = np.asarray([dy * self.width + dx for dy, dx in offsets], dtype=np.int64)

    def schedule(self, interleave: bool = True) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """``(pos, bounds, ends)``: the coded positions' flat indices in coding order, step j being
        ``pos[bounds[j]:bounds[j+1]]``, and for each grid the number of steps after which it is complete (0 for a
        grid that is not coded).

        Position (y,x) of a grid needs (y−1, x+rowcol), so its wavefront number t = (rowcol+1)·y + x orders it after
        all its context; within a step positions keep raster order. The encoder writes the symbols in this order and
        the decoder decodes one step at a time.
        """
        flats, keys = (
            [],
            [],
        )  # per coded grid: flat positions and wavefront numbers, raster order (last = max)
        for (h, w), top, coded in zip(self.shapes, self.tops, self.coded, strict=True):
            if coded:
                ys, xs = np.divmod(np.arange(h * w, dtype=np.int64), w)
                flats.append((top + ys) * self.width + self.r + xs)
                keys.append((self.rowcol + 1) * ys + xs)
        if not flats:
            return np.zeros(0, np.int64), np.zeros(1, np.int64), [0] * len(self.shapes)
        if not interleave:  # grid-major: shift each grid's wavefront numbers past the previous grids'
            base = np.cumsum([0] + [int(k[-1]) + 1 for k in keys])
            keys = [k + b for k, b in zip(keys, base)]
        key = np.concatenate(keys)
        order = np.argsort(key, kind="stable")  # grids are concatenated in order, each in raster order
        counts = np.bincount(key)
        # empty wavefronts (a grid narrower than rowcol + 1 skips some numbers) are dropped
        bounds = np.concatenate([[0], np.cumsum(counts[counts > 0])])
        steps_through = np.cumsum(counts > 0)  # steps up to and including each wavefront number
        last = iter(k[-1] for k in keys)
        ends = [int(steps_through[next(last)]) if c else 0 for c in self.coded]
        return np.concatenate(flats)[order], bounds, ends

    def _view(self, i: int) -> np.ndarray:
        h, w = self.shapes[i]
        top, r = self.tops[i], self.r
        return self.buffer.reshape(-1, self.width)[top : top + h, r : r + w]

    def context(self, pos: np.ndarray) -> np.ndarray:
        """(N, C) float64 contexts of the flat positions ``pos`` (zeros outside the grids and where not yet decoded)."""
        return self.buffer[pos[:, None] + self.offsets]

    def fill(self, grids: list[torch.Tensor]) -> None:
        """Write whole integer grids into the buffer (the encoder: every context is known at once)."""
        for i, g in enumerate(grids):
            self._view(i)[...] = g.numpy()

    def grids(self) -> list[torch.Tensor]:
        """The (h_i, w_i) int64 grids."""
        return [torch.from_numpy(self._view(i).astype(np.int64)) for i in range(len(self.shapes))]


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
        """(μ, s) of every position of a float ``grid`` (h,w), each (h*w,): the MLP on the context columns
        (:func:`context_columns`), every layer one matrix product over all positions. Same numbers as
        ``forward(gather_context(grid, offsets))`` up to float rounding, several times faster to differentiate on a
        CPU (and about twice as fast as the first layer written as a causal convolution)."""
        h = context_columns(grid, offsets)  # (C, h*w)
        for layer in self.hidden:
            h = torch.relu_(torch.addmm(layer.bias[:, None], layer.weight, h))
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
    ``2^−k`` lattice) and called on integer contexts (N, C) (int64, or integer-valued float64) -> (μ, s) float64 (N,).

    Activations carry :data:`ACT_BITS` fractional bits; a layer computes ``⌊(W·a + b·2^A) / 2^k⌋``. The products
    run as float64 matrix products (BLAS) when a bound on the layer's sums — max|a| times the largest row sum of |W|,
    plus max|b·2^A| — stays below 2^53, where every float64 sum of integers is exact whatever its order; otherwise as
    int64 products. Either way the numbers are the integers' own, the same on every machine. The float64 path keeps
    the powers of two in the weights (``W·2^(A−k)`` for the first layer, ``W·2^−k`` after it): scaling by a power
    of two is exact, so each step is a product, an addition and a floor.
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
            # the first layer's input gains A fractional bits; every layer divides by 2^k
            scale = 2.0 ** ((ACT_BITS if i == 0 else 0) - k)
            wt = np.ascontiguousarray(w.T, dtype=np.float64) * scale
            self.layers.append((w, b, wt, b.astype(np.float64) * 2.0**-k, bound))
        # the last layer's two outputs: μ = a·2^−A and −½·s = a·(−½·2^−A), both exact
        self._out_scale = np.array([2.0**-ACT_BITS, -0.5 * 2.0**-ACT_BITS])

    def plan(self, max_context: int) -> list[bool]:
        """For each layer, whether its float64 product is exact for every context of magnitude at most
        ``max_context`` (a latent grid's maximum, from the file header): the first layer's bound, propagated."""
        amax, out = float(max_context) * 2**ACT_BITS, []
        for *_, (wsum, bmax) in self.layers:
            bound = amax * wsum + bmax
            out.append(bound < self.EXACT)
            amax = math.floor(bound / 2**self.k)
        return out

    def _last(self, ctx: np.ndarray, plan: list[bool] | None) -> np.ndarray:
        """The last layer's integer outputs (N, 2) as float64 (μ and s times 2^A)."""
        a = np.asarray(ctx, dtype=np.float64)
        last = len(self.layers) - 1
        for i, (w, b, wt, bf, (wsum, bmax)) in enumerate(self.layers):
            if plan is not None:
                exact = plan[i]
            else:  # the bound of this call's own activations (the first layer's input gains A fractional bits)
                amax = (float(np.abs(a).max()) if a.size else 0.0) * (2**ACT_BITS if i == 0 else 1)
                exact = amax * wsum + bmax < self.EXACT
            if exact:  # integers below 2^53: every step is exact
                a = a @ wt
                a += bf
                np.floor(a, out=a)
            else:
                ai = a.astype(np.int64) << (ACT_BITS if i == 0 else 0)
                a = ((ai @ w.T + b) >> self.k).astype(np.float64)
            if i < last:
                np.maximum(a, 0.0, out=a)
        return a

    def __call__(self, ctx: np.ndarray, plan: list[bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(μ, s) of the integer contexts ``ctx`` (N, C). ``plan`` (:meth:`plan` of a bound on |ctx|) fixes each
        layer's path once for a whole file; without it each call bounds its own sums."""
        a = self._last(ctx, plan) * 2.0**-ACT_BITS
        return a[:, 0], a[:, 1]

    def mu_scale(self, ctx: np.ndarray, plan: list[bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(μ, scale) for the range coder: :meth:`__call__` with ``scale_from_log(s)`` folded in (the same numbers:
        ``−½·clamp(s, lo, hi)`` is ``clamp(−½·s, −½·hi, −½·lo)`` exactly)."""
        a = self._last(ctx, plan)
        a *= self._out_scale
        s = a[:, 1]
        np.minimum(s, -0.5 * LOG_SCALE_MIN, out=s)
        np.maximum(s, -0.5 * LOG_SCALE_MAX, out=s)
        return a[:, 0], np.exp(s)
