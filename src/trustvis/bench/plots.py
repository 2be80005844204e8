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
from matplotlib.figure import Figure

from trustvis.data.cache import atomic_write_bytes

logger = logging.getLogger(__name__)

__all__ = [
    "DEGRADATION_ORDER",
    "PALETTE",
    "degradation_label",
    "plot_cost",
    "plot_maps",
    "plot_family_metric",
    "plot_robustness",
    "plot_roc",
    "plot_spectra",
    "plot_training_curves",
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
