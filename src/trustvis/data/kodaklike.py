"""A fixed "Kodak-like" evaluation set for image codecs, built from lossless real photos in installed packages.

No package ships the Kodak set (``specs/data_sources.md`` §7), so codec benchmarks (EQLINR, COOL-CHIC,
JPEG/WebP/AVIF/JPEG 2000; ``specs/codec.md`` §7) use this stand-in: the photos in :data:`KODAKLIKE_IDS`,
each stored *losslessly* (PNG) in its package, converted to 8-bit RGB and brought to Kodak's geometry,
768x512 (landscape) or 512x768 (portrait)::

    KODAKLIKE_IDS --(installed?)--> load_image (8-bit RGB) --> Lanczos resize so that the image covers
    768x512 / 512x768 --> centre crop --> home()/kodaklike/v1/<name>.png + manifest.json

JPEG-compressed sources (the MATE and Plasma wallpapers, most OpenCV and scikit-learn photos) are never
used: their 8x8 block artefacts would flatter JPEG and bias every codec's rate.

The list is fixed (and versioned: a different list or geometry means a new ``v2`` folder). A listed
photo whose package is not installed is skipped with a warning naming the install command; the set
then holds fewer images (the pip-only photos keep it non-empty), and an error is raised only if none
is left. Images come back in list order, so ``limit=n`` always takes the same first ``n`` available
images.

Deviation from a strict "never upscale" rule: only two installed lossless photos (libjxl ``flower``,
OpenCV ``graf1``) are at least 768x512, and none of the pip-installed ones are. Photos that need an
enlargement of at most :data:`MAX_UPSCALE` (1.35x) are therefore kept (Lanczos, like the downscaling);
photos that would need more are skipped with a logged reason. Upscaled images have less fine detail
than a camera image of the same size, so they are somewhat easier to compress; the scale of each image
is recorded in the manifest. Absolute bpp/PSNR values are not comparable with published Kodak numbers;
codec-vs-codec comparisons (BD-rates) on this set are what it is for.

:func:`load_image_folder` reads a user's own Kodak-style folder (e.g. the 24 ``kodimNN.png``), for
the real benchmark.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image

from trustvis.atomic import atomic_dir, atomic_write_json
from trustvis.data.cache import home, sha256_file
from trustvis.data.io import IMAGE_EXTENSIONS, ImageReadError, load_image, save_png
from trustvis.data.photos import NoPhotosError, Photo
from trustvis.data.sources import get_source

log = logging.getLogger(__name__)

__all__ = [
    "KODAKLIKE_IDS",
    "KODAKLIKE_SIZE",
    "KODAKLIKE_VERSION",
    "MAX_UPSCALE",
    "QUICK_SIZE",
    "build_kodaklike",
    "kodaklike_dir",
    "load_image_folder",
    "load_kodaklike",
    "resize_cover_crop",
    "target_size",
]

KODAKLIKE_VERSION = "v1"
#: (width, height) of a landscape image; portrait images are (height, width) = (768, 512).
KODAKLIKE_SIZE: tuple[int, int] = (768, 512)
#: Largest enlargement allowed to reach 768x512 (see the module docstring); beyond it a photo is skipped.
MAX_UPSCALE = 1.35
#: Side of the centre crop returned by ``load_kodaklike(quick=True)``.
QUICK_SIZE = 256

#: The set, in order: photo ids ``"<source>/<name>"`` of :mod:`trustvis.data.sources`, all lossless PNGs.
#: Sizes and licences: flower 2268x1512 (BSD-3, JPEG XL project), coffee 600x400 (CC0), graf1 800x640
#: (Oxford affine set, via OpenCV), motorcycle_left 741x500 (Middlebury 2014), hdr_room 676x449
#: (16-bit, JPEG XL project), rubberwhale1 584x388 (Middlebury flow). pip-installed: coffee,
#: motorcycle_left.
KODAKLIKE_IDS: tuple[str, ...] = (
    "libjxl-testdata/flower",
    "scikit-image/coffee",
    "opencv-doc/graf1",
    "scikit-image/motorcycle_left",
    "libjxl-testdata/hdr_room",
    "opencv-doc/rubberwhale1",
)

_LOSSY_SUFFIXES = frozenset({".jpg", ".jpeg", ".webp"})


def kodaklike_dir() -> Path:
    """Default location of the set: ``home()/kodaklike/v1``."""
    return home() / "kodaklike" / KODAKLIKE_VERSION


def target_size(width: int, height: int) -> tuple[int, int]:
    """``(width, height)`` of the Kodak geometry for a photo: 768x512 if ``width >= height`` else 512x768."""
    w, h = KODAKLIKE_SIZE
    return (w, h) if width >= height else (h, w)


def _cover_scale(width: int, height: int, size: tuple[int, int]) -> float:
    return max(size[0] / width, size[1] / height)


def resize_cover_crop(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (Lanczos, antialiased) so that the image covers ``size``, then centre-crop to exactly it.

    The scale is ``s = max(W / w, H / h)``; the resized image is ``(round(w s), round(h s))`` (never below
    the target), and the crop starts at ``((w' - W) // 2, (h' - H) // 2)``. No resampling happens when
    ``s == 1``. Resizing is done on the 8-bit sRGB values (as Kodak's and CompressAI's tools do).

    Args:
        image: ``uint8 (h, w, 3)``.
        size: Target ``(W, H)``.

    Returns:
        ``uint8 (H, W, 3)``.
    """
    h, w = image.shape[:2]
    tw, th = size
    s = _cover_scale(w, h, size)
    nw, nh = max(tw, round(w * s)), max(th, round(h * s))
    if (nw, nh) != (w, h):
        # Pillow's LANCZOS widens its kernel by the reduction factor: antialiased when shrinking
        image = np.asarray(Image.fromarray(image).resize((nw, nh), Image.Resampling.LANCZOS))
    x0, y0 = (nw - tw) // 2, (nh - th) // 2
    return np.ascontiguousarray(image[y0 : y0 + th, x0 : x0 + tw])


