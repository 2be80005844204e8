"""The ``.tvc`` file of the overfitted codecs: a small binary header, then one range-coded stream.

Layout (little-endian), format version 3::

    magic "TVC" | version u8 | method u8 | height u16 | width u16 | lambda f32
    n_grids u8 | n_synth u8, synth widths u8… | lem_layers u8 | arm_rowcol u8 | n_arm u8, arm widths u8…
    distribution u8 | k_synth u8 | k_lem u8 | k_arm u8
    grid_max u16 × n_grids                      (latents of grid i lie in [−M_i, M_i]; M_i = 0: all zero)
    param_scale u8 × n_tensors                  (Laplace scale 2^((s−64)/8) of each weight / bias tensor)
    payload_words u32 | crc32 u32               (CRC-32 of every byte of the file except these 4)
    payload: constriction RangeEncoder words (u32): every parameter tensor, then the latents

Parameters are integers on a ``2^−k`` lattice (one ``k`` per module: synthesis, LEM, ARM), coded with a
zero-mean quantised Laplace of the tensor's scale over [−2^15, 2^15). Latents are coded with the (μ, scale) of the
integer ARM in wavefront steps (``trustvis.methods.codec.entropy.LatentCanvas.schedule``). Version 3 interleaves the
grids — step t holds wavefront t of every grid with ``M_i > 0`` — and codes every latent over the common support
[−M, M], M = max M_i, so the decoder takes one range-decoder call per step for all grids (as many steps as the
largest grid has wavefronts, about half the grid-by-grid count). Versions 1 and 2 code grid by grid, grid i over
[−M_i, M_i]; they still decode.
constriction is pinned to 0.5.x: its stability policy changes the leading version number whenever coder
output changes.

Integrity and limits (checked by :func:`unpack` before anything is allocated; any failure raises
:class:`BitstreamError`):

* the checksum covers the header and the payload (versions 2 and 3), so a damaged file — any single bit flip,
  any burst of up to 32 bits — is refused, never decoded to a wrong image. Version 1 (trustvis before
  the hardening of issue 18) had the same layout with a CRC of the payload only; such files still decode
  (nothing is lost), with a warning that their header is unprotected: re-encode them to protect it;
* a wrong magic, an unknown version, a truncated or padded file;
* size: sides in [1, 65535], at most :data:`MAX_PIXELS` pixels (16.8 MP, e.g. 4096x4096) and at most
  :data:`MAX_ACTIVATIONS` values in the widest per-pixel layer (pixels x width), which bound the
  decoder's memory; the encoder refuses the same images before it starts;
* architecture: at most :data:`MAX_GRIDS` latent grids, :data:`MAX_LAYERS` layers per network,
  ``arm_rowcol`` in 1..:data:`MAX_ROWCOL`, lattice exponents ``k`` ≤ :data:`MAX_K`, no zero-width layer;
* payload length (:func:`min_payload_bits`): every parameter and every latent position of a grid with
  ``M_i > 0`` is range-coded, and constriction gives each of the ``2M+1`` symbols of a support at least
  ``2^−24``, so a symbol costs at least ``−log2(1 − 2M·2^−24)`` bits (0.011 bits for ``M`` = 65535;
  measured: 1e5 zeros with ``M`` = 65535 take 1152 bits, the bound says 1132). A header that claims
  more than its payload can hold (e.g. a 1 KB file claiming 4000x4000 latents of magnitude 65535) is
  refused. The bound is sound — no real file is refused — but weak for ``M = 1`` (1.7e-7 bits per
  position: a real flat 4096x4096 image with one dot legitimately needs only a few hundred bytes), so
  below :data:`MAX_PIXELS` a forged header costs at most what a real file of its size costs to decode.
"""

from __future__ import annotations

import logging
import math
import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

log = logging.getLogger(__name__)

