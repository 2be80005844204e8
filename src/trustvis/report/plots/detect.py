"""Figures of the detection bench: per-family metrics, ROC, robustness, spectra, cost, ACM maps,
adversarial accuracy."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from trustvis.report.plots.common import (
    _DASHES,
    PALETTE,
    _bar_style,
    _check_nonempty,
    _color,
    _finite_mean,
    _float,
    _metric_name,
    _ordered_union,
    _plot_style,
    _save,
    _tick_labels,
    _xy,
    series_styles,
)

__all__ = [
    "DEGRADATION_ORDER",
    "degradation_label",
    "plot_adversarial",
    "plot_cost",
    "plot_family_metric",
    "plot_image_rows",
    "plot_maps",
    "plot_robustness",
    "plot_roc",
    "plot_spectra",
]


DEGRADATION_ORDER = ("clean", "jpeg95", "jpeg75", "jpeg50", "blur1", "blur2", "resize0.5")
_CHANCE_METRICS = {"acc", "acc_real", "acc_fake", "auc"}
_MEAN_KEYS = {"mean", "mean_unseen", "mean unseen"}


def degradation_label(name: str) -> str:
    """Human-readable label of a degradation key (``jpeg75`` -> ``JPEG q75``, ``blur2`` -> ``blur σ=2``)."""
    for pattern, fmt in (
        (r"jpeg(\d+)", "JPEG q{}"),
        (r"blur([\d.]+)", "blur \u03c3={}"),
        (r"resize([\d.]+)", "resize \u00d7{}"),
    ):
        m = re.fullmatch(pattern, name)
        if m:
            return fmt.format(m.group(1))
    return name


def plot_family_metric(
    per_method: Mapping[str, Mapping[str, float]],
    metric: str,
    path: str | Path,
    train_family: str | None = None,
    title: str | None = None,
) -> Path:
    """Grouped bar chart of one metric per generator family, one bar per method.

    The train family is shaded and labelled "(train)"; a final group shows the mean over the unseen
    families (all families when ``train_family`` is None), computed here, ignoring nan. A dashed line
    marks chance (0.5) for accuracy and AUC.

    Args:
        per_method: ``{method: {family: value}}``; keys named ``mean``/``mean_unseen`` are ignored.
        metric: metric key, used for the axis label (``acc``, ``ap``, ``auc``, ...).
        path: output PNG.
        train_family: family the methods were trained on.
        title: figure title (default derived from the metric).

    Returns:
        ``path``.
    """
    _check_nonempty(per_method, "per_method")
    methods = list(per_method)
    families = _ordered_union(per_method.values(), skip=_MEAN_KEYS)
    if not families:
        raise ValueError("Nothing to plot: no family values in per_method.")
    mean_label = "mean\nunseen" if train_family is not None else "mean"
    labels = [f"{f}\n(train)" if f == train_family else f for f in families] + [mean_label]
    n_groups, n_m = len(labels), len(methods)
    width = 0.8 / n_m
    x = np.arange(n_groups, dtype=float)

    fig_w = min(18.0, max(6.5, 1.6 + n_groups * (0.22 * n_m + 0.45)))
    fig = Figure(figsize=(fig_w, 4.2), layout="constrained")
    ax = fig.add_subplot()
    all_vals: list[float] = []
    styles = series_styles(methods)
    for i, m in enumerate(methods):
        vals = [_float(per_method[m].get(f)) for f in families]
        unseen = [v for f, v in zip(families, vals) if f != train_family]
        vals.append(_finite_mean(unseen))
        all_vals.extend(vals)
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, vals, width, edgecolor="white", linewidth=0.5, label=m, **_bar_style(styles[m]))
        for p, v in zip(pos, vals):
            if not math.isfinite(v):
                ax.text(p, 0.02, "n/a", rotation=90, ha="center", va="bottom", fontsize=7, color="0.35")
    if train_family in families:
        j = families.index(train_family)
        ax.axvspan(j - 0.5, j + 0.5, color="0.92", zorder=0)
    ax.axvline(n_groups - 1.5, color="0.5", linestyle=":", linewidth=1)
    if metric in _CHANCE_METRICS:
        ax.axhline(0.5, color="0.25", linestyle="--", linewidth=1, label="chance (0.5)", zorder=3)
    finite = [v for v in all_vals if math.isfinite(v)]
    if finite and min(finite) >= 0 and max(finite) <= 1:
        ax.set_ylim(0, 1.05)
    ax.set_xlim(-0.6, n_groups - 0.4)
    ax.set_xticks(x)
    _tick_labels(ax, labels, max(len(s) for s in families) > 12 or n_groups > 8)
    ax.set_xlabel("generator family")
    ax.set_ylabel(_metric_name(metric))
    ax.yaxis.grid(True, color="0.85", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(title or f"{_metric_name(metric)} per generator family")
    fig.legend(loc="outside right upper", fontsize=9, title="method", title_fontsize=9)
    return _save(fig, path)


def plot_roc(
    curves: Mapping[str, Mapping[str, Any]],
    path: str | Path,
    aucs: Mapping[str, Mapping[str, float]] | None = None,
    train_family: str | None = None,
    title: str | None = None,
) -> Path:
    """ROC curves: one panel per outer key (method), one curve per inner key (family).

    Args:
        curves: ``{panel: {family: (fpr, tpr)}}``; a curve may also be ``{"fpr": [...], "tpr": [...]}``
            as stored in ``results.json``. Empty curves are listed in the legend as "n/a".
        path: output PNG.
        aucs: optional ``{panel: {family: auc}}`` shown in the legend.
        train_family: drawn dashed and labelled "(train)".
        title: figure title.

    Returns:
        ``path``.
    """
    _check_nonempty(curves, "curves")
    panels = list(curves)
    families = _ordered_union(curves.values())
    colour = {f: i for i, f in enumerate(families)}
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    legend_h = 0.17 * (len(families) + 1)
    fig = Figure(figsize=(3.9 * ncols, (3.9 + legend_h) * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for k, panel in enumerate(panels):
        ax = axes[k // ncols][k % ncols]
        ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=1)
        for fam, curve in curves[panel].items():
            fpr, tpr = _xy(curve)
            i = colour[fam]
            label = f"{fam} (train)" if fam == train_family else fam
            auc = _float((aucs or {}).get(panel, {}).get(fam))
            if fpr.size == 0:
                ax.plot([], [], color=_color(i), label=f"{label}: n/a")
                continue
            if math.isfinite(auc):
                label += f" (AUC {auc:.3f})"
            ax.plot(
                fpr,
                tpr,
                color=_color(i),
                linestyle="--" if fam == train_family else _DASHES[(i // len(PALETTE)) % len(_DASHES)],
                linewidth=1.6,
                label=label,
            )
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_aspect("equal")
        ax.grid(True, color="0.9", linewidth=0.6)
        ax.set_title(panel, fontsize=11)
        # Legend below the panel, never on top of the curves.
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=7, frameon=False)
        ax.set_xlabel("false positive rate (real flagged)", fontsize=9)
        if k % ncols == 0:
            ax.set_ylabel("true positive rate (fake caught)", fontsize=9)
    for k in range(len(panels), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    fig.suptitle(title or "ROC curves per generator family (dotted diagonal = chance)")
    return _save(fig, path)


def plot_robustness(
    per_method: Mapping[str, Mapping[str, float]],
    path: str | Path,
    metric: str = "ap",
    title: str | None = None,
) -> Path:
    """Metric under each degradation, one line per method.

    Args:
        per_method: ``{method: {degradation: value}}`` with degradations such as ``clean``, ``jpeg75``,
            ``blur2``, ``resize0.5`` (usually the mean over unseen families). Known ones follow
            :data:`DEGRADATION_ORDER`; others follow in first-seen order.
        path: output PNG.
        metric: metric key, for the axis label.
        title: figure title.

    Returns:
        ``path``.
    """
    _check_nonempty(per_method, "per_method")
    present = _ordered_union(per_method.values())
    order = [d for d in DEGRADATION_ORDER if d in present] + [
        d for d in present if d not in DEGRADATION_ORDER
    ]
    if not order:
        raise ValueError("Nothing to plot: no degradation values in per_method.")
    styles = series_styles(per_method)
    if len(order) == 1:  # one condition: a line of lone points says nothing; one bar per method
        return _robustness_bars(per_method, order[0], styles, path, metric, title)
    x = np.arange(len(order))
    fig = Figure(figsize=(max(6.5, 1.2 * len(order) + 2.5), 4.0), layout="constrained")
    ax = fig.add_subplot()
    all_vals: list[float] = []
    for m, vals in per_method.items():
        y = [_float(vals.get(d)) for d in order]
        all_vals.extend(y)
        ax.plot(x, y, linewidth=1.8, markersize=6, label=m, **_plot_style(styles[m]))
    if metric in _CHANCE_METRICS:
        ax.axhline(0.5, color="0.25", linestyle="--", linewidth=1, label="chance (0.5)")
    finite = [v for v in all_vals if math.isfinite(v)]
    if finite and min(finite) >= 0 and max(finite) <= 1:
        ax.set_ylim(max(0.0, min(finite + [0.5]) - 0.05), 1.02)
    ax.set_xticks(x)
    labels = [degradation_label(d) for d in order]
    _tick_labels(ax, labels, max(len(s) for s in labels) > 12 or len(labels) > 8)
    ax.set_xlabel("degradation applied to real and fake test images")
    ax.set_ylabel(f"{_metric_name(metric)}, mean unseen")
    ax.grid(True, color="0.88", linewidth=0.6)
    ax.set_title(title or f"Robustness: {_metric_name(metric)} under degradations")
    fig.legend(loc="outside right upper", fontsize=9, title="method", title_fontsize=9)
    return _save(fig, path)


def _robustness_bars(
    per_method: Mapping[str, Mapping[str, float]],
    condition: str,
    styles: Mapping[str, Mapping[str, Any]],
    path: str | Path,
    metric: str,
    title: str | None,
) -> Path:
    """:func:`plot_robustness` with a single condition: one horizontal bar per method, value at its end."""
    methods = list(per_method)
    vals = np.array([_float(per_method[m].get(condition)) for m in methods])
    fig = Figure(figsize=(7.0, 0.45 * len(methods) + 1.6), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(methods))
    for yi, m, v in zip(y, methods, vals):
        ax.barh(yi, v if math.isfinite(v) else 0.0, edgecolor="white", **_bar_style(styles[m]))
        ax.text(max(v, 0.0) if math.isfinite(v) else 0.0, yi, f" {v:.3f}" if math.isfinite(v) else " n/a",
                va="center", fontsize=8)  # fmt: skip
    finite = vals[np.isfinite(vals)]
    if finite.size and finite.min() >= 0 and finite.max() <= 1:
        ax.set_xlim(0, 1.12)
    if metric in _CHANCE_METRICS:
        ax.axvline(0.5, color="0.25", linestyle="--", linewidth=1, label="chance (0.5)")
        ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_yticks(y)
    ax.set_yticklabels(methods)
    ax.invert_yaxis()
    ax.set_xlabel(f"{_metric_name(metric)}, mean unseen, {degradation_label(condition)}")
    ax.xaxis.grid(True, color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(title or f"{_metric_name(metric)} ({degradation_label(condition)})")
    return _save(fig, path)


def plot_spectra(
    spectra: Mapping[str, np.ndarray],
    path: str | Path,
    reference: str | None = "real",
    title: str | None = None,
) -> Path:
    """Mean log spectra per family (top row) and their difference to the reference (bottom row).

    Each row shares one colour scale (1st-99th percentile for the absolute spectra, symmetric around 0
    for the differences) with its own colour bar. The reference family comes first.

    Args:
        spectra: ``{family: (H, W) mean log spectrum}`` from
            :func:`trustvis.metrics.spectrum.mean_log_spectrum`, all the same shape.
        path: output PNG.
        reference: key of the real spectrum to subtract; ``None`` draws the absolute row only.
        title: figure title.

    Returns:
        ``path``.
    """
    _check_nonempty(spectra, "spectra")
    if reference is not None and reference not in spectra:
        raise ValueError(f"Reference spectrum {reference!r} not in spectra; choose from {list(spectra)}.")
    arrays = {k: np.asarray(v, dtype=float) for k, v in spectra.items()}
    shapes = {v.shape for v in arrays.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"Spectra must be 2-D arrays of one shape; got shapes {sorted(shapes)}.")
    names = ([reference] if reference is not None else []) + [k for k in arrays if k != reference]
    n = len(names)
    rows = 2 if reference is not None and n > 1 else 1
    fig = Figure(figsize=(1.85 * n + 1.4, 2.05 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, n, squeeze=False)

    stack = np.stack([arrays[k] for k in names])
    vmin, vmax = np.percentile(stack[np.isfinite(stack)], [1, 99])
    im = None
    for j, k in enumerate(names):
        ax = axes[0][j]
        im = ax.imshow(arrays[k], cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{k} (reference)" if k == reference else k, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].set_ylabel("mean log |F|", fontsize=9)
    fig.colorbar(im, ax=list(axes[0]), shrink=0.9, label="log |F|")

    if rows == 2:
        diffs = {k: arrays[k] - arrays[reference] for k in names[1:]}
        dstack = np.stack(list(diffs.values()))
        lim = float(np.percentile(np.abs(dstack[np.isfinite(dstack)]), 99)) or 1.0
        dim = None
        for j, k in enumerate(names):
            ax = axes[1][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if k == reference:
                for spine in ax.spines.values():
                    spine.set_visible(False)
                ax.text(
                    0.5,
                    0.5,
                    "(reference)",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="0.4",
                    transform=ax.transAxes,
                )
            else:
                dim = ax.imshow(diffs[k], cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
                ax.set_title(f"{k} \u2212 {reference}", fontsize=9)
        axes[1][0].set_ylabel(f"difference to {reference}", fontsize=9)
        fig.colorbar(dim, ax=list(axes[1]), shrink=0.9, label="\u0394 log |F|")
    fig.suptitle(title or "Mean log spectra (centre = zero frequency)", fontsize=11)
    return _save(fig, path)


def plot_cost(
    per_method: Mapping[str, Mapping[str, Any]], path: str | Path, title: str | None = None
) -> Path:
    """Two bar panels: inference throughput (images/s) and training time (s) per method.

    Args:
        per_method: ``{method: {"throughput_img_s": float, "train_seconds": float, ...}}`` (the
            ``methods`` block of ``results.json`` works as is); missing values show as "n/a".
        path: output PNG.
        title: figure title.

    Returns:
        ``path``.
    """
    _check_nonempty(per_method, "per_method")
    methods = list(per_method)
    panels = (
        ("throughput_img_s", "inference throughput (images/s, higher is better)"),
        ("train_seconds", "training time (s, lower is better)"),
    )
    styles = series_styles(methods)
    fig = Figure(figsize=(10.0, 0.45 * len(methods) + 1.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(methods))
    for ax, (key, label) in zip(axes, panels):
        vals = np.array([_float(per_method[m].get(key)) for m in methods])
        finite = vals[np.isfinite(vals) & (vals > 0)]
        log = finite.size >= 2 and finite.max() / finite.min() > 100
        for yi, m, v in zip(y, methods, vals):
            ax.barh(yi, v if math.isfinite(v) else 0.0, edgecolor="white", **_bar_style(styles[m]))
        top = finite.max() if finite.size else 1.0
        if log:
            ax.set_xscale("log")
            ax.set_xlim(finite.min() / 2, top * 8)
        else:
            ax.set_xlim(0, top * 1.3)
        for yi, v in zip(y, vals):
            text = f"{v:,.1f}" if math.isfinite(v) else "n/a"
            xpos = v if math.isfinite(v) and v > 0 else (finite.min() / 2 if log else 0)
            ax.text(xpos, yi, " " + text, va="center", ha="left", fontsize=8)
        ax.set_xlabel(label)
        ax.xaxis.grid(True, color="0.9", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(methods)
    axes[0].invert_yaxis()
    fig.suptitle(title or "Cost per method")
    return _save(fig, path)


def plot_maps(
    maps: Mapping[str, np.ndarray],
    path: str | Path,
    title: str | None = None,
    label: str = "M (1 = kept, 0 = suppressed)",
) -> Path:
    """One panel per entry of ``maps`` (2-D arrays in [0, 1], e.g. artifact compression maps), shared scale.

    Args:
        maps: ``{name: (H, W) array}``, DC-centred for frequency maps.
        path: output PNG.
        title: figure title.
        label: colour-bar label.

    Returns:
        ``path``.
    """
    _check_nonempty(maps, "maps")
    names = list(maps)
    fig = Figure(figsize=(2.3 * len(names) + 1.2, 2.7), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    im = None
    for ax, name in zip(axes, names):
        im = ax.imshow(np.asarray(maps[name], dtype=float), cmap="magma", vmin=0.0, vmax=1.0,
                       interpolation="nearest")  # fmt: skip
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=list(axes), shrink=0.9, label=label)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_image_rows(rows: Mapping[str, Any], path: str | Path, title: str | None = None) -> Path:
    """A grid of images, one labelled row per entry (e.g. the reals and each family's fakes), shown at their
    pixel size's aspect without smoothing.

    Args:
        rows: ``{label: uint8 (n, H, W, 3)}``; rows may hold different counts (missing cells stay blank).
        path: output PNG.
        title: figure title.

    Returns:
        ``path``.
    """
    _check_nonempty(rows, "rows")
    n_cols = max(len(v) for v in rows.values())
    if n_cols == 0:
        raise ValueError("Nothing to plot: every row of rows is empty.")
    fig = Figure(figsize=(1.0 * n_cols + 1.6, 1.0 * len(rows) + 0.4), layout="constrained")
    axes = fig.subplots(len(rows), n_cols, squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if c < len(images):
                ax.imshow(np.asarray(images[c]), interpolation="nearest")
        axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_adversarial(
    per_row: Mapping[str, Mapping[str, Any]], path: str | Path, title: str | None = None
) -> Path:
    """Grouped horizontal bars: adversarial accuracy of each detector under each attack.

    Args:
        per_row: ``{detector: {attack: {"adv_acc": float, "clean_acc": float, "eps": float, ...}}}`` (the
            ``adversarial`` block of the detection bench's ``results.json``).
        path: output PNG.
        title: figure title.

    Returns:
        ``path``.
    """
    _check_nonempty(per_row, "per_row")
    rows = list(per_row)
    attacks = _ordered_union(per_row.values())
    bars = ["clean", *attacks]
    fig = Figure(figsize=(9.0, 0.32 * len(rows) * len(bars) + 1.4), layout="constrained")
    ax = fig.subplots()
    height = 0.8 / len(bars)
    y = np.arange(len(rows))
    for j, name in enumerate(bars):
        if name == "clean":  # accuracy on the attacked fakes before any attack (same for every attack)
            vals = [_float(next(iter(per_row[r].values()), {}).get("clean_acc")) for r in rows]
            label = "no attack"
        else:
            vals = [_float(per_row[r].get(name, {}).get("adv_acc")) for r in rows]
            eps = next((per_row[r][name].get("eps") for r in rows if name in per_row[r]), None)
            label = f"{name} (ε={eps:.4g})" if eps is not None else name
        pos = y + (j - (len(bars) - 1) / 2) * height
        ax.barh(pos, np.nan_to_num(vals, nan=0.0), height=height, color=_color(j), label=label,
                edgecolor="white")  # fmt: skip
        for yi, v in zip(pos, vals):
            ax.text(max(v, 0) if math.isfinite(v) else 0, yi, f" {v:.2f}" if math.isfinite(v) else " n/a",
                    va="center", fontsize=7)  # fmt: skip
    ax.set_yticks(y)
    ax.set_yticklabels(rows)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("share of fake images still flagged fake (higher is more robust)")
    ax.xaxis.grid(True, color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title(
        title or "Adversarial accuracy on fake test images (attacker wants fake → real)", fontsize=10
    )
    return _save(fig, path)