def _short_name(photo_id: str) -> str:
    return photo_id.split("/", 1)[1]


def _resolve(photo_id: str) -> tuple[Photo | None, str]:
    """The installed photo for an id, or ``None`` and the reason (with the install command)."""
    source_name, name = photo_id.split("/", 1)
    source = get_source(source_name)
    files = dict(source.named_files())
    if name not in files:
        reason = f"package {source.package!r} is not installed ({source.install_hint})"
        if source.installed:
            reason = f"{name!r} not found in the installed package {source.package!r}"
        return None, reason
    return Photo(source_name, name, files[name]), ""


def _installed() -> tuple[list[Photo], list[dict]]:
    photos, missing = [], []
    for pid in KODAKLIKE_IDS:
        photo, reason = _resolve(pid)
        if photo is None:
            missing.append({"id": pid, "reason": reason})
        else:
            photos.append(photo)
    return photos, missing


def _manifest_ok(root: Path, installed_ids: list[str]) -> bool:
    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    if (
        manifest.get("version") != KODAKLIKE_VERSION
        or manifest.get("list") != list(KODAKLIKE_IDS)
        or manifest.get("installed_ids") != installed_ids
        or manifest.get("max_upscale") != MAX_UPSCALE
    ):
        return False
    for entry in manifest.get("images", []):
        f = root / entry["file"]
        if not f.is_file() or sha256_file(f) != entry["sha256"]:
            log.info("Kodak-like cache file %s is missing or changed; rebuilding", f)
            return False
    return True


def build_kodaklike(root: str | Path | None = None, force: bool = False) -> Path:
    """Build (or reuse) the Kodak-like set: one PNG per available photo plus ``manifest.json``.

    The cache is reused when its manifest has the same version, list, upscaling limit and set of
    installed photos, and every PNG matches its SHA-256; otherwise (or with ``force``) it is rebuilt
    atomically. Photos whose package is missing, or that would need more than :data:`MAX_UPSCALE`
    enlargement, are skipped with a warning and listed under ``"skipped"`` in the manifest.

    Args:
        root: Folder that receives the set; default :func:`kodaklike_dir` (``home()/kodaklike/v1``).
        force: Rebuild even if a valid cache exists.

    Returns:
        The folder.

    Raises:
        NoPhotosError: None of the listed photos is installed and usable.
    """
    root = Path(root) if root is not None else kodaklike_dir()
    photos, missing = _installed()
    for m in missing:
        log.warning("Kodak-like set: skipping %s: %s", m["id"], m["reason"])
    installed_ids = [p.id for p in photos]
    if not force and _manifest_ok(root, installed_ids):
        return root
    images, skipped = [], list(missing)
    with atomic_dir(root) as tmp:
        for photo in photos:
            try:
                img = load_image(photo.path)
            except ImageReadError as e:
                log.warning("Kodak-like set: skipping %s: %s", photo.id, e)
                skipped.append({"id": photo.id, "reason": str(e)})
                continue
            h, w = img.shape[:2]
            size = target_size(w, h)
            scale = _cover_scale(w, h, size)
            if scale > MAX_UPSCALE + 1e-9:
                reason = (
                    f"{w}x{h} is too small for {size[0]}x{size[1]}: it would need a {scale:.2f}x enlargement "
                    f"(limit {MAX_UPSCALE}x)"
                )
                log.warning("Kodak-like set: skipping %s: %s", photo.id, reason)
                skipped.append({"id": photo.id, "reason": reason})
                continue
            name = _short_name(photo.id)
            file = f"{name}.png"
            save_png(tmp / file, resize_cover_crop(img, size))
            source = get_source(photo.source)
            images.append(
                {
                    "name": name,
                    "id": photo.id,
                    "file": file,
                    "source": photo.source,
                    "package": source.package,
                    "licence": source.licence,
                    "source_path": str(photo.path),
                    "source_sha256": sha256_file(photo.path),
                    "original_size": [w, h],
                    "size": list(size),
                    "scale": round(scale, 6),
                    "sha256": sha256_file(tmp / file),
                }
            )
        if not images:
            raise NoPhotosError(
                "No photo of the Kodak-like set is available: "
                + "; ".join(f"{s['id']}: {s['reason']}" for s in skipped)
                + ". Run `trustvis data status`; `pip install scikit-image` alone gives two images."
            )
        atomic_write_json(
            tmp / "manifest.json",
            {
                "name": "kodaklike",
                "version": KODAKLIKE_VERSION,
                "geometry": "Lanczos resize to cover 768x512 (512x768 portrait), centre crop; 8-bit RGB PNG",
                "max_upscale": MAX_UPSCALE,
                "list": list(KODAKLIKE_IDS),
                "installed_ids": installed_ids,
                "ids": [e["id"] for e in images],
                "images": images,
                "skipped": skipped,
            },
        )
    log.info("Kodak-like set: %d images in %s (%d skipped)", len(images), root, len(skipped))
    return root


