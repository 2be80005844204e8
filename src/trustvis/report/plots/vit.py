"""Figures of the small-data ViT methods: AAL's link matrix (CNN map x ViT head) and attention maps beside a CNN's
activation maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from trustvis.report.plots.common import _as_array, _check_nonempty, _image_rgb, _save

__all__ = ["plot_attention_maps", "plot_link_matrix"]


def plot_link_matrix(
    matrices: Mapping[str, Any], path: str | Path, heads_per_block: int, map_groups: Sequence[tuple[str, int]] = (),
    title: str = "",
) -> Path:  # fmt: skip
    """One heatmap per matrix of link magnitudes |w| (C CNN maps x N·M heads, block-major), side by side.

    Args:
        matrices: ``{panel title: (C, N·M) array}`` — e.g. the links of a first run and the kept links of the
            advanced module.
        heads_per_block: M, to mark the blocks on the x axis.
        map_groups: ``[(name, channels)]`` of the CNN layers stacked on the y axis (lines between them).

    Raises:
        ValueError: nothing to plot, or a matrix that is not 2-D.
    """
    _check_nonempty(matrices, "matrices")
    arrays = {k: _as_array(v).astype(float) for k, v in matrices.items()}
    for k, a in arrays.items():
        if a.ndim != 2:
            raise ValueError(f"link matrix {k!r} must be 2-D (maps x heads), got shape {a.shape}")
    fig = Figure(figsize=(3.6 * len(arrays) + 1.0, 5.2), layout="constrained")
    axes = fig.subplots(1, len(arrays), squeeze=False)[0]
    for ax, (name, a) in zip(axes, arrays.items()):
        im = ax.imshow(a, aspect="auto", cmap="viridis", interpolation="nearest")
        n_heads = a.shape[1]
        m = max(1, heads_per_block)
        ticks = np.arange(0, n_heads, m)
        ax.set_xticks(ticks + (m - 1) / 2, [f"b{i + 1}" for i in range(len(ticks))], fontsize=8)
        for x in ticks[1:]:
            ax.axvline(x - 0.5, color="white", linewidth=0.8)
        start, yt, yl = 0, [], []
        for gname, c in map_groups:
            yt.append(start + (c - 1) / 2)
            yl.append(gname)
            start += c
            if start < a.shape[0]:
                ax.axhline(start - 0.5, color="white", linewidth=0.8)
        if yt:
            ax.set_yticks(yt, yl, fontsize=8)
        ax.set_xlabel(f"ViT head (block b1..b{len(ticks)}, {m} heads each)", fontsize=9)
        ax.set_ylabel("CNN activation map", fontsize=9)
        ax.set_title(name, fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.8, label="|w|")
    fig.suptitle(title or "AAL links: |w| from each ViT head to each CNN map", fontsize=11)
    return _save(fig, path)


def plot_attention_maps(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], path: str | Path,
                        title: str = "") -> Path:  # fmt: skip
    """A grid: one row per image, the image first, then one map per column name (each shown on its own scale).

    Args:
        rows: ``[{"image": (H,W[,3]) uint8 or [0,1] float, "maps": [(P,P) array per column], "caption": str}]``.
        columns: the names of the map columns.

    Raises:
        ValueError: no rows, or a row whose number of maps differs from ``columns``.
    """
    if not rows:
        raise ValueError("Nothing to plot: rows is empty.")
    k = len(columns)
    fig = Figure(figsize=(1.6 * (k + 1) + 0.4, 1.7 * len(rows) + 0.6), layout="constrained")
    axes = fig.subplots(len(rows), k + 1, squeeze=False)
    for r, row in enumerate(rows):
        maps = list(row["maps"])
        if len(maps) != k:
            raise ValueError(f"row {r}: {len(maps)} maps for {k} columns")
        axes[r, 0].imshow(_image_rgb(row["image"]), interpolation="nearest")
        axes[r, 0].set_ylabel(str(row.get("caption", "")), fontsize=8)
        for c, amap in enumerate(maps):
            a = _as_array(amap).astype(float)
            axes[r, c + 1].imshow(a, cmap="magma", interpolation="bilinear")
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    for c, name in enumerate(["image", *columns]):
        axes[0, c].set_title(name, fontsize=8)
    fig.suptitle(title or "attention maps beside CNN activation maps", fontsize=10)
    return _save(fig, path)