MAGIC = b"TVC"
VERSION = 3  # 3: grids interleaved by wavefront; 2: grid by grid; 1: as 2, checksum of the payload only
READABLE_VERSIONS = (1, 2, 3)
INTERLEAVED_SINCE = 3  # the first version whose latents are interleaved across grids
METHOD_IDS = {"coolchic": 0, "eqlinr": 1}
DISTRIBUTION_IDS = {"laplace": 0, "gaussian": 1}
PARAM_SUPPORT = 2**15  # parameter integers lie in [−PARAM_SUPPORT, PARAM_SUPPORT)
MAX_GRID = 2**16 - 1  # largest image side and latent magnitude (u16 fields)
MAX_PIXELS = 2**24  # height x width: 16.8 MP (4096x4096); bounds encoder and decoder memory
MAX_ACTIVATIONS = 2**28  # pixels x widest per-pixel layer (1 GiB of float32 per layer output)
MAX_GRIDS = 16  # latent grids (2^15 down-sampling: a 65535-pixel side is one latent)
MAX_LAYERS = 16  # layers of the synthesis, of the LEM and of the ARM
MAX_ROWCOL = 8  # ARM context rows/cols (8 -> 144 causal neighbours)
MAX_K = 30  # parameter lattice exponents 2^-k (the encoder uses 3..14)
ENCODE_CHUNK = 2**20  # latent positions per integer-ARM call in the encoder (bounds its memory)
CODER_PRECISION = 24  # constriction's quantised models give every symbol of the support >= 2^-24


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
    version: int = VERSION  # of the file it was read from; files are always written in VERSION

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


def check_architecture(
    n_grids: int, synthesis: tuple[int, ...], lem_layers: int, arm_rowcol: int, arm_hidden: tuple[int, ...]
) -> None:
    """Raise ``ValueError`` naming the field when an architecture is outside the format's limits."""
    if not 1 <= n_grids <= MAX_GRIDS:
        raise ValueError(f"n_grids must be in 1..{MAX_GRIDS}, got {n_grids}")
    for name, widths in (("synthesis", synthesis), ("arm_hidden", arm_hidden)):
        if len(widths) > MAX_LAYERS:
            raise ValueError(f"{name} has {len(widths)} layers; at most {MAX_LAYERS}")
        if any(not 1 <= int(w) <= 255 for w in widths):
            raise ValueError(f"{name} widths must be in 1..255, got {list(widths)}")
    if not 0 <= lem_layers <= MAX_LAYERS:
        raise ValueError(f"lem_layers must be in 0..{MAX_LAYERS}, got {lem_layers}")
    if not 1 <= arm_rowcol <= MAX_ROWCOL:
        raise ValueError(f"arm_rowcol must be in 1..{MAX_ROWCOL}, got {arm_rowcol}")


def check_size(height: int, width: int, n_grids: int = 7, synthesis: tuple[int, ...] = (12, 12)) -> None:
    """Raise ``ValueError`` when an image of ``width`` x ``height`` is outside the format's limits:
    sides in [1, 65535], at most :data:`MAX_PIXELS` pixels and :data:`MAX_ACTIVATIONS` values in the
    widest per-pixel layer (these bound the memory of encoding and decoding)."""
    if not (1 <= height <= MAX_GRID and 1 <= width <= MAX_GRID):
        raise ValueError(f"image sides must be in 1..{MAX_GRID} pixels, got {width}x{height}")
    pixels = height * width
    if pixels > MAX_PIXELS:
        raise ValueError(
            f"{width}x{height} is {pixels:,} pixels, above the codec's limit of {MAX_PIXELS:,} (e.g. 4096x4096); "
            "crop or downscale the image"
        )
    widest = max(n_grids, *synthesis, 3)
    if pixels * widest > MAX_ACTIVATIONS:
        raise ValueError(
            f"{width}x{height} pixels x a {widest}-wide layer is {pixels * widest:,} values per layer, above "
            f"the limit of {MAX_ACTIVATIONS:,}; use narrower layers or a smaller image"
        )


