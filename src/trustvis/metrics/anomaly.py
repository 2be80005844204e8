"""Anomaly detection and localisation metrics: image/pixel AUROC, AUPRO, F1-max, adaptive threshold.

The metric suite follows anomalib (openvinotoolkit/anomalib, ``src/anomalib/metrics``) and the MVTec AD
evaluation protocol (Bergmann et al., "The MVTec Anomaly Detection Dataset: A Comprehensive Real-World
Dataset for Unsupervised Anomaly Detection", IJCV 2021), which defines the per-region overlap (PRO):

- **Image AUROC / AP**: ``sklearn.metrics.roc_auc_score`` / ``average_precision_score`` on one score per
  image (label 0 = normal, 1 = anomalous; a higher score means more anomalous).
- **Pixel AUROC**: the same AUROC on *all pixels of all test images pooled* (normal images included), as
  anomalib's ``pixel_AUROC``; not a mean of per-image AUROCs. It is read off the exact ROC curve built
  from the same single sort as the PRO curve (equal to ``roc_auc_score`` on the flattened arrays).
- **PRO curve / AUPRO**: for a threshold ``t`` a pixel is predicted anomalous when ``map >= t``. The
  ground-truth masks are split into connected components with ``scipy.ndimage.label`` and
  **8-connectivity** inside each image (diagonal neighbours join; components never cross images), as
  the MVTec AD reference code (``structure=np.ones((3, 3))``) and anomalib (OpenCV / kornia components)
  do. ``PRO(t)`` is the *unweighted mean over components* of the fraction of the component's pixels
  predicted anomalous, so a small defect counts as much as a large one (unlike pixel AUROC);
  ``FPR(t)`` is the fraction of normal pixels (mask 0, over all images) predicted anomalous. The curve
  is evaluated exactly at every distinct score in one sort (``O(P log P)`` for ``P`` pixels, ~0.3 s on
  one core for 100 maps of 128x128), starting at (0, 0). **AUPRO** integrates PRO over FPR from 0 to ``fpr_limit``
  (default 0.3, anomalib's default) with the trapezoidal rule and divides by ``fpr_limit``, so a
  perfect map scores 1.0. The curve is piecewise linear between its points, so at the limit PRO is
  *linearly interpolated* between the two points that bracket ``fpr_limit`` (as the MVTec AD
  ``trapezoid(..., x_max=...)`` and anomalib do). Consequences: tied scores are a straight segment
  (the expectation over random tie-breaking, as for AUROC), and a constant map scores
  ``fpr_limit / 2`` (0.15 at the default limit), not 0.
- **F1-max** (anomalib ``F1Max``): the best F1 over all thresholds ``score >= t`` with ``t`` one of the
  scores; the threshold achieving it is anomalib's ``F1AdaptiveThreshold``.
- **Adaptive threshold**: F1-optimal when the *validation* labels contain both classes, otherwise a high
  quantile of the normal validation scores (see :func:`adaptive_threshold`).

Scores are used raw. anomalib min-max normalises scores so that its threshold maps to 0.5; AUROC, AP,
F1-max and AUPRO are invariant to any increasing transform of the scores, so no normalisation is needed
for them, and a normalisation fitted with a threshold learnt from normal-only validation data is what
makes every image come out "abnormal" in anomalib #1255. Here a threshold is an explicit number in score
units, fitted on validation data and passed to :func:`anomaly_metrics`; it is never fitted on test labels.

Deviation from anomalib's AUPRO: anomalib interpolates each component's curve onto a common index grid
before averaging; here PRO and FPR are computed exactly at each global threshold (the MVTec AD
definition). Both agree up to that interpolation.

Inputs are numpy arrays or torch tensors (detached and moved to the CPU); everything is computed in
float64. Invalid input raises ``ValueError``: empty or mismatched arrays, labels or masks outside {0, 1},
non-finite scores, and a missing class where a metric needs both.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from scipy import ndimage
from sklearn.metrics import average_precision_score, roc_auc_score

from trustvis.metrics.classification import _to_numpy

logger = logging.getLogger(__name__)

__all__ = [
    "adaptive_threshold",
    "anomaly_metrics",
    "aupro",
    "f1_max",
    "image_auroc",
    "pixel_auroc",
    "pro_curve",
    "threshold_metrics",
]

DEFAULT_FPR_LIMIT = 0.3
# 8-connectivity inside each image, no connection across the image axis of an (N, H, W) stack.
_STRUCTURE_8 = np.zeros((3, 3, 3), dtype=bool)
_STRUCTURE_8[1] = True


# --- input checks ----------------------------------------------------------------------------------------


def _binary(x: np.ndarray, what: str) -> np.ndarray:
    if x.dtype == bool:
        return x
    try:
        xf = x.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be 0 (normal) or 1 (anomalous): {exc}") from exc
    ok = (xf == 0) | (xf == 1)
    if not np.all(ok):
        found = [float(v) for v in np.unique(xf[~ok])[:5]]
        hint = " (0/255 masks from PNG files: divide by 255 or compare > 0)" if 255.0 in found else ""
        raise ValueError(f"{what} must be 0 (normal) or 1 (anomalous); found values {found}{hint}.")
    return xf == 1


def _finite_float(x: Any, what: str) -> np.ndarray:
    try:
        a = _to_numpy(x).astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be numeric: {exc}") from exc
    bad = int(np.count_nonzero(~np.isfinite(a)))
    if bad:
        raise ValueError(f"{bad} of {a.size} {what} values are NaN or infinite; they must be finite.")
    return a


def _check_image(labels: Any, scores: Any, need_both: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Flatten and validate image labels (-> bool) and scores (-> float64)."""
    y = _to_numpy(labels).reshape(-1)
    s = _finite_float(scores, "scores").reshape(-1)
    if y.size == 0 or s.size == 0:
        raise ValueError("Empty input: need at least one (label, score) pair.")
    if y.size != s.size:
        raise ValueError(f"labels and scores differ in length: {y.size} labels vs {s.size} scores.")
    yb = _binary(y, "labels")
    n_pos = int(yb.sum())
    if need_both and (n_pos == 0 or n_pos == yb.size):
        which = "anomalous (1)" if n_pos == 0 else "normal (0)"
        raise ValueError(f"labels contain no {which} sample; this metric needs both classes.")
    return yb, s


