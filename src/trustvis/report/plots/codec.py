"""Figures of the codec bench: rate-distortion curves (bars when every codec has a single rate point)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from trustvis.report.plots.common import (
    _bar_style,
    _check_nonempty,
    _float,
    _plot_style,
    _save,
    _single_points,
    series_styles,
)

__all__ = ["plot_rd_curves"]

_RD_AXES = (
    ("psnr", "PSNR (dB, RGB)"),
    ("ms_ssim_db", "MS-SSIM (dB) = −10·log10(1 − MS-SSIM)"),
)


def plot_rd_curves(
    curves: Mapping[str, Sequence[Mapping[str, Any]]], path: str | Path, title: str = ""
) -> Path:
    """Rate-distortion curves: bpp vs PSNR (left) and vs MS-SSIM in dB (right), one line per codec.

    Each codec has its colour of :func:`~trustvis.report.plots.common.method_color`. When no codec has
    two points (e.g. a run with one lambda and one quality each), there is no curve to draw: the figure
    is then a bar chart, one panel per quantity (bpp, PSNR, MS-SSIM dB), one bar per codec.

    Args:
        curves: ``{codec: [{"bpp", "psnr", "ms_ssim_db"?}, ...]}`` (points in any order; sorted by bpp).
        path: output PNG.
        title: figure title.

    Returns:
        ``path``.
    """
    _check_nonempty(curves, "curves")
    styles = series_styles(curves)
    has_ssim = all("ms_ssim_db" in p for pts in curves.values() for p in pts)
    if _single_points(curves.values()):
        return _rd_bars(curves, styles, has_ssim, path, title)
    fig = Figure(figsize=(10.5 if has_ssim else 5.6, 4.4), layout="constrained")
    axes = fig.subplots(1, 2 if has_ssim else 1, squeeze=False)[0]
    for ax, (key, label) in zip(axes, _RD_AXES):
        for name, pts in curves.items():
            pts = sorted(pts, key=lambda p: p["bpp"])
            ax.plot([p["bpp"] for p in pts], [p[key] for p in pts], label=name, linewidth=1.6, markersize=4,
                    **_plot_style(styles[name]))  # fmt: skip
        ax.grid(True, color="0.9", linewidth=0.6)
        ax.set_xlabel("bits per pixel (real file size)")
        ax.set_ylabel(label)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(title or "Rate-distortion (higher and further left is better)", fontsize=10)
    return _save(fig, path)


def _rd_bars(
    curves: Mapping[str, Sequence[Mapping[str, Any]]],
    styles: Mapping[str, Mapping[str, Any]],
    has_ssim: bool,
    path: str | Path,
    title: str,
) -> Path:
    """One rate point per codec: horizontal bars of bpp (lower is better) and of the quality measures."""
    names = list(curves)
    panels = [("bpp", "bits per pixel (lower is better)"), *(_RD_AXES if has_ssim else _RD_AXES[:1])]
    fig = Figure(figsize=(3.6 * len(panels) + 1.2, 0.45 * len(names) + 1.7), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    y = np.arange(len(names))
    for ax, (key, label) in zip(axes, panels):
        vals = [_float(curves[n][0].get(key)) if curves[n] else math.nan for n in names]
        for yi, n, v in zip(y, names, vals):
            ax.barh(yi, v if math.isfinite(v) else 0.0, edgecolor="white", **_bar_style(styles[n]))
            ax.text(max(v, 0.0) if math.isfinite(v) else 0.0, yi, f" {v:.3g}" if math.isfinite(v) else " n/a",
                    va="center", fontsize=8)  # fmt: skip
        finite = [v for v in vals if math.isfinite(v)]
        ax.set_xlim(0, (max(finite) if finite and max(finite) > 0 else 1.0) * 1.25)
        ax.set_xlabel(label, fontsize=9)
        ax.xaxis.grid(True, color="0.9", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(names)
    axes[0].invert_yaxis()
    what = "rate and quality, one rate point per codec"
    fig.suptitle(f"{title}: {what}" if title else what[0].upper() + what[1:], fontsize=10)
    return _save(fig, path)
