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

**ELPV** (Buerhop-Lutz et al., "A Benchmark for Visual Identification of Defective Solar Cells in
Electroluminescence Imagery", EU PVSEC 2018; Deitsch et al., "Automatic classification of defective
photovoltaic module cells in electroluminescence images", Solar Energy 2019, arXiv 1807.02894). Found with
``importlib`` (package ``elpv_dataset``, files ``data/images/cellNNNN.png`` and ``data/labels.csv``).
**Licence: the images are CC BY-NC-SA 4.0 -- non-commercial use only** (the package code is Apache-2.0).
One cell type at a time (mono- and polycrystalline cells look very different). The experts' four
grades are 0 (functional, sure), 1/3 (functional, unsure), 2/3 (defective, unsure), 1 (defective, sure).
Choice: ``p == 0`` is normal, ``p >= defect_min`` (default 0.5: grades 2/3 and 1) is anomalous, and the
unsure-functional grade 1/3 is left out by default -- it is neither clean training data nor a confirmed
defect (``defect_min=0.3`` counts it as defective, ``defect_min=1`` keeps only sure defects). The normal
cells of each type are split 60/10/30 (train/val/test) by
:func:`~trustvis.data.classification.stratified_split` seeded with ``seed``; every defective cell goes to
test. Counts at the defaults::

    elpv-mono  train 353 normal | val 59 normal | test 176 normal + 369 defective (56 p=2/3, 313 p=1)
    elpv-poly  train 552 normal | val 92 normal | test 276 normal + 452 defective (50 p=2/3, 402 p=1)

Grayscale cells are resized (bicubic) and replicated to 3 channels.

**MVTec AD** (Bergmann et al., CVPR 2019) layout ``<root>/<category>/train/good/*``,
``test/<defect>/*`` (``good`` = normal) and ``ground_truth/<defect>/<stem>_mask.png`` (``<stem>.png`` is
accepted too, as BTAD names them). Deviation from the published protocol: ``val`` is a seeded 10 % of
``train/good`` (``val_fraction``), so ``train`` holds the other 90 %; ``val_fraction=0`` restores the
full training set (and makes ``val`` an error).

**Folder** layout ``<root>/normal/*``, ``<root>/abnormal/*`` (sub-folders allowed; the first one names
the defect kind), optional ``<root>/mask/<same relative path and stem>`` (``_mask`` suffix accepted).
The normal images are split 70/10/20 (train/val/test, seeded); test = its normal share + every abnormal
image. Without a ``mask/`` folder the set has no pixel ground truth (``masks=None``).

**Textures** (localisation with exact masks; :func:`textures`). Categories (:data:`TEXTURES`): brick,
grass, gravel (scikit-image wheel, CC0) and, when the apt packages are installed, wood (mate
``nature/Wood.jpg``), leaf (mate ``nature/Blinds.jpg``, a leaf close-up; mate photos GPL-2+) and pcb
(opencv-doc ``data/board.jpg``; Apache-2.0 / BSD-3-Clause). Each photo is resized so that its shorter
side is ``4 * size`` and cut into three disjoint regions (:func:`texture_regions`)::

    +-----------------+-----+       train: the first 60 % of the longer side
    |                 | val |       val:   the rest, first 40 % of the shorter side
    |      train      +-----+       test:  the rest, remaining 60 % of the shorter side
    |                 | test|       (drawn for a landscape photo; a square photo is cut top/bottom)
    +-----------------+-----+

so that no pixel is shared between splits (crops are taken inside their region; cut-paste donors come
from test regions). ``anomaly_fraction`` (default half) of the test crops get one defect each, the three
kinds in equal shares: *scratch* (a thin random polyline of 1-3 px, darker or brighter), *blob* (smooth
noise under a random elliptic envelope, thresholded to 1-5 % of the crop, intensity and colour changed)
and *cutpaste* (a rectangle from the test region of the same texture or of another scikit-image texture,
rotated by a multiple of 90 degrees and brightness-jittered, pasted at a random place). The mask is 1
exactly where the defect was drawn and 0 elsewhere. ``misaligned=True`` additionally
rotates (uniform +-30 degrees) and shifts (+-10 % of the side) every crop about its centre, reflecting the
crop at its borders, *before* the defects are drawn -- the object-pose variation FYD's alignment
targets; crop positions and defects are drawn from separate generators, so both variants share them.
Names are ``"<texture>/<split>/<i>@y=<y>,x=<x>"`` with the crop's top-left corner in the resized photo.
Defaults give, per category, 100 train, 20 val and 60 test crops (30 defective: 10 per kind).

Deviations / choices: images are resized straight to ``size x size`` (no aspect-preserving crop, as in
:func:`~trustvis.data.classification.image_folder`); unreadable image files are skipped with a warning
and listed in :attr:`AnomalySet.skipped`, while a missing or unreadable mask of an anomalous image is an
error. Defects are drawn with numpy and the misalignment warp uses torch's ``grid_sample`` (batched); no
OpenCV, which is not a trustvis dependency.
"""

from __future__ import annotations

import functools
import logging
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from trustvis.data.classification import stratified_split
from trustvis.data.io import IMAGE_EXTENSIONS, ImageReadError, iter_image_files, load_image
from trustvis.data.sources import get_source
from trustvis.data.transforms import to_tensor

log = logging.getLogger(__name__)

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

#: Split names of every reader.
ANOMALY_SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Names understood by :func:`load_anomaly`.
ANOMALY_DATASETS: tuple[str, ...] = (
    "elpv-mono",
    "elpv-poly",
    "textures",
    "textures-misaligned",
    "mvtec",
    "folder",
)
ELPV_LICENCE = "CC BY-NC-SA 4.0 (images; non-commercial use only), Apache-2.0 (code)"
#: Synthetic defect kinds of :func:`textures`.
DEFECT_KINDS: tuple[str, ...] = ("scratch", "blob", "cutpaste")

_MVTEC_LAYOUT = (
    "<root>/<category>/train/good/*.png, <root>/<category>/test/<defect>/*.png (good = normal), "
    "<root>/<category>/ground_truth/<defect>/<name>_mask.png"
)
_FOLDER_LAYOUT = "<root>/normal/*, <root>/abnormal/*, optional <root>/mask/<same name as the abnormal image>"


# ------------------------------------------------------------------------------------------ AnomalySet


@dataclass
class AnomalySet:
    """Images with image-level labels and optional pixel masks.

    Attributes:
        images: ``uint8 (N, H, W, 3)``.
        labels: ``int64 (N,)``: 0 normal, 1 anomalous.
        masks: ``uint8 (N, H, W)`` in {0, 1} (all zero for normal items), or ``None`` when the set has
            no pixel ground truth.
        names: One name per item (file stem or crop id).
        groups: ``str (N,)``: cell type, texture or MVTec category.
        kinds: ``str (N,)``: defect kind (``"good"`` for normal items); default from the labels.
        name: Human-readable set name (e.g. ``"elpv-mono/test"``).
        skipped: Files that could not be read and were left out.
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None
    names: list[str]
    groups: np.ndarray
    kinds: np.ndarray | None = None
    name: str = ""
    skipped: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        imgs = self.images
        if not isinstance(imgs, np.ndarray) or imgs.dtype != np.uint8 or imgs.ndim != 4 or imgs.shape[3] != 3:
            desc = f"{getattr(imgs, 'dtype', type(imgs).__name__)} {getattr(imgs, 'shape', '')}"
            raise ValueError(f"AnomalySet.images must be uint8 (N, H, W, 3), got {desc}")
        n = len(imgs)
        labels = np.asarray(self.labels)
        if labels.shape != (n,) or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
            raise ValueError(
                f"AnomalySet.labels must be integers of shape ({n},), got {labels.dtype} {labels.shape}"
            )
        if labels.size and not np.isin(labels, (0, 1)).all():
            raise ValueError(
                f"AnomalySet.labels must be 0 (normal) or 1 (anomalous), got {np.unique(labels)}"
            )
        self.labels = labels.astype(np.int64, copy=False)
        if self.masks is not None:
            m = self.masks
            if not isinstance(m, np.ndarray) or m.dtype != np.uint8 or m.shape != imgs.shape[:3]:
                desc = f"{getattr(m, 'dtype', type(m).__name__)} {getattr(m, 'shape', '')}"
                raise ValueError(f"AnomalySet.masks must be None or uint8 {imgs.shape[:3]}, got {desc}")
            if m.size and m.max() > 1:
                raise ValueError(f"AnomalySet.masks must hold 0 and 1 only, got max {m.max()}")
            if n and m[self.labels == 0].any():
                raise ValueError("AnomalySet: normal items (label 0) must have all-zero masks")
        self.names = [str(s) for s in self.names]
        if len(self.names) != n:
            raise ValueError(f"AnomalySet.names must have {n} entries, got {len(self.names)}")
        self.groups = np.asarray(self.groups, dtype=str).reshape(-1) if n else np.zeros(0, dtype="<U1")
        if self.groups.shape != (n,):
            raise ValueError(f"AnomalySet.groups must have shape ({n},), got {self.groups.shape}")
        if self.kinds is None:
            self.kinds = np.where(self.labels == 0, "good", "anomaly") if n else np.zeros(0, dtype="<U1")
        self.kinds = np.asarray(self.kinds, dtype=str).reshape(-1) if n else np.zeros(0, dtype="<U1")
        if self.kinds.shape != (n,):
            raise ValueError(f"AnomalySet.kinds must have shape ({n},), got {self.kinds.shape}")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def has_masks(self) -> bool:
        """True if the set carries pixel ground truth."""
        return self.masks is not None

    def subset(self, idx: Sequence[int] | np.ndarray) -> AnomalySet:
        """A new set with the given items, in the given order (arrays are copied)."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.ndim != 1:
            raise ValueError(f"subset() expects 1-D indices, got shape {idx.shape}")
        return AnomalySet(
            images=self.images[idx],
            labels=self.labels[idx],
            masks=None if self.masks is None else self.masks[idx],
            names=[self.names[i] for i in idx],
            groups=self.groups[idx],
            kinds=None if self.kinds is None else self.kinds[idx],
            name=self.name,
            skipped=list(self.skipped),
        )

    def counts(self) -> dict[str, int]:
        """``{"normal": n0, "anomalous": n1}``."""
        n1 = int(self.labels.sum())
        return {"normal": len(self) - n1, "anomalous": n1}

    def __repr__(self) -> str:
        c = self.counts()
        return (
            f"AnomalySet(name={self.name!r}, n={len(self)}, shape={self.images.shape[1:]}, "
            f"normal={c['normal']}, anomalous={c['anomalous']}, masks={self.has_masks}, "
            f"groups={sorted(set(self.groups.tolist()))})"
        )


class AnomalyDataset(torch.utils.data.Dataset):
    """Torch dataset over an :class:`AnomalySet`.

    Items are ``{"image": float (3, H, W), "label": int64, "mask": float32 (H, W), "has_mask": bool,
    "index": int64}``; the mask is all zeros when the set has no masks (``has_mask`` False then).
    ``transform`` receives the ``uint8 (H, W, 3)`` array and returns the image tensor (default
    :func:`~trustvis.data.transforms.to_tensor`); the mask is not transformed, so ``transform`` must keep
    the spatial size (photometric changes or normalisation only).
    """

    def __init__(
        self, data: AnomalySet, transform: Callable[[np.ndarray], torch.Tensor] | None = None
    ) -> None:
        if not isinstance(data, AnomalySet):
            raise TypeError(f"AnomalyDataset expects an AnomalySet, got {type(data).__name__}")
        self.data = data
        self.transform = transform if transform is not None else to_tensor

    def __len__(self) -> int:
        return len(self.data)

    @property
    def labels(self) -> np.ndarray:
        """``int64 (N,)`` labels."""
        return self.data.labels

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        img = self.data.images[i]  # (H, W, 3) uint8
        image = self.transform(img)  # (3, H, W)
        h, w = img.shape[:2]
        if self.data.masks is not None:
            mask = torch.from_numpy(self.data.masks[i].astype(np.float32))  # (H, W)
        else:
            mask = torch.zeros((h, w), dtype=torch.float32)  # (H, W)
        if tuple(image.shape[-2:]) != (h, w):
            raise ValueError(
                f"AnomalyDataset transform changed the image size from {(h, w)} to "
                f"{tuple(image.shape[-2:])}; "
                "masks are not transformed, so resize the AnomalySet (size=...) instead"
            )
        return {
            "image": image,
            "label": torch.tensor(int(self.data.labels[i]), dtype=torch.int64),
            "mask": mask,
            "has_mask": torch.tensor(self.data.masks is not None),
            "index": torch.tensor(int(i), dtype=torch.int64),
        }


# --------------------------------------------------------------------------------------------- helpers


def _check_split(split: str) -> None:
    if split not in ANOMALY_SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose from {list(ANOMALY_SPLITS)}")


def _check_size(size: int) -> int:
    if int(size) < 8:
        raise ValueError(f"size must be >= 8, got {size}")
    return int(size)


def _check_fractions(fractions: Sequence[float], what: str) -> tuple[float, float, float]:
    fr = tuple(float(f) for f in fractions)
    if len(fr) != 3 or any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6 or fr[0] <= 0:
        raise ValueError(
            f"{what} must be three fractions (train, val, test), train > 0, summing to 1, got {fractions}"
        )
    return fr  # type: ignore[return-value]


def _resize_rgb(img: np.ndarray, size: int) -> np.ndarray:
    """``uint8 (h, w, 3|-)`` -> ``(size, size[, 3])``, bicubic (Pillow, anti-aliased when shrinking)."""
    if img.shape[:2] == (size, size):
        return img
    return np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BICUBIC), dtype=np.uint8)


def _resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """``uint8 {0, 1} (h, w)`` -> ``(size, size)``, nearest neighbour."""
    if mask.shape == (size, size):
        return mask
    return np.asarray(Image.fromarray(mask).resize((size, size), Image.Resampling.NEAREST), dtype=np.uint8)


def _read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """Binary mask file -> ``uint8 {0, 1} (H, W)`` (any channel > 127 is foreground)."""
    try:
        m = load_image(path)  # (h, w, 3)
    except ImageReadError as e:
        raise ValueError(f"Unreadable mask {path}: {e.reason}") from e
    if m.shape[:2] != shape:
        raise ValueError(f"Mask {path} has size {m.shape[:2]} but its image has {shape}; they must match")
    return (m.max(axis=2) > 127).astype(np.uint8)


def _find_mask(mask_dir: Path, rel: Path) -> Path | None:
    """``mask_dir/<rel parent>/<stem>[_mask].<ext>`` (any image extension), else the same flat in mask_dir."""
    stem = rel.stem
    for folder in dict.fromkeys((mask_dir / rel.parent, mask_dir)):
        if not folder.is_dir():
            continue
        for cand in (f"{stem}_mask", stem):
            for ext in sorted(IMAGE_EXTENSIONS):
                for e in (ext, ext.upper()):
                    p = folder / f"{cand}{e}"
                    if p.is_file():
                        return p
    return None


def _read_items(
    items: list[tuple[Path, int, str, Path | None]], size: int, with_masks: bool, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[int], list[str]]:
    """Read ``(image path, label, kind, mask path)`` items; returns images, labels, masks, kept, skipped."""
    imgs: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    kept: list[int] = []
    skipped: list[str] = []
    for i, (path, label, _, mpath) in enumerate(items):
        try:
            rgb = load_image(path)  # (h, w, 3)
        except ImageReadError as e:
            log.warning("Skipping unreadable image: %s", e)
            skipped.append(str(path))
            continue
        if with_masks:
            if label == 1:
                if mpath is None:
                    raise ValueError(f"Missing mask for anomalous image {path} in {where}")
                masks.append(_resize_mask(_read_mask(mpath, rgb.shape[:2]), size))
            else:
                masks.append(np.zeros((size, size), np.uint8))
        imgs.append(_resize_rgb(rgb, size))
        kept.append(i)
    images = np.stack(imgs) if imgs else np.zeros((0, size, size, 3), np.uint8)  # (N, S, S, 3)
    labels = np.asarray([items[i][1] for i in kept], dtype=np.int64)
    mask_arr = (np.stack(masks) if masks else np.zeros((0, size, size), np.uint8)) if with_masks else None
    return images, labels, mask_arr, kept, skipped


def _normal_parts(n: int, fractions: Sequence[float], seed: int) -> dict[str, np.ndarray]:
    """Seeded train/val/test index parts of ``n`` normal items."""
    parts = stratified_split(np.zeros(n, np.int64), fractions, seed=seed)
    return dict(zip(ANOMALY_SPLITS, parts))


# ------------------------------------------------------------------------------------------------ ELPV


def elpv_root() -> Path:
    """Folder holding ``labels.csv`` and ``images/`` of the installed ``elpv-dataset`` package.

    Raises:
        FileNotFoundError: The package is not installed (the message says how to install it).
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec("elpv_dataset")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The elpv-dataset package is not installed: pip install elpv-dataset "
            f"(data licence {ELPV_LICENCE})"
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not (root / "labels.csv").is_file():
        raise FileNotFoundError(f"elpv-dataset is installed but {root / 'labels.csv'} is missing")
    return root


def _read_elpv_labels(csv: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``labels.csv`` (whitespace separated: path, probability, type) -> paths, probabilities, types."""
    paths: list[str] = []
    probs: list[float] = []
    types: list[str] = []
    for k, line in enumerate(csv.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or parts[2] not in ("mono", "poly"):
            raise ValueError(f"{csv}:{k}: expected 'path probability mono|poly', got {line!r}")
        paths.append(parts[0])
        probs.append(float(parts[1]))
        types.append(parts[2])
    return paths, np.asarray(probs, np.float64), np.asarray(types)


@functools.lru_cache(maxsize=4)
def _elpv_cells(
    root: str, cell_type: str, size: int, csv_mtime: int
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """All cells of one type: gray ``(N, S, S)`` (read-only, cached), probabilities, names, skipped."""
    del csv_mtime  # cache key only
    paths, probs, types = _read_elpv_labels(Path(root) / "labels.csv")
    imgs: list[np.ndarray] = []
    keep: list[int] = []
    skipped: list[str] = []
    for i in np.flatnonzero(types == cell_type):
        path = Path(root) / paths[i]
        try:
            gray = load_image(path)[:, :, 0]  # (300, 300); the cells are 8-bit grayscale
        except ImageReadError as e:
            log.warning("Skipping unreadable ELPV cell: %s", e)
            skipped.append(str(path))
            continue
        if gray.shape != (size, size):
            gray = np.asarray(Image.fromarray(gray).resize((size, size), Image.Resampling.BICUBIC), np.uint8)
        imgs.append(gray)
        keep.append(int(i))
    images = np.stack(imgs) if imgs else np.zeros((0, size, size), np.uint8)  # (N, S, S)
    images.setflags(write=False)
    p = probs[keep]
    p.setflags(write=False)
    names = tuple(Path(paths[i]).stem for i in keep)
    return images, p, names, tuple(skipped)


def _grade(p: float) -> str:
    return "good" if p == 0 else f"p={Fraction(p).limit_denominator(3)}"


def elpv(
    cell_type: str,
    split: str,
    size: int = 128,
    seed: int = 0,
    defect_min: float = 0.5,
    fractions: Sequence[float] = (0.6, 0.1, 0.3),
) -> AnomalySet:
    """One split of the ELPV solar-cell set for one cell type (no pixel masks).

    Licence of the images: CC BY-NC-SA 4.0, non-commercial use only.

    Args:
        cell_type: ``"mono"`` or ``"poly"``.
        split: ``"train"`` and ``"val"`` (defect-free cells only) or ``"test"`` (held-out defect-free
            cells and every defective cell).
        size: Image side (bicubic resize from 300; gray replicated to 3 channels).
        seed: Split seed of the defect-free cells (keep it fixed; it is not a training seed).
        defect_min: Cells with ``p >= defect_min`` are defective; cells with ``0 < p < defect_min`` are
            left out as uncertain. 0.5 (default) keeps grades 2/3 and 1 and drops 1/3.
        fractions: Train/val/test shares of the defect-free cells.

    Returns:
        ``AnomalySet`` named ``"elpv-<type>/<split>"``; ``kinds`` is ``"good"``, ``"p=2/3"`` or ``"p=1"``
        (or ``"p=1/3"``), ``names`` the file stems (``cell0001`` ...), ``groups`` the cell type.
    """
    if cell_type not in ("mono", "poly"):
        raise ValueError(f"Unknown ELPV cell type {cell_type!r}; choose from ['mono', 'poly']")
    _check_split(split)
    size = _check_size(size)
    if not 0.0 < float(defect_min) <= 1.0:
        raise ValueError(f"defect_min must be in (0, 1], got {defect_min}")
    fr = _check_fractions(fractions, "ELPV fractions")
    root = elpv_root()
    csv = root / "labels.csv"
    gray, probs, names, skipped = _elpv_cells(str(root), cell_type, size, csv.stat().st_mtime_ns)
    normal = np.flatnonzero(probs == 0)
    defective = np.flatnonzero(probs >= float(defect_min) - 1e-9)
    parts = _normal_parts(len(normal), fr, seed)
    idx = normal[parts[split]]
    if split == "test":
        idx = np.concatenate([idx, defective])
    images = np.repeat(gray[idx][..., None], 3, axis=3)  # (N, S, S) -> (N, S, S, 3)
    labels = (probs[idx] > 0).astype(np.int64)
    out = AnomalySet(
        images=images,
        labels=labels,
        masks=None,
        names=[names[i] for i in idx],
        groups=np.full(len(idx), cell_type),
        kinds=np.asarray([_grade(float(p)) for p in probs[idx]]),
        name=f"elpv-{cell_type}/{split}",
        skipped=list(skipped),
    )
    log.info("Loaded %s: %s", out.name, out.counts())
    return out


# ------------------------------------------------------------------------------------------- MVTec AD


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


# --------------------------------------------------------------------------------------------- folder


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


# -------------------------------------------------------------------------------------------- textures

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


def _smooth_noise(rng: np.random.Generator, s: int, grid: int) -> np.ndarray:
    """``float32 (s, s)`` smooth noise: a ``grid x grid`` uniform field, bicubically upsampled."""
    low = rng.random((grid, grid)).astype(np.float32)
    return np.asarray(Image.fromarray(low, mode="F").resize((s, s), Image.Resampling.BICUBIC), np.float32)


def _scratch(crop: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A thin random polyline, darker on bright textures and brighter on dark ones."""
    s = crop.shape[0]
    n_pts = int(rng.integers(3, 7))
    pts = [rng.uniform(0.15 * s, 0.85 * s, 2)]
    heading = rng.uniform(0, 2 * np.pi)
    for _ in range(n_pts - 1):
        heading += rng.uniform(-0.7, 0.7)
        step = rng.uniform(0.08, 0.2) * s
        nxt = np.clip(pts[-1] + step * np.array([np.sin(heading), np.cos(heading)]), 1, s - 2)
        pts.append(nxt)
    p = np.asarray(pts)  # (K, 2) as (y, x)
    half = rng.uniform(0.5, 1.5) * max(1.0, s / 128)  # 1 to 3 px wide at 128
    # distance of every pixel of the polyline's bounding box to its nearest segment
    y0, x0 = np.maximum(np.floor(p.min(0) - half - 1), 0).astype(int)
    y1, x1 = np.minimum(np.ceil(p.max(0) + half + 2), s).astype(int)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    q = np.stack([yy, xx], axis=-1)[:, :, None, :]  # (h, w, 1, 2)
    a, b = p[:-1][None, None], p[1:][None, None]  # (1, 1, K-1, 2)
    ab = b - a
    t = np.clip(((q - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0.0, 1.0)  # (h, w, K-1)
    dist = np.linalg.norm(q - (a + t[..., None] * ab), axis=-1).min(axis=2)  # (h, w)
    mask = np.zeros((s, s), np.uint8)
    mask[y0:y1, x0:x1] = dist <= half
    lum = float(crop.mean())
    value = rng.uniform(0, 40) if lum > 110 else rng.uniform(200, 255)
    out = crop.astype(np.float32)
    m = mask.astype(bool)
    out[m] = 0.15 * out[m] + 0.85 * value
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), mask


def _blob(crop: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Smooth noise under a random elliptic envelope, thresholded; intensity and colour changed."""
    s = crop.shape[0]
    noise = 0.6 * _smooth_noise(rng, s, 4) + 0.4 * _smooth_noise(rng, s, 8)  # (S, S)
    cy, cx = rng.uniform(0.2 * s, 0.8 * s, 2)
    sy, sx = rng.uniform(0.06, 0.16, 2) * s
    ang = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[:s, :s].astype(np.float32)
    u = (yy - cy) * np.cos(ang) + (xx - cx) * np.sin(ang)
    v = -(yy - cy) * np.sin(ang) + (xx - cx) * np.cos(ang)
    field = np.exp(-0.5 * ((u / sy) ** 2 + (v / sx) ** 2)) * (0.4 + noise)  # (S, S)
    area = max(4, int(rng.uniform(0.01, 0.05) * s * s))
    thr = np.partition(field.ravel(), -area)[-area]
    mask = (field >= thr).astype(np.uint8)
    gain = rng.uniform(0.45, 0.75) if rng.random() < 0.5 else rng.uniform(1.3, 1.6)
    shift = rng.choice([-1.0, 1.0], 3) * rng.uniform(25, 70, 3)  # per-channel colour cast
    out = crop.astype(np.float32)
    m = mask.astype(bool)
    out[m] = out[m] * gain + shift
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), mask


def _cutpaste(
    crop: np.ndarray, rng: np.random.Generator, donor: np.ndarray, region: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """A brightness-jittered, 90-degree-rotated rectangle of ``donor[region]`` pasted at a random place."""
    s = crop.shape[0]
    y0, y1, x0, x1 = region
    out = crop.copy()
    ph, pw = (int(v) for v in rng.integers(max(4, int(0.12 * s)), max(5, int(0.3 * s)) + 1, 2))
    for _ in range(8):  # redraw the patch if it happens to match the background
        sy = int(rng.integers(y0, y1 - ph + 1))
        sx = int(rng.integers(x0, x1 - pw + 1))
        patch = np.rot90(donor[sy : sy + ph, sx : sx + pw], k=int(rng.integers(0, 4)))  # (h, w, 3)
        patch = patch.astype(np.float32) * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)
        patch = np.clip(np.rint(patch), 0, 255).astype(np.uint8)
        h, w = patch.shape[:2]
        ty = int(rng.integers(0, s - h + 1))
        tx = int(rng.integers(0, s - w + 1))
        diff = np.abs(patch.astype(np.int16) - crop[ty : ty + h, tx : tx + w].astype(np.int16)).mean()
        if diff >= 12.0:
            break
    out[ty : ty + h, tx : tx + w] = patch
    mask = np.zeros((s, s), np.uint8)
    mask[ty : ty + h, tx : tx + w] = 1
    return out, mask


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
