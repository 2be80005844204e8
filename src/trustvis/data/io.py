"""Robust image reading and deterministic PNG writing.

:func:`load_image` turns any image file Pillow can read into a ``uint8 (H, W, 3)`` RGB array, whatever
its mode (1-bit, grayscale, 16-bit, palette, alpha, CMYK, float TIFF) and EXIF orientation, and raises
:class:`ImageReadError` -- never anything else -- for files that are missing, not images, truncated,
corrupt, empty or larger than a pixel limit. Truncated files are errors: Pillow's
``ImageFile.LOAD_TRUNCATED_IMAGES`` is left ``False`` and every image is fully decoded with ``.load()``,
so a half-downloaded JPEG never silently becomes a half-grey training image.

:func:`save_png` writes a PNG atomically and byte-for-byte deterministically (no timestamps, no
metadata chunks). :func:`iter_image_files` lists the image files under a folder.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from trustvis.data.cache import atomic_write_bytes

log = logging.getLogger(__name__)

__all__ = ["IMAGE_EXTENSIONS", "ImageReadError", "load_image", "save_png", "iter_image_files", "to_rgb8"]

#: Lower-case file extensions (with dot) treated as images; matching is case-insensitive.
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})

DEFAULT_MAX_PIXELS = 200_000_000

_OPEN_LOCK = threading.Lock()


class ImageReadError(Exception):
    """An image file could not be read.

    Attributes:
        path: The file that failed.
        reason: Human-readable cause (missing, not an image, truncated, too large, ...).
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"Cannot read image {self.path}: {reason}")

    def __reduce__(self):  # keep picklable across DataLoader workers / thread pools
        return (type(self), (self.path, self.reason))


