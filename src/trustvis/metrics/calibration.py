"""Multi-class calibration metrics: ECE, MCE, class-wise ECE, NLL, Brier score, accuracy.

Used to evaluate post-hoc calibrators such as SCTL ("Scaling of Class-wise Training Losses for Post-hoc
Calibration", Jung et al., ICML 2023, arXiv 2306.10989), whose official code reports ECE with 15
equal-width bins on the max-softmax confidence.

Definitions (N samples, C classes, ``p`` the (N, C) probabilities, ``y`` the labels):

- **ECE** (Guo et al., ICML 2017): bin the confidence ``max_j p_j`` into ``n_bins`` equal-width bins;
  ``ECE = sum_b (n_b / N) |acc_b - conf_b|``. Returned as a *fraction* in [0, 1] (papers, SCTL included,
  usually print it x100).
- **MCE**: ``max_b |acc_b - conf_b|`` over the non-empty bins.
- **Class-wise ECE** (Kull et al., NeurIPS 2019; Nixon et al., CVPRW 2019): for every class j, bin
  ``p_j`` of *all* samples and compare the mean ``p_j`` of each bin with the frequency of ``y == j``;
  the per-class ECEs are averaged over all C classes.
- **NLL**: mean ``-log p_y`` with ``p_y`` clipped at 1e-12 (so one sample contributes at most ~27.6).
- **Brier**: multi-class form ``mean_i sum_j (p_ij - onehot_ij)^2``, range [0, 2].

Bin edge convention: edges are ``np.linspace(0, 1, n_bins + 1)`` and bin b is ``(edges[b], edges[b+1]]``
(a value equal to an inner edge falls in the lower bin), as in the ``conf > lo and conf <= hi`` test of
Guo et al.'s code, which the SCTL code reuses. *Deviation*: a value of exactly 0 is put into the first
bin, whereas Guo's test drops it. This never matters for the top-1 confidence (always >= 1/C) but can for
class-wise ECE, where ``p_j`` may underflow to 0. Edges are float64 here (float32 in the PyTorch
reference code), so values within ~1e-7 of an inner edge may land in the neighbouring bin there.

Inputs are numpy arrays or torch tensors (detached and moved to the CPU); everything is computed in
float64. Every function takes probabilities by default; pass ``from_logits=True`` to give logits. A
1-D input of shape (N,) is the binary case: the probability (or, with ``from_logits=True``, the logit)
of class 1, turned into the (N, 2) form ``[1 - p, p]`` (logit ``z`` -> ``softmax([0, z])``).

Invalid inputs raise ``ValueError``: empty input, mismatched lengths, labels outside [0, C), non-finite
values, and probability rows outside [0, 1] or not summing to 1 (tolerance 1e-3) -- the usual symptom of
passing logits as probabilities (gpleiss/temperature_scaling #29).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from trustvis.metrics.classification import _to_numpy

logger = logging.getLogger(__name__)

__all__ = [
    "accuracy",
    "as_probs",
    "brier",
    "calibration_metrics",
    "classwise_ece",
    "ece",
    "mce",
    "nll",
    "reliability_bins",
    "softmax",
]

NAN = float("nan")
PROB_SUM_TOL = 1e-3
NLL_EPS = 1e-12


def _as_float(x: Any, what: str) -> np.ndarray:
    try:
        return _to_numpy(x).astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be numeric: {exc}") from exc


def softmax(logits: Any) -> np.ndarray:
    """Numerically stable softmax over the last axis.

    Args:
        logits: array or tensor of any shape (..., C); must be finite.

    Returns:
        float64 array of the same shape whose last axis sums to 1.
    """
    z = _as_float(logits, "logits")
    if z.ndim == 0:
        raise ValueError("logits must have at least one dimension (the class axis), got a scalar.")
    bad = int(np.count_nonzero(~np.isfinite(z)))
    if bad:
        raise ValueError(f"{bad} of {z.size} logits are NaN or infinite; logits must be finite.")
    if z.size == 0:
        return z
    z = z - z.max(axis=-1, keepdims=True)  # (..., C), max is 0: exp cannot overflow
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def as_probs(x: Any, from_logits: bool) -> np.ndarray:
    """Validated (N, C) probabilities from probabilities or logits.

    Args:
        x: (N, C) probabilities or logits with C >= 2, or (N,) for the binary case: the probability
            (or logit, with ``from_logits``) of class 1, returned as the two columns ``[1 - p, p]``.
        from_logits: whether ``x`` holds logits (softmax is applied) or probabilities (checked).

    Returns:
        float64 array of shape (N, C).

    Raises:
        ValueError: on empty or non-finite input, a shape other than (N,) or (N, C >= 2), and, when
            ``from_logits`` is False, values outside [0, 1] or rows not summing to 1 (within 1e-3).
    """
    a = _as_float(x, "probs" if not from_logits else "logits")
    what = "logits" if from_logits else "probabilities"
    if a.size == 0:
        raise ValueError(f"Empty input: need at least one row of {what}.")
    if a.ndim not in (1, 2) or (a.ndim == 2 and a.shape[1] < 2):
        raise ValueError(
            f"{what} must have shape (N, C) with C >= 2, or (N,) for the binary case "
            f"(class-1 {'logit' if from_logits else 'probability'}); got shape {tuple(a.shape)}."
        )
    bad = int(np.count_nonzero(~np.isfinite(a)))
    if bad:
        raise ValueError(f"{bad} of {a.size} {what} are NaN or infinite; {what} must be finite.")
    if from_logits:
        if a.ndim == 1:
            a = np.stack([np.zeros_like(a), a], axis=1)  # (N, 2): softmax([0, z]) = [1 - sig(z), sig(z)]
        return softmax(a)
    if a.min() < 0.0 or a.max() > 1.0 + PROB_SUM_TOL:
        raise ValueError(
            f"probabilities must lie in [0, 1], found values in [{a.min():.4g}, {a.max():.4g}]; "
            "if these are logits, pass logits with from_logits=True."
        )
    if a.ndim == 1:
        a = np.clip(a, 0.0, 1.0)  # (N,), within the tolerance above
        return np.stack([1.0 - a, a], axis=1)  # (N, 2)
    sums = a.sum(axis=1)  # (N,)
    off = np.abs(sums - 1.0) > PROB_SUM_TOL
    if off.any():
        i = int(np.argmax(off))
        raise ValueError(
            f"{int(off.sum())} of {a.shape[0]} probability rows do not sum to 1 (tolerance {PROB_SUM_TOL:g}; "
            f"e.g. row {i} sums to {sums[i]:.6g}); if these are logits or log-probabilities, pass logits "
            "with from_logits=True."
        )
    return a


def _check_labels(labels: Any, n: int, n_classes: int) -> np.ndarray:
    y = _to_numpy(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(
            f"labels must be class indices of shape (N,) (not one-hot), got shape {tuple(y.shape)}."
        )
    if y.size == 0:
        raise ValueError("Empty input: need at least one label.")
    if y.size != n:
        raise ValueError(f"probs and labels differ in length: {n} rows vs {y.size} labels.")
    if y.dtype == bool:
        y = y.astype(np.int64)
    try:
        yf = y.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"labels must be integer class indices in [0, {n_classes}): {exc}") from exc
    valid = np.isfinite(yf) & (yf == np.round(yf)) & (yf >= 0) & (yf < n_classes)
    if not valid.all():
        found = sorted({float(v) for v in yf[~valid]})[:10]
        raise ValueError(
            f"labels must be integer class indices in [0, {n_classes}) for {n_classes} classes; "
            f"found invalid values {found}."
        )
    return yf.astype(np.int64)


def _check_bins(n_bins: int) -> int:
    try:
        b = int(n_bins)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.") from exc
    if b < 1 or b != n_bins:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")
    return b


def _prepare(probs: Any, labels: Any, from_logits: bool) -> tuple[np.ndarray, np.ndarray]:
    p = as_probs(probs, from_logits)  # (N, C)
    y = _check_labels(labels, p.shape[0], p.shape[1])  # (N,)
    return p, y


def _bin_stats(
    values: np.ndarray, hits: np.ndarray, n_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin count, mean hit rate and mean value of ``values`` in [0, 1] binned as (lo, hi].

    Returns:
        ``(edges (B+1,), count (B,), mean_hit (B,), mean_value (B,))`` with nan for empty bins.
    """
    edges = np.linspace(0.0, 1.0, n_bins + 1)  # (B+1,)
    # searchsorted(side="left") gives i with edges[i-1] < v <= edges[i]; v == 0 gives 0 -> first bin.
    idx = np.clip(np.searchsorted(edges, values, side="left") - 1, 0, n_bins - 1)  # (N,)
    count = np.bincount(idx, minlength=n_bins)  # (B,)
    hit_sum = np.bincount(idx, weights=hits.astype(np.float64), minlength=n_bins)  # (B,)
    val_sum = np.bincount(idx, weights=values, minlength=n_bins)  # (B,)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_hit = np.where(count > 0, hit_sum / count, np.nan)
        mean_val = np.where(count > 0, val_sum / count, np.nan)
    return edges, count, mean_hit, mean_val


