"""Binary real/fake classification metrics (detection and anti-spoofing).

Convention: label 0 = real, 1 = fake; a score is the predicted probability of *fake*. The metrics are
those of the ForenSynths protocol (Wang et al., CVPR 2020, ``validate.py``): accuracy at a fixed
threshold, real-only and fake-only accuracy and average precision (AP), plus ROC AUC and the equal
error rate (EER) that face-forensics benchmarks (DeepfakeBench) report.

- AP is ``sklearn.metrics.average_precision_score`` (step-wise, no interpolation).
- AUC is ``sklearn.metrics.roc_auc_score``.
- EER is read off ``sklearn.metrics.roc_curve`` where FPR = FNR (= 1 - TPR), linearly interpolated
  between the two ROC points that bracket the crossing.

Degenerate inputs never raise and never leak sklearn warnings: when only one class is present, AP, AUC
and EER are ``nan`` and so is the accuracy of the absent class. Empty inputs, mismatched lengths,
labels other than 0/1 and non-finite scores raise ``ValueError``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

logger = logging.getLogger(__name__)

__all__ = ["accuracy", "binary_metrics", "eer", "mean_metrics", "roc_points"]

NAN = float("nan")


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, possibly on GPU or requiring grad
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and flatten ``labels`` / ``scores`` into int64 / float64 arrays."""
    y = _to_numpy(labels).reshape(-1)
    try:
        s = _to_numpy(scores).astype(np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"scores must be numeric: {exc}") from exc
    if y.size == 0 or s.size == 0:
        raise ValueError("Empty input: need at least one (label, score) pair.")
    if y.size != s.size:
        raise ValueError(f"labels and scores differ in length: {y.size} labels vs {s.size} scores.")
    bad = int(np.count_nonzero(~np.isfinite(s)))
    if bad:
        raise ValueError(f"{bad} of {s.size} scores are NaN or infinite; scores must be finite.")
    if y.dtype == bool:
        y = y.astype(np.int64)
    try:
        yf = y.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"labels must be 0 (real) or 1 (fake): {exc}") from exc
    if not np.all((yf == 0) | (yf == 1)):
        found = sorted({float(v) for v in np.unique(yf)})[:10]
        raise ValueError(f"labels must be 0 (real) or 1 (fake); found values {found}.")
    return yf.astype(np.int64), s


def _check_threshold(threshold: float) -> float:
    t = float(threshold)
    if not math.isfinite(t):
        raise ValueError(f"threshold must be finite, got {threshold!r}.")
    return t


def accuracy(labels: Any, scores: Any, threshold: float = 0.5) -> float:
    """Fraction of samples whose prediction ``score >= threshold`` (fake) matches the label.

    Args:
        labels: 0 (real) / 1 (fake), shape (N,).
        scores: probability of fake, shape (N,).
        threshold: scores at or above it are predicted fake.

    Returns:
        Accuracy in [0, 1].
    """
    y, s = _check(labels, scores)
    pred = (s >= _check_threshold(threshold)).astype(np.int64)
    return float(np.mean(pred == y))


def eer(labels: Any, scores: Any) -> float:
    """Equal error rate: the point of the ROC curve where FPR = FNR, linearly interpolated.

    Returns ``nan`` when only one class is present.
    """
    y, s = _check(labels, scores)
    if np.unique(y).size < 2:
        return NAN
    fpr, tpr, _ = roc_curve(y, s)
    return _eer_from_roc(fpr, tpr)


