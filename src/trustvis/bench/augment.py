"""``trustvis bench augment``: no mixing vs Mixup/CutMix vs DCutMix/DMixup (K = 2, 3, 5), over seeds.

Protocol::

    for each data set (Fashion-MNIST, OpenCV digits)            splits fixed by data set, never by seed
      for each condition (none, mixup, cutmix, dcutmix-K{2,3,5}, dmixup-K{2,3,5}) and seed (0, 1, 2)
        train the classification recipe (resnet8, same steps, lr, schedule) ──► runs/<data>/<cond>/seed<s>
        test split ──► top-1 error, NLL, ECE (15 bins)
        test split under Gaussian noise (σ=0.1), blur (σ=1 px), JPEG (q=50) ──► accuracy
      mean ± sample std over seeds
      sample-wise uncertainty (kmix's mixing model, our estimator) vs max-softmax: AUROC for the
      misclassified test images, for the seed-0 models of none, cutmix and dcutmix-K3
    results.json, results.md, fig_*.png, report.html

Mixup and CutMix are torchvision's (``torchvision.transforms.v2``), not re-written. Every condition
trains from the same seed with the same step budget; a finished run with the same config is reused.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from trustvis.bench.common import payload_header, run_line, train_or_reuse, write_results
from trustvis.bench.options import BenchOptions
from trustvis.config import make_run_config
from trustvis.data.classification import ClassificationDataset, ImageSet, load_split, stratified_split
from trustvis.data.transforms import gaussian_blur, gaussian_noise, jpeg
from trustvis.metrics.calibration import calibration_metrics
from trustvis.tasks.classify import class_logits, classification_datasets

log = logging.getLogger(__name__)

DATASETS = ("fashion-mnist", "opencv-digits")
#: condition -> (registered method, model overrides)
CONDITIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "none": ("classifier", {}),
    "mixup": ("mixup", {}),
    "cutmix": ("cutmix", {}),
    **{f"dcutmix-K{k}": ("kmix", {"mode": "cutmix", "K": k}) for k in (2, 3, 5)},
    **{f"dmixup-K{k}": ("kmix", {"mode": "mixup", "K": k}) for k in (2, 3, 5)},
}
#: training steps (batch 64) per data set
STEPS = {
    "quick": {"fashion-mnist": 200, "opencv-digits": 150},
    "full": {"fashion-mnist": 4000, "opencv-digits": 2000},
}
#: test-time corruptions (uint8 (H,W,3) -> same); noise is seeded by the image index
CORRUPTIONS = {
    "noise": "Gaussian noise σ=0.1",
    "blur": "Gaussian blur σ=1 px",
    "jpeg": "JPEG quality 50",
}
UNCERTAINTY_CONDITIONS = ("none", "cutmix", "dcutmix-K3")


def corrupt(images: ImageSet, name: str) -> ImageSet:
    """``images`` (as RGB) under corruption ``name`` of :data:`CORRUPTIONS`."""
    if name not in CORRUPTIONS:
        raise KeyError(f"Unknown corruption {name!r}; choose from {list(CORRUPTIONS)}")
    rgb = images.images if images.images.ndim == 4 else np.repeat(images.images[..., None], 3, axis=3)
    if name == "noise":
        out = np.stack([gaussian_noise(im, 0.1, seed=i) for i, im in enumerate(rgb)])
    else:
        fn = partial(gaussian_blur, sigma=1.0) if name == "blur" else partial(jpeg, quality=50)
        out = np.stack([fn(im) for im in rgb])
    return ImageSet(out, images.labels.copy(), list(images.classes), name=f"{images.name}+{name}")


def _mean_std(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "n": len(a)}


def _test_subset(test: ImageSet, max_images: int) -> ImageSet:
    if not max_images or len(test) <= max_images:
        return test
    frac = max_images / len(test)
    keep = stratified_split(test.labels, (frac, 1.0 - frac), seed=0)[0]
    return test.subset(np.sort(keep))


def _uncertainty(method: Any, test: ImageSet, refs: ImageSet, n: int, seed: int) -> dict[str, Any]:
    """Mixing-model uncertainty and max-softmax uncertainty of ``method`` on the first ``n`` test images."""
    sub = test.subset(np.arange(min(n, len(test))))

    def tensor(data: ImageSet) -> torch.Tensor:
        ds = ClassificationDataset(data, method.make_transform(False))
        return torch.stack([ds[i]["image"] for i in range(len(ds))]).to(method.device)  # (N,3,H,W)

    x, r = tensor(sub), tensor(refs)
    p = torch.cat([method.predict({"image": c})["probs"] for c in x.split(500)])  # (N,C)
    error = (p.argmax(1).cpu().numpy() != sub.labels).astype(int)
    gen = torch.Generator().manual_seed(seed)
    mix = method.uncertainty(x, r, K=3, alpha=1.0, draws=8, generator=gen).cpu().numpy()
    msp = (1.0 - p.max(1).values).cpu().numpy()

    def auroc(score: np.ndarray) -> float:
        return float(roc_auc_score(error, score)) if 0 < error.sum() < len(error) else float("nan")

    return {"error": error.tolist(), "mixing": mix.tolist(), "msp": msp.tolist(),
            "auroc_mixing": auroc(mix), "auroc_msp": auroc(msp), "n": len(sub)}  # fmt: skip


def run_augment_bench(
    opts: BenchOptions,
    datasets: list[str] | None = None,
    conditions: list[str] | None = None,
    seeds: list[int] | None = None,
    max_test: int | None = None,
    corruption_images: int | None = None,
    uncertainty_images: int = 1000,
) -> Path:
    """Run the augmentation protocol end to end; returns the output folder.

    ``opts.preset`` forces one preset for every method (the tests use ``tiny``); ``opts.steps`` overrides the
    per-data-set budgets of :data:`STEPS`; ``opts.seed`` is not used (``seeds``, default 0, 1, 2);
    ``max_test`` caps the test images per data set (default: 4,000 with ``quick``, all otherwise; a
    stratified subset fixed by the data set) and ``corruption_images`` the images of each corrupted copy
    (default 2,000 with ``quick``, all otherwise).
    """
    from trustvis.report import plots

    quick, mode = opts.quick, opts.mode
    preset = opts.preset or ("quick" if quick else "default")
    datasets = list(datasets or DATASETS)
    conditions = list(conditions or CONDITIONS)
    seeds = list(seeds if seeds is not None else (0, 1, 2))
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise ValueError(f"Unknown condition(s) {unknown}; choose from {list(CONDITIONS)}")
    if max_test is None:
        max_test = 4000 if quick else 0
    if corruption_images is None:
        corruption_images = 2000 if quick else 0
    out = opts.output("augment")
    t_start = time.perf_counter()

    results: dict[str, Any] = {}
    uncertainty: dict[str, Any] = {}
    for ds in datasets:
        test = _test_subset(load_split(ds, "test"), max_test)
        corrupted = {c: corrupt(_test_subset(test, corruption_images), c) for c in CORRUPTIONS}
        n_steps = opts.steps or STEPS[mode].get(ds, STEPS[mode]["fashion-mnist"])
        results[ds] = {}
        trained_seed0: dict[str, Any] = {}
        for cond in conditions:
            method_name, model_over = CONDITIONS[cond]
            per_seed: list[dict[str, float]] = []
            for seed in seeds:
                run = make_run_config(method_name, preset, overrides=opts.overrides, model=model_over,
                                      train={"seed": seed, "device": opts.device, "steps": n_steps,
                                             "progress": opts.progress}, data={"name": ds})  # fmt: skip
                run.model.num_classes = test.num_classes
                log.info("%s / %s / seed %d", ds, cond, seed)
                method, info = train_or_reuse(
                    run, out / "runs" / ds / cond / f"seed{seed}", classification_datasets
                )
                clean = class_logits(method, ClassificationDataset(test, method.make_transform(False)), 500)
                m = calibration_metrics(torch.from_numpy(clean["logits"]), clean["label"], from_logits=True)
                rec = {"error": 1.0 - m["acc"], "nll": m["nll"], "ece": m["ece"], "cw_ece": m["cw_ece"],
                       "train_seconds": float(info.get("train_seconds", float("nan")))}  # fmt: skip
                for c, imgs in corrupted.items():
                    o = class_logits(method, ClassificationDataset(imgs, method.make_transform(False)), 500)
                    rec[f"acc_{c}"] = float((o["logits"].argmax(1) == o["label"]).mean())
                per_seed.append(rec)
                if seed == seeds[0]:
                    trained_seed0[cond] = method
            results[ds][cond] = {
                "method": method_name,
                "model": model_over,
                "steps": n_steps,
                "per_seed": per_seed,
                **{k: _mean_std([r[k] for r in per_seed]) for k in per_seed[0]},
            }
        if uncertainty_images > 0:
            refs = load_split(ds, "val")
            refs = refs.subset(np.random.default_rng(0).permutation(len(refs))[:256])
            uncertainty[ds] = {
                c: _uncertainty(trained_seed0[c], test, refs, uncertainty_images, seed=seeds[0])
                for c in UNCERTAINTY_CONDITIONS
                if c in trained_seed0
            }

    # ---- figures --------------------------------------------------------------------------------
    figures = []

    def fig(file: str, caption: str) -> Path:
        figures.append({"file": file, "caption": caption})
        return out / file

    for metric, what in (("error", "top-1 error"), ("ece", "ECE"), ("nll", "NLL")):
        table = {
            ds: {c: (r[metric]["mean"], r[metric]["std"]) for c, r in results[ds].items()} for ds in datasets
        }
        plots.plot_metric_bars(table, metric, fig(f"fig_{metric}.png", f"Test {what}: mean ± std over "
                               f"{len(seeds)} seeds"), title=f"Test {what}")  # fmt: skip
    rob = {f"{ds}: {c}": {cond: (r[f"acc_{c}"]["mean"], r[f"acc_{c}"]["std"]) for cond, r in results[ds].items()}
           for ds in datasets for c in CORRUPTIONS}  # fmt: skip
    plots.plot_metric_bars(rob, "acc", fig("fig_corruptions.png", "Accuracy under test-time corruptions "
                           "(mean ± std over seeds)"), title="Accuracy under corruption")  # fmt: skip
    if uncertainty:
        plots.plot_uncertainty(uncertainty, fig("fig_uncertainty.png", "Sample-wise uncertainty from the "
                               "K-image mixing model vs max-softmax: distributions for correct and misclassified "
                               "test images, and risk–coverage curves (seed-0 models)"))  # fmt: skip

    payload = {
        **payload_header("augment", opts.command_or("augment"), opts.device),
        "data": {
            "name": ", ".join(datasets),
            "size": mode,
            "max_test": max_test,
            "corruption_images": corruption_images,
        },  # fmt: skip
        "seeds": seeds,
        "conditions": {c: {"method": CONDITIONS[c][0], "model": CONDITIONS[c][1]} for c in conditions},
        "corruptions": CORRUPTIONS,
        "results": results,
        "uncertainty": {
            ds: {c: {k: v for k, v in u.items() if k.startswith("auroc") or k == "n"} for c, u in us.items()}
            for ds, us in uncertainty.items()
        },  # fmt: skip
        "figures": figures,
        "bench_seconds": time.perf_counter() - t_start,
    }
    return write_results(out, payload, results_markdown)


def _pm(stat: dict[str, float], scale: float = 1.0, digits: int = 2) -> str:
    return f"{stat['mean'] * scale:.{digits}f} ± {stat['std'] * scale:.{digits}f}"


def results_markdown(res: dict[str, Any]) -> str:
    """The Markdown summary of an augment bench ``results.json`` payload."""
    from trustvis.report.tables import markdown_table

    lines = [
        f"# Augmentation bench ({res['data']['size']})",
        "",
        f"Command: `{res['command']}`  ",
        f"{run_line(res)}  ",
        f"Mean ± sample std over seeds {res['seeds']}; errors and accuracies in %. Corruptions: "
        + ", ".join(f"{k} = {v}" for k, v in res["corruptions"].items())
        + ".",
        "",
    ]
    for ds, conds in res["results"].items():
        steps = next(iter(conds.values()))["steps"]
        lines += [f"## {ds} ({steps} steps of 64 images)", ""]
        header = ["condition", "top-1 error %", "NLL", "ECE %", *[f"acc {c} %" for c in res["corruptions"]],
                  "train s"]  # fmt: skip
        rows = [[c, _pm(r["error"], 100), _pm(r["nll"], 1, 3), _pm(r["ece"], 100),
                 *[_pm(r[f"acc_{k}"], 100) for k in res["corruptions"]], f"{r['train_seconds']['mean']:.0f}"]
                for c, r in conds.items()]  # fmt: skip
        lines += [markdown_table(header, rows), ""]
        lines += _verdicts(conds)
    if res.get("uncertainty"):
        lines += ["## Sample-wise uncertainty (seed-0 models)", "",
                  "AUROC of each score for telling misclassified test images from correct ones (higher is "
                  "better; 0.5 = chance). *mixing*: the K-image mixing model's consistency score "
                  "(`trustvis.methods.augment.kmix.mixing_uncertainty`, K=3, 8 draws; our estimator — the "
                  "paper's is unpublished); *MSP*: 1 − max softmax.", ""]  # fmt: skip
        rows = [[ds, c, u["n"], u["auroc_mixing"], u["auroc_msp"]]
                for ds, us in res["uncertainty"].items() for c, u in us.items()]  # fmt: skip
        lines += [markdown_table(["data", "model", "images", "AUROC mixing", "AUROC MSP"], rows), ""]
    lines += [f"Total bench time: {res['bench_seconds']:.0f} s. Figures: "
              + ", ".join(f["file"] for f in res["figures"]) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"


def _verdicts(conds: dict[str, Any]) -> list[str]:
    """One honest line per K-image condition: better/worse than the best two-image baseline and no mixing."""
    refs = [c for c in ("mixup", "cutmix") if c in conds]
    out = []
    for c, r in conds.items():
        if not c.startswith(("dcutmix", "dmixup")):
            continue
        parts = []
        for ref in ["none", *refs]:
            if ref not in conds:
                continue
            a, b = r["error"], conds[ref]["error"]
            d = (a["mean"] - b["mean"]) * 100
            noise = (a["std"] + b["std"]) * 100
            word = "lower" if d < 0 else "higher"
            sure = "" if abs(d) > noise else " (within the seed spread)"
            parts.append(f"{abs(d):.2f} points {word} than {ref}{sure}")
        if parts:
            out.append(f"- `{c}` top-1 error: " + "; ".join(parts) + ".")
    return [*out, ""] if out else []
