"""Shared figure helpers: palette and line styles, atomic PNG saving, and the figures several
benches, the CLI and the run report use (training curves, reliability diagrams, heatmap overlays)."""

from __future__ import annotations

import io
import logging
import math
import textwrap
import zlib
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

__all__ = [
    "OVERLAY_MAX_SIDE",
    "PALETTE",
    "heatmap_overlay",
    "method_color",
    "plot_reliability",
    "plot_training_curves",
    "save_overlay",
    "series_styles",
]


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


# --- One colour per method --------------------------------------------------------------------------------
#
# A method (detector, anomaly method, codec, training condition, calibrator) has the same colour in every
# figure of a report: the ROC, the bar charts, the robustness and rate-distortion plots. The names a bench
# compares side by side have fixed palette slots chosen so that they differ within the bench; any other
# name gets a slot from a hash of its name (stable across runs and processes). Names that share a slot in
# one figure keep that colour and differ by hatch (bars) or dash pattern and marker (lines).

#: palette slot of the names the benches compare (0 blue, 1 orange, 2 green, 3 vermilion, 4 sky blue,
#: 5 purple, 6 black, 7 yellow)
_NAME_SLOTS: dict[str, int] = {
    # detectors: trustvis bench detect
    "cnndet": 0, "bihpf": 1, "frepgan": 2, "d4": 3, "npr": 4, "fingerprintnet": 5,
    # anomaly
    "padim": 0, "fyd": 1,
    # codecs, the EQLINR ablation variants
    "coolchic": 0, "eqlinr": 1, "webp": 2, "avif": 4, "jpeg2000": 5, "jpeg": 6,
    "eqlinr-no-lem": 2, "eqlinr-no-sga": 3, "eqlinr-no-tempreg": 5, "eqlinr-laplace": 7,
    # augmentation conditions
    "none": 6, "mixup": 0, "cutmix": 1, "dmixup-k2": 4, "dmixup-k3": 2, "dmixup-k5": 5,
    "dcutmix-k2": 7, "dcutmix-k3": 3, "dcutmix-k5": 3,
    # calibrators ("ts+ce" and "ts+sctl" share the calibrator's colour and differ by hatch / dash)
    "uncalibrated": 6, "ts": 0, "cts": 1, "ets": 2, "pts": 3, "vs": 4,
    # adaptation conditions
    "linear": 0, "full": 6, "lora-r4": 2, "lora-r8": 1, "lora-r16": 3,
    # anti-spoofing
    "mtofnet": 1, "rgbcnn": 0, "silentface": 5, "depthcnn": 4, "rgbdcnn": 3,
    # re-identification
    "finetune": 0, "fixbase": 2, "rollback": 1,
}  # fmt: skip


def _name_slot(name: str) -> int:
    key = str(name).strip().lower()
    if key not in _NAME_SLOTS and "+" in key:  # "<calibrator>+<loss>": the calibrator's colour
        key = key.split("+", 1)[0]
    if key in _NAME_SLOTS:
        return _NAME_SLOTS[key]
    return zlib.crc32(key.encode("utf-8")) % len(PALETTE)


def method_color(name: str) -> str:
    """The colour of a method, codec or condition ``name`` in every figure (a hex string of :data:`PALETTE`).

    Known names (the methods, codecs and conditions the benches compare) have fixed colours that differ
    within each bench; other names get one from a stable hash of the name (case-insensitive)."""
    return PALETTE[_name_slot(name)]


