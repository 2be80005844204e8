"""The ``.tvc`` file of the overfitted codecs: a small binary header, then one range-coded stream.

Layout (little-endian)::

    magic "TVC" | version u8 | method u8 | height u16 | width u16 | lambda f32
    n_grids u8 | n_synth u8, synth widths u8… | lem_layers u8 | arm_rowcol u8 | n_arm u8, arm widths u8…
    distribution u8 | k_synth u8 | k_lem u8 | k_arm u8
    grid_max u16 × n_grids                      (latents of grid i lie in [−M_i, M_i]; M_i = 0: all zero)
    param_scale u8 × n_tensors                  (Laplace scale 2^((s−64)/8) of each weight / bias tensor)
    payload_words u32 | crc32(payload) u32
    payload: constriction RangeEncoder words (u32): every parameter tensor, then every latent grid

Parameters are integers on a ``2^−k`` lattice (one ``k`` per module: synthesis, LEM, ARM), coded with a
zero-mean quantised Laplace of the tensor's scale over [−2^15, 2^15). Latents are coded grid by grid in
:func:`~trustvis.methods.codec.entropy.wavefront_order` with the (μ, scale) of the integer ARM.
constriction is pinned to 0.5.x: its stability policy changes the leading version number whenever coder
output changes. A wrong magic, version, length or checksum raises :class:`BitstreamError`.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import torch

MAGIC = b"TVC"
VERSION = 1
METHOD_IDS = {"coolchic": 0, "eqlinr": 1}
DISTRIBUTION_IDS = {"laplace": 0, "gaussian": 1}
PARAM_SUPPORT = 2**15  # parameter integers lie in [−PARAM_SUPPORT, PARAM_SUPPORT)
MAX_GRID = 2**16 - 1


class BitstreamError(ValueError):
    """A ``.tvc`` file that cannot be decoded: not a trustvis codec file, another version, truncated or
    corrupt."""


@dataclass(frozen=True)
class Header:
    """Everything the decoder needs besides the payload."""

    method: str
    height: int
    width: int
    lmbda: float
    n_grids: int
    synthesis: tuple[int, ...]
    lem_layers: int
    arm_rowcol: int
    arm_hidden: tuple[int, ...]
    distribution: str
    k_synth: int
    k_lem: int
    k_arm: int
    grid_max: tuple[int, ...]
    param_scales: tuple[int, ...]

    def param_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the coded tensors in order: synthesis (per-pixel linear), LEM (3x3 convs), ARM (linear)."""
        return param_shapes(self.n_grids, self.synthesis, self.lem_layers, self.arm_rowcol, self.arm_hidden)


def param_shapes(
    n_grids: int, synthesis: tuple[int, ...], lem_layers: int, arm_rowcol: int, arm_hidden: tuple[int, ...]
) -> list[tuple[int, ...]]:
    """Weight/bias shapes of the synthesis, LEM and ARM, as the decoder rebuilds them."""
    shapes: list[tuple[int, ...]] = []
    dims = [n_grids, *synthesis, 3]
    for a, b in zip(dims[:-1], dims[1:]):
        shapes += [(b, a), (b,)]
    for _ in range(lem_layers):
        shapes += [(3, 3, 3, 3), (3,)]
    context = arm_rowcol * (2 * arm_rowcol + 1) + arm_rowcol
    dims = [context, *arm_hidden, 2]
    for a, b in zip(dims[:-1], dims[1:]):
        shapes += [(b, a), (b,)]
    return shapes


def scale_index(values: np.ndarray) -> int:
    """u8 index of the Laplace scale fitted to integer ``values`` (mean absolute value, at least 2^−8)."""
    b = max(float(np.mean(np.abs(values))) if values.size else 0.0, 2.0**-8)
    return int(min(max(round(8 * math.log2(b) + 64), 0), 255))


def index_scale(index: int) -> float:
    return 2.0 ** ((index - 64) / 8)


