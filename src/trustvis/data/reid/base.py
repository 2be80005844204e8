"""What every re-identification data source gives: :class:`ReidSet` (images with person ids and camera ids) and
:class:`ReidSplits` (train / query / gallery), the shape the ``reid`` task, its metrics and its bench read.

A set holds either decoded images (uint8 (H, W, 3) arrays, for the sets trustvis builds) or file paths (a
user's Market-1501 folder, read on demand); :meth:`ReidSet.image` returns the uint8 array either way. Person id
``-1`` marks junk images and ``0`` distractors (the Market-1501 conventions); the retrieval metrics leave junk
out of every gallery and count distractors as wrong matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class ReidSet:
    """Images with person ids (``pids``) and camera ids (``camids``), one name per image."""

    images: list[Any]  # uint8 (H, W, 3) arrays or image file paths
    pids: np.ndarray  # int64 (N,); -1 junk, 0 distractor (Market-1501)
    camids: np.ndarray  # int64 (N,)
    names: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) of images left out

    def __post_init__(self) -> None:
        self.pids = np.asarray(self.pids, dtype=np.int64)
        self.camids = np.asarray(self.camids, dtype=np.int64)
        n = len(self.images)
        if not (len(self.pids) == len(self.camids) == len(self.names) == n):
            raise ValueError(
                f"ReidSet: {n} images, {len(self.pids)} pids, {len(self.camids)} camids, {len(self.names)} names"
            )

    def __len__(self) -> int:
        return len(self.images)

    def image(self, i: int, max_side: int = 0) -> np.ndarray:
        """Image ``i`` as uint8 (H, W, 3) (decoded from its file when the set holds paths)."""
        img = self.images[i]
        if isinstance(img, (str, Path)):
            from trustvis.data.io import load_image

            return load_image(img, max_side=max_side)
        return img

    def subset(self, index: Sequence[int]) -> ReidSet:
        idx = [int(i) for i in index]
        return ReidSet([self.images[i] for i in idx], self.pids[idx], self.camids[idx],
                       [self.names[i] for i in idx], list(self.skipped))  # fmt: skip

    @property
    def identities(self) -> list[int]:
        """The person ids of real identities (not junk -1 nor distractor 0), sorted."""
        return sorted(int(p) for p in set(self.pids.tolist()) if p > 0)


@dataclass
class ReidSplits:
    """A re-identification benchmark: a training set and a query / gallery test pair with disjoint identities."""

    train: ReidSet
    query: ReidSet
    gallery: ReidSet
    name: str = ""
    notes: dict[str, Any] = field(default_factory=dict)  # what the source says about itself (JSON-able)

    def check_disjoint(self) -> None:
        """Raise ValueError when a training identity is also a test identity."""
        shared = set(self.train.identities) & (set(self.query.identities) | set(self.gallery.identities))
        if shared:
            raise ValueError(
                f"{self.name or 'reid splits'}: identities in train and test: {sorted(shared)[:10]}"
            )
