"""Classification data and evaluation shared by ``trustvis train`` and the classification benchmarks.

run.data (name, root, imbalance, max_images) ──► load_split(train|val) [──► long-tailed subset]
    ──► ClassificationDataset(method.make_transform(train))
method + dataset ──► class_logits ──► logits (N,C), labels (N,) ──► calibration_metrics
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from trustvis.config import RunConfig
from trustvis.data.classification import (
    ClassificationDataset,
    ImageSet,
    dominant_indices,
    load_split,
    long_tailed_indices,
)
from trustvis.engine import predict_dataset
from trustvis.metrics.calibration import calibration_metrics

#: seed of the long-tailed sub-sampling: a property of the data set, never of a training run
LT_SEED = 0


def cap_per_class(data: ImageSet, max_per_class: int, seed: int = LT_SEED) -> ImageSet:
    """At most ``max_per_class`` items of each class (a seeded random choice); 0 keeps all."""
    if max_per_class <= 0:
        return data
    rng = np.random.default_rng(seed)
    keep = [
        rng.permutation(np.flatnonzero(data.labels == c))[:max_per_class] for c in range(data.num_classes)
    ]
    return data.subset(np.sort(np.concatenate(keep)))


def load_classification_split(run: RunConfig, split: str) -> ImageSet:
    """``split`` of the run's data set, long-tailed or dominant-k (train and val only) and capped as configured."""
    data = run.data
    images = load_split(data.name, split, root=data.root)
    if split != "test" and data.imbalance > 1:
        images = images.subset(long_tailed_indices(images.labels, data.imbalance, seed=LT_SEED))
    if split != "test" and data.dominant >= 0:
        if data.dominant >= images.num_classes:
            raise ValueError(
                f"data.dominant={data.dominant} but {data.name} has classes 0..{images.num_classes - 1}"
            )
        images = images.subset(dominant_indices(images.labels, data.dominant, seed=LT_SEED))
    if split != "test":
        images = cap_per_class(images, data.max_images)
    return images


def classification_datasets(run: RunConfig, method: Any) -> tuple[Dataset, Dataset]:
    """(train set, val set) of a classification run; the method's class count must match the data."""
    train = load_classification_split(run, "train")
    val = load_classification_split(run, "val")
    k = getattr(method.config, "num_classes", None)
    if k is not None and k != train.num_classes:
        raise ValueError(
            f"{run.data.name} has {train.num_classes} classes but model.num_classes={k}; "
            f"set model.num_classes={train.num_classes}"
        )
    return (
        ClassificationDataset(train, method.make_transform(True)),
        ClassificationDataset(val, method.make_transform(False)),
    )


def class_logits(
    method: Any, dataset: Dataset, batch_size: int = 256, progress: bool = False
) -> dict[str, Any]:
    """``{"logits": (N,C) float32, "label": (N,) int64, "images_per_second"}`` of ``method`` on ``dataset``."""
    out = predict_dataset(method, dataset, batch_size=batch_size, keys=("logits",), progress=progress)
    return {
        "logits": out["logits"].astype(np.float32),
        "label": out["label"].astype(np.int64),
        "images_per_second": out["images_per_second"],
    }


def classifier_val_metrics(method: Any, val_set: Dataset) -> dict[str, float]:
    """Accuracy and calibration of ``method`` on ``val_set`` (the trainer logs them as ``val_*``)."""
    out = class_logits(method, val_set)
    return calibration_metrics(torch.from_numpy(out["logits"]), out["label"], from_logits=True)