def _as_stack(x: np.ndarray, what: str) -> np.ndarray:
    """(H, W) -> (1, H, W); (N, 1, H, W) -> (N, H, W); (N, H, W) unchanged."""
    if x.ndim == 2:
        return x[None]
    if x.ndim == 4 and x.shape[1] == 1:
        return x[:, 0]
    if x.ndim != 3:
        raise ValueError(
            f"{what} must have shape (N, H, W), (N, 1, H, W) or (H, W); got shape {tuple(x.shape)}."
        )
    return x


def _check_pixels(masks: Any, maps: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate masks (-> bool (N, H, W)) and maps (-> float64 (N, H, W)); both classes required."""
    m = _as_stack(_to_numpy(masks), "masks")
    a = _as_stack(_finite_float(maps, "maps"), "maps")
    if m.shape != a.shape:
        raise ValueError(
            f"masks {tuple(m.shape)} and maps {tuple(a.shape)} differ in shape; resize the anomaly maps to "
            "the mask size first (e.g. torch.nn.functional.interpolate, mode='bilinear')."
        )
    if m.size == 0:
        raise ValueError("Empty input: masks and maps have no pixels.")
    mb = _binary(m, "masks")
    n_pos = int(mb.sum())
    if n_pos == 0:
        raise ValueError("masks contain no anomalous pixel; pixel metrics need at least one defect.")
    if n_pos == mb.size:
        raise ValueError("masks contain no normal pixel; pixel metrics need normal pixels as negatives.")
    return mb, a


def _check_limit(fpr_limit: float) -> float:
    f = float(fpr_limit)
    if not 0.0 < f <= 1.0:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit!r}.")
    return f


# --- image level ------------------------------------------------------------------------------------------


def image_auroc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve of image scores.

    Args:
        labels: 0 (normal) / 1 (anomalous), shape (N,).
        scores: anomaly scores, higher = more anomalous, shape (N,).

    Returns:
        AUROC in [0, 1] (1 = every anomalous image scores above every normal one, 0.5 = chance).

    Raises:
        ValueError: on empty or mismatched input, labels outside {0, 1}, non-finite scores or a single
            class.
    """
    y, s = _check_image(labels, scores)
    return float(roc_auc_score(y, s))


def f1_max(labels: Any, scores: Any) -> tuple[float, float]:
    """Best F1 over all thresholds, and the threshold achieving it (anomalib ``F1Max``).

    An image is predicted anomalous when ``score >= threshold``; the candidate thresholds are the
    distinct scores. Ties in F1 go to the highest threshold.

    Args:
        labels: 0 (normal) / 1 (anomalous), shape (N,); at least one anomalous image.
        scores: anomaly scores, shape (N,).

    Returns:
        ``(f1, threshold)``.

    Raises:
        ValueError: on invalid input or when no image is anomalous (F1 undefined).
    """
    y, s = _check_image(labels, scores, need_both=False)
    n_pos = int(y.sum())
    if n_pos == 0:
        raise ValueError("labels contain no anomalous (1) sample; F1 is undefined.")
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]  # end of each group of tied scores
    tp = np.cumsum(y_sorted)[last]
    predicted = last + 1  # tp + fp
    f1 = 2.0 * tp / (predicted + n_pos)
    k = int(np.argmax(f1))
    return float(f1[k]), float(s_sorted[last[k]])


