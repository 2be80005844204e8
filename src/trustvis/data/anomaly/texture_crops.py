"""Real texture photos cut into crops, with synthetic defects and exact masks (:func:`textures`).

Localisation with exact masks. Categories (:data:`TEXTURES`): brick, grass, gravel (scikit-image wheel,
CC0) and, when the apt packages are installed, wood (mate ``nature/Wood.jpg``), leaf (mate
``nature/Blinds.jpg``, a leaf close-up; mate photos GPL-2+) and pcb (opencv-doc ``data/board.jpg``;
Apache-2.0 / BSD-3-Clause). Each photo is resized so that its shorter side is ``4 * size`` and cut into
three disjoint regions (:func:`texture_regions`)::

    +-----------------+-----+       train: the first 60 % of the longer side
    |                 | val |       val:   the rest, first 40 % of the shorter side
    |      train      +-----+       test:  the rest, remaining 60 % of the shorter side
    |                 | test|       (drawn for a landscape photo; a square photo is cut top/bottom)
    +-----------------+-----+

so that no pixel is shared between splits (crops are taken inside their region; cut-paste donors come
from test regions). ``anomaly_fraction`` (default half) of the test crops get one defect each, the three
kinds of :data:`~trustvis.data.anomaly.defects.DEFECT_KINDS` in equal shares (scratch, blob, cutpaste;
drawn by :mod:`trustvis.data.anomaly.defects`). The mask is 1 exactly where the defect was drawn and 0
elsewhere. ``misaligned=True`` additionally rotates (uniform +-30 degrees) and shifts (+-10 % of the
side) every crop about its centre, reflecting the crop at its borders, *before* the defects are drawn --
the object-pose variation FYD's alignment targets; crop positions and defects are drawn from separate
generators, so both variants share them. Names are ``"<texture>/<split>/<i>@y=<y>,x=<x>"`` with the
crop's top-left corner in the resized photo. Defaults give, per category, 100 train, 20 val and 60 test
crops (30 defective: 10 per kind).

The misalignment warp uses torch's ``grid_sample`` (batched); no OpenCV, which is not a trustvis
dependency.
"""

from __future__ import annotations

import functools
import logging
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from trustvis.data.anomaly.base import ANOMALY_SPLITS, AnomalySet, _check_size, _check_split
from trustvis.data.anomaly.defects import DEFECT_KINDS, _blob, _cutpaste, _scratch
from trustvis.data.io import load_image
from trustvis.data.sources import get_source

log = logging.getLogger(__name__)

__all__ = ["TEXTURES", "available_textures", "texture_image", "texture_regions", "textures"]

#: Texture name -> (source name in :data:`trustvis.data.sources.SOURCES`, path under its base folder).
_TEXTURE_FILES: dict[str, tuple[str, str]] = {
    "brick": ("scikit-image", "brick.png"),
    "grass": ("scikit-image", "grass.png"),
    "gravel": ("scikit-image", "gravel.png"),
    "wood": ("mate-backgrounds", "Wood.jpg"),
    "leaf": ("mate-backgrounds", "Blinds.jpg"),
    "pcb": ("opencv-doc", "data/board.jpg"),
}
#: Every texture category :func:`textures` knows (only the installed ones are used).
TEXTURES: tuple[str, ...] = tuple(_TEXTURE_FILES)
#: Cut-paste donors besides the texture itself: always installed, so the test set does not depend on
#: which apt packages are present.
_DONORS: tuple[str, ...] = ("brick", "grass", "gravel")
_TRAIN_SHARE = 0.6  # of the longer side
_VAL_SHARE = 0.4  # of the shorter side of the held-out band


def _texture_path(name: str) -> Path | None:
    src, rel = _TEXTURE_FILES[name]
    base = get_source(src).base_dir()
    if base is None:
        return None
    p = base / rel
    return p if p.is_file() else None


def available_textures() -> list[str]:
    """The texture categories whose photo is installed, in :data:`TEXTURES` order."""
    return [t for t in TEXTURES if _texture_path(t) is not None]