def series_styles(names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Style of each series of one figure, keyed by name: ``color`` (:func:`method_color`, always), and
    ``hatch``, ``linestyle`` and ``marker``, which tell apart the names of this figure that share a colour
    (the first keeps a plain bar and a solid line)."""
    used: dict[int, int] = {}
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        if name in out:
            continue
        slot = _name_slot(name)
        k = used.get(slot, 0)
        used[slot] = k + 1
        out[name] = {
            "color": PALETTE[slot],
            "hatch": _HATCHES[k % len(_HATCHES)],
            "linestyle": _DASHES[k % len(_DASHES)],
            "marker": _MARKERS[(slot + k) % len(_MARKERS)],
        }
    return out


def _bar_style(style: Mapping[str, Any]) -> dict[str, Any]:
    return {"color": style["color"], "hatch": style["hatch"] or None}


def _plot_style(style: Mapping[str, Any]) -> dict[str, Any]:
    return {"color": style["color"], "linestyle": style["linestyle"], "marker": style["marker"]}


def _wrap(label: str, width: int = 18, break_words: bool = False) -> str:
    """A long label on several lines (broken at spaces and hyphens, and with ``break_words`` inside words
    longer than a line, such as file paths), a short one as is."""
    text = str(label)
    if len(text) <= width or "\n" in text:
        return text
    return textwrap.fill(text, width=width, break_long_words=break_words)


def _tick_labels(ax: Any, labels: Sequence[str], rotate: bool) -> None:
    """x tick labels that are never cut off or run into each other: long ones wrapped onto several lines,
    and, with ``rotate`` (many or long labels), turned by 30 degrees and anchored at their right end."""
    labels = [_wrap(lb) for lb in labels]
    if rotate:
        ax.set_xticklabels(labels, rotation=30, ha="right", rotation_mode="anchor")
    else:
        ax.set_xticklabels(labels)


def _single_points(series: Iterable[Sequence[Any]]) -> bool:
    """True when no series has two points or more (a line plot of it would show lone dots)."""
    return all(len(s) < 2 for s in series)


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
    named ``lr`` uses a log axis. A key with fewer than two logged values in every split has no
    curve to show and gets no panel (the run report lists its last value in a table).

    Args:
        records: dicts with a ``"step"`` and scalar metrics, e.g. ``{"step": 20, "loss": 0.61}``.
        path: output PNG.
        keys: metric keys, one panel each.
        title: figure title.

    Returns:
        ``path``.

    Raises:
        ValueError: if no record has a ``"step"``, ``keys`` is empty, or no key has two values in
            one split (every series would be a single point).
    """
    recs = [r for r in records if isinstance(r, Mapping) and math.isfinite(_float(r.get("step")))]
    if not recs:
        raise ValueError("No records with a numeric 'step' to plot.")
    if not keys:
        raise ValueError("keys is empty; name at least one metric to plot.")
    splits = _ordered_union([{str(r.get("split", "train")): None} for r in recs])

    def n_points(key: str, split: str) -> int:
        return sum(
            1 for r in recs if str(r.get("split", "train")) == split and math.isfinite(_float(r.get(key)))
        )

    keys = [k for k in keys if any(n_points(k, s) >= 2 for s in splits)]
    if not keys:
        raise ValueError("Nothing to plot: no metric has two logged values in one split.")
    ncols = min(3, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    fig = Figure(figsize=(4.3 * ncols + 1.2, 3.2 * nrows + 0.3), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for k, key in enumerate(keys):
        ax = axes[k // ncols][k % ncols]
        for i, split in enumerate(splits):
            pts = sorted(
                (_float(r["step"]), _float(r.get(key)))
                for r in recs
                if str(r.get("split", "train")) == split and math.isfinite(_float(r.get(key)))
            )
            if len(pts) < 2:  # a lone value of this split (e.g. one validation) is in the table
                continue
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


#: longest side of a saved overlay PNG unless the caller asks for another
OVERLAY_MAX_SIDE = 1024
_MIN_PANEL = 256  # smaller images are enlarged (nearest neighbour) to this panel size when annotated
_MIN_ANNOTATED_SIDE = 400
_TEXT_RGB = (26, 26, 26)
_POSITIVE_RGB = (213, 94, 0)  # vermilion: above the threshold
_NEGATIVE_RGB = (0, 114, 178)  # blue: below it


def _font(size: int) -> Any:
    """DejaVu Sans (shipped with matplotlib) at ``size`` px; Pillow's own font when it cannot be read."""
    from matplotlib import get_data_path
    from PIL import ImageFont

    try:
        return ImageFont.truetype(str(Path(get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except OSError:
        try:
            return ImageFont.load_default(size=size)
        except (TypeError, OSError):  # Pillow without FreeType
            return ImageFont.load_default()


def _resize_rgb(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W, 3) -> (h, w, 3): Lanczos when reducing, nearest neighbour (crisp pixels) when enlarging."""
    h, w = size
    if (h, w) == img.shape[:2]:
        return img
    grow = h > img.shape[0] or w > img.shape[1]
    method = Image.Resampling.NEAREST if grow else Image.Resampling.LANCZOS
    return np.asarray(Image.fromarray(img).resize((w, h), method))


def _fit(text: str, font: Any, width: float, draw: Any) -> str:
    """``text``, cut with an ellipsis so that it is at most ``width`` pixels wide."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "\u2026", font=font) > width:
        text = text[:-1]
    return text + "\u2026"


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def save_overlay(
    image: Any,
    amap: Any,
    path: str | Path,
    mask: Any | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    alpha: float = 0.5,
    *,
    max_side: int = OVERLAY_MAX_SIDE,
    score: float | None = None,
    threshold: float | None = None,
    verdict: str | None = None,
    title: str | None = None,
) -> Path:
    """Write one PNG: the image and its heat-map overlay side by side, at most ``max_side`` px on its long side.

    The overlay is :func:`heatmap_overlay`; with ``mask`` the outline of the ground-truth defect is drawn
    on it in white. The image keeps its aspect ratio; an image too large for ``max_side`` is reduced
    (Lanczos) and the map follows it.

    Plain (no ``score``, ``threshold``, ``verdict`` or ``title``): pixels only, ``image | overlay`` four
    white pixels apart, at the image's own resolution when it fits. Annotated (any of them given): a
    header with the ``title`` (e.g. the file name) and "score · threshold · verdict" (the verdict in
    vermilion when the score reaches the threshold, blue otherwise), and a colour bar of the scale from
    ``vmin`` to ``vmax`` with the threshold marked on it (a line) and the score (a triangle). Annotated
    overlays of small images are enlarged to a panel of 256 px (nearest neighbour), so that a person can
    read them.

    Args:
        image: (H, W), (H, W, 3) or (3, H, W); uint8, or float in [0, 1].
        amap: (h, w) anomaly map (resized to the image when needed).
        path: output PNG.
        mask: optional ground-truth mask (any size; nonzero = defect).
        vmin: bottom of the colour scale (default: the map's minimum).
        vmax: top of the colour scale (default: the map's maximum).
        alpha: weight of the colour map in the blend.
        max_side: longest side of the PNG in pixels (0 = no limit: the image's own resolution).
            Annotated overlays need at least 400.
        score: the image's anomaly score.
        threshold: the decision threshold.
        verdict: the decision in words (e.g. ``"anomalous"``).
        title: first header line, e.g. the input's file name (cut with an ellipsis when too long).

    Returns:
        ``path``.
    """
    if max_side < 0:
        raise ValueError(f"max_side must be >= 0 (0 = no limit), got {max_side}.")
    img = _image_rgb(image)
    amap2 = _map_2d(amap, img.shape[:2])  # (H, W): scale from the full-resolution map
    lo, hi = _scale(amap2, vmin, vmax)
    annotated = any(v is not None for v in (score, threshold, verdict, title))
    if annotated:
        if 0 < max_side < _MIN_ANNOTATED_SIDE:
            raise ValueError(
                f"max_side must be 0 or at least {_MIN_ANNOTATED_SIDE} for an annotated overlay, got {max_side}."
            )
        png = _annotated_overlay(img, amap2, mask, lo, hi, alpha, max_side, score, threshold, verdict, title)
    else:
        h, w = img.shape[:2]
        limit = max_side or max(h, 2 * w + _PANEL_GAP)
        f = min(1.0, limit / h, (limit - _PANEL_GAP) / (2 * w))
        size = (max(1, int(h * f)), max(1, int(w * f)))
        small = _resize_rgb(img, size)
        overlay = heatmap_overlay(small, amap2, vmin=lo, vmax=hi, alpha=alpha)
        if mask is not None:
            overlay[_contour(_mask_2d(mask, size))] = _CONTOUR_RGB
        gap = np.full((size[0], _PANEL_GAP, 3), 255, dtype=np.uint8)
        png = Image.fromarray(np.concatenate([small, gap, overlay], axis=1))
    buf = io.BytesIO()
    png.save(buf, format="PNG")
    path = atomic_write_bytes(path, buf.getvalue())
    logger.debug("wrote overlay %s", path)
    return path


def _annotated_overlay(
    img: np.ndarray,
    amap: np.ndarray,
    mask: Any | None,
    lo: float,
    hi: float,
    alpha: float,
    max_side: int,
    score: float | None,
    threshold: float | None,
    verdict: str | None,
    title: str | None,
) -> Image.Image:
    """The annotated layout of :func:`save_overlay` (header, two panels, colour bar), as a Pillow image."""
    from PIL import ImageDraw

    fs = 15
    font, small_font = _font(fs), _font(fs - 2)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    pad, gap, bar_w = 10, 8, 16
    ticks = [hi, lo] + ([threshold] if threshold is not None else [])
    label_w = max(measure.textlength(f"thr {_fmt(v)}", font=small_font) for v in ticks)
    side_w = gap + bar_w + 6 + int(math.ceil(label_w)) + pad  # colour bar and its labels
    lines = [t for t in (title, "status") if t is not None]
    line_h = int(fs * 1.45)
    head_h = pad + line_h * len(lines) + 4
    h, w = img.shape[:2]
    limit = max_side or math.inf
    f_fit = min((limit - 2 * pad - gap - side_w + pad) / (2 * w), (limit - head_h - pad) / h)
    f_small = max(1, _MIN_PANEL // max(h, w)) if max(h, w) < _MIN_PANEL else 1
    f = min(f_fit, float(f_small))
    ph, pw = max(1, int(h * f)), max(1, int(w * f))
    panel = _resize_rgb(img, (ph, pw))
    overlay = heatmap_overlay(panel, amap, vmin=lo, vmax=hi, alpha=alpha)
    if mask is not None:
        overlay[_contour(_mask_2d(mask, (ph, pw)))] = _CONTOUR_RGB

    width = pad + 2 * pw + gap + side_w
    height = head_h + ph + pad
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    canvas.paste(Image.fromarray(panel), (pad, head_h))
    canvas.paste(Image.fromarray(overlay), (pad + pw + gap, head_h))
    draw = ImageDraw.Draw(canvas)

    y = pad
    if title is not None:
        draw.text((pad, y), _fit(str(title), font, width - 2 * pad, draw), fill=_TEXT_RGB, font=font)
        y += line_h
    x = pad
    parts = []
    if score is not None:
        parts.append(f"score {_fmt(float(score))}")
    if threshold is not None:
        parts.append(f"threshold {_fmt(float(threshold))}")
    status = " \u00b7 ".join(parts)
    if status:
        draw.text((x, y), status, fill=_TEXT_RGB, font=font)
        x += int(draw.textlength(status + (" \u00b7 " if verdict else ""), font=font))
    if verdict:
        above = score is not None and threshold is not None and float(score) >= float(threshold)
        colour = _POSITIVE_RGB if above else _NEGATIVE_RGB if threshold is not None else _TEXT_RGB
        text = _fit(str(verdict), font, max(1, width - pad - x), draw)
        draw.text((x, y), text, fill=colour, font=font)

    # colour bar: vmax at the top, vmin at the bottom
    bx, by = pad + 2 * pw + gap + gap, head_h
    ramp = np.linspace(1.0, 0.0, ph)[:, None].repeat(bar_w, axis=1)
    bar = (colormaps[_ANOMALY_CMAP](ramp)[..., :3] * 255).round().astype(np.uint8)
    canvas.paste(Image.fromarray(bar), (bx, by))
    draw.rectangle([bx - 1, by - 1, bx + bar_w, by + ph], outline=(120, 120, 120))
    tx = bx + bar_w + 6

    def ypos(v: float) -> float:
        return by + (hi - v) / (hi - lo) * (ph - 1) if hi > lo else by + ph - 1

    sh = fs - 2
    draw.text((tx, by), _fmt(hi), fill=_TEXT_RGB, font=small_font, anchor="lt")
    draw.text((tx, by + ph), _fmt(lo), fill=_TEXT_RGB, font=small_font, anchor="lb")
    if threshold is not None and lo <= float(threshold) <= hi:
        yt = ypos(float(threshold))
        draw.line([bx - 3, yt, bx + bar_w + 2, yt], fill=(0, 0, 0), width=2)
        if by + sh < yt < by + ph - sh:  # clear of the top and bottom labels
            draw.text((tx, yt), f"thr {_fmt(float(threshold))}", fill=_TEXT_RGB, font=small_font, anchor="lm")
    if score is not None and math.isfinite(float(score)):
        ys = min(max(ypos(float(score)), by), by + ph - 1)  # a score off the scale sits at its end
        draw.polygon([(bx - 2, ys), (bx - 8, ys - 5), (bx - 8, ys + 5)], fill=(0, 0, 0))
    return canvas