def adaptive_threshold(scores: Any, labels: Any | None = None, normal_quantile: float = 0.99) -> float:
    """Decision threshold fitted on *validation* scores (never on the test set).

    Two modes:

    - ``labels`` with both classes: the F1-optimal threshold (anomalib's ``F1AdaptiveThreshold``), i.e.
      the threshold of :func:`f1_max`.
    - ``labels`` None or all 0: the ``normal_quantile`` quantile (numpy's linear interpolation) of the
      scores, all taken as normal. Validation sets of defect-free images are the common case in
      anomaly detection (defects are rare and unknown in advance); F1 cannot be fitted on them, and
      anomalib's fallback there -- a threshold fitted without anomalies followed by min-max
      normalisation -- is what labels every image abnormal (anomalib #1255). The quantile instead fixes
      the expected false-positive rate on normal images at about ``1 - normal_quantile``.

    Fitting the threshold on test labels would leak them into the reported accuracy/F1, so the
    benchmark fits it on validation data only.

    Args:
        scores: validation anomaly scores, shape (N,).
        labels: optional 0/1 validation labels, shape (N,).
        normal_quantile: quantile of the normal scores, in (0, 1].

    Returns:
        The threshold; predict anomalous when ``score >= threshold``.

    Raises:
        ValueError: on invalid input, a quantile outside (0, 1], or labels with only anomalous samples.
    """
    q = float(normal_quantile)
    if not 0.0 < q <= 1.0:
        raise ValueError(f"normal_quantile must be in (0, 1], got {normal_quantile!r}.")
    if labels is None:
        s = _finite_float(scores, "scores").reshape(-1)
        if s.size == 0:
            raise ValueError("Empty input: need at least one score.")
        return float(np.quantile(s, q))
    y, s = _check_image(labels, scores, need_both=False)
    n_pos = int(y.sum())
    if n_pos == y.size:
        raise ValueError(
            "labels contain no normal (0) sample; fit the threshold on validation data with normal "
            "images (alone, or with anomalous ones for the F1-optimal threshold)."
        )
    if n_pos == 0:
        logger.info("adaptive_threshold: normal-only validation scores; using the %.4g quantile.", q)
        return float(np.quantile(s, q))
    return f1_max(y, s)[1]


