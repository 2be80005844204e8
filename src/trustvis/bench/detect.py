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

SynthBench v2 (``--data-version v2``, :func:`run_detect_v2`)::

    SynthBench v2 (v1's 7 families + gan_aa, ddpm, inpaint, inr_codec; test and test_wild = laundered test)
      └─► for seed in seeds: train each detector on ae_tconv/train (quick: v1's budgets, 800 steps)
            └─► threshold = equal-error-rate threshold on ae_tconv/val (reals + fakes)
            └─► clean and wild test sets (the reals of a split scored once) ──► AP / AUC / acc per family,
                mean over the 10 unseen families, false-alarm rate of the real test photos at the threshold
      └─► mean ± std over seeds; seed methods vs cnndet / npr beyond twice the seeds' std
      └─► AP per family (clean, wild), headline, spectra, samples figures; results.json / .md / report.html

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
    data_version: str = "v1",
    seeds: list[int] | None = None,
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

    ``data_version="v2"`` runs the SynthBench v2 protocol instead (:func:`run_detect_v2`): v2's ten unseen
    families, each detector trained with every seed of ``seeds`` (default :data:`V2_SEEDS`; with v1's budgets,
    800 steps in ``quick``), tested on the clean and the laundered test splits, mean ± std over the seeds,
    and the false-alarm rate on the real test photos at the threshold each run chose on its validation split.
    The degradation sweep, the artifact compression maps and the adversarial table stay v1's.
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
    if data_version not in ("v1", "v2"):
        raise ValueError(f"Unknown SynthBench version {data_version!r}; choose from ['v1', 'v2']")
    if data_version == "v2":
        from trustvis.data.synthbench import SIZES_V2

        if size not in SIZES_V2:
            raise ValueError(f"SynthBench v2 has no size {size!r}; choose from {list(SIZES_V2)}")
        return run_detect_v2(opts, methods, list(seeds or V2_SEEDS), size, preset, method_overrides)
    if seeds is not None:
        raise ValueError("--seeds applies to --data-version v2; the v1 protocol runs one --seed")
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


# ----------------------------------------------------------------------------------------------------
# SynthBench v2: 3 seeds, clean and "in the wild" test conditions, false alarms at the validation threshold

#: v2 training seeds (``--seeds``)
V2_SEEDS = (0, 1, 2)
#: the test conditions of v2: the clean test split and the laundered one
V2_CONDITIONS = {"clean": "test", "wild": "test_wild"}


def _split_arrays(root: Path, families: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The reals of a SynthBench split once (every family of a split shares the same real patches) and each
    family's fakes, uint8 (n, S, S, 3); checks that the reals really are shared."""
    from trustvis.data.io import load_image

    def folder(path: Path) -> np.ndarray:
        return np.stack([load_image(p) for p in sorted(path.glob("*.png"))])

    reals = folder(root / families[0] / "0_real")
    for f in families[1:]:
        first = sorted((root / f / "0_real").glob("*.png"))
        if len(first) != len(reals) or not np.array_equal(load_image(first[0]), reals[0]):
            raise ValueError(f"{root / f / '0_real'} does not hold the same real patches as {families[0]}'s")
    return reals, {f: folder(root / f / "1_fake") for f in families}


def _scores(method: Any, images: np.ndarray, progress: bool) -> tuple[np.ndarray, float]:
    """p(fake) of uint8 ``images`` (n, S, S, 3) and the forward throughput (images/s)."""
    ds = ArrayDataset(
        images, np.zeros(len(images), np.int64), [""] * len(images), transform=method.make_transform(False)
    )
    pred = predict_dataset(method, ds, batch_size=128, keys=("score",), progress=progress)
    return pred["score"].astype(np.float64), float(pred["images_per_second"])


def _condition_metrics(
    real: np.ndarray, fakes: dict[str, np.ndarray], threshold: float, unseen: list[str]
) -> dict[str, Any]:
    """Per-family metrics (reals shared) at 0.5 and at the validation threshold; mean over ``unseen``; the
    false-alarm rate of the reals at the threshold."""
    from trustvis.metrics.classification import binary_metrics

    per = {}
    for f, s in fakes.items():
        y = np.r_[np.zeros(len(real)), np.ones(len(s))].astype(int)
        m = binary_metrics(y, np.r_[real, s])
        m["detected_at_val_threshold"] = float(np.mean(s >= threshold))
        per[f] = m
    mean = mean_metrics(
        [per[f] for f in unseen], keys=("acc", "ap", "auc", "eer", "detected_at_val_threshold")
    )
    return {"per_family": per, "mean_unseen": mean, "false_alarm_rate": float(np.mean(real >= threshold)),
            "n_real": len(real)}  # fmt: skip


def run_detect_v2(
    opts: BenchOptions,
    methods: list[str],
    seeds: list[int],
    size: str,
    preset: str,
    method_overrides: dict[str, list[str]] | None = None,
) -> Path:
    """The SynthBench v2 protocol (see :func:`run_detect_bench`); returns the output folder."""
    from trustvis.bench.common import mean_std, seed_run
    from trustvis.data.synthbench import FAMILIES_V2, TRAIN_FAMILY
    from trustvis.metrics.antispoof import eer_threshold
    from trustvis.metrics.spectrum import mean_log_spectrum
    from trustvis.report import plots
    from trustvis.tasks.detect import build_synthbench_data

    out = opts.output("detect-v2")  # results/detect-v2-quick by default: v1 keeps its folder
    t_start = time.perf_counter()
    root = build_synthbench_data(size, progress=opts.progress, version="v2")
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    families = list(FAMILIES_V2)
    unseen = [f for f in families if f != TRAIN_FAMILY]
    data = {"name": "synthbench", "version": "v2", "size": size, "train_family": TRAIN_FAMILY}
    overrides = {n: list((method_overrides or {}).get(n, [])) for n in methods}
    log.info("SynthBench v2 %s: %d detectors x %d seeds", size, len(methods), len(seeds))

    val_real, val_fakes = _split_arrays(root / "val", [TRAIN_FAMILY])
    test = {c: _split_arrays(root / split, families) for c, split in V2_CONDITIONS.items()}
    per_seed: dict[str, list[dict[str, Any]]] = {n: [] for n in methods}
    info: dict[str, dict[str, Any]] = {}
    for seed in seeds:
        for name in methods:
            spec = registry.get(name)
            p = preset if preset in spec.presets else "default"
            run = seed_run(name, p, _with_overrides(opts, overrides[name]), seed, data)
            method, tinfo = train_or_reuse(
                run, out / "runs" / f"{name}-seed{seed}", detection_datasets, _val_metrics
            )
            val_scores = _scores(method, np.concatenate([val_real, val_fakes[TRAIN_FAMILY]]), False)[0]
            y_val = np.r_[np.zeros(len(val_real)), np.ones(len(val_fakes[TRAIN_FAMILY]))].astype(int)
            thr = float(eer_threshold(y_val, val_scores))
            rec: dict[str, Any] = {"seed": seed, "val_threshold": thr, **tinfo}
            for cond, (real, fakes) in test.items():
                real_s, speed = _scores(method, real, opts.progress)
                fake_s = {f: _scores(method, x, False)[0] for f, x in fakes.items()}
                rec[cond] = _condition_metrics(real_s, fake_s, thr, unseen)
                rec.setdefault("throughput_img_s", speed)
            per_seed[name].append(rec)
            info[name] = {
                "params": method.num_parameters(),
                "paper": str(spec.paper),
                "seed_method": spec.seed_method,
            }
            log.info("%s seed %d: clean mean unseen AP %.3f, wild %.3f, false alarms %.3f / %.3f", name, seed,
                     rec["clean"]["mean_unseen"]["ap"], rec["wild"]["mean_unseen"]["ap"],
                     rec["clean"]["false_alarm_rate"], rec["wild"]["false_alarm_rate"])  # fmt: skip

    # ---- mean ± std over seeds --------------------------------------------------------------------
    summary: dict[str, Any] = {}
    for name, recs in per_seed.items():
        s: dict[str, Any] = {}
        for cond in V2_CONDITIONS:
            s[cond] = {
                "per_family": {f: {k: mean_std([r[cond]["per_family"][f][k] for r in recs])
                                   for k in ("ap", "auc", "acc", "detected_at_val_threshold")} for f in families},
                "mean_unseen": {k: mean_std([r[cond]["mean_unseen"][k] for r in recs])
                                for k in ("ap", "auc", "acc", "eer", "detected_at_val_threshold")},
                "false_alarm_rate": mean_std([r[cond]["false_alarm_rate"] for r in recs]),
            }  # fmt: skip
        s["train_seconds"] = mean_std([r.get("train_seconds", float("nan")) for r in recs])
        s["throughput_img_s"] = mean_std([r["throughput_img_s"] for r in recs])
        s["train_steps"] = recs[0].get("train_steps")
        summary[name] = {**info[name], **s, "seeds": recs}

    # ---- figures --------------------------------------------------------------------------------
    figures: list[dict[str, str]] = []

    def fig(file: str, caption: str) -> Path:
        figures.append({"file": file, "caption": caption})
        return out / file

    def pair(stat: dict[str, float]) -> tuple[float, float]:
        return stat["mean"], stat["std"]

    for cond in V2_CONDITIONS:
        table = {(f"{f}\n(train)" if f == TRAIN_FAMILY else f): {n: pair(summary[n][cond]["per_family"][f]["ap"])
                 for n in methods} for f in families}  # fmt: skip
        table["mean\nunseen"] = {n: pair(summary[n][cond]["mean_unseen"]["ap"]) for n in methods}
        plots.plot_metric_bars(table, "ap", fig(f"fig_family_ap_{cond}.png", f"AP per generator family, {cond} "
                               f"test set; mean ± std over {len(seeds)} seeds, trained on {TRAIN_FAMILY} only"),
                               title=f"AP per family ({cond})")  # fmt: skip
    headline = {n: {"clean AP": pair(summary[n]["clean"]["mean_unseen"]["ap"]),
                    "wild AP": pair(summary[n]["wild"]["mean_unseen"]["ap"]),
                    "clean false alarms": pair(summary[n]["clean"]["false_alarm_rate"]),
                    "wild false alarms": pair(summary[n]["wild"]["false_alarm_rate"])} for n in methods}  # fmt: skip
    plots.plot_metric_bars(headline, "value", fig("fig_headline.png", "Mean AP over the unseen families and the "
                           "false-alarm rate on real test photos at the threshold chosen on the validation split, "
                           f"clean and laundered; mean ± std over {len(seeds)} seeds"), title="v2 headline")  # fmt: skip
    real, fakes = test["clean"]
    spectra = {"real": mean_log_spectrum(real), **{f: mean_log_spectrum(x) for f, x in fakes.items()}}
    plots.plot_spectra(spectra, fig("fig_spectra.png", "Mean log-spectrum of high-pass residuals: reals and each "
                       "family's fakes (top), difference to reals (bottom); v2's new families lack v1's peaks"))  # fmt: skip
    rows = {}
    for cond, (reals, fakes_of) in test.items():  # the first 8 patches of the reals and of every family
        rows.update({f"real ({cond})": reals[:8], **{f"{f} ({cond})": x[:8] for f, x in fakes_of.items()}})
    plots.plot_image_rows(rows, fig("fig_samples.png", "The first test patches of every family, clean and "
                          "laundered (the same index is the same source photo for paired families)"))  # fmt: skip

    payload = {
        **payload_header("detect", opts.command_or("detect"), opts.device),
        "data": {
            "name": "synthbench",
            "version": "v2",
            "size": size,
            "path": str(root),
            "image_size": manifest.get("patch_size"),
            "generator_budgets": manifest.get("generator_losses", {}),
            "launder": manifest.get("launder"),
        },  # fmt: skip
        "train_family": TRAIN_FAMILY,
        "families": families,
        "conditions": V2_CONDITIONS,
        "seeds": seeds,
        "threshold": "per run: equal error rate threshold on the val split of the train family (real + fake)",
        "overrides": overrides,
        "methods": summary,
        "figures": figures,
        "bench_seconds": time.perf_counter() - t_start,
    }
    return write_results(out, payload, results_markdown_v2)


def _with_overrides(opts: BenchOptions, own: list[str]) -> BenchOptions:
    """``opts`` with one method's ``own`` overrides before the user's ``--set`` ones."""
    import dataclasses

    return dataclasses.replace(opts, overrides=[*own, *opts.overrides])


def results_markdown_v2(res: dict[str, Any]) -> str:
    """The Markdown summary of a SynthBench v2 detection bench payload (percent, mean ± std over seeds)."""
    from trustvis.bench.common import pm, seed_verdict
    from trustvis.report.tables import markdown_table

    fams, train, methods = res["families"], res["train_family"], res["methods"]
    n_seeds = len(res["seeds"])
    lines = [
        f"# Detection bench: SynthBench v2 {res['data']['size']}",
        "",
        f"Command: `{res['command']}`  ",
        f"{run_line(res)}  ",
        f"Trained on `{train}` only; unseen families: {', '.join(f for f in fams if f != train)}. Percent, mean ± "
        f"std over {n_seeds} training seeds ({', '.join(map(str, res['seeds']))}). Clean: the test split; wild: "
        "the same images laundered (resize chain, sharpening, JPEG or WebP), reals and fakes alike. Threshold: "
        "the equal-error-rate threshold on the train family's val split, per run.",
        "",
        "## Headline",
        "",
    ]
    header = ["method", "clean mean unseen AP", "wild mean unseen AP", "clean mean unseen AUC",
              "wild mean unseen AUC", "false alarms on real test photos (clean)", "false alarms (wild)",
              "unseen fakes detected (clean)", "unseen fakes detected (wild)"]  # fmt: skip
    rows = [[n, pm(m["clean"]["mean_unseen"]["ap"]), pm(m["wild"]["mean_unseen"]["ap"]),
             pm(m["clean"]["mean_unseen"]["auc"]), pm(m["wild"]["mean_unseen"]["auc"]),
             pm(m["clean"]["false_alarm_rate"]), pm(m["wild"]["false_alarm_rate"]),
             pm(m["clean"]["mean_unseen"]["detected_at_val_threshold"]),
             pm(m["wild"]["mean_unseen"]["detected_at_val_threshold"])] for n, m in methods.items()]  # fmt: skip
    lines += [markdown_table(header, rows), ""]
    best = max(methods, key=lambda n: methods[n]["clean"]["mean_unseen"]["ap"]["mean"])
    lines += [f"Headroom: the best clean mean unseen AP is `{best}`'s {pm(methods[best]['clean']['mean_unseen']['ap'])}"
              f"; in the wild {pm(methods[best]['wild']['mean_unseen']['ap'])}.", ""]  # fmt: skip
    for cond in res["conditions"]:
        lines += [f"## AP per generator family ({cond})", ""]
        header = ["method", *[f"{f}*" if f == train else f for f in fams]]
        rows = [[n, *[pm(m[cond]["per_family"][f]["ap"]) for f in fams]] for n, m in methods.items()]
        lines += [markdown_table(header, rows), "", "\\* training family.", ""]
    baselines = [b for b in ("cnndet", "npr") if b in methods]
    seeded = [n for n, m in methods.items() if m.get("seed_method")]
    if baselines and seeded:
        lines += ["## Seed methods against the baselines", "",
                  f"A difference counts only beyond twice the larger std over the {n_seeds} seeds.", ""]  # fmt: skip
        for s in seeded:
            for b in baselines:
                for cond in res["conditions"]:
                    a, c = methods[s][cond]["mean_unseen"]["ap"], methods[b][cond]["mean_unseen"]["ap"]
                    lines.append(f"- {seed_verdict(a, c, f'`{s}`', f'`{b}`', f'{cond} mean unseen AP')}")
        lines.append("")
    lines += ["## Cost", ""]
    rows = [[n, m["params"], m["train_steps"], pm(m["train_seconds"], 1, 0), pm(m["throughput_img_s"], 1, 0)]
            for n, m in methods.items()]  # fmt: skip
    lines += [markdown_table(["method", "params", "train steps", "train s", "images/s"], rows), ""]
    budgets = res["data"].get("generator_budgets", {})
    if budgets:
        lines += ["## Generator families (training budget, from the build's manifest)", ""]
        for f in fams:
            b = budgets.get(f, {})
            what = [f"{k.replace('_', ' ')} {b[k]:.4g}" for k in ("steps", "seconds", "loss_last") if k in b]
            for codec, st in (
                b.get("splits", {}).get("test", {}).items()
            ):  # the codec family: rate and quality
                what.append(f"{codec}: {st['mean_bpp']:.2f} bpp, {st['mean_psnr_db']:.1f} dB")
            lines.append(f"- `{f}`: {'; '.join(what) or 'see manifest.json'}")
        lines.append("")
    lines += [f"Total bench time: {res['bench_seconds']:.0f} s. Figures: "
              + ", ".join(f["file"] for f in res["figures"]) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"
