"""The headline table of a bench report: the few numbers a person reads first.

``headline(results)`` turns a bench's ``results.json`` payload into one short table (:class:`Headline`):
one row per method (and per data set or setting where the bench has several), a handful of columns with
the bench's main measures. Every other table of the bench (per family, per texture, per corruption, cost
details) stays in ``results.md`` and in the folded part of the HTML report. A bench without a headline
function here gets the first table of its ``results.md`` instead (see :mod:`trustvis.report.html`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from trustvis.metrics.classification import mean_metrics
from trustvis.report.tables import MISSING, as_dict, as_float

__all__ = ["HEADLINES", "Headline", "Shown", "headline", "mean_unseen"]


class Shown(NamedTuple):
    """A table cell shown as ``text`` and compared (best value in bold) as ``value``."""

    value: float
    text: str


@dataclass
class Headline:
    """A short results table: columns, rows, what they mean, and which values are best."""

    header: list[str]
    rows: list[list[Any]]
    note: str = ""
    higher: tuple[int, ...] = ()  # columns whose largest value is best
    lower: tuple[int, ...] = ()  # columns whose smallest value is best
    group: int | None = None  # best values are found among the rows that share this column's value
    extra: list[str] = field(default_factory=list)  # more sentences under the table


def _pct(value: Any, digits: int = 2) -> Shown | None:
    v = as_float(value)
    return Shown(100 * v, f"{100 * v:.{digits}f}") if math.isfinite(v) else None


def _pm(stat: Any, scale: float = 100.0, digits: int = 2) -> Shown | None:
    s = as_dict(stat)
    m, sd = as_float(s.get("mean")), as_float(s.get("std"))
    if not math.isfinite(m):
        return None
    text = f"{m * scale:.{digits}f}" + (f" ± {sd * scale:.{digits}f}" if math.isfinite(sd) else "")
    return Shown(m * scale, text)


def mean_unseen(method: Mapping[str, Any], unseen: list[str]) -> dict[str, Any]:
    """A detector's metrics averaged over the unseen families (``mean_unseen`` when stored)."""
    mu = as_dict(method.get("mean_unseen"))
    if mu:
        return mu
    clean = as_dict(method.get("clean"))
    return mean_metrics([as_dict(clean.get(f)) for f in unseen], keys=("acc", "ap", "auc", "eer"))


def _families(r: Mapping[str, Any]) -> list[str]:
    fams = list(r.get("families") or [])
    if not fams:
        seen: dict[str, None] = {}
        for m in as_dict(r.get("methods")).values():
            seen.update(dict.fromkeys(as_dict(as_dict(m).get("clean"))))
        fams = list(seen)
    return fams


def _detect(r: Mapping[str, Any]) -> Headline | None:
    methods = as_dict(r.get("methods"))
    if not methods:
        return None
    train = r.get("train_family")
    unseen = [f for f in _families(r) if f != train]
    rows, worst = [], False
    for name, m in methods.items():
        m = as_dict(m)
        mu = mean_unseen(m, unseen)
        rob = [
            as_float(as_dict(as_dict(v).get("mean_unseen")).get("ap"))
            for v in as_dict(m.get("robustness")).values()
        ]
        rob = [v for v in rob if math.isfinite(v)]
        worst |= bool(rob)
        ips = as_float(m.get("throughput_img_s"))
        rows.append([name, mu.get("ap"), mu.get("acc"), mu.get("auc"), min(rob) if rob else None,
                     Shown(ips, f"{ips:,.0f}") if math.isfinite(ips) else None])  # fmt: skip
    header = ["method", "AP", "accuracy at 0.5", "ROC AUC", "AP, worst degradation", "images/s"]
    if not worst:
        header.pop(4)
        rows = [row[:4] + row[5:] for row in rows]
    where = f"the families not trained on (trained on {train})" if train else "every family"
    note = f"Mean over {where}, clean test images; images/s: inference throughput."
    if worst:
        note += " Worst degradation: the lowest AP under the JPEG / blur / resize degradations."
    return Headline(header, rows, note, higher=tuple(range(1, len(header))))


