"""In-memory datasets over numpy arrays (images already decoded, e.g. a benchmark split held in memory)."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Dataset


class ArrayDataset(Dataset):
    """In-memory uint8 images (N,H,W,3) with labels and generator names; ``transform`` per item."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, generators: list[str], transform=None) -> None:
        self.images, self.labels, self.gens, self.transform = images, labels, generators, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        from trustvis.data.transforms import to_tensor

        img = self.images[i]
        return {
            "image": self.transform(img) if self.transform else to_tensor(img),
            "label": int(self.labels[i]),
            "generator": self.gens[i],
        }
