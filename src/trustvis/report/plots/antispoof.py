"""Figures of the anti-spoofing bench: real vs spoof power spectra of RGB and ToF depth, a metric per
display (attack medium), and example RGB + depth pairs with their scores."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from trustvis.report.plots.classify import plot_metric_bars
from trustvis.report.plots.common import (
    PALETTE,
    _check_nonempty,
    _finite_mean,
    _float,
    _image_rgb,
    _ordered_union,
    _save,
    _wrap,
    method_color,
)

logger = logging.getLogger(__name__)

__all__ = ["plot_pair_examples", "plot_per_medium", "plot_power_spectra"]

_MODALITY_NAMES = {"rgb": "RGB", "depth": "ToF depth", "tof": "ToF depth"}
_CLASS_COLORS = {"real": PALETTE[0], "spoof": PALETTE[3]}  # blue / vermilion, as in the overlays
_PAD_NAMES = {
    "apcer": "APCER (attacks classified bona fide)",
    "bpcer": "BPCER (bona fide classified attack)",
    "acer": "ACER = (APCER + BPCER) / 2",
    "eer": "equal error rate (EER)",
    "auc": "ROC AUC",
}
_ERROR_RATES = {"apcer", "bpcer", "acer", "eer", "hter"}
_MEAN_KEYS = {"mean", "mean_unseen", "mean unseen"}
_MAX_PAIRS = 12


def _curves(name: str, values: Any, n_radii: int) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    a = a[None] if a.ndim == 1 else a
    if a.ndim != 2 or a.shape[1] != n_radii or a.shape[0] == 0:
        raise ValueError(
            f"Spectra {name!r} must have shape (N, {n_radii}) (one log-power row per image, one column "
            f"per radius); got shape {tuple(np.shape(values))}."
        )
    return a


def plot_power_spectra(
    spectra: Mapping[str, Mapping[str, np.ndarray]],
    radii: Any,
    path: str | Path,
    title: str = "",
) -> Path:
    """Azimuthal power spectra of real vs spoof samples, one panel per modality (RGB, ToF depth).

    Each of ``real`` and ``spoof`` is drawn as the mean over its images with a ±1 std band; optional
    per-display spoof curves (keys ``spoof/<display>``) as thin lines of their mean. The zero-frequency
    ring (0 once the mean is removed) is not drawn.

    Args:
        spectra: ``{modality: {"real": (N, R), "spoof": (N, R), "spoof/<display>": (N, R), ...}}`` with
            the log-power rows of :func:`trustvis.metrics.spectrum.azimuthal_power_spectrum`; the
            modalities ``rgb`` and ``depth`` are titled "RGB" and "ToF depth".
        radii: ``(R,)`` radial frequencies in cycles/pixel.
        path: output PNG.
        title: figure title.

    Returns:
        ``path``.

    Raises:
        ValueError: on an empty mapping, a modality without curves or rows of the wrong length.
    """
    _check_nonempty(spectra, "spectra")
    r = np.asarray(radii, dtype=float).reshape(-1)
    if r.size < 2:
        raise ValueError(f"radii must hold at least 2 radial frequencies; got {r.size}.")
    data: dict[str, dict[str, np.ndarray]] = {}
    for modality, curves in spectra.items():
        if not isinstance(curves, Mapping) or not curves:
            raise ValueError(
                f"Nothing to plot for modality {modality!r}: expected {{'real': ..., 'spoof': ...}}."
            )
        data[modality] = {str(k): _curves(f"{modality}/{k}", v, r.size) for k, v in curves.items()}
    shown = r > 0  # the DC ring is log10(eps) by construction
    fig = Figure(figsize=(4.6 * len(data) + 1.6, 3.8), layout="constrained")
    axes = fig.subplots(1, len(data), squeeze=False)[0]
    for ax, (modality, curves) in zip(axes, data.items()):
        main = [k for k in ("real", "spoof") if k in curves]
        extra = [k for k in curves if k not in main]
        for k in extra:  # per-display spoof curves: thin, under the bands
            label = k.split("/", 1)[1] if k.startswith("spoof/") else k
            ax.plot(r[shown], curves[k].mean(axis=0)[shown], color=method_color(label), linewidth=0.8,
                    alpha=0.85, linestyle="--", label=f"{_wrap(label, 24)} (n={len(curves[k])})")  # fmt: skip
        for k in main:
            a = curves[k]
            mean, std = a.mean(axis=0)[shown], a.std(axis=0)[shown]
            color = _CLASS_COLORS[k]
            ax.fill_between(r[shown], mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
            ax.plot(r[shown], mean, color=color, linewidth=2.0, label=f"{k} (n={len(a)}, mean ± std)")
        ax.set_title(_MODALITY_NAMES.get(str(modality).lower(), str(modality)), fontsize=10)
        ax.set_xlabel("spatial frequency (cycles/pixel)")
        ax.set_xlim(0, max(0.5, float(r.max())))
        ax.grid(True, color="0.9", linewidth=0.6)
        ax.legend(fontsize=7, loc="best", frameon=False)
    axes[0].set_ylabel("log\u2081\u2080 power (azimuthal mean)")
    fig.suptitle(title or "Azimuthally averaged power spectra, real vs spoof", fontsize=11)
    return _save(fig, path)


def plot_per_medium(
    results: Mapping[str, Mapping[str, float]],
    path: str | Path,
    metric: str = "acer",
    title: str = "",
) -> Path:
    """Grouped bars of one metric per display (attack medium) and their mean, one bar per method.

    A thin wrapper of :func:`trustvis.report.plots.classify.plot_metric_bars` (method colours as in
    every figure; nan shows as "n/a"). The final group is the mean over the displays, computed here and
    ignoring nan; keys named ``mean``/``mean_unseen`` in ``results`` are ignored.

    Args:
        results: ``{method: {display: value}}``, e.g. the ``acer`` of each ``per_medium`` entry of
            :func:`trustvis.metrics.antispoof.per_medium_metrics`.
        path: output PNG.
        metric: metric key for the axis label (``acer``, ``apcer``, ``bpcer``, ``eer``, ``auc``, ...).
        title: figure title (default derived from the metric; error rates say "lower is better").

    Returns:
        ``path``.
    """
    _check_nonempty(results, "results")
    media = _ordered_union(results.values(), skip=_MEAN_KEYS)
    if not media:
        raise ValueError("Nothing to plot: no display values in results.")
    table: dict[str, dict[str, float]] = {d: {m: _float(results[m].get(d)) for m in results} for d in media}
    table["mean"] = {m: _finite_mean(table[d][m] for d in media) for m in results}
    key = metric.lower()
    name = _PAD_NAMES.get(key, metric)
    better = " (lower is better)" if key in _ERROR_RATES else " (higher is better)" if key == "auc" else ""
    short = key.upper() if key in _PAD_NAMES else metric
    return plot_metric_bars(table, name, path, title=title or f"{short} per display{better}")


def _depth_2d(depth: Any) -> np.ndarray:
    d = np.asarray(depth.detach().cpu().numpy() if hasattr(depth, "detach") else depth, dtype=float)
    d = d.reshape(d.shape[-2:]) if d.ndim > 2 and int(np.prod(d.shape[:-2])) == 1 else d
    d = d[..., 0] if d.ndim == 3 and d.shape[-1] == 1 else d
    if d.ndim != 2 or d.size == 0:
        raise ValueError(f"depth must be a 2-D (H, W) map; got shape {tuple(np.shape(depth))}.")
    return d


def _caption(row: Mapping[str, Any]) -> str:
    if row.get("caption"):
        return str(row["caption"])
    parts = []
    label = row.get("label")
    if label is not None:
        parts.append(
            {0: "real", 1: "spoof"}.get(int(label), str(label)) if not isinstance(label, str) else label
        )
    if row.get("medium"):
        parts.append(str(row["medium"]))
    score = _float(row.get("score"))
    if math.isfinite(score):
        parts.append(f"p(spoof) {score:.2f}")
    return " \u00b7 ".join(parts)


def _is_spoof(row: Mapping[str, Any], caption: str) -> bool:
    label = row.get("label")
    if label is None:
        return caption.startswith("spoof")
    return str(label).lower() in ("1", "spoof", "attack")


def plot_pair_examples(rows: Sequence[Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """A grid of example RGB + ToF depth pairs, each pair under its caption.

    The depth is drawn with the ``viridis`` colour map on the pair's own scale (its 1st-99th percentile
    of valid pixels: dark = near); holes (0 or nan) are black. Captions of spoof samples are vermilion,
    of real ones blue. Pairs are laid out in 1-4 columns; more than 12 are drawn but crowd the figure.

    Args:
        rows: one mapping per example with ``rgb`` (uint8 (H, W, 3), or anything
            :func:`~trustvis.report.plots.common.heatmap_overlay` accepts as an image), ``depth`` ((H, W)
            float), and either ``caption`` (e.g. ``"spoof · tablet-oled-pentile · p(spoof) 0.91"``) or
            any of ``label`` (0/1 or a name), ``medium`` and ``score``, from which one is built.
        path: output PNG.
        title: figure title.

    Returns:
        ``path``.

    Raises:
        ValueError: when ``rows`` is empty or a row lacks ``rgb``/``depth``.
    """
    if not rows:
        raise ValueError("Nothing to plot: rows is empty.")
    for i, row in enumerate(rows):
        missing = [k for k in ("rgb", "depth") if not isinstance(row, Mapping) or k not in row]
        if missing:
            raise ValueError(f"Example {i} lacks {missing}; each row needs 'rgb' and 'depth'.")
    if len(rows) > _MAX_PAIRS:
        logger.warning("plot_pair_examples: %d pairs; more than %d crowd the figure.", len(rows), _MAX_PAIRS)
    n = len(rows)
    ncols = 1 if n == 1 else 2 if n <= 4 else 3 if n <= 9 else 4
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(3.6 * ncols, 2.1 * nrows + 0.5), layout="constrained")
    subfigs = np.asarray(fig.subfigures(nrows, ncols, squeeze=False))
    cmap = colormaps["viridis"].with_extremes(bad="black")
    for k, row in enumerate(rows):
        sub = subfigs[k // ncols, k % ncols]
        ax_rgb, ax_d = sub.subplots(1, 2)
        rgb = _image_rgb(row["rgb"])
        depth = _depth_2d(row["depth"])
        holes = ~np.isfinite(depth) | (depth == 0)
        valid = depth[~holes]
        vmin, vmax = np.percentile(valid, [1, 99]) if valid.size else (0.0, 1.0)
        ax_rgb.imshow(rgb, interpolation="nearest")
        ax_d.imshow(np.ma.masked_array(depth, mask=holes), cmap=cmap, vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1,
                    interpolation="nearest")  # fmt: skip
        ax_rgb.set_title("RGB", fontsize=7, color="0.35")
        ax_d.set_title("ToF depth", fontsize=7, color="0.35")
        for ax in (ax_rgb, ax_d):
            ax.set_xticks([])
            ax.set_yticks([])
        caption = _caption(row)
        color = _CLASS_COLORS["spoof" if _is_spoof(row, caption) else "real"]
        sub.suptitle(_wrap(caption, 44, break_words=True), fontsize=8, color=color)
    for k in range(n, nrows * ncols):
        subfigs[k // ncols, k % ncols].set_visible(False)
    fig.suptitle(
        title or "Example pairs (depth: own colour scale per pair, dark = near, holes black)", fontsize=10
    )
    return _save(fig, path)
