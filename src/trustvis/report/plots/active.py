"""Figures of active learning: learning curves (a test metric against the number of labels, mean ± std over
seeds, one line per strategy), the class make-up of the queries (does a strategy over-pick the dominant
class?) and the two-panel figure of one loop (its curve, and its queries per class and round)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from trustvis.report.plots.common import (
    _bar_style,
    _check_nonempty,
    _color,
    _hatch,
    _plot_style,
    _save,
    _wrap,
    series_styles,
)

__all__ = ["loop_figure", "plot_learning_curves", "plot_query_classes"]


def _legend(ax: Any, title: str) -> None:
    ax.legend(
        loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, title=title, title_fontsize=9, frameon=False
    )


def plot_learning_curves(
    curves: Mapping[str, Mapping[str, Sequence[float]]], path: str | Path, ylabel: str = "test accuracy",
    title: str = "", xlabel: str = "labelled images", legend: str = "strategy", logx: bool = False,
) -> Path:  # fmt: skip
    """One line per strategy: ``mean`` against ``labels``, with a ``std`` band when given.

    Args:
        curves: ``{strategy: {"labels": [...], "mean": [...], "std": [...] (optional)}}``, values as fractions;
            ``labels`` are the x values (labelled images; training steps or images for other curves).
        path: output PNG.
        ylabel, title, xlabel, legend: axis labels, figure title and legend title.
        logx: a logarithmic x axis (the x values as tick labels).

    Raises:
        ValueError: no curve, or a curve whose arrays differ in length.
    """
    _check_nonempty(curves, "curves")
    styles = series_styles(curves)
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for name, c in curves.items():
        x, y = np.asarray(c["labels"], float), np.asarray(c["mean"], float)
        if x.shape != y.shape:
            raise ValueError(f"curve {name!r}: {x.size} label counts but {y.size} values")
        ax.plot(x, 100 * y, markersize=4, linewidth=1.6, label=name, **_plot_style(styles[name]))
        s = c.get("std")
        if s is not None and len(s) == len(y):
            s = np.asarray(s, float)
            ax.fill_between(
                x, 100 * (y - s), 100 * (y + s), color=styles[name]["color"], alpha=0.15, linewidth=0
            )
    if logx:
        ax.set_xscale("log")
        ticks = sorted({float(v) for c in curves.values() for v in c["labels"]})
        ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
        ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{ylabel} (%)")
    ax.grid(True, color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)
    _legend(ax, legend)
    ax.set_title(title or f"{ylabel} against {xlabel} (mean ± std over seeds)", fontsize=11)
    return _save(fig, path)


def plot_query_classes(
    counts: Mapping[str, Sequence[float]], classes: Sequence[str], path: str | Path,
    reference: Sequence[float] | None = None, title: str = "",
) -> Path:  # fmt: skip
    """Share of each class among the images each strategy queried (grouped bars), with the pool's own share
    (``reference``) as black ticks: a strategy above the tick of the dominant class over-picks it.

    Args:
        counts: ``{strategy: [images queried per class]}``.
        classes: class names (x axis).
        reference: images per class in the pool (drawn as shares).
    """
    _check_nonempty(counts, "counts")
    styles = series_styles(counts)
    k = len(classes)
    names = list(counts)
    width = 0.8 / max(1, len(names))
    fig = Figure(figsize=(max(6.4, 0.55 * k * max(1, len(names)) / 2 + 3), 4.0), layout="constrained")
    ax = fig.add_subplot()
    for j, name in enumerate(names):
        c = np.asarray(counts[name], float)
        if c.size != k:
            raise ValueError(f"{name!r}: {c.size} class counts for {k} classes")
        share = c / max(c.sum(), 1.0)
        ax.bar(np.arange(k) - 0.4 + (j + 0.5) * width, 100 * share, width, label=name,
               **_bar_style(styles[name]), edgecolor="white", linewidth=0.4)  # fmt: skip
    if reference is not None:
        r = np.asarray(reference, float)
        ax.scatter(np.arange(k), 100 * r / max(r.sum(), 1.0), marker="_", s=500, color="black", linewidths=2,
                   label="pool", zorder=3)  # fmt: skip
    ax.set_xticks(range(k), [_wrap(str(c), 10) for c in classes], fontsize=8)
    ax.set_ylabel("share of the queried images (%)")
    ax.grid(True, axis="y", color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)
    _legend(ax, "strategy")
    ax.set_title(title or "which classes each strategy asked to label", fontsize=11)
    return _save(fig, path)


def loop_figure(state: Mapping[str, Any], path: str | Path, title: str = "") -> Path:
    """One loop (``active.json``): test accuracy, balanced accuracy and macro-F1 against labels (left) and the
    images queried per class in each round, stacked (right)."""
    rounds = [r for r in state.get("rounds", []) if isinstance(r, Mapping)]
    if not rounds:
        raise ValueError("the loop has no finished round to draw")
    classes = list(state.get("classes", []))
    fig = Figure(figsize=(11.0, 4.0), layout="constrained")
    ax, bx = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    scored = [r for r in rounds if r.get("test")]
    for i, (key, name) in enumerate((("acc", "accuracy"), ("balanced_acc", "balanced accuracy"),
                                     ("macro_f1", "macro-F1"))):  # fmt: skip
        if scored:
            ax.plot([r["labels"] for r in scored], [100 * r["test"][key] for r in scored], marker="o", markersize=4,
                    color=_color(i), label=name)  # fmt: skip
    ax.set_xlabel("labelled images")
    ax.set_ylabel("test (%)")
    ax.grid(True, color="0.9", linewidth=0.6)
    if scored:
        ax.legend(fontsize=8, frameon=False)
    else:
        ax.text(
            0.5, 0.5, "no test split: rounds not scored", ha="center", va="center", transform=ax.transAxes
        )
    queried = [r for r in rounds if r.get("queried_per_class")]
    if queried and classes:
        bottom = np.zeros(len(queried))
        for c, name in enumerate(classes):
            v = np.asarray([r["queried_per_class"][c] for r in queried], float)
            bx.bar(range(len(queried)), v, bottom=bottom, color=_color(c), hatch=_hatch(c) or None,
                   label=_wrap(name, 14), edgecolor="white",
                   linewidth=0.4)  # fmt: skip
            bottom += v
        bx.set_xticks(range(len(queried)), [f"round {r['round']}" for r in queried], fontsize=8)
        bx.set_ylabel("images queried")
        _legend(bx, "class")
    else:
        bx.text(0.5, 0.5, "no queries recorded", ha="center", va="center", transform=bx.transAxes)
        bx.set_xticks([])
        bx.set_yticks([])
    bx.set_title("queries per class", fontsize=10)
    fig.suptitle(title or "active-learning loop", fontsize=11)
    return _save(fig, path)
