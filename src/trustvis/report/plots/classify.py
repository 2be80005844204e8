"""Figures of the classification benches (augment, calibrate, adapt): metric bars and uncertainty."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from trustvis.report.plots.common import (
    PALETTE,
    _bar_style,
    _check_nonempty,
    _color,
    _float,
    _line_style,
    _metric_name,
    _ordered_union,
    _save,
    _tick_labels,
    series_styles,
)

__all__ = ["plot_metric_bars", "plot_uncertainty"]


# --- Calibration, augmentation and adaptation figures --------------------------------------------------

_CAL_METRIC_NAMES = {
    "ece": "ECE (top-1, lower is better)",
    "cw_ece": "class-wise ECE (lower is better)",
    "mce": "MCE (lower is better)",
    "nll": "NLL (nats, lower is better)",
    "brier": "Brier score (lower is better)",
}


def _mean_std(v: Any) -> tuple[float, float]:
    if isinstance(v, (tuple, list)) or (isinstance(v, np.ndarray) and v.ndim == 1):
        if len(v) != 2:
            raise ValueError(
                f"A bar value must be a number or a (mean, std) pair, got {len(v)} values: {v!r}."
            )
        return _float(v[0]), _float(v[1])
    return _float(v), math.nan


def plot_metric_bars(
    table: Mapping[str, Mapping[str, Any]], metric: str, path: str | Path, title: str = ""
) -> Path:
    """Grouped bar chart of one metric: one group per row key, one bar per column key.

    A column key is a method or condition: its bars have its colour of
    :func:`~trustvis.report.plots.common.method_color` (the same in every figure).

    Args:
        table: ``{row: {column: value}}``, e.g. ``{dataset: {method: ECE}}``. A value is a number or a
            ``(mean, std)`` pair, drawn with a ±std error bar; missing or nan values show as "n/a".
        metric: metric key, for the axis label (``ece``, ``cw_ece``, ``nll``, ``acc``, ...).
        path: output PNG.
        title: figure title (default derived from the metric).

    Returns:
        ``path``.
    """
    _check_nonempty(table, "table")
    rows = list(table)
    cols = _ordered_union(table.values())
    if not cols:
        raise ValueError("Nothing to plot: no values in table.")
    n_rows, n_cols = len(rows), len(cols)
    width = 0.8 / n_cols
    x = np.arange(n_rows, dtype=float)
    label = _CAL_METRIC_NAMES.get(metric, _metric_name(metric))
    fig_w = min(18.0, max(6.0, 1.6 + n_rows * (0.22 * n_cols + 0.45)))
    fig = Figure(figsize=(fig_w, 4.0), layout="constrained")
    ax = fig.add_subplot()
    all_vals: list[float] = []
    styles = series_styles(cols)
    for i, c in enumerate(cols):
        pairs = [_mean_std(table[r].get(c)) for r in rows]
        means = np.array([m for m, _ in pairs])
        stds = np.array([s for _, s in pairs])
        all_vals.extend((means + np.nan_to_num(stds)).tolist())
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, np.nan_to_num(means, nan=0.0), width, edgecolor="white", linewidth=0.5, label=c,
               **_bar_style(styles[c]))  # fmt: skip
        has_err = np.isfinite(means) & np.isfinite(stds)
        if has_err.any():
            ax.errorbar(pos[has_err], means[has_err], yerr=stds[has_err], fmt="none", ecolor="0.2",
                        elinewidth=1, capsize=2.5)  # fmt: skip
        for p, v in zip(pos, means):
            if not math.isfinite(v):
                ax.text(p, 0.0, "n/a", rotation=90, ha="center", va="bottom", fontsize=7, color="0.35")
    finite = [v for v in all_vals if math.isfinite(v)]
    if finite and min(finite) >= 0:
        ax.set_ylim(0, max(finite) * 1.1 if max(finite) > 0 else 1.0)
    ax.set_xlim(-0.6, n_rows - 0.4)
    ax.set_xticks(x)
    _tick_labels(ax, [str(r) for r in rows], max(len(str(r)) for r in rows) > 12 or n_rows > 8)
    ax.set_ylabel(label)
    ax.yaxis.grid(True, color="0.85", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(title or label)
    fig.legend(loc="outside right upper", fontsize=9)
    return _save(fig, path)


def _risk_coverage(score: np.ndarray, error: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coverage (share kept, most certain first) and the error rate among the kept images."""
    order = np.argsort(score, kind="stable")  # low uncertainty first
    err = np.cumsum(error[order]) / np.arange(1, len(order) + 1)
    return np.arange(1, len(order) + 1) / len(order), err


def plot_uncertainty(entries: Mapping[str, Mapping[str, Mapping[str, Any]]], path: str | Path) -> Path:
    """Sample-wise uncertainty scores against errors: one row per (data set, model).

    Args:
        entries: ``{dataset: {model: {"error": 0/1 per image, "mixing": scores, "msp": scores,
            "auroc_mixing", "auroc_msp"}}}`` (``trustvis.bench.augment``).
        path: output PNG.

    Left panel: histograms of the mixing-model score for correctly classified and misclassified
    images. Right panel: risk-coverage curves of both scores (error rate among the most certain
    share of images; lower is better) with the oracle for reference.
    """
    _check_nonempty(entries, "entries")
    rows = [(ds, m, e) for ds, models in entries.items() for m, e in models.items()]
    fig = Figure(figsize=(10.0, 2.6 * len(rows) + 0.4), layout="constrained")
    axes = fig.subplots(len(rows), 2, squeeze=False)
    for (ds, model, e), (ax_h, ax_r) in zip(rows, axes):
        error = np.asarray(e["error"], dtype=int)
        mix, msp = np.asarray(e["mixing"], dtype=float), np.asarray(e["msp"], dtype=float)
        bins = np.linspace(0.0, max(float(mix.max()), 1e-6), 30)
        ax_h.hist(mix[error == 0], bins=bins, color=PALETTE[0], alpha=0.7, density=True, label="correct")
        if error.any():
            ax_h.hist(
                mix[error == 1], bins=bins, color=PALETTE[3], alpha=0.7, density=True, label="misclassified"
            )
        ax_h.set_title(f"{ds} · {model}: mixing uncertainty", fontsize=10)
        ax_h.set_xlabel("mixing-model score (TV distance)")
        ax_h.set_ylabel("density")
        ax_h.legend(fontsize=8)
        for i, (name, score) in enumerate((("mixing", mix), ("max-softmax", msp))):
            cov, risk = _risk_coverage(score, error)
            auroc = e.get("auroc_mixing" if name == "mixing" else "auroc_msp", float("nan"))
            ax_r.plot(cov, risk * 100, color=_color(i), **{k: v for k, v in _line_style(i).items() if k != "color"},
                      markevery=max(1, len(cov) // 8), label=f"{name} (AUROC {_float(auroc):.3f})")  # fmt: skip
        oracle = np.clip(np.arange(1, len(error) + 1) - (len(error) - error.sum()), 0, None)
        ax_r.plot(np.arange(1, len(error) + 1) / len(error), oracle / np.arange(1, len(error) + 1) * 100,
                  color="0.5", linestyle=":", label="oracle")  # fmt: skip
        ax_r.set_xlabel("coverage (share of images kept, most certain first)")
        ax_r.set_ylabel("error among kept (%)")
        ax_r.set_title(f"{ds} · {model}: risk–coverage", fontsize=10)
        ax_r.grid(True, color="0.85", linewidth=0.6)
        ax_r.legend(fontsize=8)
    return _save(fig, path)