def coded_positions(height: int, width: int, grid_max: tuple[int, ...]) -> int:
    """Latent positions that are range-coded: every position of the grids with ``M_i > 0``."""
    return sum(math.ceil(height / 2**i) * math.ceil(width / 2**i) for i, m in enumerate(grid_max) if m > 0)


def _min_symbol_bits(n_symbols: int) -> float:
    """Fewest bits the range coder can spend on one symbol of an ``n_symbols`` support."""
    return -math.log1p(-(n_symbols - 1) * 2.0**-CODER_PRECISION) / math.log(2)


def min_payload_bits(header: Header) -> float:
    """A sound lower bound of the payload a header needs (see the module docstring): every parameter and
    every latent position of a grid with ``M_i > 0`` costs at least :func:`_min_symbol_bits` of its
    support; 64 bits of slack for the coder's state."""
    n_params = sum(math.prod(s) for s in header.param_shapes())
    bits = n_params * _min_symbol_bits(2 * PARAM_SUPPORT)
    for i, m in enumerate(header.grid_max):
        if m > 0:
            positions = math.ceil(header.height / 2**i) * math.ceil(header.width / 2**i)
            bits += positions * _min_symbol_bits(2 * m + 1)
    return bits - 64


def scale_index(values: np.ndarray) -> int:
    """u8 index of the Laplace scale fitted to integer ``values`` (mean absolute value, at least 2^−8)."""
    b = max(float(np.mean(np.abs(values))) if values.size else 0.0, 2.0**-8)
    return int(min(max(round(8 * math.log2(b) + 64), 0), 255))


def index_scale(index: int) -> float:
    return 2.0 ** ((index - 64) / 8)


