"""Active-learning metrics: multi-class accuracy that sees every class, and the area under a learning curve.

- :func:`class_metrics`: accuracy, balanced accuracy (the mean recall over the classes present in the labels,
  ``sklearn.metrics.balanced_accuracy_score``), macro-F1 over all ``K`` classes (a class never predicted and
  absent counts F1 = 0, ``f1_score(average="macro", labels=range(K), zero_division=0)``), recall per class.
- :func:`learning_curve_area`: the normalised area under accuracy versus number of labels (trapezoids over
  the labelled range, divided by its width): a curve at 0.8 everywhere has area 0.8.
- :func:`class_counts`: how many images of each class a set of labels holds (the queries' class histogram).

Empty inputs, mismatched lengths and labels outside ``0..K-1`` raise ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["class_counts", "class_metrics", "confusion_matrix", "learning_curve_area"]


def _labels(x: Any, k: int, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{what} must be a 1-D array of class indices, got shape {a.shape} dtype {a.dtype}")
    if a.size and (a.min() < 0 or a.max() >= k):
        raise ValueError(
            f"{what} holds class {int(a.min() if a.min() < 0 else a.max())}; classes are 0..{k - 1}"
        )
    return a.astype(np.int64)


def confusion_matrix(labels: Any, predicted: Any, num_classes: int) -> np.ndarray:
    """(K,K) counts: row = true class, column = predicted class."""
    y, p = _labels(labels, num_classes, "labels"), _labels(predicted, num_classes, "predictions")
    if len(y) != len(p):
        raise ValueError(f"{len(y)} labels but {len(p)} predictions")
    return np.bincount(y * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def class_metrics(labels: Any, predicted: Any, num_classes: int) -> dict[str, Any]:
    """``acc``, ``balanced_acc``, ``macro_f1`` (floats) and ``recall`` (K floats, NaN for an absent class)."""
    cm = confusion_matrix(labels, predicted, num_classes).astype(np.float64)
    if cm.sum() == 0:
        raise ValueError("no labels: class metrics need at least one image")
    support, predicted_n, tp = cm.sum(1), cm.sum(0), np.diag(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, tp / support, np.nan)
        precision = np.where(predicted_n > 0, tp / predicted_n, 0.0)
        f1 = np.where(precision + np.nan_to_num(recall) > 0,
                      2 * precision * np.nan_to_num(recall) / (precision + np.nan_to_num(recall)), 0.0)  # fmt: skip
    return {
        "acc": float(tp.sum() / cm.sum()),
        "balanced_acc": float(np.nanmean(recall)),
        "macro_f1": float(f1.mean()),
        "recall": [float(r) for r in recall],
    }


def learning_curve_area(num_labels: Sequence[float], values: Sequence[float]) -> float:
    """Normalised area under ``values`` (e.g. accuracy) against ``num_labels``; one point gives its value."""
    x, y = np.asarray(num_labels, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or not len(x):
        raise ValueError(f"need matching, non-empty 1-D curves; got {x.shape} and {y.shape}")
    if np.any(np.diff(x) <= 0):
        raise ValueError(f"numbers of labels must increase: {x.tolist()}")
    if len(x) == 1:
        return float(y[0])
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))


def class_counts(labels: Any, num_classes: int) -> list[int]:
    """How many of ``labels`` fall in each class (K ints)."""
    return [int(c) for c in np.bincount(_labels(labels, num_classes, "labels"), minlength=num_classes)]
