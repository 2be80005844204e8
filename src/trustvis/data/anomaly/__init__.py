"""Anomaly-detection data: real defects (ELPV), MVTec-AD and plain-folder readers, real textures with defects.

Every reader returns an :class:`AnomalySet` (``uint8 (N, H, W, 3)`` images, ``int64`` labels with 0 =
normal and 1 = anomalous, optional ``uint8 {0, 1} (N, H, W)`` pixel masks, names, groups and defect
kinds); :class:`AnomalyDataset` wraps one for torch. All images are square, ``size x size``. Splits are
``train`` (normal only), ``val`` (normal only, for thresholds and normalisation) and ``test`` (normal
and anomalous); they depend on a *split seed* (``seed``), never on a training seed.

Sources (:func:`load_anomaly` names in :data:`ANOMALY_DATASETS`)::

    elpv-mono, elpv-poly   pip elpv-dataset: 2,624 real electroluminescence images of solar cells
                           (300x300 gray), expert defect probability p in {0, 1/3, 2/3, 1}; no masks
    textures,              real texture photos (skimage brick/grass/gravel; mate Wood, Blinds; opencv-doc
    textures-misaligned    board.jpg) cut into crops, synthetic defects with exact masks on test crops
    mvtec                  a folder in the MVTec AD layout (not shipped: MVTec AD is downloaded by hand)
    folder                 a folder <root>/normal, <root>/abnormal[, <root>/mask] (anomalib's Folder idea)

Files (each one's docstring gives its paper, licence, layout and deviations)::

    base.py           AnomalySet, AnomalyDataset, ANOMALY_SPLITS; split/size checks, resizing, mask lookup
    elpv_cells.py     ELPV solar cells (elpv, elpv_root, ELPV_LICENCE; images CC BY-NC-SA 4.0)
    mvtec.py          MVTec AD layout (mvtec_ad)
    folder.py         plain normal/abnormal/mask folder (folder_anomaly)
    texture_crops.py  texture photos, disjoint regions, crops, misalignment warp (textures, TEXTURES, ...)
    defects.py        synthetic defects: scratch, blob, cut-paste (DEFECT_KINDS)

Every public name is importable from this package (``from trustvis.data.anomaly import textures``). The
modules are named ``elpv_cells`` and ``texture_crops`` (not ``elpv`` / ``textures``) so that no module is
shadowed by the function of the same name re-exported here.
"""

from __future__ import annotations

import os
from typing import Any

from trustvis.data.anomaly.base import ANOMALY_SPLITS, AnomalyDataset, AnomalySet, _check_split
from trustvis.data.anomaly.defects import DEFECT_KINDS
from trustvis.data.anomaly.elpv_cells import ELPV_LICENCE, elpv, elpv_root
from trustvis.data.anomaly.folder import _FOLDER_LAYOUT, folder_anomaly
from trustvis.data.anomaly.mvtec import _MVTEC_LAYOUT, mvtec_ad
from trustvis.data.anomaly.texture_crops import (
    TEXTURES,
    available_textures,
    texture_image,
    texture_regions,
    textures,
)

__all__ = [
    "AnomalySet",
    "AnomalyDataset",
    "ANOMALY_SPLITS",
    "ANOMALY_DATASETS",
    "ELPV_LICENCE",
    "elpv_root",
    "elpv",
    "mvtec_ad",
    "folder_anomaly",
    "TEXTURES",
    "DEFECT_KINDS",
    "available_textures",
    "texture_image",
    "texture_regions",
    "textures",
    "load_anomaly",
]

#: Names understood by :func:`load_anomaly`.
ANOMALY_DATASETS: tuple[str, ...] = (
    "elpv-mono",
    "elpv-poly",
    "textures",
    "textures-misaligned",
    "mvtec",
    "folder",
)


# ------------------------------------------------------------------------------------------- dispatch


def load_anomaly(
    name: str,
    split: str,
    root: str | os.PathLike[str] = "",
    category: str = "",
    size: int = 128,
    seed: int = 0,
    **kwargs: Any,
) -> AnomalySet:
    """One split of a named anomaly data set.

    Args:
        name: One of :data:`ANOMALY_DATASETS`.
        split: ``"train"``, ``"val"`` or ``"test"``.
        root: Data folder, required for ``"mvtec"`` and ``"folder"``, unused otherwise.
        category: MVTec category (required unless ``root`` is a category folder) or, for the texture
            sets, one texture (default all installed); must be empty for ELPV and ``"folder"``.
        size: Image side.
        seed: Split / generation seed (not a training seed).
        **kwargs: Passed on to the reader (e.g. ``n_train`` for the textures, ``defect_min`` for ELPV).

    Returns:
        An :class:`AnomalySet`.
    """
    if name not in ANOMALY_DATASETS:
        raise ValueError(f"Unknown anomaly data set {name!r}; choose from {list(ANOMALY_DATASETS)}")
    _check_split(split)
    root_str = os.fspath(root) if root else ""
    if name.startswith("elpv-") or name == "folder":
        if category:
            raise ValueError(f"Data set {name!r} takes no category (got {category!r})")
    if name in ("mvtec", "folder") and not root_str:
        layout = _MVTEC_LAYOUT if name == "mvtec" else _FOLDER_LAYOUT
        raise ValueError(f"Data set {name!r} needs root= a folder laid out as {layout}")
    if name.startswith("elpv-"):
        return elpv(name.split("-", 1)[1], split, size=size, seed=seed, **kwargs)
    if name.startswith("textures"):
        cats = [category] if category else None
        return textures(
            split, misaligned=name == "textures-misaligned", size=size, seed=seed, categories=cats, **kwargs
        )
    if name == "mvtec":
        return mvtec_ad(root_str, category, split, size=size, seed=seed, **kwargs)
    return folder_anomaly(root_str, split, size=size, seed=seed, **kwargs)