def _eer_from_roc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    # Along the curve FPR rises from 0 and FNR = 1 - TPR falls to 0, so d = FNR - FPR goes from
    # >= 0 to <= 0; find the first point where it is <= 0 and interpolate on the segment before it.
    fnr = 1.0 - tpr
    d = fnr - fpr
    i = int(np.argmax(d <= 0))  # d[-1] = -1 at (1, 1), so a crossing always exists
    if d[i] == 0 or i == 0:
        return float((fpr[i] + fnr[i]) / 2)
    t = d[i - 1] / (d[i - 1] - d[i])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def binary_metrics(labels: Any, scores: Any, threshold: float = 0.5) -> dict[str, float | int]:
    """All detection metrics of one test set.

    Args:
        labels: 0 (real) / 1 (fake), shape (N,).
        scores: probability of fake, shape (N,); must be finite.
        threshold: decision threshold for the accuracies.

    Returns:
        ``{"acc", "acc_real", "acc_fake", "ap", "auc", "eer", "n_real", "n_fake"}``. ``ap``, ``auc`` and
        ``eer`` are ``nan`` when only one class is present, as is the accuracy of an absent class.

    Raises:
        ValueError: on empty input, mismatched lengths, labels other than 0/1 or non-finite scores.
    """
    y, s = _check(labels, scores)
    t = _check_threshold(threshold)
    pred = (s >= t).astype(np.int64)
    real, fake = y == 0, y == 1
    n_real, n_fake = int(real.sum()), int(fake.sum())
    out: dict[str, float | int] = {
        "acc": float(np.mean(pred == y)),
        "acc_real": float(np.mean(pred[real] == 0)) if n_real else NAN,
        "acc_fake": float(np.mean(pred[fake] == 1)) if n_fake else NAN,
        "ap": NAN,
        "auc": NAN,
        "eer": NAN,
        "n_real": n_real,
        "n_fake": n_fake,
    }
    if n_real and n_fake:
        out["ap"] = float(average_precision_score(y, s))
        out["auc"] = float(roc_auc_score(y, s))
        fpr, tpr, _ = roc_curve(y, s)
        out["eer"] = _eer_from_roc(fpr, tpr)
    return out


def roc_points(labels: Any, scores: Any, max_points: int = 200) -> tuple[list[float], list[float]]:
    """ROC curve downsampled to at most ``max_points`` points, for plots and JSON.

    Points are picked evenly along the curve's arc length, so both the steep start and the flat end
    keep their shape; the end points (0, 0) and (1, 1) are always kept.

    Args:
        labels: 0 (real) / 1 (fake), shape (N,).
        scores: probability of fake, shape (N,).
        max_points: upper bound on the number of returned points (>= 2).

    Returns:
        ``(fpr, tpr)`` as lists of floats (rounded to 6 decimals). Both are empty when only one class is
        present (the ROC curve is undefined).
    """
    if int(max_points) < 2:
        raise ValueError(f"max_points must be >= 2, got {max_points}.")
    y, s = _check(labels, scores)
    if np.unique(y).size < 2:
        logger.warning("roc_points: only one class present (%d samples); returning an empty curve.", y.size)
        return [], []
    fpr, tpr, _ = roc_curve(y, s)
    if fpr.size > max_points:
        seg = np.hypot(np.diff(fpr), np.diff(tpr))
        arc = np.concatenate([[0.0], np.cumsum(seg)])
        targets = np.linspace(0.0, arc[-1], int(max_points))
        idx = np.unique(np.clip(np.searchsorted(arc, targets), 0, fpr.size - 1))
        idx = np.unique(np.concatenate([[0], idx, [fpr.size - 1]]))
        if idx.size > max_points:  # duplicates collapsed unevenly; thin uniformly, keep the ends
            keep = np.unique(np.round(np.linspace(0, idx.size - 1, int(max_points))).astype(int))
            idx = idx[keep]
        fpr, tpr = fpr[idx], tpr[idx]
    return [round(float(v), 6) for v in fpr], [round(float(v), 6) for v in tpr]


def mean_metrics(
    metrics: Iterable[Mapping[str, Any]], keys: Sequence[str] = ("acc", "ap", "auc")
) -> dict[str, float]:
    """NaN-aware mean of several metric dicts (e.g. over unseen generator families).

    A missing key, ``None`` or a non-finite value counts as missing; a key that is missing everywhere
    (or an empty input) gives ``nan``.

    Args:
        metrics: metric dicts such as those of :func:`binary_metrics`.
        keys: which keys to average.

    Returns:
        ``{key: mean}`` for every key in ``keys``.
    """
    rows = list(metrics)
    out: dict[str, float] = {}
    for k in keys:
        vals = []
        for r in rows:
            v = r.get(k)
            if v is None:
                continue
            try:
                f = float(v)
            except (TypeError, ValueError):
                continue
            if math.isfinite(f):
                vals.append(f)
        out[k] = float(sum(vals) / len(vals)) if vals else NAN
    return out