def threshold_metrics(labels: Any, scores: Any, threshold: float) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of the decision ``score >= threshold``.

    Precision is 0 when nothing is predicted anomalous, recall 0 when nothing is anomalous (so is F1 in
    both cases), following scikit-learn's ``zero_division=0``.

    Returns:
        ``{"threshold", "accuracy", "precision", "recall", "f1"}``.
    """
    y, s = _check_image(labels, scores, need_both=False)
    t = float(threshold)
    if not math.isfinite(t):
        raise ValueError(f"threshold must be finite, got {threshold!r}.")
    pred = s >= t
    tp = int(np.sum(pred & y))
    fp = int(np.sum(pred & ~y))
    fn = int(np.sum(~pred & y))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {
        "threshold": t,
        "accuracy": float(np.mean(pred == y)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
    }


# --- pixel level ------------------------------------------------------------------------------------------


def _cumulative(m: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, ...]:
    """One descending sort of all pixels; cumulative FPR, TPR and PRO after each pixel.

    Returns ``(s_sorted, fpr_cum, tpr_cum, pro_cum)``: after the first ``i + 1`` pixels of the sorted
    order are predicted anomalous, the pixel FPR, pixel TPR and PRO are ``fpr_cum[i]`` etc. Only the
    ends of groups of tied scores are valid operating points.
    """
    comp, n_comp = ndimage.label(m, structure=_STRUCTURE_8)  # (N, H, W) int, 0 = normal pixel
    comp = comp.reshape(-1)
    sizes = np.bincount(comp, minlength=n_comp + 1).astype(np.float64)
    n_normal, n_anomalous = sizes[0], comp.size - sizes[0]
    # Each anomalous pixel adds 1 / (n_comp * |its component|) to PRO: components weigh equally.
    w_pro = 1.0 / (n_comp * sizes)
    w_pro[0] = 0.0
    s = a.reshape(-1)
    order = np.argsort(-s)  # ties in any order: only the ends of tie groups are read
    s_sorted, c_sorted = s[order], comp[order]
    is_normal = c_sorted == 0
    n_normal_cum = np.cumsum(is_normal)  # exact integer counts
    fpr_cum = n_normal_cum / n_normal
    tpr_cum = (np.arange(1, s.size + 1) - n_normal_cum) / n_anomalous
    pro_cum = np.minimum(np.cumsum(w_pro[c_sorted]), 1.0)  # float cumsum may overshoot 1 by ~1e-15
    return s_sorted, fpr_cum, tpr_cum, pro_cum


def _group_ends(s_sorted: np.ndarray) -> np.ndarray:
    """Index of the last element of each group of equal values in a sorted array."""
    return np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def pixel_auroc(masks: Any, maps: Any) -> float:
    """AUROC over all pixels of all images pooled (anomalib's ``pixel_AUROC``).

    Computed from the exact ROC curve (one point per distinct score, ties as straight segments), which
    equals ``sklearn.metrics.roc_auc_score`` on the flattened arrays.

    Args:
        masks: ground truth, 0 (normal) / 1 (anomalous), shape (N, H, W) (also (N, 1, H, W) or (H, W)).
        maps: anomaly maps of the same shape, higher = more anomalous.

    Returns:
        Pixel AUROC in [0, 1].

    Raises:
        ValueError: on mismatched shapes, masks outside {0, 1}, non-finite maps, or masks with only one
            class over all pixels.
    """
    m, a = _check_pixels(masks, maps)
    s_sorted, fpr_cum, tpr_cum, _ = _cumulative(m, a)
    last = _group_ends(s_sorted)
    return _trapezoid(np.r_[0.0, fpr_cum[last]], np.r_[0.0, tpr_cum[last]])


def _select(s_sorted: np.ndarray, num_thresholds: int | None) -> np.ndarray:
    """Indices (into the sorted pixels) of the operating points: every tie-group end, or K quantiles."""
    if num_thresholds is None:
        return _group_ends(s_sorted)
    k = int(num_thresholds)
    if k < 2:
        raise ValueError(f"num_thresholds must be None (exact) or an integer >= 2, got {num_thresholds!r}.")
    thr = np.unique(np.quantile(s_sorted, np.linspace(0.0, 1.0, k)))[::-1]  # descending
    # number of pixels with score >= t in the descending order, via the negated (ascending) scores
    return np.searchsorted(-s_sorted, -thr, side="right") - 1


def pro_curve(
    masks: Any, maps: Any, num_thresholds: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-region overlap (PRO) against the false-positive rate, at decreasing thresholds.

    Components are 8-connected regions of each image's mask. At threshold ``t`` (``map >= t``)
    ``PRO(t) = mean_c |{p in c : map_p >= t}| / |c|`` over all components ``c`` of all images, and
    ``FPR(t) = |{p normal : map_p >= t}| / |{p normal}|``.

    Args:
        masks: ground truth, 0/1, shape (N, H, W) (also (N, 1, H, W) or (H, W)).
        maps: anomaly maps of the same shape.
        num_thresholds: None (default) evaluates the exact curve at every distinct score. An integer
            ``K >= 2`` evaluates it only at ``K`` thresholds at evenly spaced quantiles of the pooled
            scores (a lighter curve for plots and JSON; integrals over it are approximate).

    Returns:
        ``(fpr, pro, thresholds)``, float64 arrays of one length; the first point is ``(0, 0)`` at
        threshold ``+inf``, ``fpr`` and ``pro`` are non-decreasing and end at ``(1, 1)``.

    Raises:
        ValueError: on invalid input (see :func:`pixel_auroc`) or ``num_thresholds < 2``.
    """
    m, a = _check_pixels(masks, maps)
    s_sorted, fpr_cum, _, pro_cum = _cumulative(m, a)
    last = _select(s_sorted, num_thresholds)
    return np.r_[0.0, fpr_cum[last]], np.r_[0.0, pro_cum[last]], np.r_[np.inf, s_sorted[last]]


def _area_to_limit(x: np.ndarray, y: np.ndarray, limit: float) -> float:
    """Trapezoidal area under the piecewise-linear curve (x, y) from x[0] = 0 to ``limit``.

    ``x`` is non-decreasing with ``x[0] < limit <= x[-1]``; y at the limit is linearly interpolated
    between the bracketing points.
    """
    k = int(np.searchsorted(x, limit, side="left"))  # first point with x >= limit (k >= 1)
    x0, x1, y0, y1 = x[k - 1], x[k], y[k - 1], y[k]
    y_lim = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)  # x1 >= limit > x0, so no division by zero
    xs = np.r_[x[:k], limit]
    ys = np.r_[y[:k], y_lim]
    return _trapezoid(xs, ys)


