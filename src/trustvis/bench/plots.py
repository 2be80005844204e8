"""Benchmark figures: plain data in, a PNG file out.

Every function takes plain Python/numpy data and a path, writes a PNG (``dpi=120``, atomically) and
returns the path. Figures are built on :class:`matplotlib.figure.Figure` directly (Agg canvas, no pyplot,
no global state), so they are safe in threads and on headless machines. Colours are the Okabe-Ito
colour-blind-safe palette; beyond eight series, bars add hatches and lines add dash patterns and
markers so that no two series look the same. Legends sit outside the axes and layouts are
``constrained``, so nothing overlaps.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from PIL import Image
from scipy import ndimage

from trustvis.atomic import atomic_write_bytes

logger = logging.getLogger(__name__)

__all__ = [
    "DEGRADATION_ORDER",
    "PALETTE",
    "degradation_label",
    "heatmap_overlay",
    "plot_anomaly_curves",
    "plot_anomaly_grid",
    "plot_cost",
    "plot_maps",
    "plot_family_metric",
    "plot_metric_bars",
    "plot_reliability",
    "plot_robustness",
    "plot_roc",
    "plot_spectra",
    "plot_training_curves",
    "plot_uncertainty",
    "save_overlay",
]

# Okabe & Ito (2008) colour-blind-safe palette, ordered for contrast on white (yellow last).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#000000", "#F0E442")
_HATCHES = ("", "//", "..", "xx", "\\\\", "++", "oo", "--")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_DASHES = ("-", "--", "-.", ":")
DEGRADATION_ORDER = ("clean", "jpeg95", "jpeg75", "jpeg50", "blur1", "blur2", "resize0.5")
_CHANCE_METRICS = {"acc", "acc_real", "acc_fake", "auc"}
_METRIC_NAMES = {
    "acc": "accuracy",
    "acc_real": "accuracy on real images",
    "acc_fake": "accuracy on fake images",
    "ap": "average precision (AP)",
    "auc": "ROC AUC",
    "eer": "equal error rate (EER)",
}
_MEAN_KEYS = {"mean", "mean_unseen", "mean unseen"}
DPI = 120


def _metric_name(metric: str) -> str:
    return _METRIC_NAMES.get(metric, metric)


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _hatch(i: int) -> str:
    return _HATCHES[(i // len(PALETTE)) % len(_HATCHES)]


def _line_style(i: int) -> dict[str, Any]:
    return {
        "color": _color(i),
        "marker": _MARKERS[i % len(_MARKERS)],
        "linestyle": _DASHES[(i // len(PALETTE)) % len(_DASHES)],
    }


def _float(v: Any) -> float:
    try:
        return float(v) if v is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def _finite_mean(values: Iterable[float]) -> float:
    vals = [v for v in values if math.isfinite(v)]
    return sum(vals) / len(vals) if vals else math.nan


def _ordered_union(dicts: Iterable[Mapping[str, Any]], skip: set[str] | None = None) -> list[str]:
    seen: dict[str, None] = {}
    for d in dicts:
        for k in d:
            if skip is None or k not in skip:
                seen.setdefault(k, None)
    return list(seen)


def _save(fig: Figure, path: str | Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white", bbox_inches="tight", pad_inches=0.1)
    path = atomic_write_bytes(path, buf.getvalue())
    logger.debug("wrote figure %s", path)
    return path


def _check_nonempty(obj: Mapping[str, Any], what: str) -> None:
    if not obj:
        raise ValueError(f"Nothing to plot: {what} is empty.")


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
    for i, m in enumerate(methods):
        vals = [_float(per_method[m].get(f)) for f in families]
        unseen = [v for f, v in zip(families, vals) if f != train_family]
        vals.append(_finite_mean(unseen))
        all_vals.extend(vals)
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, vals, width, color=_color(i), hatch=_hatch(i), edgecolor="white", linewidth=0.5, label=m)
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
    long_names = max(len(s) for s in families) > 12 or n_groups > 8
    ax.set_xticklabels(labels, rotation=30 if long_names else 0, ha="right" if long_names else "center")
    ax.set_xlabel("generator family")
    ax.set_ylabel(_metric_name(metric))
    ax.yaxis.grid(True, color="0.85", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(title or f"{_metric_name(metric)} per generator family")
    fig.legend(loc="outside right upper", fontsize=9, title="method", title_fontsize=9)
    return _save(fig, path)


def _xy(curve: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(curve, Mapping):
        fpr, tpr = curve.get("fpr", []), curve.get("tpr", [])
    else:
        fpr, tpr = curve
    fpr, tpr = np.asarray(fpr, dtype=float), np.asarray(tpr, dtype=float)
    if fpr.shape != tpr.shape:
        raise ValueError(f"ROC curve has {fpr.size} FPR values but {tpr.size} TPR values.")
    return fpr, tpr


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
    x = np.arange(len(order))
    fig = Figure(figsize=(max(6.5, 1.2 * len(order) + 2.5), 4.0), layout="constrained")
    ax = fig.add_subplot()
    all_vals: list[float] = []
    for i, (m, vals) in enumerate(per_method.items()):
        y = [_float(vals.get(d)) for d in order]
        all_vals.extend(y)
        ax.plot(x, y, linewidth=1.8, markersize=6, label=m, **_line_style(i))
    if metric in _CHANCE_METRICS:
        ax.axhline(0.5, color="0.25", linestyle="--", linewidth=1, label="chance (0.5)")
    finite = [v for v in all_vals if math.isfinite(v)]
    if finite and min(finite) >= 0 and max(finite) <= 1:
        ax.set_ylim(max(0.0, min(finite + [0.5]) - 0.05), 1.02)
    ax.set_xticks(x)
    ax.set_xticklabels([degradation_label(d) for d in order])
    ax.set_xlabel("degradation applied to real and fake test images")
    ax.set_ylabel(f"{_metric_name(metric)}, mean unseen")
    ax.grid(True, color="0.88", linewidth=0.6)
    ax.set_title(title or f"Robustness: {_metric_name(metric)} under degradations")
    fig.legend(loc="outside right upper", fontsize=9, title="method", title_fontsize=9)
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


def _smooth(y: np.ndarray) -> np.ndarray:
    """Centred moving average (no lag), window ~4% of the points, shrinking at the ends."""
    half = max(2, len(y) // 50)
    c = np.concatenate([[0.0], np.cumsum(y)])
    idx = np.arange(len(y))
    lo, hi = np.maximum(idx - half, 0), np.minimum(idx + half + 1, len(y))
    return (c[hi] - c[lo]) / (hi - lo)


def plot_training_curves(
    records: Sequence[Mapping[str, Any]],
    path: str | Path,
    keys: Sequence[str] = ("loss",),
    title: str | None = None,
) -> Path:
    """Training (and validation) curves from JSONL metric records.

    One panel per key; records are split by their ``"split"`` field (``train`` when absent). Long,
    noisy loss curves (> 50 points) are drawn faint with a centred moving average on top. A key
    named ``lr`` uses a log axis.

    Args:
        records: dicts with a ``"step"`` and scalar metrics, e.g. ``{"step": 20, "loss": 0.61}``.
        path: output PNG.
        keys: metric keys, one panel each; a key without data shows "no data".
        title: figure title.

    Returns:
        ``path``.

    Raises:
        ValueError: if no record has a ``"step"`` or ``keys`` is empty.
    """
    recs = [r for r in records if isinstance(r, Mapping) and math.isfinite(_float(r.get("step")))]
    if not recs:
        raise ValueError("No records with a numeric 'step' to plot.")
    if not keys:
        raise ValueError("keys is empty; name at least one metric to plot.")
    splits = _ordered_union([{str(r.get("split", "train")): None} for r in recs])
    ncols = min(3, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    fig = Figure(figsize=(4.3 * ncols + 1.2, 3.2 * nrows + 0.3), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for k, key in enumerate(keys):
        ax = axes[k // ncols][k % ncols]
        any_data = False
        for i, split in enumerate(splits):
            pts = sorted(
                (_float(r["step"]), _float(r.get(key)))
                for r in recs
                if str(r.get("split", "train")) == split and math.isfinite(_float(r.get(key)))
            )
            if not pts:
                continue
            any_data = True
            s, y = np.array(pts).T
            style = _line_style(i)
            if len(pts) > 50 and "loss" in key:
                ax.plot(s, y, color=style["color"], alpha=0.3, linewidth=0.8)
                ax.plot(s, _smooth(y), color=style["color"], linewidth=1.8, label=f"{split} (smoothed)")
            elif len(pts) > 50:
                ax.plot(s, y, color=style["color"], linewidth=1.5, label=split)
            else:
                ax.plot(
                    s,
                    y,
                    color=style["color"],
                    marker=style["marker"],
                    markersize=4,
                    linewidth=1.5,
                    label=split,
                )
        if not any_data:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", color="0.4", transform=ax.transAxes)
        else:
            ax.legend(fontsize=8)
            if key == "lr":
                ax.set_yscale("log")
        ax.set_title(_metric_name(key), fontsize=10)
        ax.set_xlabel("step")
        ax.grid(True, color="0.9", linewidth=0.6)
    for k in range(len(keys), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    fig.suptitle(title or "Training curves")
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
    fig = Figure(figsize=(10.0, 0.45 * len(methods) + 1.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(methods))
    for ax, (key, label) in zip(axes, panels):
        vals = np.array([_float(per_method[m].get(key)) for m in methods])
        finite = vals[np.isfinite(vals) & (vals > 0)]
        log = finite.size >= 2 and finite.max() / finite.min() > 100
        ax.barh(
            y,
            np.nan_to_num(vals, nan=0.0),
            color=[_color(i) for i in range(len(methods))],
            hatch=None,
            edgecolor="white",
        )
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


# --- Calibration figures -------------------------------------------------------------------------------

_CAL_METRIC_NAMES = {
    "ece": "ECE (top-1, lower is better)",
    "cw_ece": "class-wise ECE (lower is better)",
    "mce": "MCE (lower is better)",
    "nll": "NLL (nats, lower is better)",
    "brier": "Brier score (lower is better)",
}
_RELIABILITY_KEYS = ("edges", "count", "accuracy", "confidence")
_MAX_RELIABILITY_PANELS = 12


def _reliability_arrays(name: str, d: Mapping[str, Any]) -> tuple[np.ndarray, ...]:
    missing = [k for k in _RELIABILITY_KEYS if k not in d]
    if missing:
        raise ValueError(
            f"Reliability entry {name!r} lacks {missing}; expected the keys {list(_RELIABILITY_KEYS)} "
            "of trustvis.metrics.calibration.reliability_bins (plus an optional 'ece')."
        )
    edges = np.asarray(d["edges"], dtype=float)
    count = np.asarray(d["count"], dtype=float)
    acc = np.asarray(d["accuracy"], dtype=float)
    conf = np.asarray(d["confidence"], dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not count.size == acc.size == conf.size == edges.size - 1:
        raise ValueError(
            f"Reliability entry {name!r}: need n_bins + 1 edges and n_bins counts/accuracies/confidences; "
            f"got {edges.size}, {count.size}, {acc.size}, {conf.size}."
        )
    return edges, count, acc, conf


def plot_reliability(diagrams: Mapping[str, Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """Reliability diagrams, one panel per entry, with the confidence histogram underneath.

    Each panel shows the accuracy of every confidence bin (bars), the diagonal of perfect calibration,
    the gap between accuracy and mean confidence (hatched overlay; above the bar = over-confident) and,
    in a small row below, the share of samples per bin with dashed lines at the overall accuracy and
    mean confidence. The panel title gives the ECE (x100): the entry's ``"ece"`` when present, otherwise
    the value recomputed from the bins (identical for the same binning). Empty bins are left blank.

    Args:
        diagrams: ``{name: reliability}`` where ``reliability`` is the dict of
            :func:`trustvis.metrics.calibration.reliability_bins` (``edges``, ``count``, ``accuracy``,
            ``confidence``) plus an optional ``"ece"`` fraction; up to ~12 entries (more are drawn but
            crowd the figure).
        path: output PNG.
        title: figure title.

    Returns:
        ``path``.
    """
    _check_nonempty(diagrams, "diagrams")
    names = list(diagrams)
    if len(names) > _MAX_RELIABILITY_PANELS:
        logger.warning("plot_reliability: %d panels; more than %d crowd the figure.", len(names),
                       _MAX_RELIABILITY_PANELS)  # fmt: skip
    data = {n: _reliability_arrays(n, diagrams[n]) for n in names}
    ncols = min(4, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig = Figure(figsize=(3.3 * ncols, 4.1 * nrows + 0.6), layout="constrained")
    outer = fig.add_gridspec(nrows, ncols)
    acc_color, gap_color, hist_color = _color(0), _color(3), _color(4)
    for k, name in enumerate(names):
        edges, count, acc, conf = data[name]
        inner = outer[k // ncols, k % ncols].subgridspec(2, 1, height_ratios=(3, 1), hspace=0.05)
        ax = fig.add_subplot(inner[0])
        hx = fig.add_subplot(inner[1], sharex=ax)
        lo, widths = edges[:-1], np.diff(edges)
        nz = (count > 0) & np.isfinite(acc) & np.isfinite(conf)
        total = count.sum()
        ax.bar(lo[nz], acc[nz], widths[nz], align="edge", color=acc_color, edgecolor="white",
               linewidth=0.6, label="accuracy")  # fmt: skip
        ax.bar(lo[nz], conf[nz] - acc[nz], widths[nz], bottom=acc[nz], align="edge", color=gap_color,
               alpha=0.35, hatch="//", edgecolor=gap_color, linewidth=0.6, label="gap (conf \u2212 acc)")  # fmt: skip
        ax.plot([0, 1], [0, 1], color="0.3", linestyle="--", linewidth=1, label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.grid(True, color="0.9", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.tick_params(labelbottom=False)
        if k % ncols == 0:
            ax.set_ylabel("accuracy")
        ece = _float(diagrams[name].get("ece"))
        if not math.isfinite(ece) and total > 0:
            ece = float(np.sum(count[nz] / total * np.abs(acc[nz] - conf[nz])))
        ece_txt = f"ECE {100 * ece:.2f}%" if math.isfinite(ece) else "ECE n/a"
        ax.set_title(f"{name}\n{ece_txt} (n={int(total)})", fontsize=9)

        share = count / total if total > 0 else np.zeros_like(count)
        hx.bar(lo, share, widths, align="edge", color=hist_color, edgecolor="white", linewidth=0.5)
        if total > 0:
            hx.axvline(float(np.sum(count[nz] * acc[nz]) / total), color=acc_color, linestyle="--",
                       linewidth=1.2, label="overall accuracy")  # fmt: skip
            hx.axvline(float(np.sum(count[nz] * conf[nz]) / total), color=gap_color, linestyle=":",
                       linewidth=1.4, label="mean confidence")  # fmt: skip
        hx.set_ylim(0, max(float(share.max()) * 1.15, 0.05))
        hx.set_xlabel("confidence (max softmax)", fontsize=8)
        hx.tick_params(labelsize=7)
        if k % ncols == 0:
            hx.set_ylabel("share", fontsize=8)
        if k == 0:
            handles, labels = ax.get_legend_handles_labels()
            h2, l2 = hx.get_legend_handles_labels()
            fig.legend(handles + h2, labels + l2, loc="outside lower center",
                       ncols=min(5, len(handles) + len(h2)), fontsize=8, frameon=False)  # fmt: skip
    fig.suptitle(title or "Reliability diagrams (bars above the diagonal = under-confident)", fontsize=11)
    return _save(fig, path)


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
    for i, c in enumerate(cols):
        pairs = [_mean_std(table[r].get(c)) for r in rows]
        means = np.array([m for m, _ in pairs])
        stds = np.array([s for _, s in pairs])
        all_vals.extend((means + np.nan_to_num(stds)).tolist())
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, np.nan_to_num(means, nan=0.0), width, color=_color(i), hatch=_hatch(i), edgecolor="white",
               linewidth=0.5, label=c)  # fmt: skip
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
    long_names = max(len(str(r)) for r in rows) > 12 or n_rows > 8
    ax.set_xticklabels(rows, rotation=30 if long_names else 0, ha="right" if long_names else "center")
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


# --- Anomaly detection figures ---------------------------------------------------------------------------

_ANOMALY_CMAP = "jet"
_PANEL_GAP = 4  # white pixels between the panels of save_overlay
_CONTOUR_RGB = (255, 255, 255)


def _as_array(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, possibly on GPU or requiring grad
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _image_rgb(image: Any) -> np.ndarray:
    """Any image -> uint8 (H, W, 3).

    Accepts (H, W), (H, W, 1|3|4) and (1|3, H, W) arrays or tensors. uint8 is used as is; floats in
    [0, 1] are scaled by 255, floats with a maximum above 1 are taken as [0, 255], and floats with
    negative values (e.g. ImageNet-normalised tensors) are min-max rescaled for display.
    """
    img = _as_array(image)
    if img.ndim == 3 and img.shape[-1] not in (1, 3, 4) and img.shape[0] in (1, 3):
        img = np.moveaxis(img, 0, -1)  # CHW -> HWC
    if img.ndim == 3 and img.shape[-1] == 4:
        img = img[..., :3]  # drop alpha
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[-1] != 3) or img.size == 0:
        raise ValueError(
            f"image must have shape (H, W), (H, W, 1|3|4) or (1|3, H, W); got shape {tuple(img.shape)}."
        )
    if img.dtype != np.uint8:
        f = img.astype(np.float64)
        if not np.all(np.isfinite(f)):
            raise ValueError("image contains NaN or infinite values.")
        lo, hi = float(f.min()), float(f.max())
        if lo < 0:
            f = (f - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(f)
        elif hi <= 1.0:
            f = f * 255.0
        img = np.clip(np.round(f), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    return img


def _map_2d(amap: Any, size: tuple[int, int], what: str = "amap") -> np.ndarray:
    """Anomaly map -> float64 (H, W) at ``size`` = (H, W), bilinear when it has another size."""
    a = _as_array(amap).astype(np.float64)
    a = a.reshape(a.shape[-2:]) if a.ndim > 2 and int(np.prod(a.shape[:-2])) == 1 else a
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"{what} must be a 2-D (H, W) map (or (1, H, W)); got shape {tuple(a.shape)}.")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what} contains NaN or infinite values.")
    if a.shape != size:
        resized = Image.fromarray(a.astype(np.float32)).resize((size[1], size[0]), Image.Resampling.BILINEAR)
        a = np.asarray(resized, dtype=np.float64)
    return a


def _mask_2d(mask: Any, size: tuple[int, int]) -> np.ndarray:
    """Ground-truth mask -> bool (H, W) at ``size``, nearest-neighbour when it has another size."""
    m = _as_array(mask)
    m = m.reshape(m.shape[-2:]) if m.ndim > 2 and int(np.prod(m.shape[:-2])) == 1 else m
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"mask must be a 2-D (H, W) array (or (1, H, W)); got shape {tuple(m.shape)}.")
    m = m > 0  # accepts {0, 1}, bool and 0/255 masks
    if m.shape != size:
        img = Image.fromarray(m.astype(np.uint8) * 255).resize((size[1], size[0]), Image.Resampling.NEAREST)
        m = np.asarray(img) > 127
    return m


def _scale(values: np.ndarray, vmin: float | None, vmax: float | None) -> tuple[float, float]:
    lo = float(values.min()) if vmin is None else float(vmin)
    hi = float(values.max()) if vmax is None else float(vmax)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"vmin and vmax must be finite, got {vmin!r} and {vmax!r}.")
    if hi < lo:
        raise ValueError(f"vmax ({hi}) must not be below vmin ({lo}).")
    return lo, hi


def heatmap_overlay(
    image: Any, amap: Any, vmin: float | None = None, vmax: float | None = None, alpha: float = 0.5
) -> np.ndarray:
    """Blend a jet colour map of an anomaly map onto an image.

    ``vmin`` maps to dark blue and ``vmax`` to dark red; values outside are clipped. Without them the
    map's own minimum and maximum are used, which makes every map look "hot" somewhere (even a normal
    image's): pass one fixed scale (e.g. over the test set, or with ``vmax`` near the threshold) to
    compare images. A constant map with ``vmin == vmax`` is drawn at the low end.

    Args:
        image: (H, W), (H, W, 3) or (3, H, W) array or tensor; uint8, or float in [0, 1].
        amap: (h, w) anomaly map; bilinearly resized to (H, W) when its size differs.
        vmin: score shown at the bottom of the colour scale.
        vmax: score shown at the top of the colour scale.
        alpha: weight of the colour map in the blend, in [0, 1].

    Returns:
        uint8 array of shape (H, W, 3).
    """
    a = float(alpha)
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}.")
    img = _image_rgb(image)  # (H, W, 3) uint8
    amap2 = _map_2d(amap, img.shape[:2])  # (H, W) float64
    lo, hi = _scale(amap2, vmin, vmax)
    norm = np.clip((amap2 - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(amap2)
    colour = colormaps[_ANOMALY_CMAP](norm)[..., :3] * 255.0  # (H, W, 3) float
    out = (1.0 - a) * img.astype(np.float64) + a * colour
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _contour(mask: np.ndarray) -> np.ndarray:
    """Inner boundary pixels of a bool mask (8-neighbourhood; the image border counts as outside)."""
    return mask & ~ndimage.binary_erosion(mask, structure=np.ones((3, 3), bool), border_value=0)


def save_overlay(
    image: Any,
    amap: Any,
    path: str | Path,
    mask: Any | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    alpha: float = 0.5,
) -> Path:
    """Write one PNG at the image's own resolution: ``image | overlay``, 4 white pixels apart.

    The overlay is :func:`heatmap_overlay`; with ``mask`` the outline of the ground-truth defect is drawn
    on it in white. Pixels only, no axes or colour bar, so it is fast enough for every test image.

    Args:
        image: (H, W), (H, W, 3) or (3, H, W); uint8, or float in [0, 1].
        amap: (h, w) anomaly map (resized to the image when needed).
        path: output PNG.
        mask: optional ground-truth mask (any size; nonzero = defect).
        vmin: bottom of the colour scale (default: the map's minimum).
        vmax: top of the colour scale (default: the map's maximum).
        alpha: weight of the colour map in the blend.

    Returns:
        ``path``. The PNG is (H, 2 W + 4) pixels.
    """
    img = _image_rgb(image)
    overlay = heatmap_overlay(img, amap, vmin=vmin, vmax=vmax, alpha=alpha)
    if mask is not None:
        overlay[_contour(_mask_2d(mask, img.shape[:2]))] = _CONTOUR_RGB
    gap = np.full((img.shape[0], _PANEL_GAP, 3), 255, dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.concatenate([img, gap, overlay], axis=1)).save(buf, format="PNG")
    path = atomic_write_bytes(path, buf.getvalue())
    logger.debug("wrote overlay %s", path)
    return path


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
        ax_img.set_title(caption if len(caption) <= 28 else caption[:27] + "\u2026", fontsize=8)
        ax_ov.set_title(f"{score_txt} \u00b7 {label_txt}", fontsize=8)
    mappable = ScalarMappable(norm=Normalize(vmin=lo, vmax=hi), cmap=_ANOMALY_CMAP)
    fig.colorbar(mappable, ax=list(axes.ravel()), shrink=0.85, label="anomaly score (shared scale)")
    fig.suptitle(title or "Anomaly maps (white outline = ground-truth defect; one colour scale)", fontsize=10)
    return _save(fig, path)


def _anomaly_roc(name: str, entry: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """(fpr, tpr, auroc) from {"labels", "scores"}, {"fpr", "tpr"[, "auroc"]} or an (fpr, tpr) pair."""
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


def plot_anomaly_curves(curves: Mapping[str, Any], path: str | Path, title: str | None = None) -> Path:
    """Image-level ROC curves of several methods on one axis, AUROC in the legend.

    Args:
        curves: ``{method: entry}``; an entry is ``{"labels": 0/1, "scores": ...}`` (the ROC and AUROC
            are computed here), ``{"fpr": [...], "tpr": [...], "auroc": float}`` as stored in
            ``results.json`` (AUROC from the points when absent), or an ``(fpr, tpr)`` pair. Empty
            curves are listed as "n/a".
        path: output PNG.
        title: figure title.

    Returns:
        ``path``.
    """
    _check_nonempty(curves, "curves")
    fig = Figure(figsize=(5.6, 4.4), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=1, label="chance")
    for i, (name, entry) in enumerate(curves.items()):
        fpr, tpr, auroc = _anomaly_roc(name, entry)
        linestyle = _DASHES[(i // len(PALETTE)) % len(_DASHES)]
        if fpr.size == 0:
            ax.plot([], [], color=_color(i), linestyle=linestyle, label=f"{name}: n/a")
            continue
        label = f"{name} (AUROC {auroc:.3f})" if math.isfinite(auroc) else name
        ax.plot(fpr, tpr, color=_color(i), linestyle=linestyle, linewidth=1.8, label=label)
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.grid(True, color="0.9", linewidth=0.6)
    ax.set_xlabel("false positive rate (normal images flagged)")
    ax.set_ylabel("true positive rate (anomalous images caught)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or "Image-level ROC (dotted diagonal = chance)", fontsize=10)
    return _save(fig, path)


def plot_rd_curves(
    curves: Mapping[str, Sequence[Mapping[str, Any]]], path: str | Path, title: str = ""
) -> Path:
    """Rate-distortion curves: bpp vs PSNR (left) and vs MS-SSIM in dB (right), one line per codec.

    Args:
        curves: ``{codec: [{"bpp", "psnr", "ms_ssim_db"?}, ...]}`` (points in any order; sorted by bpp).
        path: output PNG.
        title: figure title.

    Returns:
        ``path``.
    """
    _check_nonempty(curves, "curves")
    has_ssim = all("ms_ssim_db" in p for pts in curves.values() for p in pts)
    fig = Figure(figsize=(10.5 if has_ssim else 5.6, 4.4), layout="constrained")
    axes = fig.subplots(1, 2 if has_ssim else 1, squeeze=False)[0]
    for ax, key, label in zip(
        axes, ("psnr", "ms_ssim_db"), ("PSNR (dB, RGB)", "MS-SSIM (dB) = −10·log10(1 − MS-SSIM)")
    ):
        for i, (name, pts) in enumerate(curves.items()):
            pts = sorted(pts, key=lambda p: p["bpp"])
            ax.plot([p["bpp"] for p in pts], [p[key] for p in pts], label=name, linewidth=1.6, markersize=4,
                    **_line_style(i))  # fmt: skip
        ax.grid(True, color="0.9", linewidth=0.6)
        ax.set_xlabel("bits per pixel (real file size)")
        ax.set_ylabel(label)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(title or "Rate-distortion (higher and further left is better)", fontsize=10)
    return _save(fig, path)
