"""``trustvis bench detect``: train detectors on one SynthBench family, test on every family.

Protocol (as in Wang et al. 2020 and the papers that follow it)::

    SynthBench (real photo patches + fakes of 7 generator families, split by source photo)
      └─► train each detector on <train_family>/train (val split for the end-of-training check)
      └─► test on every family's test split ──► acc / acc_real / acc_fake / AP / AUC / EER per family
                                                 mean over the *unseen* families (train family excluded)
      └─► robustness: the same test sets after JPEG 95/75/50, blur σ 1/2, resize ×0.5
      └─► ROC curves, mean log-spectrum of each family (the fingerprint picture), the artifact
          compression map of each trained detector, training time and inference throughput
      └─► results.json, results.md, fig_*.png, report.html

Every method of the comparison runs in the same process with the same data, seed and step budget.
A trained run found in ``<out>/runs/<method>`` with the same config is reused (a second bench run
skips training); an interrupted one resumes from its checkpoint.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from trustvis import registry
from trustvis.bench.common import payload_header, run_line, train_or_reuse, write_results
from trustvis.bench.options import BenchOptions
from trustvis.config import make_run_config
from trustvis.data.arrays import ArrayDataset
from trustvis.engine import predict_dataset
from trustvis.metrics.classification import mean_metrics, roc_points
from trustvis.tasks.detect import (
    adversarial_eval,
    attack_images_of,
    detection_datasets,
    evaluate_detector,
    summarize_predictions,
)

log = logging.getLogger(__name__)

DEFAULT_METHODS = ("cnndet", "bihpf", "frepgan", "fingerprintnet", "d4", "npr")

#: attack -> budget of the adversarial table (see trustvis.attacks.evaluate.default_eps for the units)
BENCH_ATTACKS = {"pgd-l2": 0.0257, "pgd-linf": 4 / 255, "hsja": 0.0257}


def _load_split(root: Path, families: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """All test images of ``families`` as uint8 arrays (decoded once, shared by every method)."""
    from trustvis.data.forensynths import ForenSynthsDataset
    from trustvis.data.io import load_image

    ds = ForenSynthsDataset(root, generators=families, check=False)
    images = np.stack([load_image(p) for p, _, _ in ds.items])
    labels = np.array([lab for _, lab, _ in ds.items])
    gens = [g for _, _, g in ds.items]
    return images, labels, gens


def _val_metrics(method: Any, val_set: Dataset) -> dict[str, float]:
    return evaluate_detector(method, val_set, batch_size=128, progress=False)["mean"]


def run_detect_bench(
    opts: BenchOptions,
    methods: list[str] | None = None,
    acm_steps: int = 100,
    attack_images: int = 28,
    attack_steps: int = 10,
    attack_queries: int = 1000,
    synthbench: str | None = None,
    robustness: bool = True,
    method_overrides: dict[str, list[str]] | None = None,
) -> Path:
    """Run the detection protocol end to end; returns the output folder.

    ``opts.preset`` forces one method preset for all methods (default: ``quick`` with ``opts.quick``, else
    ``full``, a ResNet-50 from random initialisation sized for a GPU; ``default`` is the paper's recipe
    and needs the ImageNet weights offline); the tests use ``tiny``. ``opts.overrides``
    (``["train.num_workers=8", ...]``) apply to every method's run config after the bench's own settings.

    The adversarial table attacks ``attack_images`` fake test images (taken evenly from every family)
    with :data:`BENCH_ATTACKS` at the same budgets for every detector: PGD with ``attack_steps`` steps
    and HopSkipJump with ``attack_queries`` queries per image; ``attack_images=0`` skips it. A method
    that exposes ``logits_full`` (D4's single full-spectrum adversarially trained model) gets a second row.

    ``synthbench`` picks the SynthBench size (default: ``quick`` with ``opts.quick``, else ``full``; ``demo``
    is the short build of ``trustvis demo``); ``robustness=False`` skips the degraded test sets and
    ``acm_steps=0`` the artifact compression maps (both for the demo's time budget). ``method_overrides``
    (method -> ``["model.x=1", ...]``) apply to one method's run config, before ``opts.overrides``.
    """
    from trustvis.data.synthbench import FAMILIES, TRAIN_FAMILY, build_synthbench
    from trustvis.data.transforms import DEGRADATIONS
    from trustvis.methods.detect.bihpf import artifact_compression_map
    from trustvis.metrics.spectrum import mean_log_spectrum
    from trustvis.report import plots

    seed, progress = opts.seed, opts.progress
    preset = opts.preset or opts.mode
    size = synthbench or opts.mode
    methods = list(methods or DEFAULT_METHODS)
    for name in methods:
        spec = registry.get(name)
        if spec.task != "detect":
            raise ValueError(
                f"{name!r} is a {spec.task} method; detectors: {[s.name for s in registry.list_methods('detect')]}"
            )
    out = opts.output("detect")
    t_start = time.perf_counter()

    root = build_synthbench(size, progress=progress)
    families = list(FAMILIES)
    unseen = [f for f in families if f != TRAIN_FAMILY]
    image_size = int(json.loads((root / "manifest.json").read_text())["config"].get("patch_size", 0) or 0)

    # ---- train (or reuse) every method -------------------------------------------------------------
    trained: dict[str, Any] = {}
    train_info: dict[str, dict] = {}
    for name in methods:
        spec = registry.get(name)
        p = preset if preset in spec.presets else "default"
        train = {"seed": seed, "device": opts.device, "progress": progress}
        if opts.steps:
            train["steps"] = opts.steps
        own = (method_overrides or {}).get(name, [])
        run = make_run_config(name, p, overrides=[*own, *opts.overrides], train=train,
                              data={"size": size, "train_family": TRAIN_FAMILY})  # fmt: skip
        trained[name], train_info[name] = train_or_reuse(
            run, out / "runs" / name, detection_datasets, _val_metrics
        )

    # ---- evaluate: clean + degradations, test images decoded once ---------------------------------
    images, labels, gens = _load_split(root / "test", families)
    gens_arr = np.array(gens)
    results: dict[str, dict[str, Any]] = {n: {"robustness": {}} for n in methods}
    degradations = list(DEGRADATIONS) if robustness else []
    conditions = ["clean", *degradations]
    for cond in conditions:
        if cond == "clean":
            imgs = images
        else:
            fn = DEGRADATIONS[cond]
            imgs = np.stack([fn(im) for im in images])
        for name, method in trained.items():
            ds = ArrayDataset(imgs, labels, gens, transform=method.make_transform(False))
            pred = predict_dataset(method, ds, batch_size=128, keys=("score",), progress=progress)
            res = summarize_predictions(pred)
            per_fam = res["per_generator"]
            entry = {"per_family": per_fam, "mean_unseen": mean_metrics([per_fam[f] for f in unseen])}
            if cond == "clean":
                results[name]["clean"] = per_fam
                results[name]["mean_unseen"] = entry["mean_unseen"]
                results[name]["throughput_img_s"] = res["images_per_second"]
                results[name]["roc"] = {}
                for f in families:
                    sel = pred["generator"] == f
                    fpr, tpr = roc_points(pred["label"][sel].astype(int), pred["score"][sel])
                    results[name]["roc"][f] = {"fpr": list(map(float, fpr)), "tpr": list(map(float, tpr))}
            else:
                results[name]["robustness"][cond] = entry

    # ---- analysis figures ----------------------------------------------------------------------
    figures = []

    def fig(file: str, caption: str) -> Path:
        figures.append({"file": file, "caption": caption})
        return out / file

    for metric in ("ap", "acc", "auc"):
        per_method = {n: {f: results[n]["clean"][f][metric] for f in families} for n in methods}
        plots.plot_family_metric(per_method, metric, fig(f"fig_family_{metric}.png",
                                 f"{metric.upper()} per generator family; trained on {TRAIN_FAMILY} only"),
                                 train_family=TRAIN_FAMILY)  # fmt: skip
    curves = {
        n: {f: (results[n]["roc"][f]["fpr"], results[n]["roc"][f]["tpr"]) for f in families} for n in methods
    }
    aucs = {n: {f: results[n]["clean"][f]["auc"] for f in families} for n in methods}
    plots.plot_roc(curves, fig("fig_roc.png", "ROC curves per family (clean test sets)"), aucs=aucs)
    if degradations:
        rob = {n: {"clean": results[n]["mean_unseen"]["ap"],
                   **{c: results[n]["robustness"][c]["mean_unseen"]["ap"] for c in degradations}} for n in methods}  # fmt: skip
        plots.plot_robustness(
            rob, fig("fig_robustness_ap.png", "Mean AP over unseen families under degradations")
        )
    spectra = {"real": mean_log_spectrum(images[(labels == 0) & (gens_arr == TRAIN_FAMILY)])}
    for f in families:
        spectra[f] = mean_log_spectrum(images[(labels == 1) & (gens_arr == f)])
    plots.plot_spectra(spectra, fig("fig_spectra.png",
                       "Mean log-spectrum of high-pass residuals: reals and each family's fakes (top), "
                       "difference to reals (bottom) - the generators' fingerprints"))  # fmt: skip
    train_fakes = images[(labels == 1) & (gens_arr == TRAIN_FAMILY)][:256]
    maps = {}
    for name, method in trained.items() if acm_steps > 0 else []:
        for p in method.parameters():
            p.requires_grad_(False)
        to_input = method.make_transform(False)  # what the method sees at test time (crop, resize)
        fake_tensor = torch.stack([to_input(im) for im in train_fakes])
        maps[name] = artifact_compression_map(lambda x, m=method: m.logits(x.to(m.device)).cpu(), fake_tensor,
                                              steps=acm_steps, seed=seed)  # fmt: skip
    if maps:
        plots.plot_maps(maps, fig("fig_acm.png", "Artifact compression maps (BiHPF analysis): frequencies each "
                              "detector needs suppressed before it calls a fake real; dark = relied on"))  # fmt: skip
    cost = {n: {"throughput_img_s": results[n]["throughput_img_s"],
                "train_seconds": train_info[n].get("train_seconds", float("nan"))} for n in methods}  # fmt: skip
    plots.plot_cost(cost, fig("fig_cost.png", "Inference throughput (forward only) and training time"))

    # ---- adversarial table: same fakes, same budgets for every detector -------------------------------
    adversarial: dict[str, dict[str, Any]] = {}
    if attack_images > 0:
        for name, method in trained.items():
            ds = ArrayDataset(images, labels, gens, transform=method.make_transform(False))
            fakes, reals = attack_images_of(ds, attack_images)
            fakes, reals = fakes.to(method.device), reals.to(method.device)
            rows = {name: method.logits}
            if hasattr(method, "logits_full"):
                rows[f"{name} (single AT model)"] = method.logits_full
            for row, logit_fn in rows.items():
                log.info("attacking %s", row)
                adversarial[row] = adversarial_eval(logit_fn, fakes, reals, BENCH_ATTACKS, steps=attack_steps,
                                                    queries=attack_queries, seed=seed, progress=progress)  # fmt: skip
        plots.plot_adversarial(adversarial, fig("fig_adversarial.png", "Adversarial accuracy on fake test "
                               "images: white-box PGD (L2, L∞) and black-box HopSkipJump at the same budgets"))  # fmt: skip

    # ---- results.json / results.md / report ------------------------------------------------------
    payload = {
        **payload_header("detect", opts.command_or("detect"), opts.device),
        "data": {"name": "synthbench", "size": size, "path": str(root), "image_size": image_size},
        "train_family": TRAIN_FAMILY,
        "families": families,
        "degradations": degradations,
        "attacks": {
            "budgets": BENCH_ATTACKS,
            "images": attack_images,
            "pgd_steps": attack_steps,
            "hsja_queries": attack_queries,
        },
        "adversarial": adversarial,
        "methods": {},
        "figures": figures,
        "bench_seconds": time.perf_counter() - t_start,
    }
    for n in methods:
        spec = registry.get(n)
        payload["methods"][n] = {
            "paper": str(spec.paper),
            "seed_method": spec.seed_method,
            "params": trained[n].num_parameters(),
            "train_steps": train_info[n].get("train_steps"),
            "train_seconds": train_info[n].get("train_seconds"),
            "val": train_info[n].get("val", {}),
            **results[n],
        }
    return write_results(out, payload, results_markdown)


def results_markdown(res: dict[str, Any]) -> str:
    """The Markdown summary of a detection bench ``results.json`` payload."""
    from trustvis.report.tables import markdown_table

    fams, train = res["families"], res["train_family"]
    methods = res["methods"]
    lines = [
        f"# Detection bench: SynthBench {res['data']['size']}",
        "",
        f"Command: `{res['command']}`  ",
        f"{run_line(res)}  ",
        f"Trained on `{train}` only; unseen families: {', '.join(f for f in fams if f != train)}.",
        "",
        "## AP per generator family (clean)",
        "",
    ]
    header = ["method", *[f"{f}*" if f == train else f for f in fams], "mean unseen AP", "mean unseen acc",
              "mean unseen AUC"]  # fmt: skip
    rows = [[n, *[m["clean"][f]["ap"] for f in fams], m["mean_unseen"]["ap"], m["mean_unseen"]["acc"],
             m["mean_unseen"]["auc"]] for n, m in methods.items()]  # fmt: skip
    lines += [markdown_table(header, rows), "", "\\* training family.", ""]
    lines += ["## Accuracy at 0.5: real / fake (clean)", ""]
    rows = [[n, *[f"{m['clean'][f]['acc_real']:.2f} / {m['clean'][f]['acc_fake']:.2f}" for f in fams]]
            for n, m in methods.items()]  # fmt: skip
    lines += [markdown_table(["method", *fams], rows), ""]
    degs = res["degradations"]
    if degs:
        lines += ["## Robustness: mean AP over unseen families", ""]
        rows = [[n, m["mean_unseen"]["ap"], *[m["robustness"][d]["mean_unseen"]["ap"] for d in degs]]
                for n, m in methods.items()]  # fmt: skip
        lines += [markdown_table(["method", "clean", *degs], rows), ""]
    adv = res.get("adversarial") or {}
    if adv:
        att = res["attacks"]
        names = list(att["budgets"])
        lines += ["## Adversarial accuracy on fake test images", "",
                  f"{next(iter(adv.values()))[names[0]]['n']} fakes from every family; the attacker wants fake → "
                  f"real. Budgets: " + ", ".join(f"{a} ε={e:.4g}" for a, e in att["budgets"].items())
                  + f" (L2: normalised ‖δ‖₂/√(C·H·W), D4's convention; L∞: max |δ|); PGD {att['pgd_steps']} steps, "
                  f"HopSkipJump {att['hsja_queries']} queries per image (a weak black-box budget: D4 used "
                  "50,000, so its numbers are upper bounds on robustness).", ""]  # fmt: skip
        rows = []
        for row, r in adv.items():
            base = row.split(" ")[0]
            clean_ap = methods[base]["mean_unseen"]["ap"] if base in methods and row == base else float("nan")
            first = r[names[0]]
            rows.append([row, clean_ap, first["clean_acc"], *[r[a]["adv_acc"] for a in names],
                         r.get("hsja", {}).get("median_norm")])  # fmt: skip
        header = ["detector", "clean mean unseen AP", "clean acc (attacked fakes)",
                  *[f"{a} adv acc" for a in names], "HSJA median ‖δ‖ found"]  # fmt: skip
        lines += [markdown_table(header, rows), ""]
    lines += ["## Cost", ""]
    rows = [
        [n, m["params"], m["train_steps"], m["train_seconds"], m["throughput_img_s"]]
        for n, m in methods.items()
    ]
    lines += [markdown_table(["method", "params", "train steps", "train s", "images/s"], rows), ""]
    baselines = [n for n, m in methods.items() if not m.get("seed_method")]
    seeds = [n for n, m in methods.items() if m.get("seed_method")]
    if baselines and seeds:
        lines += ["## Seed methods against the baselines (mean AP over unseen families)", ""]
        for s in seeds:
            for b in baselines:
                d = methods[s]["mean_unseen"]["ap"] - methods[b]["mean_unseen"]["ap"]
                verdict = "beats" if d > 0 else "does not beat"
                lines.append(f"- `{s}` {verdict} `{b}`: {methods[s]['mean_unseen']['ap']:.3f} vs "
                             f"{methods[b]['mean_unseen']['ap']:.3f} ({d:+.3f}); one seed, so differences "
                             "of a few hundredths are within run-to-run noise.")  # fmt: skip
        lines.append("")
    lines += [f"Total bench time: {res['bench_seconds']:.0f} s. Figures: "
              + ", ".join(f["file"] for f in res["figures"]) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"