def _ece_from_bins(count: np.ndarray, acc: np.ndarray, conf: np.ndarray) -> float:
    nz = count > 0
    return float(np.sum(count[nz] / count.sum() * np.abs(acc[nz] - conf[nz])))


def _top1(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = p.argmax(axis=1)  # (N,), ties -> lowest class index
    return p.max(axis=1), pred == y  # (N,) confidence, (N,) correct


def _ece(p: np.ndarray, y: np.ndarray, n_bins: int) -> float:
    conf, correct = _top1(p, y)
    _, count, acc, mconf = _bin_stats(conf, correct, n_bins)
    return _ece_from_bins(count, acc, mconf)


def _mce(p: np.ndarray, y: np.ndarray, n_bins: int) -> float:
    conf, correct = _top1(p, y)
    _, count, acc, mconf = _bin_stats(conf, correct, n_bins)
    nz = count > 0
    return float(np.max(np.abs(acc[nz] - mconf[nz])))


def _classwise_ece(p: np.ndarray, y: np.ndarray, n_bins: int) -> float:
    per_class = []
    for j in range(p.shape[1]):
        _, count, freq, mp = _bin_stats(p[:, j], y == j, n_bins)
        per_class.append(_ece_from_bins(count, freq, mp))
    return float(np.mean(per_class))


def _nll(p: np.ndarray, y: np.ndarray) -> float:
    py = np.clip(p[np.arange(p.shape[0]), y], NLL_EPS, 1.0)  # (N,)
    return float(-np.mean(np.log(py)))


def _brier(p: np.ndarray, y: np.ndarray) -> float:
    onehot = np.zeros_like(p)  # (N, C)
    onehot[np.arange(p.shape[0]), y] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def ece(probs: Any, labels: Any, n_bins: int = 15, *, from_logits: bool = False) -> float:
    """Expected calibration error on the top-1 confidence, equal-width bins ``(lo, hi]``.

    Args:
        probs: (N, C) probabilities, or (N,) class-1 probabilities for the binary case.
        labels: (N,) integer labels in [0, C).
        n_bins: number of equal-width bins on [0, 1] (SCTL and Guo et al. use 15).
        from_logits: ``probs`` holds logits; softmax is applied first.

    Returns:
        ECE as a fraction in [0, 1] (multiply by 100 for the percentages papers print).
    """
    p, y = _prepare(probs, labels, from_logits)
    return _ece(p, y, _check_bins(n_bins))


def mce(probs: Any, labels: Any, n_bins: int = 15, *, from_logits: bool = False) -> float:
    """Maximum calibration error: the largest ``|acc_b - conf_b|`` over the non-empty bins.

    Args:
        probs: (N, C) probabilities, or (N,) class-1 probabilities for the binary case.
        labels: (N,) integer labels in [0, C).
        n_bins: number of equal-width bins ``(lo, hi]`` on [0, 1].
        from_logits: ``probs`` holds logits; softmax is applied first.

    Returns:
        MCE in [0, 1].
    """
    p, y = _prepare(probs, labels, from_logits)
    return _mce(p, y, _check_bins(n_bins))


def classwise_ece(probs: Any, labels: Any, n_bins: int = 15, *, from_logits: bool = False) -> float:
    """Class-wise ECE (Kull et al. 2019): per-class ECE of ``p_j`` against ``y == j``, averaged over classes.

    For each class j, ``p_j`` of *all* N samples is binned into equal-width bins ``(lo, hi]`` (0 in the
    first bin); each bin compares its mean ``p_j`` with the share of its samples whose label is j. The
    per-class ECEs are averaged over all C classes, including classes absent from ``labels``.

    Args:
        probs: (N, C) probabilities, or (N,) class-1 probabilities for the binary case.
        labels: (N,) integer labels in [0, C).
        n_bins: number of bins per class.
        from_logits: ``probs`` holds logits; softmax is applied first.

    Returns:
        Class-wise ECE as a fraction in [0, 1].
    """
    p, y = _prepare(probs, labels, from_logits)
    return _classwise_ece(p, y, _check_bins(n_bins))


def nll(probs: Any, labels: Any, *, from_logits: bool = False) -> float:
    """Mean negative log-likelihood ``-log p_y``, with ``p_y`` clipped at 1e-12.

    Args:
        probs: (N, C) probabilities, or (N,) class-1 probabilities for the binary case.
        labels: (N,) integer labels in [0, C).
        from_logits: ``probs`` holds logits; softmax is applied first (then clipped like probabilities).

    Returns:
        NLL in nats (natural log).
    """
    p, y = _prepare(probs, labels, from_logits)
    return _nll(p, y)


def brier(probs: Any, labels: Any, *, from_logits: bool = False) -> float:
    """Multi-class Brier score: mean over samples of ``sum_j (p_j - onehot_j)^2``, range [0, 2].

    This is the multi-class form: for a binary (N,) input it is computed on the two columns
    ``[1 - p, p]`` and is therefore twice the binary Brier score ``mean (p - y)^2``.

    Args:
        probs: (N, C) probabilities, or (N,) class-1 probabilities for the binary case.
        labels: (N,) integer labels in [0, C).
        from_logits: ``probs`` holds logits; softmax is applied first.

    Returns:
        Brier score in [0, 2].
    """
    p, y = _prepare(probs, labels, from_logits)
    return _brier(p, y)


def accuracy(probs: Any, labels: Any, *, from_logits: bool = False) -> float:
    """Top-1 accuracy (ties in ``argmax`` go to the lowest class index).

    Args:
        probs: (N, C) probabilities, or (N,) class-1 probabilities for the binary case (class 1 wins
            only when p > 0.5).
        labels: (N,) integer labels in [0, C).
        from_logits: ``probs`` holds logits.

    Returns:
        Accuracy in [0, 1].
    """
    p, y = _prepare(probs, labels, from_logits)
    return float(np.mean(p.argmax(axis=1) == y))


def reliability_bins(
    probs: Any, labels: Any, n_bins: int = 15, *, from_logits: bool = False
) -> dict[str, list[float]]:
    """Per-bin statistics of the top-1 confidence, for reliability diagrams.

    Bins are equal-width ``(lo, hi]`` on [0, 1], as in :func:`ece`; the ECE can be recovered as
    ``sum(count_b / N * |accuracy_b - confidence_b|)`` over the non-empty bins.

    Args:
        probs: (N, C) probabilities, or (N,) class-1 probabilities for the binary case.
        labels: (N,) integer labels in [0, C).
        n_bins: number of bins.
        from_logits: ``probs`` holds logits; softmax is applied first.

    Returns:
        ``{"edges": n_bins + 1 floats, "count": n_bins ints, "accuracy": n_bins floats,
        "confidence": n_bins floats}``; accuracy and confidence are ``nan`` for empty bins. Plain lists,
        so the dict is JSON-serialisable (nan aside) and plots with
        :func:`trustvis.report.plots.plot_reliability`.
    """
    p, y = _prepare(probs, labels, from_logits)
    conf, correct = _top1(p, y)
    edges, count, acc, mconf = _bin_stats(conf, correct, _check_bins(n_bins))
    return {
        "edges": [float(e) for e in edges],
        "count": [int(c) for c in count],
        "accuracy": [float(a) for a in acc],
        "confidence": [float(c) for c in mconf],
    }


def calibration_metrics(
    probs_or_logits: Any, labels: Any, from_logits: bool = True, n_bins: int = 15
) -> dict[str, float]:
    """All calibration metrics of one prediction set.

    Note the default ``from_logits=True``: pass probabilities with ``from_logits=False``. Rows that are
    not probabilities under ``from_logits=False`` raise instead of silently giving a wrong ECE.

    Args:
        probs_or_logits: (N, C) logits (or probabilities), or (N,) class-1 logits (probabilities) for the
            binary case.
        labels: (N,) integer labels in [0, C).
        from_logits: whether the first argument holds logits.
        n_bins: number of equal-width bins for ECE, class-wise ECE and MCE.

    Returns:
        ``{"acc", "ece", "cw_ece", "mce", "nll", "brier", "n"}``; ECE-type values are fractions (not x100)
        and ``n`` is the number of samples.
    """
    p, y = _prepare(probs_or_logits, labels, from_logits)
    b = _check_bins(n_bins)
    return {
        "acc": float(np.mean(p.argmax(axis=1) == y)),
        "ece": _ece(p, y, b),
        "cw_ece": _classwise_ece(p, y, b),
        "mce": _mce(p, y, b),
        "nll": _nll(p, y),
        "brier": _brier(p, y),
        "n": int(p.shape[0]),
    }
