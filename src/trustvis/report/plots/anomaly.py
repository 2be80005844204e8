"""Figures of the anomaly bench: highest/lowest-scored map grids and image-level ROC curves."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from trustvis.report.plots.common import (
    _ANOMALY_CMAP,
    _as_array,
    _check_nonempty,
    _float,
    _image_rgb,
    _map_2d,
    _mask_2d,
    _save,
    _scale,
    _wrap,
    _xy,
    heatmap_overlay,
    series_styles,
)

__all__ = ["plot_anomaly_curves", "plot_anomaly_grid"]


def plot_anomaly_grid(rows: Sequence[Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """Grid of examples, each an image and its heat-map overlay with the ground-truth outline.

    Used for the "best / worst maps" of each method. All overlays of the figure share one colour scale
    (the minimum and maximum over all its maps), shown by one colour bar, so hot regions can be compared
    across examples; up to four examples per figure row.

    Args:
        rows: one dict per example: ``"image"`` (H, W[, 3]), ``"map"`` (h, w), and optionally ``"mask"``
            (ground truth or None), ``"score"`` (image score), ``"label"`` (0 normal / 1 anomalous) and
            ``"caption"`` (e.g. the file name).
        path: output PNG.
        title: figure title.

    Returns:
        ``path``.
    """
    if not rows:
        raise ValueError("Nothing to plot: rows is empty.")
    examples = []
    for i, r in enumerate(rows):
        missing = [k for k in ("image", "map") if k not in r or r[k] is None]
        if missing:
            raise ValueError(f"rows[{i}] lacks {missing}; each row needs 'image' and 'map'.")
        img = _image_rgb(r["image"])
        amap = _map_2d(r["map"], img.shape[:2], what=f"rows[{i}]['map']")
        mask = _mask_2d(r["mask"], img.shape[:2]) if r.get("mask") is not None else None
        examples.append((img, amap, mask, r))
    all_maps = np.concatenate([e[1].reshape(-1) for e in examples])
    lo, hi = _scale(all_maps, None, None)
    if hi <= lo:
        hi = lo + 1.0  # constant maps: any non-empty scale
    per_row = min(4, len(examples))
    nrows = math.ceil(len(examples) / per_row)
    fig = Figure(figsize=(3.4 * per_row + 1.0, 1.9 * nrows + 0.7), layout="constrained")
    axes = fig.subplots(nrows, 2 * per_row, squeeze=False)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_axis_off()
    for k, (img, amap, mask, r) in enumerate(examples):
        ax_img, ax_ov = axes[k // per_row][2 * (k % per_row)], axes[k // per_row][2 * (k % per_row) + 1]
        ax_img.imshow(img, interpolation="nearest")
        ax_ov.imshow(heatmap_overlay(img, amap, vmin=lo, vmax=hi), interpolation="nearest")
        if mask is not None and mask.any():
            ax_ov.contour(mask.astype(float), levels=[0.5], colors="white", linewidths=1.0)
        caption = str(r.get("caption") or f"#{k}")
        label = r.get("label")
        label_txt = {0: "normal", 1: "anomalous"}.get(int(label), str(label)) if label is not None else "?"
        score = _float(r.get("score"))
        score_txt = f"score {score:.3g}" if math.isfinite(score) else "score n/a"
        ax_img.set_title(_wrap(caption, 28, break_words=True), fontsize=8)  # the whole file name
        ax_ov.set_title(f"{score_txt} \u00b7 {label_txt}", fontsize=8)
    mappable = ScalarMappable(norm=Normalize(vmin=lo, vmax=hi), cmap=_ANOMALY_CMAP)
    fig.colorbar(mappable, ax=list(axes.ravel()), shrink=0.85, label="anomaly score (shared scale)")
    fig.suptitle(title or "Anomaly maps (white outline = ground-truth defect; one colour scale)", fontsize=10)
    return _save(fig, path)


def _anomaly_roc(name: str, entry: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """(fpr, tpr, auroc of these points) from {"labels", "scores"}, {"fpr", "tpr"[, "auroc"]} or an (fpr, tpr)
    pair."""
    if isinstance(entry, Mapping) and "labels" in entry and "scores" in entry:
        from sklearn.metrics import roc_curve

        from trustvis.metrics.anomaly import image_auroc

        auroc = image_auroc(entry["labels"], entry["scores"])  # validates (both classes, finite)
        y = _as_array(entry["labels"]).reshape(-1).astype(np.float64)
        fpr, tpr, _ = roc_curve(y, _as_array(entry["scores"]).reshape(-1).astype(np.float64))
        return fpr, tpr, auroc
    try:
        fpr, tpr = _xy(entry)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"Curve {name!r} must be {{'labels', 'scores'}}, {{'fpr', 'tpr'[, 'auroc']}} or (fpr, tpr): {exc}"
        ) from exc
    auroc = _float(entry.get("auroc")) if isinstance(entry, Mapping) else math.nan
    if not math.isfinite(auroc) and fpr.size >= 2:
        auroc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))  # area under the given points
    return fpr, tpr, auroc


def _roc_label(name: str, entry: Any, curve_auroc: float) -> str:
    """Legend text: the AUROC the results table reports, and the pooled curve's own when they differ."""
    reported = _float(entry.get("auroc")) if isinstance(entry, Mapping) else math.nan
    pooled = int(entry.get("pooled") or 0) if isinstance(entry, Mapping) else 0
    if not math.isfinite(reported):
        return f"{name} (AUROC {curve_auroc:.3f})" if math.isfinite(curve_auroc) else name
    if pooled > 1:
        label = f"{name}: AUROC {reported:.3f}, mean of {pooled}"
        return label + (f"; pooled curve {curve_auroc:.3f}" if math.isfinite(curve_auroc) else "")
    return f"{name} (AUROC {reported:.3f})"


