"""Tux Paint's stamp pictures as a small real colour classification set (Debian ``tuxpaint-stamps-default``).

The package holds about 800 PNG pictures — photo cut-outs and clip-art with a transparent background — in
16 top-level categories (``/usr/share/tuxpaint/stamps/<category>/[<sub>/...]<name>.png``; animals, food,
vehicles, plants, ...). Licence: GPL-2 (the package's ``copyright`` file). :func:`tuxpaint_stamps` reads the
``categories`` largest categories (by number of PNG files) as classes::

    <root>/<category>/**/*.png ──RGBA over white──► fit into size x size (aspect kept, white padding, Lanczos)
        ──► ImageSet (uint8 (N, size, size, 3), labels = category index in name order)

:func:`trustvis.data.classification.load_split` cuts it 60/20/20 (stratified, by file, split seed 0) as the
``tuxpaint-stamps`` data set.

Choices:

- SVG stamps are left out (Pillow cannot read them): the counts are of PNG files only.
- Variants of one picture (``frog.png`` / ``frog-1.png``, a colour and a cartoon version) are separate files
  and may fall on both sides of a split: the split is by file, as the issue asks; a grouped split is not attempted.
- A file Pillow cannot decode is skipped and listed in :attr:`ImageSet.skipped`.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
from PIL import Image

from trustvis.data.classification import ImageSet
from trustvis.data.sources import apt_root

log = logging.getLogger(__name__)

STAMPS_DIR = "usr/share/tuxpaint/stamps"
INSTALL_HINT = "sudo apt-get install tuxpaint-stamps-default"


def stamp_categories(root: str | Path | None = None) -> dict[str, list[Path]]:
    """``{category: [its PNG files, sorted]}`` of a stamps folder (default: the apt package's)."""
    folder = Path(root) if root else apt_root() / STAMPS_DIR
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Tux Paint stamps folder not found: {folder}. Install it with '{INSTALL_HINT}' (or set "
            "TRUSTVIS_APT_ROOT), or pass root= a folder of <category>/**/*.png"
        )
    out = {
        d.name: sorted(p for p in d.rglob("*.png") if p.is_file())
        for d in sorted(folder.iterdir())
        if d.is_dir()
    }
    out = {k: v for k, v in out.items() if v}
    if not out:
        raise FileNotFoundError(f"{folder}: no <category>/**/*.png stamp found")
    return out


def largest_categories(categories: dict[str, list[Path]], k: int) -> list[str]:
    """The ``k`` categories with the most files (ties by name), in name order."""
    if k < 2:
        raise ValueError(f"need at least 2 categories, got {k}")
    ranked = sorted(categories, key=lambda c: (-len(categories[c]), c))[:k]
    return sorted(ranked)


def stamp_image(path: Path, size: int) -> np.ndarray:
    """One stamp as uint8 (size, size, 3): alpha over white, fitted with its aspect ratio kept, white padding."""
    with Image.open(path) as im:
        im.load()
        rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(white, rgba).convert("RGB")
    scale = size / max(rgb.size)
    w, h = max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(rgb.resize((w, h), Image.LANCZOS), ((size - w) // 2, (size - h) // 2))
    return np.asarray(canvas)


def tuxpaint_stamps(root: str | Path | None = None, categories: int = 10, size: int = 64) -> ImageSet:
    """The stamps of the ``categories`` largest categories as an :class:`ImageSet` of ``size`` x ``size`` RGB."""
    if size < 8:
        raise ValueError(f"stamp images need size >= 8, got {size}")
    folder = str(Path(root) if root else apt_root() / STAMPS_DIR)
    images, labels, classes, skipped = _cached(folder, int(categories), int(size))
    out = ImageSet(images.copy(), labels.copy(), list(classes), "tuxpaint-stamps", list(skipped))
    return out


@functools.lru_cache(maxsize=4)
def _cached(
    folder: str, categories: int, size: int
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]]:
    cats = stamp_categories(folder)
    if categories > len(cats):
        raise ValueError(
            f"{folder} has {len(cats)} categories ({sorted(cats)}); asked for the {categories} largest"
        )
    names = largest_categories(cats, categories)
    imgs, labels, skipped = [], [], []
    for c, name in enumerate(names):
        for f in cats[name]:
            try:
                imgs.append(stamp_image(f, size))
                labels.append(c)
            except (OSError, ValueError, Image.DecompressionBombError) as e:
                skipped.append(f"{f}: {e}")
                log.warning("skipped stamp %s: %s", f, e)
    if not imgs:
        raise FileNotFoundError(f"{folder}: no readable stamp in categories {names}")
    return np.stack(imgs), np.asarray(labels, np.int64), tuple(names), tuple(skipped)


def tiny_stamps(root: str | Path, per_class: int = 4) -> Path:
    """A tiny stamps tree for tests: 3 categories (``animals``, ``food``, ``town``; 4, 3 and 2 x ``per_class``
    files, one in a sub-folder each) of RGBA PNGs with a transparent border, plus an SVG that is ignored."""
    root = Path(root)
    rng = np.random.default_rng(0)
    for c, (name, n) in enumerate(
        (("animals", 4 * per_class), ("food", 3 * per_class), ("town", 2 * per_class))
    ):
        for i in range(n):
            sub = root / name / ("cartoon" if i == 0 else "")
            sub.mkdir(parents=True, exist_ok=True)
            px = np.zeros((24, 16 + 4 * c, 4), np.uint8)
            px[4:-4, 4:-4, :3] = rng.integers(0, 255, 3) // (c + 1)
            px[4:-4, 4:-4, 3] = 255
            Image.fromarray(px, "RGBA").save(sub / f"{name}{i}.png")
        (root / name / "vector.svg").write_text("<svg/>")
    return root