def _anomaly(r: Mapping[str, Any]) -> Headline | None:
    results = as_dict(r.get("results"))
    cols = [("image_auroc", "image AUROC"), ("image_ap", "image AP"), ("f1", "F1 at the threshold"),
            ("pixel_auroc", "pixel AUROC"), ("aupro", "AUPRO")]  # fmt: skip
    present = [
        (k, t)
        for k, t in cols
        if any(k in as_dict(m) for by in results.values() for m in as_dict(by).values())
    ]
    if not present:
        return None
    rows, pooled = [], []
    for ds, by in results.items():
        for name, m in as_dict(by).items():
            m = as_dict(m)
            if "categories" in m:
                pooled.append(f"{ds} ({len(as_dict(m['categories']))})")
            rows.append([ds, name, *(m.get(k) for k, _ in present)])
    q = r.get("normal_quantile")
    note = "Test split of each set" + (
        f"; decision threshold: the {q} quantile of the normal validation scores." if q else "."
    )
    if pooled:
        note += (
            " One model per category on "
            + ", ".join(dict.fromkeys(s.split(" (")[0] for s in pooled))
            + ": the rows are means over the categories, the AUROC the ROC figures' legends give."
        )
    return Headline(["set", "method", *(t for _, t in present)], rows, note,
                    higher=tuple(range(2, 2 + len(present))), group=0)  # fmt: skip


def _span(values: list[float], digits: int) -> str:
    vals = [v for v in values if math.isfinite(v)]
    if not vals:
        return MISSING
    lo, hi = min(vals), max(vals)
    return f"{lo:.{digits}f}" if lo == hi else f"{lo:.{digits}f}–{hi:.{digits}f}"


def _codec(r: Mapping[str, Any]) -> Headline | None:
    curves = as_dict(r.get("curves"))
    if not curves:
        return None
    bd = as_dict(r.get("bd_rate"))
    anchors = [
        a for a in curves if len(curves) > 1 and all(a in as_dict(bd.get(c)) for c in curves if c != a)
    ]
    header = ["codec", "rate points", "bpp", "PSNR (dB)", *(f"BD-rate vs {a}, PSNR (%)" for a in anchors)]
    rows = []
    for codec, pts in curves.items():
        pts = [as_dict(p) for p in pts or []]
        cells: list[Any] = [codec, len(pts), _span([as_float(p.get("bpp")) for p in pts], 3),
                            _span([as_float(p.get("psnr")) for p in pts], 2)]  # fmt: skip
        for a in anchors:
            v = as_float(as_dict(as_dict(bd.get(codec)).get(a)).get("psnr"))
            cells.append("anchor" if a == codec else (Shown(v, f"{v:.1f}") if math.isfinite(v) else None))
        rows.append(cells)
    note = "bpp from the real file size, PSNR on 8-bit RGB (ranges over the rate points)."
    if anchors:
        note += " BD-rate: bits saved (negative) or spent for the same PSNR, against each anchor."
    return Headline(header, rows, note, lower=tuple(range(4, 4 + len(anchors))))


def _augment(r: Mapping[str, Any]) -> Headline | None:
    results = as_dict(r.get("results"))
    rows = []
    for ds, conds in results.items():
        for cond, m in as_dict(conds).items():
            m = as_dict(m)
            rows.append([ds, cond, _pm(m.get("error")), _pm(m.get("ece")), _pm(m.get("nll"), 1.0, 3)])
    if not rows:
        return None
    seeds = r.get("seeds") or []
    note = f"Test set; mean ± std over {len(seeds)} seed(s). Error and ECE in %." if seeds else "Test set."
    return Headline(["data", "condition", "top-1 error (%)", "ECE (%)", "NLL"], rows, note,
                    lower=(2, 3, 4), group=0)  # fmt: skip


