"""Figures of the re-identification bench: retrieval examples (a query and its top-k gallery images, framed
green when correct and red when wrong), the roll-back paper's gradient analysis (mean squared gradient per
layer group vs step, one panel per method) and CMC curves."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from trustvis.report.plots.common import (
    PALETTE,
    _bar_style,
    _check_nonempty,
    _float,
    _image_rgb,
    _line_style,
    _ordered_union,
    _plot_style,
    _save,
    _smooth,
    _wrap,
    series_styles,
)

logger = logging.getLogger(__name__)

__all__ = ["plot_cmc", "plot_gradient_norms", "plot_retrieval_examples"]

_CORRECT = PALETTE[2]  # Okabe-Ito bluish green
_WRONG = PALETTE[3]  # Okabe-Ito vermilion
_QUERY = "0.25"
_TICK, _CROSS = "\u2713", "\u2717"
_MAX_ROWS = 12
_SMOOTH_ABOVE = 50  # points; longer gradient curves are drawn faint with a moving average on top


def _frame(ax: Any, color: str, width: float) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(color)
        spine.set_linewidth(width)


def plot_retrieval_examples(rows: Sequence[Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """Retrieval examples: per row a query image and its top-k gallery images, best first.

    Each gallery image has a thick frame, green (Okabe-Ito bluish green) for a correct match and red
    (vermilion) for a wrong one, and a label "k ✓" / "k ✗" above it, so that the verdict does not rest on
    colour alone. Images keep their aspect ratio; rows may have different numbers of gallery images.

    Args:
        rows: one mapping per query with ``query`` (uint8 (H, W, 3), or any image that
            :func:`~trustvis.report.plots.common.heatmap_overlay` accepts), ``gallery`` (sequence of
            images, best first, e.g. from :func:`trustvis.metrics.retrieval.ranked_gallery`), ``correct``
            (sequence of bools, one per gallery image), an optional ``caption`` (e.g. "pid 12 · cam 3 ·
            AP 0.54") and optional ``labels`` (one short text per gallery image, shown under it, e.g. the
            distance).
        path: output PNG.
        title: figure title.

    Returns:
        ``path``.

    Raises:
        ValueError: when ``rows`` is empty, a row lacks ``query``/``gallery``/``correct`` or its
            ``correct`` (or ``labels``) differs in length from its ``gallery``.
    """
    if not rows:
        raise ValueError("Nothing to plot: rows is empty.")
    for i, row in enumerate(rows):
        missing = [k for k in ("query", "gallery", "correct") if not isinstance(row, Mapping) or k not in row]
        if missing:
            raise ValueError(f"Row {i} lacks {missing}; each row needs 'query', 'gallery' and 'correct'.")
        n = len(row["gallery"])
        if len(row["correct"]) != n or ("labels" in row and len(row["labels"]) != n):
            raise ValueError(
                f"Row {i}: {n} gallery images but {len(row['correct'])} 'correct' flags"
                + (f" and {len(row['labels'])} labels" if "labels" in row else "")
                + "; give one per gallery image."
            )
    if len(rows) > _MAX_ROWS:
        logger.warning(
            "plot_retrieval_examples: %d rows; more than %d crowd the figure.", len(rows), _MAX_ROWS
        )
    k = max(1, max(len(row["gallery"]) for row in rows))
    ncols = k + 1
    fig = Figure(figsize=(1.25 * ncols + 0.4, 2.55 * len(rows) + 0.5), layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(len(rows), 1, squeeze=False)[:, 0])
    for sub, row in zip(subfigs, rows):
        axes = sub.subplots(1, ncols, squeeze=False)[0]
        ax_q = axes[0]
        ax_q.imshow(_image_rgb(row["query"]), interpolation="nearest")
        ax_q.set_title("query", fontsize=8, color=_QUERY)
        _frame(ax_q, _QUERY, 1.5)
        labels = row.get("labels")
        for j, ax in enumerate(axes[1:]):
            if j >= len(row["gallery"]):
                ax.set_visible(False)
                continue
            ok = bool(row["correct"][j])
            color = _CORRECT if ok else _WRONG
            ax.imshow(_image_rgb(row["gallery"][j]), interpolation="nearest")
            ax.set_title(f"{j + 1} {_TICK if ok else _CROSS}", fontsize=9, color=color, fontweight="bold")
            _frame(ax, color, 4.0)
            if labels is not None:
                ax.set_xlabel(_wrap(str(labels[j]), 14, break_words=True), fontsize=7)
        if row.get("caption"):
            sub.suptitle(_wrap(str(row["caption"]), 16 * ncols, break_words=True), fontsize=9)
    fig.suptitle(
        title or "Retrieval examples: query and its top-ranked gallery images (green = correct, red = wrong)",
        fontsize=10,
    )
    return _save(fig, path)


def _points(method: str, group: str, values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(step, value)`` pairs -> sorted steps and values, without non-finite or non-positive values."""
    pts = []
    for p in values:
        if not isinstance(p, Sequence) or len(p) != 2:
            raise ValueError(f"Gradient curve {method}/{group}: expected (step, value) pairs, got {p!r}.")
        s, v = _float(p[0]), _float(p[1])
        if math.isfinite(s) and math.isfinite(v) and v > 0:  # a log axis shows positive values only
            pts.append((s, v))
    if not pts:
        return np.empty(0), np.empty(0)
    s, v = np.array(sorted(pts)).T
    return s, v