def texture_image(name: str, size: int = 128) -> np.ndarray:
    """The photo of a texture, resized (Lanczos) so that its shorter side is ``4 * size``.

    Returns:
        Read-only ``uint8 (H, W, 3)`` (cached in-process).

    Raises:
        ValueError: Unknown texture (the message lists them). FileNotFoundError: not installed.
    """
    if name not in _TEXTURE_FILES:
        raise ValueError(f"Unknown texture {name!r}; choose from {list(TEXTURES)}")
    path = _texture_path(name)
    if path is None:
        src = get_source(_TEXTURE_FILES[name][0])
        raise FileNotFoundError(f"Texture {name!r} is not installed: {src.install_hint}")
    return _texture_image_cached(str(path), _check_size(size), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _texture_image_cached(path: str, size: int, mtime_ns: int) -> np.ndarray:
    del mtime_ns  # cache key only
    short = 4 * size
    img = load_image(path, draft_side=short * 2)  # (h, w, 3)
    h, w = img.shape[:2]
    scale = short / min(h, w)
    new = (max(short, round(w * scale)), max(short, round(h * scale)))
    if new != (w, h):
        method = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC
        img = np.array(Image.fromarray(img).resize(new, method), dtype=np.uint8)
    img.setflags(write=False)
    return img


def texture_regions(height: int, width: int) -> dict[str, tuple[int, int, int, int]]:
    """Disjoint train/val/test regions ``(y0, y1, x0, x1)`` (half-open) of a ``height x width`` photo.

    Train is the first 60 % of the longer side (the top band of a square or portrait photo, the left
    band of a landscape one); the remaining band is cut across: val is its first 40 %, test the rest.
    """
    if height >= width:
        yc = int(round(height * _TRAIN_SHARE))
        xc = int(round(width * _VAL_SHARE))
        return {"train": (0, yc, 0, width), "val": (yc, height, 0, xc), "test": (yc, height, xc, width)}
    xc = int(round(width * _TRAIN_SHARE))
    yc = int(round(height * _VAL_SHARE))
    return {"train": (0, height, 0, xc), "val": (0, yc, xc, width), "test": (yc, height, xc, width)}


def _crops(img: np.ndarray, region: tuple[int, int, int, int], size: int, n: int, rng: np.random.Generator):
    """``n`` random ``size x size`` crops inside ``region``: ``(n, S, S, 3)`` and their top-left corners."""
    y0, y1, x0, x1 = region
    if y1 - y0 < size or x1 - x0 < size:
        raise ValueError(f"Texture region {region} is smaller than the crop size {size}")
    ys = rng.integers(y0, y1 - size + 1, n)
    xs = rng.integers(x0, x1 - size + 1, n)
    win = np.lib.stride_tricks.sliding_window_view(img, (size, size), axis=(0, 1))  # (H', W', 3, S, S)
    out = np.ascontiguousarray(win[ys, xs].transpose(0, 2, 3, 1))  # (n, S, S, 3)
    return out, ys, xs


def _warp(crops: np.ndarray, angles_deg: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Rotate each crop about its centre and shift it by ``shifts[i] = (dy, dx)`` pixels (bilinear).

    Output pixel ``o`` shows input pixel ``R (o - c - shift) + c``; pixels from outside the crop are
    reflected at its borders (``grid_sample`` with ``padding_mode="reflection"``), so no pixel from
    outside the crop enters. Batched with torch on the CPU.
    """
    n, s = crops.shape[:2]
    a = torch.as_tensor(np.radians(angles_deg), dtype=torch.float64)  # (n,)
    cos, sin = torch.cos(a), torch.sin(a)
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (n, 2, 2) in (x, y)
    shift_xy = torch.as_tensor(shifts[:, ::-1].copy(), dtype=torch.float64) * (2.0 / s)  # (n, 2) normalised
    trans = -(rot @ shift_xy[:, :, None])  # (n, 2, 1)
    theta = torch.cat([rot, trans], dim=2).float()  # (n, 2, 3)
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float()  # (n, 3, S, S)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (n, S, S, 2)
    out = F.grid_sample(
        x, grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )  # (n, 3, S, S)
    return (
        out.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    )  # (n, S, S, 3)


def _name_key(name: str) -> int:
    return zlib.crc32(name.encode())


def textures(
    split: str,
    misaligned: bool = False,
    size: int = 128,
    n_train: int = 100,
    n_val: int = 20,
    n_test: int = 60,
    seed: int = 0,
    categories: Sequence[str] | None = None,
    anomaly_fraction: float = 0.5,
    max_angle: float = 30.0,
    max_shift: float = 0.1,
) -> AnomalySet:
    """Crops of real texture photos with synthetic defects and exact masks (see the module docstring).

    Args:
        split: ``"train"``, ``"val"`` (normal crops) or ``"test"`` (normal and defective crops).
        misaligned: Rotate (``+-max_angle`` degrees) and shift (``+-max_shift`` of the side) every crop,
            with reflected borders, before the defects are drawn.
        size: Crop side; the photos are resized to a shorter side of ``4 * size``.
        n_train, n_val, n_test: Crops per category for each split.
        seed: Seed of crop positions, warps and defects (split regions are fixed).
        categories: Texture names (default every installed one, see :func:`available_textures`).
        anomaly_fraction: Share of defective test crops (rounded); the kinds cycle in equal shares.
        max_angle, max_shift: Range of the misalignment.

    Returns:
        ``AnomalySet`` with masks; ``groups`` = texture, ``kinds`` in ``{"good"} | DEFECT_KINDS``, names
        ``"<texture>/<split>/<i>@y=<y>,x=<x>"`` (crop corner in :func:`texture_image` coordinates).
    """
    _check_split(split)
    size = _check_size(size)
    if not 0.0 <= float(anomaly_fraction) <= 1.0:
        raise ValueError(f"anomaly_fraction must be in [0, 1], got {anomaly_fraction}")
    counts = {"train": int(n_train), "val": int(n_val), "test": int(n_test)}
    if min(counts.values()) < 0:
        raise ValueError(f"Crop counts must be >= 0, got {counts}")
    installed = available_textures()
    if categories is None:
        cats = installed
    else:
        cats = list(categories)
        for c in cats:
            if c not in _TEXTURE_FILES:
                raise ValueError(
                    f"Unknown texture {c!r}; choose from {list(TEXTURES)} (installed: {installed})"
                )
            if c not in installed:
                src = get_source(_TEXTURE_FILES[c][0])
                raise FileNotFoundError(f"Texture {c!r} is not installed: {src.install_hint}")
    if not cats:
        raise FileNotFoundError("No texture photos installed: pip install scikit-image")
    n = counts[split]
    s_code = ANOMALY_SPLITS.index(split)
    all_imgs, all_masks, all_labels, all_names, all_groups, all_kinds = [], [], [], [], [], []
    for cat in cats:
        img = texture_image(cat, size)
        regions = texture_regions(*img.shape[:2])
        key = _name_key(cat)
        crops, ys, xs = _crops(img, regions[split], size, n, np.random.default_rng([seed, key, s_code, 0]))
        if misaligned:
            wrng = np.random.default_rng([seed, key, s_code, 1])
            angles = wrng.uniform(-max_angle, max_angle, n)
            shifts = wrng.uniform(-max_shift, max_shift, (n, 2)) * size
            crops = _warp(crops, angles, shifts) if n else crops
        masks = np.zeros((n, size, size), np.uint8)
        labels = np.zeros(n, np.int64)
        kinds = np.full(n, "good", dtype="<U8")
        if split == "test" and n:
            drng = np.random.default_rng([seed, key, s_code, 2])
            n_def = int(round(n * float(anomaly_fraction)))
            bad = drng.permutation(n)[:n_def]
            kinds[bad] = drng.permutation(np.resize(np.asarray(DEFECT_KINDS), n_def))
            donors = [cat] + [d for d in _DONORS if d != cat and d in installed]
            for i in bad:
                rng = np.random.default_rng([seed, key, s_code, 3, int(i)])
                if kinds[i] == "scratch":
                    crops[i], masks[i] = _scratch(crops[i], rng)
                elif kinds[i] == "blob":
                    crops[i], masks[i] = _blob(crops[i], rng)
                else:
                    dname = (
                        donors[0] if len(donors) == 1 or rng.random() < 0.5 else str(rng.choice(donors[1:]))
                    )
                    dimg = texture_image(dname, size)
                    dreg = texture_regions(*dimg.shape[:2])["test"]
                    crops[i], masks[i] = _cutpaste(crops[i], rng, dimg, dreg)
                labels[i] = 1
        all_imgs.append(crops)
        all_masks.append(masks)
        all_labels.append(labels)
        all_kinds.append(kinds)
        all_groups.append(np.full(n, cat))
        all_names.extend(f"{cat}/{split}/{i:04d}@y={y},x={x}" for i, (y, x) in enumerate(zip(ys, xs)))
    variant = "textures-misaligned" if misaligned else "textures"
    out = AnomalySet(
        images=np.concatenate(all_imgs),  # (N, S, S, 3)
        labels=np.concatenate(all_labels),
        masks=np.concatenate(all_masks),  # (N, S, S)
        names=all_names,
        groups=np.concatenate(all_groups),
        kinds=np.concatenate(all_kinds),
        name=f"{variant}/{split}",
    )
    log.info("Built %s (%s): %s", out.name, ", ".join(cats), out.counts())
    return out