def _calibrate(r: Mapping[str, Any]) -> Headline | None:
    """One row per setting: the uncalibrated model, and the best calibrator with each training loss."""
    results = as_dict(r.get("results"))
    rows = []
    losses: dict[str, None] = {}
    for by in results.values():
        losses.update(dict.fromkeys(n.split("+", 1)[1] for n in as_dict(by) if "+" in n))
    for setting, by in results.items():
        by = {n: as_dict(m) for n, m in as_dict(by).items()}
        base = by.get("uncalibrated", {})
        row: list[Any] = [setting, _pct(base.get("acc")), _pct(base.get("ece"))]
        for loss in losses:
            eces = {
                n.split("+", 1)[0]: as_float(m.get("ece")) for n, m in by.items() if n.endswith(f"+{loss}")
            }
            eces = {c: v for c, v in eces.items() if math.isfinite(v)}
            best = min(eces, key=eces.get) if eces else None
            row.append(Shown(100 * eces[best], f"{100 * eces[best]:.2f} ({best})") if best else None)
        rows.append(row)
    if not rows or not losses:
        return None
    header = [
        "setting",
        "accuracy (%)",
        "ECE uncalibrated (%)",
        *(f"best ECE, {lo.upper()} loss (%)" for lo in losses),
    ]
    note = ("Test split; each calibrator fitted on the calibration split with each loss, the lowest ECE (15 "
            "equal-width bins) per loss shown with its calibrator. Every calibrator and measure: Details.")  # fmt: skip
    return Headline(header, rows, note)


def _adapt(r: Mapping[str, Any]) -> Headline | None:
    results = as_dict(r.get("results"))
    rows = []
    for key, conds in as_dict(results.get("fmnist")).items():
        for cond, m in as_dict(conds).items():
            m = as_dict(m)
            rows.append([f"Fashion-MNIST, {key.replace('-', ' ')}", cond, "test accuracy (%)",
                         _pct(m.get("acc")), m.get("trainable_params")])  # fmt: skip
    det = as_dict(results.get("detect"))
    for cond, m in as_dict(det.get("conditions")).items():
        m = as_dict(m)
        ap = as_float(as_dict(m.get("unseen")).get("ap"))
        rows.append([f"detector adapted to {det.get('family', '?')}", cond, "AP",
                     Shown(ap, f"{ap:.3f}") if math.isfinite(ap) else None, m.get("trainable_params")])  # fmt: skip
    if not rows:
        return None
    return Headline(["experiment", "condition", "measure", "value", "trainable parameters"], rows,
                    higher=(3,), group=0)  # fmt: skip


def _antispoof(r: Mapping[str, Any]) -> Headline | None:
    """One row per (protocol, method): the display-averaged rates, mean ± std over seeds."""
    rows = []
    for protocol, by in as_dict(r.get("results")).items():
        for name, m in as_dict(by).items():
            mm = as_dict(as_dict(m).get("mean"))
            rows.append([f"{protocol} displays", name, *(_pm(mm.get(k), digits=1) for k in
                         ("acer", "apcer", "bpcer", "auc", "apcer_max"))])  # fmt: skip
    if not rows:
        return None
    seeds = r.get("seeds") or []
    note = (f"RecaptureBench test split, threshold from the validation split (EER point); rates in %, mean over the "
            f"test display types, ± std over {len(seeds)} seed(s). Worst APCER: the display type missed most.")  # fmt: skip
    return Headline(["test displays", "method", "ACER (%)", "APCER (%)", "BPCER (%)", "AUC (%)", "worst APCER (%)"],
                    rows, note, higher=(5,), lower=(2, 3, 4, 6), group=0)  # fmt: skip


def _reid(r: Mapping[str, Any]) -> Headline | None:
    """One row per (set, method): rank-1 and mAP, mean ± std over seeds."""
    rows = [[ds, name, _pm(as_dict(m).get("rank1"), digits=1), _pm(as_dict(m).get("map"), digits=1)]
            for ds, by in as_dict(r.get("results")).items() for name, m in as_dict(by).items()]  # fmt: skip
    if not rows:
        return None
    seeds = r.get("seeds") or []
    note = (f"Test identities never trained on; query vs gallery, Market-1501 rules; in %, ± std over {len(seeds)} "
            "seed(s); every method trains for the same number of steps.")  # fmt: skip
    return Headline(["set", "method", "rank-1 (%)", "mAP (%)"], rows, note, higher=(2, 3), group=0)


