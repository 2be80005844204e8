"""Figures of the codec bench: rate-distortion curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from trustvis.report.plots.common import _check_nonempty, _line_style, _save

__all__ = ["plot_rd_curves"]


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