def aupro(
    masks: Any, maps: Any, fpr_limit: float = DEFAULT_FPR_LIMIT, num_thresholds: int | None = None
) -> float:
    """Normalised area under the PRO curve up to ``fpr_limit`` (anomalib ``AUPRO``, default limit 0.3).

    ``AUPRO = (1 / fpr_limit) * integral_0^fpr_limit PRO d(FPR)``, trapezoidal over the curve of
    :func:`pro_curve`, with PRO linearly interpolated at ``fpr_limit``. A perfect map gives 1.0, a
    constant map ``fpr_limit / 2``.

    Args:
        masks: ground truth, 0/1, shape (N, H, W) (also (N, 1, H, W) or (H, W)); components are
            8-connected.
        maps: anomaly maps of the same shape.
        fpr_limit: upper FPR bound of the integral, in (0, 1].
        num_thresholds: see :func:`pro_curve` (None = exact).

    Returns:
        AUPRO in [0, 1].

    Raises:
        ValueError: on invalid input (see :func:`pixel_auroc`) or ``fpr_limit`` outside (0, 1].
    """
    limit = _check_limit(fpr_limit)
    fpr, pro, _ = pro_curve(masks, maps, num_thresholds=num_thresholds)
    return _area_to_limit(fpr, pro, limit) / limit


# --- all together -----------------------------------------------------------------------------------------


def anomaly_metrics(
    labels: Any,
    scores: Any,
    masks: Any | None = None,
    maps: Any | None = None,
    threshold: float | None = None,
    fpr_limit: float = DEFAULT_FPR_LIMIT,
) -> dict[str, float | int]:
    """All anomaly metrics of one test set.

    Args:
        labels: image labels, 0 (normal) / 1 (anomalous), shape (N,); both classes required.
        scores: image anomaly scores, shape (N,).
        masks: optional ground-truth masks (N, H, W) of the same N images (normal images: all 0).
        maps: anomaly maps (N, H, W) at the mask resolution; required with ``masks``.
        threshold: optional decision threshold in score units, fitted on validation data (see
            :func:`adaptive_threshold`); adds the thresholded metrics.
        fpr_limit: FPR limit of AUPRO.

    Returns:
        ``{"image_auroc", "image_ap", "f1_max", "f1_max_threshold", "n_normal", "n_anomalous"}``, plus
        ``"pixel_auroc"`` and ``"aupro"`` with masks, plus ``"threshold", "accuracy", "precision",
        "recall", "f1"`` with a threshold.

    Raises:
        ValueError: on invalid input, a single image class, masks without maps (or the reverse), or
            masks for a different number of images.
    """
    y, s = _check_image(labels, scores)
    f1, f1_thr = f1_max(y, s)
    out: dict[str, float | int] = {
        "image_auroc": float(roc_auc_score(y, s)),
        "image_ap": float(average_precision_score(y, s)),
        "f1_max": f1,
        "f1_max_threshold": f1_thr,
        "n_normal": int((~y).sum()),
        "n_anomalous": int(y.sum()),
    }
    if (masks is None) != (maps is None):
        raise ValueError("Pass both masks and maps for pixel metrics, or neither.")
    if masks is not None:
        m, a = _check_pixels(masks, maps)
        if m.shape[0] != y.size:
            raise ValueError(f"masks cover {m.shape[0]} images but labels {y.size}; they must match.")
        inconsistent = int(np.sum(m[~y].any(axis=(1, 2))))
        if inconsistent:
            logger.warning(
                "anomaly_metrics: %d images labelled normal have anomalous mask pixels.", inconsistent
            )
        limit = _check_limit(fpr_limit)
        s_sorted, fpr_cum, tpr_cum, pro_cum = _cumulative(m, a)  # one sort for both pixel metrics
        last = _group_ends(s_sorted)
        fpr = np.r_[0.0, fpr_cum[last]]
        out["pixel_auroc"] = _trapezoid(fpr, np.r_[0.0, tpr_cum[last]])
        out["aupro"] = _area_to_limit(fpr, np.r_[0.0, pro_cum[last]], limit) / limit
    if threshold is not None:
        out.update(threshold_metrics(y, s, threshold))
    return out
