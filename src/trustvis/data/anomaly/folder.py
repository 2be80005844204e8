"""Plain-folder reader: ``<root>/normal``, ``<root>/abnormal[, <root>/mask]`` (anomalib's Folder idea).

**Folder** layout ``<root>/normal/*``, ``<root>/abnormal/*`` (sub-folders allowed; the first one names
the defect kind), optional ``<root>/mask/<same relative path and stem>`` (``_mask`` suffix accepted).
The normal images are split 70/10/20 (train/val/test, seeded); test = its normal share + every abnormal
image. Without a ``mask/`` folder the set has no pixel ground truth (``masks=None``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trustvis.data.anomaly.base import (
    AnomalySet,
    _check_fractions,
    _check_size,
    _check_split,
    _find_mask,
    _normal_parts,
    _read_items,
)
from trustvis.data.io import iter_image_files

log = logging.getLogger(__name__)

__all__ = ["folder_anomaly"]

_FOLDER_LAYOUT = "<root>/normal/*, <root>/abnormal/*, optional <root>/mask/<same name as the abnormal image>"


def folder_anomaly(
    root: str | Path,
    split: str,
    size: int = 128,
    seed: int = 0,
    normal_fractions: Sequence[float] = (0.7, 0.1, 0.2),
    normal_dir: str = "normal",
    abnormal_dir: str = "abnormal",
    mask_dir: str = "mask",
) -> AnomalySet:
    """One split of a plain normal/abnormal/mask folder (the idea of anomalib's ``Folder``).

    Args:
        root: Folder holding ``normal/``, ``abnormal/`` and optionally ``mask/``.
        split: ``"train"`` / ``"val"`` (seeded shares of the normal images) or ``"test"`` (the rest of
            the normal images and every abnormal image).
        size: Image side; images bicubic, masks nearest.
        seed: Seed of the normal-image split.
        normal_fractions: Train/val/test shares of the normal images.
        normal_dir, abnormal_dir, mask_dir: Sub-folder names. A mask ``mask/<rel parent>/<stem>[_mask].*``
            must exist for every abnormal image when ``mask/`` exists; without it ``masks`` is ``None``.

    Returns:
        ``AnomalySet`` with ``groups`` = the folder name and ``kinds`` = ``"good"`` or the first
        sub-folder under ``abnormal/`` (``"abnormal"`` for files directly in it).
    """
    _check_split(split)
    size = _check_size(size)
    fr = _check_fractions(normal_fractions, "normal_fractions")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Anomaly folder not found: {root}; expected layout {_FOLDER_LAYOUT}")
    ndir, adir, mdir = root / normal_dir, root / abnormal_dir, root / mask_dir
    if not ndir.is_dir() or not iter_image_files(ndir):
        found = sorted(d.name for d in root.iterdir() if d.is_dir())
        raise ValueError(
            f"No normal images in {ndir}; found sub-folders {found}; expected layout {_FOLDER_LAYOUT}"
        )
    has_masks = mdir.is_dir()
    items: list[tuple[Path, int, str, Path | None]] = []
    names: list[str] = []
    normals = iter_image_files(ndir)
    chosen = _normal_parts(len(normals), fr, seed)[split]
    for i in chosen:
        items.append((normals[i], 0, "good", None))
        names.append(f"{normal_dir}/{normals[i].relative_to(ndir).with_suffix('').as_posix()}")
    if split == "test":
        if not adir.is_dir() or not iter_image_files(adir):
            raise ValueError(f"No abnormal images in {adir}; expected layout {_FOLDER_LAYOUT}")
        for p in iter_image_files(adir):
            rel = p.relative_to(adir)
            kind = rel.parts[0] if len(rel.parts) > 1 else "abnormal"
            items.append((p, 1, kind, _find_mask(mdir, rel) if has_masks else None))
            names.append(f"{abnormal_dir}/{rel.with_suffix('').as_posix()}")
    if not items:
        raise ValueError(f"Split {split!r} of {root} is empty ({len(normals)} normal images)")
    images, labels, masks, kept, skipped = _read_items(
        items, size, has_masks, f"{root} (expected {_FOLDER_LAYOUT})"
    )
    out = AnomalySet(
        images=images,
        labels=labels,
        masks=masks,
        names=[names[i] for i in kept],
        groups=np.full(len(kept), root.name),
        kinds=np.asarray([items[i][2] for i in kept]) if kept else None,
        name=f"folder/{root.name}/{split}",
        skipped=skipped,
    )
    log.info("Loaded %s: %s", out.name, out.counts())
    return out