def pack(header: Header, payload: np.ndarray) -> bytes:
    """Header + payload words -> file bytes."""
    h = header
    check_architecture(h.n_grids, h.synthesis, h.lem_layers, h.arm_rowcol, h.arm_hidden)
    check_size(h.height, h.width, h.n_grids, h.synthesis)
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
    out += struct.pack("<I", len(words) // 4)
    crc = zlib.crc32(words, zlib.crc32(out))  # every byte but the checksum itself
    return bytes(out) + struct.pack("<I", crc) + words


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
    """File bytes -> (header, payload words); raises :class:`BitstreamError` on anything malformed.

    Checked in order, before anything the header sizes is allocated: magic, version, header structure,
    payload length, checksum (version 2: the whole file), then the format's limits (sides, pixels,
    architecture, payload length against the coded latent positions).
    """
    if len(data) < 3 or data[:3] != MAGIC:
        raise BitstreamError("Not a trustvis codec file (.tvc): wrong magic bytes")
    r = _Reader(data)
    r.pos = 3
    (version,) = r.take("<B")
    if version not in READABLE_VERSIONS:
        raise BitstreamError(
            f"Unsupported .tvc version {version}; this trustvis reads versions {list(READABLE_VERSIONS)}"
        )
    method_id, height, width, lmbda = r.take("<BHHf")
    (n_grids, n_synth) = r.take("<BB")
    synthesis = r.take(f"<{n_synth}B")
    lem_layers, arm_rowcol, n_arm = r.take("<BBB")
    arm_hidden = r.take(f"<{n_arm}B")
    dist_id, k_synth, k_lem, k_arm = r.take("<BBBB")
    grid_max = r.take(f"<{n_grids}H")
    n_tensors = len(param_shapes(n_grids, synthesis, lem_layers, arm_rowcol, arm_hidden))
    param_scales = r.take(f"<{n_tensors}B")
    (n_words,) = r.take("<I")
    crc_pos = r.pos
    (crc,) = r.take("<I")
    words = data[r.pos :]
    if len(words) != 4 * n_words:
        raise BitstreamError(
            f"Truncated, padded or corrupt .tvc file: payload has {len(words)} bytes, the header says "
            f"{4 * n_words}"
        )
    if version == 1:
        if zlib.crc32(words) != crc:
            raise BitstreamError("Corrupt .tvc file: payload checksum mismatch")
        log.warning(
            "version-1 .tvc file: its checksum covers the payload only, so header damage cannot be detected; "
            "re-encode it to protect the header"
        )
    elif zlib.crc32(words, zlib.crc32(data[:crc_pos])) != crc:
        raise BitstreamError("Corrupt .tvc file: checksum mismatch (the file was damaged or altered)")
    methods = {v: k for k, v in METHOD_IDS.items()}
    dists = {v: k for k, v in DISTRIBUTION_IDS.items()}
    try:
        if method_id not in methods:
            raise ValueError(f"unknown codec id {method_id}; known: {methods}")
        if dist_id not in dists:
            raise ValueError(f"unknown distribution id {dist_id}; known: {dists}")
        if not math.isfinite(lmbda) or lmbda < 0:
            raise ValueError(f"lambda must be a finite number >= 0, got {lmbda}")
        if max(k_synth, k_lem, k_arm) > MAX_K:
            raise ValueError(f"lattice exponents must be <= {MAX_K}, got {(k_synth, k_lem, k_arm)}")
        check_architecture(n_grids, synthesis, lem_layers, arm_rowcol, arm_hidden)
        check_size(height, width, n_grids, synthesis)
    except ValueError as e:
        raise BitstreamError(f"Invalid .tvc header (corrupt, or not written by trustvis): {e}") from None
    header = Header(methods[method_id], height, width, float(f"{lmbda:.7g}"), n_grids, tuple(synthesis), lem_layers,
                    arm_rowcol, tuple(arm_hidden), dists[dist_id], k_synth, k_lem, k_arm, tuple(grid_max),
                    tuple(param_scales), version)  # fmt: skip
    need = math.ceil(min_payload_bits(header) / 8)
    if len(words) < need:
        positions = coded_positions(height, width, grid_max)
        raise BitstreamError(
            f"Invalid .tvc file: the header claims a {width}x{height} image with {positions:,} coded latent "
            f"positions (magnitudes up to {max(grid_max)}), which need at least {need:,} payload bytes; the "
            f"payload has {len(words):,} (forged or not written by trustvis)"
        )
    return header, np.frombuffer(words, dtype="<u4").astype(np.uint32)


# ------------------------------------------------------------------------------------- range coding


def quantised_family(dist: str, lo: int, hi: int):
    """constriction's quantised Laplace or Gaussian over the integers ``lo..hi`` (per-symbol μ and scale)."""
    import constriction

    m = constriction.stream.model
    return m.QuantizedLaplace(lo, hi) if dist == "laplace" else m.QuantizedGaussian(lo, hi)


def encode_params(encoder, tensors: list[torch.Tensor], scales: list[int]) -> None:
    """Append integer parameter tensors to a constriction ``RangeEncoder``."""
    fam = quantised_family("laplace", -PARAM_SUPPORT, PARAM_SUPPORT - 1)
    for t, s in zip(tensors, scales):
        v = t.flatten().numpy().astype(np.int32)
        if v.size and (v.min() < -PARAM_SUPPORT or v.max() >= PARAM_SUPPORT):
            raise ValueError("Parameter integer out of the coded range; use a coarser quantisation step")
        encoder.encode(v, fam, np.zeros(v.size), np.full(v.size, index_scale(s)))


def decode_params(decoder, shapes: list[tuple[int, ...]], scales: tuple[int, ...]) -> list[torch.Tensor]:
    fam = quantised_family("laplace", -PARAM_SUPPORT, PARAM_SUPPORT - 1)
    out = []
    for shape, s in zip(shapes, scales):
        n = int(np.prod(shape))
        v = decoder.decode(fam, np.zeros(n), np.full(n, index_scale(s))) if n else np.zeros(0, np.int32)
        out.append(torch.from_numpy(np.asarray(v, dtype=np.int64)).reshape(shape))
    return out


def encode_latents(
    encoder, grids: list[torch.Tensor], arm: list[torch.Tensor], k_arm: int, rowcol: int, dist: str
) -> list[int]:
    """Append the integer latent grids (h_i, w_i) to ``encoder`` in the order of the current format (grids
    interleaved by wavefront, over the common support [−M, M]); returns their magnitudes ``M_i``."""
    maxima = [int(g.abs().max()) if g.numel() else 0 for g in grids]
    if max(maxima, default=0) > MAX_GRID:
        raise ValueError(f"Latent magnitude {max(maxima)} exceeds {MAX_GRID}")
    if max(maxima, default=0) > 0:
        fam = quantised_family(dist, -max(maxima), max(maxima))
        for symbols, mu, scale in latent_symbols(grids, maxima, arm, k_arm, rowcol):
            encoder.encode(symbols, fam, mu, scale)
    return maxima


def latent_symbols(
    grids: list[torch.Tensor], maxima: list[int], arm: list[torch.Tensor], k_arm: int, rowcol: int,
    chunk: int = ENCODE_CHUNK,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:  # fmt: skip
    """The coded latents in the order of the current format with the (μ, scale) the range coder gets, as chunks of
    ``(symbols int32, μ, scale)`` of at most ``chunk`` positions (bounding the encoder's memory).

    (μ, scale) of every position come from the integer ARM on all contexts at once: exact, so equal to what the
    decoder computes step by step.
    """
    from trustvis.methods.codec.entropy import IntegerARM, LatentCanvas, causal_offsets

    canvas = LatentCanvas(
        [tuple(g.shape) for g in grids], causal_offsets(rowcol), rowcol, [m > 0 for m in maxima]
    )
    canvas.fill(grids)
    order, _, _ = canvas.schedule(interleave=True)
    integer_arm = IntegerARM([p.numpy() for p in arm], k_arm)
    plan = integer_arm.plan(max(maxima, default=0))
    for start in range(0, len(order), chunk):
        pos = order[start : start + chunk]
        mu, scale = integer_arm.mu_scale(canvas.context(pos), plan)
        yield canvas.buffer[pos].astype(np.int32), mu, scale


def decode_latents(
    decoder, shapes: list[tuple[int, int]], maxima: tuple[int, ...], arm: list[torch.Tensor], k_arm: int,
    rowcol: int, dist: str, progress=None, version: int = VERSION,
) -> list[torch.Tensor]:  # fmt: skip
    """Decode the latent grids written by :func:`encode_latents` (or by format ``version`` 1 and 2: grid by grid),
    one wavefront step at a time: numpy in the loop, the step's contexts gathered by precomputed indices, the integer
    ARM on all its positions, one range-decoder call. ``progress.update(1)`` as each grid is complete."""
    from trustvis.methods.codec.entropy import IntegerARM, LatentCanvas, causal_offsets

    canvas = LatentCanvas(shapes, causal_offsets(rowcol), rowcol, [m > 0 for m in maxima])
    integer_arm, buf = IntegerARM([p.numpy() for p in arm], k_arm), canvas.buffer
    interleave = version >= INTERLEAVED_SINCE
    pos, bounds, ends = canvas.schedule(interleave)
    if interleave:  # one pass over all grids, over the common support
        passes = [(0, len(bounds) - 1, max(maxima))] if max(maxima, default=0) > 0 else []
    else:  # grid i's steps follow grid i−1's, over its own support
        starts = [0, *ends[:-1]]
        passes = [(a, b, m) for a, b, m in zip(np.maximum.accumulate(starts), ends, maxima) if m > 0]
    complete = Counter(ends)  # grids complete after each step count (0: not coded)
    if progress is not None:
        progress.update(complete.pop(0, 0))
    for first, stop, m in passes:
        fam, plan = quantised_family(dist, -m, m), integer_arm.plan(m)
        for j in range(first, stop):
            p = pos[bounds[j] : bounds[j + 1]]
            mu, scale = integer_arm.mu_scale(canvas.context(p), plan)
            buf[p] = decoder.decode(fam, mu, scale)
            if progress is not None and j + 1 in complete:
                progress.update(complete[j + 1])
    return canvas.grids()
