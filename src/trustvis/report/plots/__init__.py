"""Figures of the benches and the run report: plain data in, a PNG file out.

Every function takes plain Python/numpy data and a path, writes a PNG (``dpi=120``, atomically) and
returns the path. Figures are built on :class:`matplotlib.figure.Figure` directly (Agg canvas, no pyplot,
no global state), so they are safe in threads and on headless machines. Colours are the Okabe-Ito
colour-blind-safe palette, keyed by name: a method, codec or condition has the colour of
:func:`method_color` in every figure (the ROC, the bar charts, the robustness and rate-distortion
plots); series of one figure that share a colour differ by hatch (bars) or dash pattern and marker
(lines). Legends sit outside the axes, layouts are ``constrained``, files are saved with a tight
bounding box and long tick labels are wrapped or turned, so nothing overlaps or is cut off. A figure
whose series would each be a single point is drawn as bars instead (robustness with one condition,
rate-distortion with one rate point per codec) or not at all (training curves).

One module per subject: :mod:`.common` (palette, saving, training curves, reliability diagrams, heatmap
overlays), :mod:`.detect`, :mod:`.classify` (augment, calibrate, adapt), :mod:`.anomaly`,
:mod:`.antispoof` (spectra, per-display bars, RGB + depth pairs), :mod:`.codec`, :mod:`.reid` (retrieval
examples, gradient norms per layer group, CMC curves), :mod:`.active` (learning curves, queried classes) and
:mod:`.vit` (AAL's link matrix, attention beside CNN maps) and :mod:`.multimodal` (images generated from speech).
"""

from __future__ import annotations

from trustvis.report.plots.anomaly import plot_anomaly_curves, plot_anomaly_grid
from trustvis.report.plots.antispoof import plot_pair_examples, plot_per_medium, plot_power_spectra
from trustvis.report.plots.classify import plot_metric_bars, plot_uncertainty
from trustvis.report.plots.codec import plot_rd_curves
from trustvis.report.plots.common import (
    OVERLAY_MAX_SIDE,
    PALETTE,
    heatmap_overlay,
    method_color,
    plot_reliability,
    plot_training_curves,
    save_overlay,
    series_styles,
)
from trustvis.report.plots.detect import (
    DEGRADATION_ORDER,
    degradation_label,
    plot_adversarial,
    plot_cost,
    plot_family_metric,
    plot_image_rows,
    plot_maps,
    plot_robustness,
    plot_roc,
    plot_spectra,
)
from trustvis.report.plots.reid import plot_cmc, plot_gradient_norms, plot_retrieval_examples

__all__ = [
    "DEGRADATION_ORDER",
    "OVERLAY_MAX_SIDE",
    "PALETTE",
    "degradation_label",
    "heatmap_overlay",
    "method_color",
    "plot_adversarial",
    "plot_anomaly_curves",
    "plot_anomaly_grid",
    "plot_cmc",
    "plot_cost",
    "plot_family_metric",
    "plot_gradient_norms",
    "plot_image_rows",
    "plot_maps",
    "plot_metric_bars",
    "plot_pair_examples",
    "plot_per_medium",
    "plot_power_spectra",
    "plot_rd_curves",
    "plot_reliability",
    "plot_retrieval_examples",
    "plot_robustness",
    "plot_roc",
    "plot_spectra",
    "plot_training_curves",
    "plot_uncertainty",
    "save_overlay",
    "series_styles",
]