def plot_gradient_norms(
    curves: Mapping[str, Mapping[str, Sequence[tuple[int, float]]]],
    path: str | Path,
    title: str = "",
    events: Mapping[str, Sequence[int]] | None = None,
) -> Path:
    """The roll-back paper's vanishing-gradient analysis: mean squared gradient per layer group vs step.

    One panel per method (shared log y axis), one line per layer group; a layer group has the same colour
    and marker in every panel (in the order groups first appear). Curves of more than 50 points are drawn
    faint with a centred moving average of their log10 on top. Zero, negative and non-finite values (a
    frozen group) are left out, as a log axis cannot show them; a group without a positive value in any
    panel is listed in the legend as "n/a". ``events`` marks steps per method with dotted vertical lines (e.g. the
    roll-back steps).

    Args:
        curves: ``{method: {layer_group: [(step, mean_squared_gradient), ...]}}``.
        path: output PNG.
        title: figure title.
        events: optional ``{method: [step, ...]}``.

    Returns:
        ``path``.

    Raises:
        ValueError: when ``curves`` is empty, a method has no layer groups, a point is not a (step, value)
            pair or no curve has a positive value.
    """
    _check_nonempty(curves, "curves")
    for method, groups in curves.items():
        if not isinstance(groups, Mapping) or not groups:
            raise ValueError(
                f"Nothing to plot for method {method!r}: expected {{layer_group: [(step, value)]}}."
            )
    data = {
        m: {str(g): _points(str(m), str(g), v) for g, v in groups.items()} for m, groups in curves.items()
    }
    if not any(s.size for groups in data.values() for s, _ in groups.values()):
        raise ValueError("Nothing to plot: no gradient curve has a positive, finite value.")
    group_names = _ordered_union(data.values())
    styles = {g: _line_style(i) for i, g in enumerate(group_names)}
    ncols = min(3, len(data))
    nrows = math.ceil(len(data) / ncols)
    fig = Figure(figsize=(4.3 * ncols + 1.6, 3.3 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    handles: dict[str, Any] = {}
    for k, (method, groups) in enumerate(data.items()):
        ax = axes[k // ncols][k % ncols]
        for group, (s, v) in groups.items():
            st = styles[group]
            if s.size == 0:
                (h,) = ax.plot([], [], color=st["color"], linestyle=st["linestyle"])
            elif s.size > _SMOOTH_ABOVE:
                ax.plot(s, v, color=st["color"], alpha=0.25, linewidth=0.7)
                (h,) = ax.plot(s, 10.0 ** _smooth(np.log10(v)), color=st["color"], linestyle=st["linestyle"],
                               linewidth=1.8, label=group)  # fmt: skip
            else:
                (h,) = ax.plot(s, v, markersize=4, linewidth=1.5, label=group, **st)
            handles.setdefault(group, h)
        for step in (events or {}).get(method, ()):
            ax.axvline(_float(step), color="0.45", linestyle=":", linewidth=1.0)
        ax.set_yscale("log")
        ax.set_title(str(method), fontsize=10)
        ax.set_xlabel("step")
        if k % ncols == 0:
            ax.set_ylabel("mean squared gradient")
        ax.grid(True, which="major", color="0.9", linewidth=0.6)
    for k in range(len(data), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    shown = {g for groups in data.values() for g, (s, _) in groups.items() if s.size}
    labels = [g if g in shown else f"{g} (n/a)" for g in group_names]
    fig.legend([handles[g] for g in group_names], labels, loc="outside right upper", fontsize=8,
               title="layer group", title_fontsize=8)  # fmt: skip
    fig.suptitle(title or "Mean squared gradient per layer group during training", fontsize=11)
    return _save(fig, path)


def plot_cmc(curves: Mapping[str, Sequence[float]], path: str | Path, title: str = "") -> Path:
    """Cumulative matching characteristic: matching rate at rank 1..k, one line per method.

    Values are fractions in [0, 1] as returned by :func:`trustvis.metrics.retrieval.evaluate_retrieval`
    (``"cmc"``) and drawn in percent; the legend gives each method's rank-1. A method has its colour of
    :func:`~trustvis.report.plots.common.method_color`. When every curve has a single rank, the figure is a
    bar chart of rank-1. A curve of only ``nan`` (no valid query) is listed in the legend as "n/a".

    Args:
        curves: ``{method: [rank1, rank2, ..., rankk]}``.
        path: output PNG.
        title: figure title.

    Returns:
        ``path``.

    Raises:
        ValueError: when ``curves`` is empty, every curve is empty or a value lies outside [0, 1].
    """
    _check_nonempty(curves, "curves")
    data = {str(m): np.array([_float(v) for v in c], dtype=float) for m, c in curves.items()}
    if not any(a.size for a in data.values()):
        raise ValueError("Nothing to plot: every CMC curve is empty.")
    for m, a in data.items():
        f = a[np.isfinite(a)]
        if f.size and (f.min() < 0 or f.max() > 1):
            raise ValueError(f"CMC curve {m!r} has values outside [0, 1]; pass fractions, not percentages.")
    styles = series_styles(data)
    fig = Figure(figsize=(6.2, 4.0), layout="constrained")
    ax = fig.add_subplot()
    if all(a.size <= 1 for a in data.values()):
        names = list(data)
        vals = [100 * a[0] if a.size else math.nan for a in data.values()]
        for i, (m, v) in enumerate(zip(names, vals)):
            ax.bar(i, v if math.isfinite(v) else 0.0, **_bar_style(styles[m]), edgecolor="white")
            ax.text(i, (v if math.isfinite(v) else 0.0) + 1, f"{v:.1f}" if math.isfinite(v) else "n/a",
                    ha="center", va="bottom", fontsize=8)  # fmt: skip
        ax.set_xticks(range(len(names)), [_wrap(n) for n in names])
        ax.set_ylabel("rank-1 matching rate (%)")
    else:
        for m, a in data.items():
            ok = np.isfinite(a)
            r1 = f"R1 {100 * a[0]:.1f}%" if a.size and ok[0] else "n/a"
            ranks = np.arange(1, a.size + 1)
            ax.plot(ranks[ok], 100 * a[ok], markersize=4, linewidth=1.8, label=f"{m} ({r1})",
                    **_plot_style(styles[m]))  # fmt: skip
        kmax = max(a.size for a in data.values())
        ax.set_xlim(0.5, kmax + 0.5)
        ax.set_xticks(range(1, kmax + 1) if kmax <= 20 else np.linspace(1, kmax, 10).round().astype(int))
        ax.set_xlabel("rank")
        ax.set_ylabel("matching rate (%)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9, title="method", title_fontsize=9,
                  frameon=False)  # fmt: skip
    ax.set_ylim(0, 105)
    ax.grid(True, color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(title or "CMC: share of queries with a correct match within the top k", fontsize=11)
    return _save(fig, path)
