"""Figures of the benches and the run report: plain data in, a PNG file out.

Every function takes plain Python/numpy data and a path, writes a PNG (``dpi=120``, atomically) and
returns the path. Figures are built on :class:`matplotlib.figure.Figure` directly (Agg canvas, no pyplot,
no global state), so they are safe in threads and on headless machines. Colours are the Okabe-Ito
colour-blind-safe palette; beyond eight series, bars add hatches and lines add dash patterns and
markers so that no two series look the same. Legends sit outside the axes and layouts are
``constrained``, so nothing overlaps.

One module per subject: :mod:`.common` (palette, saving, training curves, reliability diagrams, heatmap
overlays), :mod:`.detect`, :mod:`.classify` (augment, calibrate, adapt), :mod:`.anomaly` and :mod:`.codec`.
"""

from __future__ import annotations

from trustvis.report.plots.anomaly import plot_anomaly_curves, plot_anomaly_grid
from trustvis.report.plots.classify import plot_metric_bars, plot_uncertainty
from trustvis.report.plots.codec import plot_rd_curves
from trustvis.report.plots.common import (
    PALETTE,
    heatmap_overlay,
    plot_reliability,
    plot_training_curves,
    save_overlay,
)
from trustvis.report.plots.detect import (
    DEGRADATION_ORDER,
    degradation_label,
    plot_adversarial,
    plot_cost,
    plot_family_metric,
    plot_maps,
    plot_robustness,
    plot_roc,
    plot_spectra,
)

__all__ = [
    "DEGRADATION_ORDER",
    "PALETTE",
    "degradation_label",
    "heatmap_overlay",
    "plot_adversarial",
    "plot_anomaly_curves",
    "plot_anomaly_grid",
    "plot_cost",
    "plot_family_metric",
    "plot_maps",
    "plot_metric_bars",
    "plot_rd_curves",
    "plot_reliability",
    "plot_robustness",
    "plot_roc",
    "plot_spectra",
    "plot_training_curves",
    "plot_uncertainty",
    "save_overlay",
]
