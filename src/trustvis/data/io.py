"""Robust image reading and deterministic PNG writing.

:func:`load_image` turns any image file Pillow can read into a ``uint8 (H, W, 3)`` RGB array, whatever
its mode (1-bit, grayscale, 16-bit, palette, alpha, CMYK, float TIFF) and EXIF orientation, and raises
:class:`ImageReadError` -- never anything else -- for files that are missing, not images, truncated,
corrupt, empty or too large to decode in memory (an estimated decoded size above ``max_bytes``, by
default 2 GiB: a 190 KB PNG can hold 14000x14000 pixels, a 100000x100000 one is refused before any pixel
is decoded). With ``max_side`` a large image is reduced (or centre-cropped) inside Pillow, before any
full-size RGB array exists. Multi-frame files (GIF, APNG, animated WebP, multi-page TIFF, MPO) give their
first frame, with one warning per file. Truncated files are errors: Pillow's
``ImageFile.LOAD_TRUNCATED_IMAGES`` is left ``False`` and every image is fully decoded with ``.load()``,
so a half-downloaded JPEG never silently becomes a half-grey training image.

:func:`save_png` writes a PNG atomically and byte-for-byte deterministically (no timestamps, no
metadata chunks). :func:`iter_image_files` lists the image files under a folder (the extensions of
:data:`IMAGE_EXTENSIONS`), following symbolic links but each real folder and each real file once, so a
link loop never hangs and a self-link never lists the same image twice.
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

from trustvis.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

__all__ = [
    "IMAGE_EXTENSIONS",
    "DEFAULT_MAX_BYTES",
    "ImageReadError",
    "decoded_bytes",
    "fit_array",
    "load_image",
    "save_png",
    "iter_image_files",
    "to_rgb8",
]

#: Raster formats listed in folders, if this Pillow install opens them (lower case, with the dot;
#: matching is case-insensitive). A file given by name is read whatever its extension.
_RASTER_EXTENSIONS = (
    ".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".dib", ".gif", ".webp", ".tif", ".tiff",
    ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".jp2", ".j2k", ".avif", ".qoi",
)  # fmt: skip
_PIL_OPENS = {e for e, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
#: Lower-case file extensions (with dot) that folder listings treat as images; matching is case-insensitive.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(e for e in _RASTER_EXTENSIONS if e in _PIL_OPENS)

#: Default cap on the estimated memory that decoding one image takes (Pillow's buffer plus the RGB array).
DEFAULT_MAX_BYTES = 2 * 1024**3

_OPEN_LOCK = threading.Lock()
_WARNED_FRAMES: set[str] = set()  # files whose "first frame only" warning was given


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
    elif mode == "L":  # the same values as convert("RGB"), without Pillow's 4-byte RGBX copy
        arr = np.repeat(np.asarray(img, dtype=np.uint8)[..., None], 3, axis=2)
    elif mode in ("1", "P", "PA", "LA", "RGBA", "RGBX", "RGBa", "La", "CMYK", "YCbCr", "LAB", "HSV"):
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


def _fmt_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _pillow_bytes_per_pixel(mode: str) -> int:
    """Bytes per pixel of Pillow's own buffer: 1 for 1/L/P, 2 for I;16, 4 otherwise (RGB is kept as RGBX)."""
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def decoded_bytes(mode: str, width: int, height: int, out_width: int = 0, out_height: int = 0) -> int:
    """Estimated memory to decode a ``width x height`` image of Pillow ``mode`` into a uint8 RGB array
    of ``out_width x out_height`` (default: the same size): Pillow's buffer plus the array."""
    out = (out_width or width) * (out_height or height)
    return _pillow_bytes_per_pixel(mode) * width * height + 3 * out


def _fit(img: Image.Image, max_side: int, fit: str) -> Image.Image:
    """``img`` (loaded) reduced so that neither side exceeds ``max_side``: ``resize`` keeps the whole
    picture (box reduction, then Lanczos; aspect kept), ``crop`` keeps the centre at full resolution."""
    w, h = img.size
    if fit == "crop":
        cw, ch = min(w, max_side), min(h, max_side)
        x, y = (w - cw) // 2, (h - ch) // 2
        return img.crop((x, y, x + cw, y + ch))
    if img.mode == "1":
        img = img.convert("L")
    elif img.mode in ("P", "PA"):
        img = img.convert("RGBA")  # palette colours and transparency resolved before averaging
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return img


def fit_array(arr: np.ndarray, max_side: int, fit: str = "resize") -> np.ndarray:
    """What :func:`load_image` does to a large image, for a ``uint8 (H, W, 3)`` array already in memory: an
    array with a side longer than ``max_side`` (> 0) is reduced (``"resize"``) or centre-cropped
    (``"crop"``) by the same Pillow code; any other array is returned as it is."""
    if fit not in ("resize", "crop"):
        raise ValueError(f"Unknown fit {fit!r}; choose from ['resize', 'crop']")
    if max_side <= 0 or max(arr.shape[:2]) <= max_side:
        return arr
    return to_rgb8(_fit(Image.fromarray(arr), max_side, fit))