def _scale_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """Map a 16-bit / 32-bit integer or float array to uint8."""
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0)
        # Float images are conventionally in [0, 1]; fall back to [0, 255] if clearly larger.
        scale = 255.0 if arr.size == 0 or float(arr.max()) <= 1.0 else 1.0
        return np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N") or arr.dtype in (np.uint16, np.int16):
        # Pillow opens 16-bit PNG/TIFF gray as I;16 or I (int32 holding 0..65535).
        return np.clip(np.rint(arr.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
    return np.clip(arr, 0, 255).astype(np.uint8)


def to_rgb8(img: Image.Image) -> np.ndarray:
    """Convert a loaded Pillow image of any mode to a ``uint8 (H, W, 3)`` RGB array.

    Alpha channels (LA, RGBA, PA, palette transparency) are dropped, not composited: the colour
    values underneath are kept as they are, which is what a detector sees in the raw file.
    """
    mode = img.mode
    if mode in ("RGB",):
        arr = np.asarray(img, dtype=np.uint8)
    elif mode in ("1", "L", "P", "PA", "LA", "RGBA", "RGBX", "RGBa", "La", "CMYK", "YCbCr", "LAB", "HSV"):
        if mode in ("P", "PA"):
            img = img.convert("RGBA")  # resolves palette + transparency, alpha then dropped
        arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    elif mode.startswith("I") or mode == "F":
        arr = _scale_to_uint8(np.asarray(img), mode)
        arr = np.repeat(arr[..., None], 3, axis=2) if arr.ndim == 2 else arr[..., :3]
    else:
        # Unusual modes (e.g. 16-bit RGB as raw, "BGR;16"): let numpy see the raw data first.
        arr = np.asarray(img)
        if arr.dtype != np.uint8:
            arr = _scale_to_uint8(arr, mode)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        elif arr.shape[2] >= 3:
            arr = arr[..., :3]
        else:
            arr = np.repeat(arr[..., :1], 3, axis=2)
    arr = np.ascontiguousarray(arr)
    return arr if arr.flags.writeable else arr.copy()


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, *, draft_side: int = 0) -> np.ndarray:
    """Read an image file as RGB.

    Handles 1-bit, grayscale, 16-bit grayscale (scaled by ``value / 257``, rounded), 16-bit RGB (Pillow
    keeps the high byte, ``value >> 8``: at most 1 below ``round(value / 257)``), palette (with
    transparency), LA/RGBA (alpha dropped, not composited), CMYK and float TIFF images, and applies the
    EXIF orientation tag.

    Args:
        path: Image file.
        max_pixels: Refuse images with more pixels than this (decompression-bomb guard).
        draft_side: If > 0, let libjpeg decode JPEGs at a reduced scale (1/2, 1/4 or 1/8, in the DCT
            domain) as long as the longer side stays at least ``draft_side``; much faster for big photos
            that are downscaled afterwards anyway. Other formats ignore it.

    Returns:
        ``uint8`` array of shape ``(H, W, 3)``.

    Raises:
        ImageReadError: The file is missing, not an image, truncated or corrupt, has zero size or
            exceeds ``max_pixels``.
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(path, "file does not exist")
    if not path.is_file():
        raise ImageReadError(path, "not a regular file")
    try:
        if path.stat().st_size == 0:
            raise ImageReadError(path, "file is empty (0 bytes)")
    except OSError as e:
        raise ImageReadError(path, f"cannot stat file ({e})") from e

    too_big = (
        f"more than max_pixels={max_pixels:,} pixels; if you trust this file, pass a larger "
        "max_pixels to load_image()"
    )
    try:
        with _open(path) as img:
            w, h = img.size
            if w <= 0 or h <= 0:
                raise ImageReadError(path, f"image has zero size ({w}x{h})")
            if w * h > max_pixels:
                raise ImageReadError(path, f"image is too large: {w}x{h} = {w * h:,} pixels is {too_big}")
            if draft_side > 0 and img.format == "JPEG" and max(w, h) > 2 * draft_side:
                f = draft_side / max(w, h)
                img.draft(None, (max(1, int(np.ceil(w * f))), max(1, int(np.ceil(h * f)))))
            img.load()  # full decode: truncated data raises here (LOAD_TRUNCATED_IMAGES stays False)
            arr = to_rgb8(ImageOps.exif_transpose(img))
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageReadError(path, f"image is too large: {too_big} ({e})") from e
    except UnidentifiedImageError as e:
        raise ImageReadError(path, "not an image file Pillow can identify") from e
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, zlib.error) as e:
        msg = str(e) or type(e).__name__
        raise ImageReadError(path, f"corrupt or truncated image data ({msg})") from e
    except MemoryError as e:
        raise ImageReadError(path, "out of memory while decoding") from e
    except Exception as e:  # noqa: BLE001 - the contract is: only ImageReadError escapes
        raise ImageReadError(path, f"{type(e).__name__}: {e}") from e
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageReadError(path, f"decoded to unexpected shape {arr.shape}")
    return arr


def _open(path: Path) -> Image.Image:
    """``Image.open`` with Pillow's global pixel limit lifted (``load_image`` enforces its own).

    Pillow checks ``Image.MAX_IMAGE_PIXELS`` only inside ``Image.open``; the lock keeps concurrent
    threads from restoring the limit while another one is opening a file.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        log.warning("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True elsewhere; truncated files may load")
    with _OPEN_LOCK:
        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = old


def encode_png(array: np.ndarray, compress_level: int = 6) -> bytes:
    """Encode a ``uint8 (H, W, 3)`` (or ``(H, W)``) array as deterministic PNG bytes."""
    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        raise TypeError(f"save_png expects a uint8 array, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ValueError(f"save_png expects (H, W, 3), (H, W, 4) or (H, W) uint8, got shape {arr.shape}")
    if not 0 <= compress_level <= 9:
        raise ValueError(f"compress_level must be in 0..9, got {compress_level}")
    buf = io.BytesIO()
    # No pnginfo / exif / icc arguments: Pillow then writes only IHDR, IDAT and IEND chunks.
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def save_png(path: str | Path, array: np.ndarray, compress_level: int = 6) -> Path:
    """Write a ``uint8 (H, W, 3)`` array as PNG, atomically and deterministically.

    Args:
        path: Destination file (parent folders are created).
        array: ``uint8`` image, ``(H, W, 3)``; ``(H, W)`` and ``(H, W, 4)`` are accepted too.
        compress_level: zlib level 0 (fastest) .. 9 (smallest).

    Returns:
        The written path.
    """
    return atomic_write_bytes(path, encode_png(array, compress_level=compress_level))


def iter_image_files(folder: str | Path) -> list[Path]:
    """All image files under ``folder``, recursively and sorted; hidden files and folders are skipped.

    Raises:
        NotADirectoryError: ``folder`` is not an existing folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"Not a folder: {root}")
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith("."):
                continue
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                out.append(Path(dirpath) / name)
    return sorted(out)
