"""Classic image codecs through Pillow: JPEG, WebP, AVIF and JPEG 2000, as baselines for the neural codecs.

These are the anchors that EQLINR and COOL-CHIC are compared with (``specs/codec.md`` §7; CompressAI's
``compressai.utils.bench`` plays the same role with external binaries). They are plain functions, not
registered methods: :func:`encode_classic` turns a ``uint8 (H, W, 3)`` RGB image into the bytes of a
complete file, whose length is the rate (``bpp = 8 * len(data) / (H * W)``, headers included), and
:func:`decode_classic` turns the bytes back into an image.

Settings (fixed, so that RD curves are reproducible):

========  =====================================================================================
codec     Pillow call and the meaning of ``quality``
========  =====================================================================================
jpeg      ``save(format="JPEG", quality=q, subsampling="4:2:0", optimize=True)``; libjpeg(-turbo)
          baseline (not progressive) with optimised Huffman tables; ``q`` int in 1..100.
webp      ``save(format="WEBP", quality=q, method=6)``: lossy VP8, 4:2:0, slowest/best method;
          ``q`` in 0..100.
avif      ``save(format="AVIF", quality=q, speed=6, subsampling="4:2:0", range="full")``: libavif
          with its default AV1 encoder (normally libaom); ``q`` int in 0..100. Speed 6 (Pillow's
          default) encodes 768x512 in about 0.7 s on one busy laptop core; lower speeds compress a
          few percent better but are several times slower.
jpeg2000  ``save(format="JPEG2000", quality_mode="rates", quality_layers=[24 / q],
          irreversible=True, mct=1, no_jp2=True)``: OpenJPEG, CDF 9/7 wavelet with the irreversible
          colour transform, one quality layer, raw codestream (no JP2 boxes). ``q`` is the **target
          rate in bits per pixel** (float in (0, 24]; 24 bpp = raw 8-bit RGB); OpenJPEG's rate
          control lands within ~1 % of it. Not comparable with the 0..100 scales of the others.
========  =====================================================================================

:func:`default_qualities` gives grids that span roughly 0.1-1.5 bpp (up to ~2.5 bpp for JPEG, whose
PSNR is lowest, so that its curve overlaps the others in PSNR) on natural 256x256 photos. Measured on
centre crops of skimage ``astronaut`` (resized to 256), ``coffee`` and the libjxl ``flower``
(bpp / RGB PSNR in dB, Pillow 13, libjpeg-turbo, libwebp, libavif + libaom, OpenJPEG):

- jpeg q5: 0.20-0.28 / 21.5-23.7, q50: 0.88-1.31 / 29.0-31.3, q85: 1.76-2.53 / 32.9-34.9
- webp q0: 0.15-0.21 / 22.9-25.5, q50: 0.61-1.06 / 30.3-32.7, q85: 1.23-2.10 / 34.2-36.3
- avif q5: 0.15-0.18 / 22.8-26.2, q45: 0.48-0.71 / 30.0-32.7, q75: 1.22-1.84 / 34.9-37.1
- jpeg2000 0.1 bpp: 0.10 / 20.1-23.7, 0.5: 0.49-0.50 / 26.6-31.3, 1.5: 1.49-1.50 / 33.1-38.2

JPEG cannot go much below 0.2 bpp on a 256x256 image: its headers alone are ~0.02 bpp and quality 1
still codes every block.

Deviations: none from the Pillow calls above; the choice of settings (optimised Huffman tables, WebP
method 6, AVIF speed 6, JPEG 2000 in rate mode with the 9/7 wavelet) is ours.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, features

from trustvis.data.io import to_rgb8

log = logging.getLogger(__name__)

__all__ = [
    "CLASSIC_CODECS",
    "available_codecs",
    "classic_available",
    "decode_classic",
    "default_qualities",
    "encode_classic",
    "rd_point",
]

CLASSIC_CODECS: tuple[str, ...] = ("jpeg", "webp", "avif", "jpeg2000")

# codec -> (Pillow feature name, Pillow format name)
_FEATURE = {"jpeg": "jpg", "webp": "webp", "avif": "avif", "jpeg2000": "jpg_2000"}
_FORMAT = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF", "jpeg2000": "JPEG2000"}

# bits per pixel of raw 8-bit RGB: the JPEG 2000 compression ratio is RAW_BPP / target bpp
RAW_BPP = 24.0

_QUALITIES: dict[str, dict[bool, list[float]]] = {
    "jpeg": {False: [5, 10, 20, 30, 40, 50, 60, 70, 80, 90], True: [10, 25, 50, 80]},
    "webp": {False: [0, 5, 15, 30, 45, 60, 75, 85, 95], True: [5, 30, 60, 85]},
    "avif": {False: [5, 15, 25, 35, 45, 55, 65, 75, 85], True: [15, 35, 55, 75]},
    "jpeg2000": {False: [0.1, 0.15, 0.25, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0], True: [0.15, 0.35, 0.75, 1.5]},
}


def _check_name(name: str) -> str:
    if name not in CLASSIC_CODECS:
        raise ValueError(f"Unknown classic codec {name!r}; choose from {list(CLASSIC_CODECS)}")
    return name


def _feature_ok(feature: str) -> bool:
    try:
        return bool(features.check(feature))
    except (ValueError, KeyError):  # a Pillow that does not know the feature at all
        return False


def classic_available() -> dict[str, bool]:
    """``{codec: True/False}``: whether this Pillow build can encode each of :data:`CLASSIC_CODECS`."""
    return {name: _feature_ok(_FEATURE[name]) for name in CLASSIC_CODECS}


def _require(name: str) -> None:
    feature = _FEATURE[name]
    if not _feature_ok(feature):
        raise RuntimeError(
            f"Codec {name!r} is not available: this Pillow build lacks the {feature!r} feature "
            f"(PIL.features.check({feature!r}) is False). Install a Pillow wheel that includes it "
            "(recent PyPI wheels bundle libwebp and OpenJPEG, and libavif since Pillow 11.2: "
            "`pip install -U pillow`)."
        )


def _save_options(name: str, quality: float) -> dict[str, Any]:
    if name == "jpeg2000":
        try:
            q = float(quality)
        except (TypeError, ValueError):
            q = float("nan")
        if not 0 < q <= RAW_BPP:
            raise ValueError(
                f"jpeg2000 quality is a target rate in bpp and must be in (0, {RAW_BPP:g}], got {q}"
            )
        return {
            "quality_mode": "rates",
            "quality_layers": [RAW_BPP / q],
            "irreversible": True,
            "mct": 1,
            "no_jp2": True,
        }
    lo = 1 if name == "jpeg" else 0
    try:
        ok = not isinstance(quality, bool) and float(quality) == int(quality) and lo <= int(quality) <= 100
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"{name} quality must be an integer in {lo}..100, got {quality!r}")
    q = int(quality)
    if name == "jpeg":
        return {"quality": q, "subsampling": "4:2:0", "optimize": True}
    if name == "webp":
        return {"quality": q, "method": 6}
    return {"quality": q, "speed": 6, "subsampling": "4:2:0", "range": "full"}  # avif


def encode_classic(name: str, image: np.ndarray, quality: float, **options: Any) -> bytes:
    """Encode an RGB image with a classic codec.

    Args:
        name: One of :data:`CLASSIC_CODECS`.
        image: ``uint8 (H, W, 3)`` RGB image.
        quality: The codec's quality (0..100, 1..100 for JPEG) or, for ``"jpeg2000"``, the target rate in
            bits per pixel (see the module docstring).
        **options: Extra Pillow save options; they override the defaults (e.g. ``max_threads=1`` for
            AVIF, ``subsampling="4:4:4"``).

    Returns:
        The bytes of a complete file (JPEG, WebP, AVIF or a JPEG 2000 codestream).

    Raises:
        ValueError: Unknown codec, quality out of range, or not a ``uint8 (H, W, 3)`` image.
        RuntimeError: Pillow was built without the codec.
    """
    _check_name(name)
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or 0 in arr.shape:
        raise ValueError(f"image must be a non-empty uint8 (H, W, 3) array, got {arr.dtype} {arr.shape}")
    _require(name)
    opts = {**_save_options(name, quality), **options}
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format=_FORMAT[name], **opts)
    return buf.getvalue()


def decode_classic(data: bytes) -> np.ndarray:
    """Decode the bytes of a classic-codec file (format detected from its header).

    Returns:
        ``uint8 (H, W, 3)`` RGB image.

    Raises:
        ValueError: The bytes are not an image Pillow can decode.
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return to_rgb8(img)
    except (OSError, SyntaxError, ValueError, Image.UnidentifiedImageError) as e:
        raise ValueError(f"Cannot decode {len(data)} bytes as an image: {e}") from e


def default_qualities(name: str, quick: bool = False) -> list[float]:
    """Quality settings for an RD curve of ``name``, from low to high rate.

    The full grids have 9-10 points, the quick ones 4 (see the module docstring for the measured bpp).
    Values are ints for JPEG/WebP/AVIF and target bpp (floats) for JPEG 2000.

    Raises:
        ValueError: Unknown codec.
    """
    return list(_QUALITIES[_check_name(name)][bool(quick)])


def rd_point(name: str, image: np.ndarray, quality: float, **options: Any) -> tuple[bytes, np.ndarray]:
    """Encode then decode: ``(data, reconstruction)``; a shortcut for benchmarks."""
    data = encode_classic(name, image, quality, **options)
    return data, decode_classic(data)


def available_codecs(names: Sequence[str] | None = None) -> list[str]:
    """The codecs in ``names`` (default all) that this Pillow can encode, logging the missing ones."""
    avail = classic_available()
    out = []
    for n in CLASSIC_CODECS if names is None else names:
        if avail[_check_name(n)]:
            out.append(n)
        else:
            log.warning("Skipping codec %s: Pillow lacks the %r feature", n, _FEATURE[n])
    return out
