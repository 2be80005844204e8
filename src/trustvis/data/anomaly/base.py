"""The shared contract of the anomaly readers: :class:`AnomalySet`, :class:`AnomalyDataset` and helpers.

Every reader returns an :class:`AnomalySet` (``uint8 (N, H, W, 3)`` images, ``int64`` labels with 0 =
normal and 1 = anomalous, optional ``uint8 {0, 1} (N, H, W)`` pixel masks, names, groups and defect
kinds); :class:`AnomalyDataset` wraps one for torch. All images are square, ``size x size``. Splits are
``train`` (normal only), ``val`` (normal only, for thresholds and normalisation) and ``test`` (normal
and anomalous); they depend on a *split seed* (``seed``), never on a training seed.

Deviations / choices: images are resized straight to ``size x size`` (no aspect-preserving crop, as in
:func:`~trustvis.data.classification.image_folder`); unreadable image files are skipped with a warning
and listed in :attr:`AnomalySet.skipped`, while a missing or unreadable mask of an anomalous image is an
error (:func:`_read_items`, used by the MVTec AD and folder readers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from trustvis.data.classification import stratified_split
from trustvis.data.io import IMAGE_EXTENSIONS, ImageReadError, load_image
from trustvis.data.transforms import to_tensor

log = logging.getLogger(__name__)

__all__ = ["AnomalySet", "AnomalyDataset", "ANOMALY_SPLITS"]

#: Split names of every reader.
ANOMALY_SPLITS: tuple[str, ...] = ("train", "val", "test")


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
