"""``trustvis bench anomaly``: FYD against PaDiM on real defects and on textures with pixel masks.

Protocol::

    for each set (elpv-mono, elpv-poly: real solar-cell defects, image labels only;
                  textures, textures-misaligned: real texture photos with synthetic defects and masks)
      for each method (padim, fyd) — same backbone (ImageNet MobileNetV2 from pip), image size, channels
       for each category (each texture of a texture set, the MVTec convention; ELPV: the set itself)
        train / fit on the normal train split ──► runs/<set>[/<texture>]/<method>
          (FYD: EPOCHS passes over the train images — 6 quick, 30 full — whatever the set's size)
        threshold = 0.99 quantile of the scores of the normal validation split (never test labels)
        test split ──► image AUROC, AP, F1-max; accuracy / F1 at the threshold;
                       pixel AUROC and AUPRO (FPR ≤ 0.3) where masks exist; fit and inference time
      set metrics = mean over its textures (each texture's record kept under "categories")
      figures: image ROC per set, best / worst anomaly maps per set and method, a few overlays per method;
        over several textures scores and maps are divided by their run's threshold (1 = decision boundary)
        so that they can be pooled
    results.json, results.md, fig_*.png, overlays/, report.html

Every method trains from the same seed; a finished run with the same config is reused.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from trustvis import registry
from trustvis.bench.common import payload_header, run_line, train_or_reuse, write_results
from trustvis.bench.options import BenchOptions
from trustvis.config import make_run_config
from trustvis.data.anomaly import AnomalyDataset
from trustvis.metrics.anomaly import anomaly_metrics
from trustvis.tasks.anomaly import (
    NORMAL_QUANTILE,
    anomaly_datasets,
    anomaly_outputs,
    load_anomaly_split,
    set_threshold,
)

log = logging.getLogger(__name__)

DATASETS = ("elpv-mono", "elpv-poly", "textures", "textures-misaligned")
METHODS = ("padim", "fyd")
EPOCHS = {"quick": 6, "full": 30}  # FYD's passes over the normal train images (RegAD: 50 epochs, on a GPU)
OVERLAYS_PER_RUN = 6


def run_anomaly_bench(
    opts: BenchOptions,
    datasets: list[str] | None = None,
    methods: list[str] | None = None,
    per_category: bool = True,
) -> Path:
    """Run the anomaly protocol; returns the output folder. ``opts.preset``/``opts.overrides`` apply to every
    method (the tests use ``tiny``); ``opts.steps`` replaces FYD's budget of :data:`EPOCHS` passes over each
    train set (without it that budget also replaces a ``train.steps`` of ``opts.overrides``). ``per_category``:
    one model per texture (the MVTec convention; metrics are then means over the textures), else one model
    for all."""
    from trustvis.config import to_dict
    from trustvis.engine.checkpoint import save_final
    from trustvis.report import plots

    mode, steps = opts.mode, opts.steps
    preset = opts.preset or ("quick" if opts.quick else "default")
    datasets = list(datasets or DATASETS)
    methods = list(methods or METHODS)
    for name in methods:
        if registry.get(name).task != "anomaly":
            raise ValueError(
                f"{name!r} is not an anomaly method; choose from {[s.name for s in registry.list_methods('anomaly')]}"
            )
    out = opts.output("anomaly")
    t_start = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    figures: list[dict[str, str]] = []
    curves: dict[str, dict[str, Any]] = {}

    def fig(file: str, caption: str) -> Path:
        figures.append({"file": file, "caption": caption})
        return out / file

    for ds in datasets:
        results[ds], curves[ds] = {}, {}
        first_figure = len(figures)  # the set's ROC goes before its map grids
        cats = set_categories(ds) if per_category else [""]
        for name in methods:
            per_cat: dict[str, dict[str, Any]] = {}
            pooled: list[dict[str, Any]] = []  # one entry per category: test set, outputs, threshold
            for cat in cats:
                trainable = registry.get(name).cls.trainable
                train = {"seed": opts.seed, "device": opts.device, "progress": opts.progress}
                if steps and trainable:
                    train["steps"] = steps
                run = make_run_config(name, preset, overrides=opts.overrides, train=train,
                                      data={"name": ds, "category": cat})  # fmt: skip
                if trainable and not steps:  # the epoch budget of the protocol
                    n = len(load_anomaly_split(run, "train", run.model.image_size))
                    run.train.steps = epoch_steps(n, run.train.batch_size, EPOCHS[mode])
                run_dir = out / "runs" / ds / (f"{cat}/{name}" if cat else name)
                log.info("%s%s / %s", ds, f" / {cat}" if cat else "", name)
                method, info = train_or_reuse(run, run_dir, anomaly_datasets)
                _, val_set = anomaly_datasets(run, method)
                thr = set_threshold(method, val_set)
                save_final(
                    method, run_dir, to_dict(run), int(info.get("train_steps", 0))
                )  # with the threshold
                test = load_anomaly_split(run, "test", method.config.image_size)
                o = anomaly_outputs(method, AnomalyDataset(test, method.make_transform(False)))
                masks = test.masks if test.has_masks else None
                m = anomaly_metrics(o["label"], o["score"], masks=masks, maps=o["anomaly_map"] if masks is not None else None,
                                    threshold=thr)  # fmt: skip
                per_cat[cat] = {**m, "fit_seconds": float(info.get("train_seconds", float("nan"))),
                                "images_per_second": float(o["images_per_second"]), "n_test": len(test)}  # fmt: skip
                pooled.append({"test": test, "out": o, "threshold": thr, "category": cat})
            results[ds][name] = per_cat[""] if cats == [""] else _mean_over_categories(per_cat)
            curves[ds][name] = _roc_entry(pooled, results[ds][name]["image_auroc"])
            _save_examples(out, ds, name, pooled, fig)
        if len(cats) > 1:
            caption = (f"Image-level ROC on {ds}, {len(cats)} categories: each score divided by its category's "
                       "threshold, pooled into one curve; the legend gives the table's AUROC (the mean over the "
                       "categories) and the pooled curve's own")  # fmt: skip
            title = f"{ds}: ROC of the pooled scores / threshold"
        else:
            caption, title = f"Image-level ROC on {ds} (legend: the table's image AUROC)", ds
        plots.plot_anomaly_curves(curves[ds], fig(f"fig_roc_{ds}.png", caption), title=title)
        figures.insert(first_figure, figures.pop())

    payload = {
        **payload_header("anomaly", opts.command_or("anomaly"), opts.device),
        "data": {"name": ", ".join(datasets), "size": mode},
        "seed": opts.seed,
        "methods": methods,
        "normal_quantile": NORMAL_QUANTILE,
        "results": results,
        "figures": figures,
        "bench_seconds": time.perf_counter() - t_start,
    }
    return write_results(out, payload, results_markdown)


def epoch_steps(n_images: int, batch_size: int, epochs: float) -> int:
    """Optimiser steps for ``epochs`` passes over ``n_images`` in batches of ``batch_size`` (at least 1)."""
    return max(1, math.ceil(epochs * n_images / batch_size))


def set_categories(ds: str) -> list[str]:
    """The categories a set is trained per (every installed texture for the texture sets), else ``[""]``."""
    if ds.startswith("textures"):
        from trustvis.data.anomaly import available_textures

        return available_textures()
    return [""]


def _mean_over_categories(per_cat: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean of every numeric metric over the categories (MVTec convention); counts and fit time summed,
    throughput from the total; the per-category records under ``"categories"``."""
    first = next(iter(per_cat.values()))
    summed = ("n_test", "n_normal", "n_anomalous", "fit_seconds")
    res: dict[str, Any] = {}
    for k, v in first.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            vals = [float(r[k]) for r in per_cat.values()]
            res[k] = float(np.sum(vals)) if k in summed else float(np.mean(vals))
    n = sum(r["n_test"] for r in per_cat.values())
    res["images_per_second"] = n / sum(r["n_test"] / r["images_per_second"] for r in per_cat.values())
    res["n_test"] = int(n)
    res["categories"] = per_cat
    return res


