"""MVTec AD reader: a category folder in the MVTec AD layout, with pixel masks.

**MVTec AD** (Bergmann et al., CVPR 2019; not shipped: MVTec AD is downloaded by hand) layout
``<root>/<category>/train/good/*``, ``test/<defect>/*`` (``good`` = normal) and
``ground_truth/<defect>/<stem>_mask.png`` (``<stem>.png`` is accepted too, as BTAD names them). Deviation
from the published protocol: ``val`` is a seeded 10 % of ``train/good`` (``val_fraction``), so ``train``
holds the other 90 %; ``val_fraction=0`` restores the full training set (and makes ``val`` an error).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from trustvis.data.anomaly.base import AnomalySet, _check_size, _check_split, _find_mask, _read_items
from trustvis.data.classification import stratified_split
from trustvis.data.io import iter_image_files

log = logging.getLogger(__name__)

__all__ = ["mvtec_ad"]

_MVTEC_LAYOUT = (
    "<root>/<category>/train/good/*.png, <root>/<category>/test/<defect>/*.png (good = normal), "
    "<root>/<category>/ground_truth/<defect>/<name>_mask.png"
)


def _mvtec_category_dir(root: Path, category: str) -> Path:
    if not root.is_dir():
        raise FileNotFoundError(f"MVTec AD folder not found: {root}; expected layout {_MVTEC_LAYOUT}")
    found = sorted(d.name for d in root.iterdir() if (d / "train" / "good").is_dir())
    if not category:
        if (root / "train").is_dir() and (root / "test").is_dir():
            return root  # root is itself a category folder
        raise ValueError(
            f"MVTec AD needs a category; categories found under {root}: {found or 'none'}; "
            f"expected layout {_MVTEC_LAYOUT}"
        )
    cdir = root / category
    if not cdir.is_dir():
        raise ValueError(
            f"MVTec AD category {category!r} not found under {root}; "
            f"choose from {found or '[] (none found)'}; "
            f"expected layout {_MVTEC_LAYOUT}"
        )
    return cdir


def mvtec_ad(
    root: str | Path,
    category: str,
    split: str,
    size: int = 128,
    seed: int = 0,
    val_fraction: float = 0.1,
) -> AnomalySet:
    """One split of a category in the MVTec AD layout (also BTAD-style ``<stem>.png`` masks).

    Args:
        root: Folder holding the category folders (or a category folder itself, with ``category=""``).
        category: Category folder name (e.g. ``"bottle"``).
        split: ``"train"`` (``train/good`` minus val), ``"val"`` (a seeded ``val_fraction`` of
            ``train/good``) or ``"test"`` (every ``test/<defect>`` image; ``good`` is normal).
        size: Image side; images bicubic, masks nearest.
        seed: Seed of the train/val cut.
        val_fraction: Share of ``train/good`` held out as ``val`` (0 = the published protocol).

    Returns:
        ``AnomalySet`` with masks (all zero for good images), ``groups`` = category, ``kinds`` = defect
        folder, ``names`` = ``"<defect>/<stem>"`` (test) or ``"good/<stem>"``.

    Raises:
        FileNotFoundError / ValueError: Wrong layout (the message names the expected one), a missing
            or unreadable mask for a defect image, or an empty split.
    """
    _check_split(split)
    size = _check_size(size)
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    cdir = _mvtec_category_dir(Path(root), category)
    cat = category or cdir.name
    good = cdir / "train" / "good"
    if not good.is_dir() or not iter_image_files(good):
        raise ValueError(f"No training images in {good}; expected layout {_MVTEC_LAYOUT}")
    items: list[tuple[Path, int, str, Path | None]]
    if split in ("train", "val"):
        files = iter_image_files(good)
        if split == "val" and val_fraction == 0:
            raise ValueError("MVTec AD split 'val' is empty with val_fraction=0; pass val_fraction > 0")
        tr, va = stratified_split(
            np.zeros(len(files), np.int64), (1.0 - val_fraction, val_fraction), seed=seed
        )
        chosen = tr if split == "train" else va
        items = [(files[i], 0, "good", None) for i in chosen]
        names = [f"good/{files[i].stem}" for i in chosen]
    else:
        test = cdir / "test"
        if not test.is_dir():
            raise ValueError(f"MVTec AD test folder {test} not found; expected layout {_MVTEC_LAYOUT}")
        defects = sorted(d.name for d in test.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not defects:
            raise ValueError(f"No defect folders in {test}; expected layout {_MVTEC_LAYOUT}")
        gt = cdir / "ground_truth"
        if any(d != "good" for d in defects) and not gt.is_dir():
            raise ValueError(f"MVTec AD ground-truth folder {gt} not found; expected layout {_MVTEC_LAYOUT}")
        items, names = [], []
        for d in defects:
            for p in iter_image_files(test / d):
                rel = p.relative_to(test / d)
                label = 0 if d == "good" else 1
                mpath = None if label == 0 else _find_mask(gt / d, rel)
                items.append((p, label, d, mpath))
                names.append(f"{d}/{rel.with_suffix('').as_posix()}")
    if not items:
        raise ValueError(f"MVTec AD split {split!r} of {cdir} is empty; expected layout {_MVTEC_LAYOUT}")
    images, labels, masks, kept, skipped = _read_items(
        items, size, True, f"{cdir} (expected {_MVTEC_LAYOUT})"
    )
    out = AnomalySet(
        images=images,
        labels=labels,
        masks=masks,
        names=[names[i] for i in kept],
        groups=np.full(len(kept), cat),
        kinds=np.asarray([items[i][2] for i in kept]) if kept else None,
        name=f"mvtec/{cat}/{split}",
        skipped=skipped,
    )
    log.info("Loaded %s: %s", out.name, out.counts())
    return out
