"""Shared figure helpers: palette and line styles, atomic PNG saving, and the figures several
benches, the CLI and the run report use (training curves, reliability diagrams, heatmap overlays)."""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from PIL import Image
from scipy import ndimage

from trustvis.atomic import atomic_write_bytes

logger = logging.getLogger(__name__)

__all__ = ["PALETTE", "heatmap_overlay", "plot_reliability", "plot_training_curves", "save_overlay"]


# Okabe & Ito (2008) colour-blind-safe palette, ordered for contrast on white (yellow last).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#000000", "#F0E442")
_HATCHES = ("", "//", "..", "xx", "\\\\", "++", "oo", "--")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_DASHES = ("-", "--", "-.", ":")
_METRIC_NAMES = {
    "acc": "accuracy",
    "acc_real": "accuracy on real images",
    "acc_fake": "accuracy on fake images",
    "ap": "average precision (AP)",
    "auc": "ROC AUC",
    "eer": "equal error rate (EER)",
}
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


def _xy(curve: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(curve, Mapping):
        fpr, tpr = curve.get("fpr", []), curve.get("tpr", [])
    else:
        fpr, tpr = curve
    fpr, tpr = np.asarray(fpr, dtype=float), np.asarray(tpr, dtype=float)
    if fpr.shape != tpr.shape:
        raise ValueError(f"ROC curve has {fpr.size} FPR values but {tpr.size} TPR values.")
    return fpr, tpr


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


# --- Heatmap overlays (anomaly maps) ---------------------------------------------------------------------

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