def _roc_entry(pooled: list[dict[str, Any]], auroc: float) -> dict[str, Any]:
    """The ROC of one method on one set for :func:`~trustvis.report.plots.plot_anomaly_curves`: its run's
    own scores (one category), or every category's scores divided by its threshold and pooled; ``auroc``
    is the table's value (the mean over the categories), which the legend shows."""
    labels = np.concatenate([p["out"]["label"] for p in pooled]).astype(int)
    if len(pooled) == 1:
        return {"labels": labels, "scores": np.asarray(pooled[0]["out"]["score"]), "auroc": auroc}
    scores = np.concatenate([p["out"]["score"] / p["threshold"] for p in pooled])
    return {"labels": labels, "scores": scores, "auroc": auroc, "pooled": len(pooled)}


def _save_examples(out: Path, ds: str, name: str, pooled: list[dict[str, Any]], fig) -> None:
    """Best / worst maps over all categories of a set (the grid figure) and a few per-image overlays.

    Scores and maps are divided by their run's threshold, so that 1 is the decision boundary in every
    category and one colour scale serves the figure."""
    from trustvis.report import plots

    entries = []  # (score / thr, label, category index, position in that category's outputs)
    for c, p in enumerate(pooled):
        o = p["out"]
        for j, (sc, lb) in enumerate(zip(o["score"], o["label"])):
            entries.append((float(sc) / p["threshold"], int(lb), c, j))
    scores = np.asarray([e[0] for e in entries])
    labels = np.asarray([e[1] for e in entries])
    anomalous, normal = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    pick = [*anomalous[np.argsort(-scores[anomalous])][:2], *anomalous[np.argsort(scores[anomalous])][:2],
            *normal[np.argsort(-scores[normal])][:2]]  # fmt: skip
    tags = ["best anomaly", "best anomaly", "worst anomaly", "worst anomaly", "worst normal", "worst normal"]
    rows = []
    for i, tag in zip(pick, tags):
        _, lb, c, j = entries[i]
        p = pooled[c]
        test, o = p["test"], p["out"]
        k = int(np.asarray(o["index"])[j]) if "index" in o else j
        rows.append({"image": test.images[k], "map": o["anomaly_map"][j] / p["threshold"],
                     "mask": test.masks[k] if test.has_masks else None, "score": float(scores[i]), "label": lb,
                     "caption": f"{tag}: {test.names[k]}"})  # fmt: skip
    if rows:
        plots.plot_anomaly_grid(rows, fig(f"fig_maps_{ds}_{name}.png", f"{name} on {ds}: highest- and lowest-scored "
                                "anomalies and highest-scored normal images (score / threshold)"), title=f"{name} on {ds}")  # fmt: skip
    folder = out / "overlays" / ds / name
    folder.mkdir(parents=True, exist_ok=True)
    for r in rows[:OVERLAYS_PER_RUN]:
        tag, file_name = r["caption"].split(": ", 1)
        stem = file_name.replace("/", "_").replace("@", "_")
        truth = "anomalous" if r["label"] else "normal"
        verdict = ("anomalous" if r["score"] >= 1.0 else "normal") + f" (truth: {truth})"
        plots.save_overlay(r["image"], r["map"], folder / f"{stem}.png", mask=r["mask"], vmin=0.5, vmax=1.5,
                           score=r["score"], threshold=1.0, verdict=verdict,
                           title=f"{file_name}: {name}, {tag}")  # fmt: skip