def load_image(
    path: str | Path,
    max_bytes: int = DEFAULT_MAX_BYTES,
    *,
    draft_side: int = 0,
    max_side: int = 0,
    fit: str = "resize",
) -> np.ndarray:
    """Read an image file as RGB.

    Handles 1-bit, grayscale, 16-bit grayscale (scaled by ``value / 257``, rounded), 16-bit RGB (Pillow
    keeps the high byte, ``value >> 8``: at most 1 below ``round(value / 257)``), palette (with
    transparency), LA/RGBA (alpha dropped, not composited), CMYK and float TIFF images, and applies the
    EXIF orientation tag. Multi-frame files (GIF, APNG, animated WebP, multi-page TIFF) give their first
    frame; a warning names the file (once per file and process).

    Args:
        path: Image file.
        max_bytes: Refuse images whose decoding would take more memory than this (estimated from the
            header before any pixel is decoded: Pillow's buffer plus the RGB array; decompression-bomb
            guard). The default, 2 GiB, admits e.g. 14000x14000 RGB.
        draft_side: If > 0, let libjpeg decode JPEGs at a reduced scale (1/2, 1/4 or 1/8, in the DCT
            domain) as long as the longer side stays at least ``draft_side``; much faster for big photos
            that are downscaled afterwards anyway. Other formats ignore it.
        max_side: If > 0, an image with a side longer than this is reduced inside Pillow before it
            becomes an RGB array (images within the limit are returned unchanged).
        fit: How ``max_side`` is met: ``"resize"`` (the whole picture, aspect kept; JPEGs are also
            decoded at a reduced DCT scale) or ``"crop"`` (the centre, at full resolution).

    Returns:
        ``uint8`` array of shape ``(H, W, 3)``.

    Raises:
        ImageReadError: The file is missing, not an image, truncated or corrupt, has zero size or
            would need more than ``max_bytes`` to decode.
        ValueError: ``fit`` is not ``"resize"`` or ``"crop"``.
    """
    if fit not in ("resize", "crop"):
        raise ValueError(f"Unknown fit {fit!r}; choose from ['resize', 'crop']")
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

    try:
        with _open(path) as img:
            w, h = img.size
            if w <= 0 or h <= 0:
                raise ImageReadError(path, f"image has zero size ({w}x{h})")
            side = max(draft_side, max_side if fit == "resize" else 0)
            if side > 0 and img.format == "JPEG" and max(w, h) > 2 * side:
                f = side / max(w, h)
                img.draft(None, (max(1, int(np.ceil(w * f))), max(1, int(np.ceil(h * f)))))
                w, h = img.size
            out_w, out_h = w, h
            if max_side > 0 and max(w, h) > max_side:
                s = max_side / max(w, h)
                out_w, out_h = (min(w, max_side), min(h, max_side)) if fit == "crop" else (w * s, h * s)
            need = decoded_bytes(img.mode, w, h, max(1, int(out_w)), max(1, int(out_h)))
            if need > max_bytes:
                raise ImageReadError(
                    path,
                    f"image is too large: {w}x{h} pixels ({img.mode}) need about {_fmt_bytes(need)} to "
                    f"decode, more than the limit of {_fmt_bytes(max_bytes)} (max_bytes={max_bytes:,}); if "
                    "you trust this file, pass a larger max_bytes to load_image()",
                )
            frames = getattr(img, "n_frames", 1)
            if frames > 1:
                _warn_frames(path, frames)
            img.load()  # full decode: truncated data raises here (LOAD_TRUNCATED_IMAGES stays False)
            if max_side > 0 and max(img.size) > max_side:
                img = _fit(img, max_side, fit)
            ImageOps.exif_transpose(img, in_place=True)  # no second full-size copy
            arr = to_rgb8(img)
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageReadError(path, f"image is too large ({e})") from e
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


def _warn_frames(path: Path, frames: int) -> None:
    key = str(path.resolve())
    with _OPEN_LOCK:
        if key in _WARNED_FRAMES:
            return
        _WARNED_FRAMES.add(key)
    log.warning("%s has %d frames; only the first one is used", path, frames)


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


def iter_image_files(folder: str | Path, extensions: frozenset[str] | None = None) -> list[Path]:
    """All image files under ``folder`` (files with one of ``extensions``, default :data:`IMAGE_EXTENSIONS`),
    recursively and sorted; hidden files and folders are skipped.

    Symbolic links are followed, but every real folder is walked once (tracked by device and inode), so
    a link loop (``a/b -> ..``, or two links pointing at each other's folders) never hangs and a
    self-link (``d/again -> .``) adds nothing. Every real file is listed once too: when several paths
    (symbolic or hard links) lead to the same file, the first in sorted order is kept. Broken links are
    listed (reading them then reports the missing target). Extensions: :data:`IMAGE_EXTENSIONS`.

    Raises:
        NotADirectoryError: ``folder`` is not an existing folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"Not a folder: {root}")
    suffixes = IMAGE_EXTENSIONS if extensions is None else extensions
    seen_dirs = {_file_key(root)}
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        keep = []
        for d in sorted(d for d in dirnames if not d.startswith(".")):
            key = _file_key(Path(dirpath) / d)
            if key is None:
                continue
            if key in seen_dirs:
                log.debug("not walking %s again: it leads to a folder already walked", Path(dirpath) / d)
                continue
            seen_dirs.add(key)
            keep.append(d)
        dirnames[:] = keep
        for name in filenames:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in suffixes:
                found.append(Path(dirpath) / name)
    out: list[Path] = []
    seen_files: set[tuple[int, int]] = set()
    for p in sorted(found):
        key = _file_key(p)
        if key is not None:
            if key in seen_files:
                continue
            seen_files.add(key)
        out.append(p)
    return out


def _file_key(path: Path) -> tuple[int, int] | None:
    """(device, inode) of what ``path`` leads to (links followed); None if it cannot be reached."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
