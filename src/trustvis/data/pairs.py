"""RGB + depth pairs in memory, and the torch dataset the anti-spoofing methods train and test on.

A :class:`PairSet` holds decoded pairs (uint8 RGB, float32 depth; 0 = hole), their labels (0 real / bona fide,
1 spoof / attack), the medium of each pair (the display for a spoof; the scene or "object" for a real) and
an id; :func:`load_pair_folder` fills one from the plain layout of :func:`trustvis.data.rgbd.read_rgbd_folder`
(``ROOT/{real,spoof}/<medium>/<id>_rgb.(png|jpg)`` + ``<id>_depth.png``), which RecaptureBench is written in
too. :class:`PairDataset` applies a method's pair transform per item::

    PairSet[i] ──► transform(rgb, depth) ──► {"image": (3,S,S), "depth": (1,S,S), "label", "medium", "index"}
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

log = logging.getLogger(__name__)


@dataclass
class PairSet:
    """Decoded RGB + depth pairs with labels (1 = spoof), media and ids."""

    rgb: list[np.ndarray]  # uint8 (H, W, 3) each
    depth: list[np.ndarray]  # float32 (H, W) each, 0 = hole
    labels: np.ndarray  # int64 (N,)
    media: list[str]
    ids: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) of pairs left out

    def __len__(self) -> int:
        return len(self.rgb)

    def subset(self, index: Sequence[int]) -> PairSet:
        """The pairs at ``index``, in that order."""
        idx = [int(i) for i in index]
        return PairSet([self.rgb[i] for i in idx], [self.depth[i] for i in idx], self.labels[idx],
                       [self.media[i] for i in idx], [self.ids[i] for i in idx], list(self.skipped))  # fmt: skip

    @staticmethod
    def concat(sets: Sequence[PairSet]) -> PairSet:
        """One set of every pair of ``sets``, in order."""
        return PairSet(
            [a for s in sets for a in s.rgb],
            [d for s in sets for d in s.depth],
            np.concatenate([s.labels for s in sets]).astype(np.int64) if sets else np.zeros(0, np.int64),
            [m for s in sets for m in s.media],
            [i for s in sets for i in s.ids],
            [k for s in sets for k in s.skipped],
        )

    def counts(self) -> dict[str, int]:
        """Pairs per medium, reals first (``{"real": n, "<display>": n, ...}``)."""
        out = {"real": int((self.labels == 0).sum())}
        for m, lab in zip(self.media, self.labels):
            if lab == 1:
                out[m] = out.get(m, 0) + 1
        return out


def load_pair_folder(root: str | Path, max_per_medium: int = 0, progress: bool = False) -> PairSet:
    """Every readable pair under ``root`` (the plain RGB-D layout), decoded; pairs with a missing or unreadable
    file are skipped with a warning and listed in ``skipped``. ``max_per_medium`` > 0 keeps the first N pairs
    (by id) of each (label, medium).

    Raises:
        FileNotFoundError / ValueError: ``root`` is missing, not in the layout, or holds no readable pair.
    """
    from tqdm.auto import tqdm

    from trustvis.data.io import ImageReadError
    from trustvis.data.rgbd import load_pair, read_rgbd_folder

    folder = read_rgbd_folder(root)
    items = sorted(folder.items, key=lambda it: (it.label, it.medium, it.id))
    if max_per_medium > 0:
        kept: dict[tuple[int, str], int] = {}
        sel = []
        for it in items:
            k = (it.label, it.medium)
            if kept.get(k, 0) < max_per_medium:
                kept[k] = kept.get(k, 0) + 1
                sel.append(it)
        items = sel
    rgb, depth, labels, media, ids = [], [], [], [], []
    skipped = list(folder.skipped)
    for it in tqdm(items, desc=f"read {Path(root).name}", disable=not progress, leave=False):
        try:
            r, d = load_pair(it)
        except (ImageReadError, OSError, ValueError) as e:
            reason = getattr(e, "reason", str(e))
            log.warning("skipped %s: %s", it.rgb, reason)
            skipped.append((str(it.rgb), reason))
            continue
        rgb.append(r)
        depth.append(d)
        labels.append(it.label)
        media.append(it.medium)
        ids.append(it.id)
    if not rgb:
        raise ValueError(f"no readable RGB + depth pair under {root} ({len(skipped)} skipped)")
    return PairSet(rgb, depth, np.asarray(labels, np.int64), media, ids, skipped)


class PairDataset(Dataset):
    """A :class:`PairSet` through a pair transform ``(rgb, depth) -> {"image", "depth"}``."""

    def __init__(self, pairs: PairSet, transform: Callable[[np.ndarray, np.ndarray], dict[str, Any]]) -> None:
        self.pairs, self.transform = pairs, transform
        self.labels = pairs.labels

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.transform(self.pairs.rgb[i], self.pairs.depth[i])
        item.update(label=int(self.pairs.labels[i]), medium=self.pairs.media[i], index=int(i))
        return item