def plot_anomaly_curves(curves: Mapping[str, Any], path: str | Path, title: str | None = None) -> Path:
    """Image-level ROC curves of several methods on one axis, AUROC in the legend.

    Each method has its colour of :func:`~trustvis.report.plots.common.method_color`.

    Args:
        curves: ``{method: entry}``; an entry is ``{"labels": 0/1, "scores": ...}`` (the ROC and AUROC
            are computed here), ``{"fpr": [...], "tpr": [...], "auroc": float}`` as stored in
            ``results.json`` (AUROC from the points when absent), or an ``(fpr, tpr)`` pair. Empty
            curves are listed as "n/a". A ``{"labels", "scores"}`` entry may add ``"auroc"``, the value
            the results table reports, which the legend then shows; with ``"pooled": n`` (> 1) the curve
            pools the scores of ``n`` categories (each divided by its own threshold), the reported AUROC
            is their mean, and the legend gives both ("AUROC 0.912, mean of 5; pooled curve 0.887").
        path: output PNG.
        title: figure title.

    Returns:
        ``path``.
    """
    _check_nonempty(curves, "curves")
    styles = series_styles(curves)
    fig = Figure(figsize=(5.6, 4.4), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=1, label="chance")
    pooled = False
    for name, entry in curves.items():
        fpr, tpr, auroc = _anomaly_roc(name, entry)
        style = styles[name]
        if fpr.size == 0:
            ax.plot([], [], color=style["color"], linestyle=style["linestyle"], label=f"{name}: n/a")
            continue
        pooled |= isinstance(entry, Mapping) and int(entry.get("pooled") or 0) > 1
        ax.plot(fpr, tpr, color=style["color"], linestyle=style["linestyle"], linewidth=1.8,
                label=_roc_label(name, entry, auroc))  # fmt: skip
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.grid(True, color="0.9", linewidth=0.6)
    ax.set_xlabel("false positive rate (normal images flagged)")
    ax.set_ylabel("true positive rate (anomalous images caught)")
    ax.legend(loc="lower right", fontsize=8)
    default = "Image-level ROC (dotted diagonal = chance)"
    if pooled:
        default = "Image-level ROC, scores / threshold pooled over the categories"
    ax.set_title(title or default, fontsize=10)
    return _save(fig, path)