def pack(header: Header, payload: np.ndarray) -> bytes:
    """Header + payload words -> file bytes."""
    h = header
    if not (0 < h.height <= MAX_GRID and 0 < h.width <= MAX_GRID):
        raise ValueError(f"Image side must be in [1, {MAX_GRID}], got {h.height}x{h.width}")
    if any(not 0 <= m <= MAX_GRID for m in h.grid_max):
        raise ValueError(f"Latent magnitude above {MAX_GRID}: {h.grid_max}")
    out = bytearray(MAGIC)
    out += struct.pack("<BBHHf", VERSION, METHOD_IDS[h.method], h.height, h.width, h.lmbda)
    out += struct.pack("<BB", h.n_grids, len(h.synthesis)) + bytes(h.synthesis)
    out += struct.pack("<BBB", h.lem_layers, h.arm_rowcol, len(h.arm_hidden)) + bytes(h.arm_hidden)
    out += struct.pack("<BBBB", DISTRIBUTION_IDS[h.distribution], h.k_synth, h.k_lem, h.k_arm)
    out += struct.pack(f"<{h.n_grids}H", *h.grid_max)
    out += bytes(h.param_scales)
    words = np.ascontiguousarray(payload, dtype="<u4").tobytes()
    out += struct.pack("<II", len(words) // 4, zlib.crc32(words))
    return bytes(out) + words


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise BitstreamError(f"Truncated .tvc file: header ends after {len(self.data)} bytes")
        out = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return out


def unpack(data: bytes) -> tuple[Header, np.ndarray]:
    """File bytes -> (header, payload words); raises :class:`BitstreamError` on anything malformed."""
    if len(data) < 3 or data[:3] != MAGIC:
        raise BitstreamError("Not a trustvis codec file (.tvc): wrong magic bytes")
    r = _Reader(data)
    r.pos = 3
    version, method_id, height, width, lmbda = r.take("<BBHHf")
    if version != VERSION:
        raise BitstreamError(f"Unsupported .tvc version {version}; this trustvis reads version {VERSION}")
    methods = {v: k for k, v in METHOD_IDS.items()}
    if method_id not in methods:
        raise BitstreamError(f"Unknown codec id {method_id} in the header (corrupt file?)")
    (n_grids, n_synth) = r.take("<BB")
    synthesis = r.take(f"<{n_synth}B")
    lem_layers, arm_rowcol, n_arm = r.take("<BBB")
    arm_hidden = r.take(f"<{n_arm}B")
    dist_id, k_synth, k_lem, k_arm = r.take("<BBBB")
    dists = {v: k for k, v in DISTRIBUTION_IDS.items()}
    if dist_id not in dists or n_grids == 0 or arm_rowcol == 0 or height == 0 or width == 0:
        raise BitstreamError("Corrupt .tvc header (impossible architecture)")
    grid_max = r.take(f"<{n_grids}H")
    n_tensors = len(param_shapes(n_grids, synthesis, lem_layers, arm_rowcol, arm_hidden))
    param_scales = r.take(f"<{n_tensors}B")
    n_words, crc = r.take("<II")
    words = data[r.pos :]
    if len(words) != 4 * n_words:
        raise BitstreamError(
            f"Truncated or padded .tvc file: payload has {len(words)} bytes, the header says {4 * n_words}"
        )
    if zlib.crc32(words) != crc:
        raise BitstreamError("Corrupt .tvc file: payload checksum mismatch")
    header = Header(methods[method_id], height, width, float(f"{lmbda:.7g}"), n_grids, tuple(synthesis), lem_layers,
                    arm_rowcol, tuple(arm_hidden), dists[dist_id], k_synth, k_lem, k_arm, tuple(grid_max),
                    tuple(param_scales))  # fmt: skip
    return header, np.frombuffer(words, dtype="<u4").astype(np.uint32)


# ------------------------------------------------------------------------------------- range coding


def _family(dist: str, lo: int, hi: int):
    import constriction

    m = constriction.stream.model
    return m.QuantizedLaplace(lo, hi) if dist == "laplace" else m.QuantizedGaussian(lo, hi)


def encode_params(encoder, tensors: list[torch.Tensor], scales: list[int]) -> None:
    """Append integer parameter tensors to a constriction ``RangeEncoder``."""
    fam = _family("laplace", -PARAM_SUPPORT, PARAM_SUPPORT - 1)
    for t, s in zip(tensors, scales):
        v = t.flatten().numpy().astype(np.int32)
        if v.size and (v.min() < -PARAM_SUPPORT or v.max() >= PARAM_SUPPORT):
            raise ValueError("Parameter integer out of the coded range; use a coarser quantisation step")
        encoder.encode(v, fam, np.zeros(v.size), np.full(v.size, index_scale(s)))


def decode_params(decoder, shapes: list[tuple[int, ...]], scales: tuple[int, ...]) -> list[torch.Tensor]:
    fam = _family("laplace", -PARAM_SUPPORT, PARAM_SUPPORT - 1)
    out = []
    for shape, s in zip(shapes, scales):
        n = int(np.prod(shape))
        v = decoder.decode(fam, np.zeros(n), np.full(n, index_scale(s))) if n else np.zeros(0, np.int32)
        out.append(torch.from_numpy(np.asarray(v, dtype=np.int64)).reshape(shape))
    return out


def _arm_params(mu_s: tuple[torch.Tensor, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    from trustvis.methods.codec.entropy import scale_from_log

    mu, s = mu_s
    return mu.numpy().astype(np.float64), scale_from_log(s.numpy().astype(np.float64))


def encode_latents(
    encoder, grids: list[torch.Tensor], arm: list[torch.Tensor], k_arm: int, rowcol: int, dist: str
) -> list[int]:
    """Append the integer latent grids (h_i, w_i) to ``encoder``; returns their magnitudes ``M_i``.

    (μ, scale) of every position come from the integer ARM on the whole grid at once (exact, so equal to
    what the decoder computes wavefront by wavefront); symbols are written in wavefront order.
    """
    from trustvis.methods.codec.entropy import causal_offsets, gather_context, integer_arm, wavefront_order

    offsets = causal_offsets(rowcol)
    maxima = []
    for g in grids:
        m = int(g.abs().max()) if g.numel() else 0
        if m > MAX_GRID:
            raise ValueError(f"Latent magnitude {m} exceeds {MAX_GRID}")
        maxima.append(m)
        if m == 0:
            continue
        h, w = g.shape
        mu, scale = _arm_params(integer_arm(gather_context(g, offsets), arm, k_arm))
        order = torch.cat([ys * w + xs for ys, xs in wavefront_order(h, w, rowcol)]).numpy()
        symbols = g.flatten().numpy().astype(np.int32)[order]
        encoder.encode(symbols, _family(dist, -m, m), mu[order], scale[order])
    return maxima


def decode_latents(
    decoder, shapes: list[tuple[int, int]], maxima: tuple[int, ...], arm: list[torch.Tensor], k_arm: int,
    rowcol: int, dist: str, progress=None,
) -> list[torch.Tensor]:  # fmt: skip
    """Decode the latent grids written by :func:`encode_latents`, one wavefront step at a time."""
    from trustvis.methods.codec.entropy import causal_offsets, context_at, integer_arm, wavefront_order

    offsets = causal_offsets(rowcol)
    grids = []
    for (h, w), m in zip(shapes, maxima):
        g = torch.zeros(h, w, dtype=torch.int64)
        if m > 0:
            fam = _family(dist, -m, m)
            for ys, xs in wavefront_order(h, w, rowcol):
                mu, scale = _arm_params(integer_arm(context_at(g, ys, xs, offsets), arm, k_arm))
                g[ys, xs] = torch.from_numpy(np.asarray(decoder.decode(fam, mu, scale), dtype=np.int64))
        grids.append(g)
        if progress is not None:
            progress.update(1)
    return grids
