"""Figures of the image ↔ speech methods: images each method generates from the same spoken digits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from trustvis.report.plots.common import _as_array, _check_nonempty, _save

__all__ = ["plot_generated_grid"]


def plot_generated_grid(
    rows: Mapping[str, Any], columns: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """A grid of gray images: one row per method, one column per input (its caption in ``columns``).

    Args:
        rows: ``{method: (K, H, W) array in [0, 1]}``, K = ``len(columns)``.
        columns: the caption of each input (e.g. the spoken digit and whether the voice is real).

    Raises:
        ValueError: no rows, or a row whose number of images differs from ``columns``.
    """
    _check_nonempty(rows, "rows")
    k = len(columns)
    fig = Figure(figsize=(0.75 * k + 1.4, 0.9 * len(rows) + 0.9), layout="constrained")
    axes = fig.subplots(len(rows), max(k, 1), squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        imgs = _as_array(images).astype(float)
        if len(imgs) != k:
            raise ValueError(f"row {name!r}: {len(imgs)} images for {k} columns")
        for c in range(k):
            ax = axes[r, c]
            ax.imshow(imgs[c], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=7)
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.suptitle(title or "generated images", fontsize=10)
    return _save(fig, path)