def results_markdown(res: dict[str, Any]) -> str:
    """The Markdown summary of an anomaly bench ``results.json`` payload."""
    from trustvis.report.tables import markdown_table

    lines = [f"# Anomaly bench ({res['data']['size']})", "", f"Command: `{res['command']}`  ", f"{run_line(res)}  ",
             f"Threshold: the {res['normal_quantile']} quantile of each run's normal validation scores. AUPRO up to "
             "FPR 0.3, normalised to 1. Metrics in %.", ""]  # fmt: skip
    header = [
        "set",
        "method",
        "image AUROC",
        "AP",
        "F1-max",
        "acc @thr",
        "F1 @thr",
        "pixel AUROC",
        "AUPRO",
        "fit s",
        "img/s",
    ]

    def pct(r: dict[str, Any], k: str) -> str:
        return f"{100 * r[k]:.1f}" if k in r else "–"

    rows = [[ds, name, pct(r, "image_auroc"), pct(r, "image_ap"), pct(r, "f1_max"), pct(r, "accuracy"), pct(r, "f1"),
             pct(r, "pixel_auroc"), pct(r, "aupro"), f"{r['fit_seconds']:.0f}", f"{r['images_per_second']:.0f}"]
            for ds, by in res["results"].items() for name, r in by.items()]  # fmt: skip
    lines += [markdown_table(header, rows), ""]
    per_cat = {ds: by for ds, by in res["results"].items() if any("categories" in r for r in by.values())}
    if per_cat:
        lines += ["One model per texture; the rows above are means over the textures (fit time summed). "
                  "Per texture, image AUROC / AUPRO:", ""]  # fmt: skip
        names = [n for n in res["methods"]]
        rows = []
        for ds, by in per_cat.items():
            cats = list(next(r for r in by.values() if "categories" in r)["categories"])
            for cat in cats:
                cells = [
                    by[n]["categories"].get(cat, {}) if "categories" in by.get(n, {}) else {} for n in names
                ]
                rows.append([ds, cat, *(f"{pct(c, 'image_auroc')} / {pct(c, 'aupro')}" for c in cells)])
        lines += [markdown_table(["set", "texture", *names], rows), ""]
    for ds, by in res["results"].items():
        if {"fyd", "padim"} <= set(by):
            a, b = by["fyd"]["image_auroc"], by["padim"]["image_auroc"]
            verdict = "beats" if a > b else "does not beat"
            extra = ""
            if "aupro" in by["fyd"]:
                extra = f"; AUPRO {100 * by['fyd']['aupro']:.1f} vs {100 * by['padim']['aupro']:.1f}"
            if "categories" in by["fyd"] and "categories" in by["padim"]:
                cf, cp = by["fyd"]["categories"], by["padim"]["categories"]
                wins = sum(cf[c]["image_auroc"] > cp[c]["image_auroc"] for c in cf if c in cp)
                extra += f"; better on {wins} of {len(cf)} textures"
            lines.append(
                f"- {ds}: FYD {verdict} PaDiM on mean image AUROC ({100 * a:.1f} vs {100 * b:.1f}{extra})."
            )
    lines += [
        "",
        f"Total bench time: {res['bench_seconds']:.0f} s. Figures: "
        + ", ".join(f["file"] for f in res["figures"])
        + ".",
    ]
    return "\n".join(lines) + "\n"