def _active(r: Mapping[str, Any]) -> Headline | None:
    """One row per (pool, strategy): final accuracy, balanced accuracy, macro-F1 and AULC, mean ± std over seeds."""
    rows = []
    for pool, by in as_dict(r.get("results")).items():
        for name, m in as_dict(by).items():
            final, aulc = as_dict(as_dict(m).get("final")), as_dict(as_dict(m).get("aulc"))
            rows.append([pool, name, *(_pm(final.get(k), digits=1) for k in ("acc", "balanced_acc", "macro_f1")),
                         _pm(aulc.get("balanced_acc"), digits=1)])  # fmt: skip
    if not rows:
        return None
    seeds = r.get("seeds") or []
    note = (f"Balanced test split; in %, ± std over {len(seeds)} seed(s); final = after the last round; AULC = area "
            "under the balanced-accuracy learning curve. Same initial labels, budgets and classifier for every strategy.")  # fmt: skip
    return Headline(["pool", "strategy", "final acc (%)", "final balanced acc (%)", "final macro-F1 (%)",
                     "AULC balanced acc (%)"], rows, note, higher=(2, 3, 4, 5), group=0)  # fmt: skip


def _vit(r: Mapping[str, Any]) -> Headline | None:
    """One row per (setting, method): test top-1 (mean ± std over seeds) and steps to the plain ViT's accuracy."""
    rows = []
    for setting, by in as_dict(r.get("results")).items():
        for name, m in as_dict(by).items():
            st = as_dict(as_dict(m).get("steps_to_vit"))
            mean, reached = as_float(st.get("mean")), as_float(st.get("reached"))
            ok = reached > 0 and math.isfinite(mean)  # NaN (missing) compares False
            steps = Shown(mean, f"{mean:.0f} ({reached:.0f}/{st.get('of')})") if ok else None
            rows.append([setting, name, _pm(as_dict(m).get("top1"), digits=1), steps])
    if not rows:
        return None
    seeds = r.get("seeds") or []
    note = (f"Test top-1 in %, ± std over {len(seeds)} seed(s); every ViT trains the same network for the same steps; "
            "cnn = the ImageNet CNN fine-tuned on the same images (the DeiT teacher). Steps to ViT = first validation "
            "step reaching the plain ViT's final validation accuracy (seeds that reached it).")  # fmt: skip
    return Headline(
        ["setting", "method", "top-1 (%)", "steps to ViT"], rows, note, higher=(2,), lower=(3,), group=0
    )


def _multimodal(r: Mapping[str, Any]) -> Headline | None:
    """One row per (paired fraction, method): judged cross-modal accuracy both ways (speech → image also on the real
    voices alone), mean ± std over seeds."""
    rows = []
    by_fraction: dict[str, list[list[Any]]] = {}
    for name, by in as_dict(r.get("results")).items():
        for fr, m in as_dict(by).items():
            m = as_dict(m)
            by_fraction.setdefault(fr, []).append([f"{100 * as_float(fr):g} %", name, *(_pm(m.get(k), digits=1) for k in
                                                  ("acc_speech_to_image", "acc_speech_to_image_real",
                                                   "acc_image_to_speech"))])  # fmt: skip
    for fr in sorted(by_fraction, key=as_float):
        rows += by_fraction[fr]
    if not rows:
        return None
    seeds = r.get("seeds") or []
    note = (f"Test speakers and images never trained on; accuracy of the generated image / speech judged by classifiers "
            f"fitted on the training split, in %, ± std over {len(seeds)} seed(s); chance 10 %. Real voices: the real "
            "test clips alone (the rest are synthetic espeak-ng / flite voices).")  # fmt: skip
    return Headline(["paired", "method", "speech → image (%)", "… real voices (%)", "image → speech (%)"], rows, note,
                    higher=(2, 3, 4), group=0)  # fmt: skip


#: bench name -> the function that builds its headline table from ``results.json``
HEADLINES: dict[str, Callable[[Mapping[str, Any]], Headline | None]] = {
    "detect": _detect,
    "anomaly": _anomaly,
    "codec": _codec,
    "augment": _augment,
    "calibrate": _calibrate,
    "adapt": _adapt,
    "antispoof": _antispoof,
    "reid": _reid,
    "active": _active,
    "vit": _vit,
    "multimodal": _multimodal,
}


def headline(results: Mapping[str, Any]) -> Headline | None:
    """The headline table of a bench's ``results.json`` payload; None for a bench without one (or no rows).

    Raises:
        KeyError, TypeError, ValueError: when the payload does not have the bench's usual shape (the HTML
            report then falls back to the first table of ``results.md``).
    """
    fn = HEADLINES.get(str(results.get("bench")))
    return fn(results) if fn is not None else None