def centre_crop(image: np.ndarray, side: int) -> np.ndarray:
    """The centre ``side`` x ``side`` square of an (H, W[, C]) image (H, W >= side)."""
    h, w = image.shape[:2]
    y0, x0 = (h - side) // 2, (w - side) // 2
    return np.ascontiguousarray(image[y0 : y0 + side, x0 : x0 + side])


def load_kodaklike(
    quick: bool = False, limit: int | None = None, *, root: str | Path | None = None
) -> list[tuple[str, np.ndarray]]:
    """The Kodak-like images, building the cache first if needed.

    Args:
        quick: Return the centre ``256x256`` crop of each image (for fast benchmarks).
        limit: Return only the first ``limit`` available images (list order).
        root: Folder of the set (default :func:`kodaklike_dir`).

    Returns:
        ``[(name, uint8 (H, W, 3))]`` in list order; names are the photo names (``"flower"``, ...).

    Raises:
        ValueError: ``limit`` below 1.
        NoPhotosError: None of the listed photos is available.
    """
    if limit is not None and (isinstance(limit, bool) or int(limit) != limit or limit < 1):
        raise ValueError(f"limit must be None or an integer >= 1, got {limit!r}")
    folder = build_kodaklike(root)
    manifest = json.loads((folder / "manifest.json").read_text())
    entries = manifest["images"][:limit] if limit is not None else manifest["images"]
    out = []
    for e in entries:
        img = load_image(folder / e["file"])
        out.append((e["name"], centre_crop(img, QUICK_SIZE) if quick else img))
    return out


def load_image_folder(folder: str | Path) -> list[tuple[str, np.ndarray]]:
    """Read a Kodak-style folder of images (e.g. ``kodim01.png`` ... ``kodim24.png``) as RGB.

    Only the files directly in ``folder`` are read (no sub-folders, no hidden files), sorted by name, in
    any format :func:`~trustvis.data.io.load_image` reads (converted to 8-bit RGB). Unreadable files are
    skipped with a warning; JPEG/WebP files are read but warned about, since their compression
    artefacts bias codec comparisons.

    Args:
        folder: The folder.

    Returns:
        ``[(name, uint8 (H, W, 3))]``; the name is the file stem (the file name if two stems collide).

    Raises:
        NotADirectoryError: ``folder`` is not a folder.
        ValueError: The folder has no image files, or none of them could be read.
    """
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"Not a folder: {root}")
    files = sorted(
        p
        for p in root.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not files:
        raise ValueError(
            f"No image files in {root} (looked for {sorted(IMAGE_EXTENSIONS)}, not in sub-folders); "
            "a Kodak-style folder holds PNGs such as kodim01.png"
        )
    stems = [p.stem for p in files]
    out = []
    for p in files:
        try:
            img = load_image(p)
        except ImageReadError as e:
            log.warning("Skipping %s: %s", p, e.reason)
            continue
        if p.suffix.lower() in _LOSSY_SUFFIXES:
            log.warning("%s is lossy-compressed; its artefacts will bias codec comparisons", p)
        out.append((p.stem if stems.count(p.stem) == 1 else p.name, img))
    if not out:
        raise ValueError(f"None of the {len(files)} image files in {root} could be read (see the warnings)")
    return out
