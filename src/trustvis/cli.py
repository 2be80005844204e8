"""The ``trustvis`` command line: ``main(argv) -> exit code`` (testable in-process).

trustvis list [--task detect]               registered methods, with their papers
trustvis info METHOD                        paper, summary, presets and every config field
trustvis data status                        which real-data sources are installed
trustvis data build synthbench [--quick]    build the synthetic-image benchmark (cached)
trustvis train METHOD [--preset P] [--set k=v ...] [--out DIR] [--resume]
trustvis eval RUN_DIR --data ROOT           per-generator table on a ForenSynths-layout folder
trustvis predict RUN_DIR PATH...            score images or folders
trustvis calibrate --logits F.npz | --run D fit TS/CTS/ETS/PTS with the CE and the SCTL loss
trustvis bench detect|augment|calibrate     benchmark protocols (`make demo` runs detect --quick)
trustvis report DIR                         self-contained HTML page for a run or bench folder
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("trustvis")


#: tasks whose methods train an image classifier (classification data sets, `trustvis train`)
CLASSIFY_TASKS = ("classify", "augment", "adapt", "active")


class UsageError(Exception):
    """A user error the CLI reports in one line (exit code 2)."""


EPILOG_TRAIN = """\
examples:
  trustvis train bihpf --preset quick --out runs/bihpf
  trustvis train cnndet --preset quick --set train.steps=200 --set model.blur_prob=0.1
  trustvis train cnndet --data /data/CNNDetection --set model.weights=/ckpt/resnet50.pth
  trustvis train bihpf --out runs/bihpf --resume          # continue an interrupted run
  torchrun --nproc_per_node 2 -m trustvis train cnndet --preset quick --out runs/ddp

data, detectors: by default the SynthBench train/val splits of the training family (built on first
use); --data ROOT trains on ROOT/train and validates on ROOT/val of a ForenSynths-layout folder
(ROOT/{train,val}/<generator>/[<class>/]{0_real,1_fake}/*.png) or a GenImage root.
data, classifiers (classifier, kmix, mixup, cutmix): --set data.name=fashion-mnist (default) |
opencv-digits | sklearn-digits; --data ROOT reads a class-per-folder tree ROOT/<class>/*.png (or
ROOT/{train,[val],test}/<class>/*); --set data.imbalance=100 makes train/val long-tailed.
  trustvis train kmix --preset quick --set model.K=3 --out runs/kmix
  trustvis train classifier --set data.name=opencv-digits --steps 500
"""


EPILOG_BENCH = """\
benchmarks (each writes results.json, results.md, figures and report.html to --out):
  detect     train detectors on one SynthBench family, test on all; robustness; adversarial table
  augment    no mixing / Mixup / CutMix / DCutMix / DMixup (K=2,3,5) on Fashion-MNIST and OpenCV digits,
             3 seeds: error, NLL, ECE, accuracy under noise/blur/JPEG, sample-wise uncertainty
  calibrate  TS / CTS / ETS / PTS with the CE loss and with SCTL on balanced and long-tailed
             Fashion-MNIST, plus binary detectors' scores on unseen SynthBench families
  adapt      from ImageNet MobileNetV2: linear probe / full fine-tuning / LoRA r=4,8,16 on Fashion-MNIST
             with 10 and 100 labels per class, and a detector adapted to an unseen family from 100 images:
             accuracy/AP, trainable parameters, time per step, training memory
  anomaly    FYD vs PaDiM on ELPV solar cells (mono, poly) and on real textures with synthetic defects
             (aligned and misaligned): image/pixel AUROC, AUPRO, F1, maps
  codec      EQLINR and COOL-CHIC vs JPEG / WebP / AVIF / JPEG 2000 on the Kodak-like set: RD curves (bpp from
             real files vs PSNR and MS-SSIM), BD-rates against JPEG and AVIF, encode / decode times

examples:
  trustvis bench detect --quick
  trustvis bench augment --quick
  trustvis bench augment --quick --methods none,cutmix,dcutmix-K3 --seeds 0 --datasets opencv-digits
  trustvis bench calibrate --quick --detect-dir results/detect-quick
  trustvis bench adapt --quick --methods linear,lora-r8 --datasets fmnist
  trustvis bench codec --quick --methods eqlinr,jpeg,avif --images 2
  trustvis bench codec --data-dir ~/kodak --iterations 10000         # your own Kodak-style folder
  trustvis bench codec --quick --ablation        # + EQLINR leave-one-out variants (after bench-codec: ~80 min)
  trustvis bench detect --device cuda --set train.num_workers=8
"""


EPILOG_CODEC = """\
examples:
  trustvis codec encode photo.png photo.tvc --quality 4          # EQLINR, lambda 2e-3
  trustvis codec encode photo.png photo.tvc --method coolchic --lambda 1e-3 --iterations 6000
  trustvis codec decode photo.tvc photo_decoded.png
  trustvis codec info photo.tvc

Encoding overfits a small network to the image (seconds to minutes per image on a CPU; --iterations sets
the budget); decoding is fast. A file decodes to exactly the encoder's reconstruction on the same machine;
across machines the latents decode exactly (integer entropy model), the float synthesis may differ in the
last bit.
"""

EPILOG_CALIBRATE = """\
Fits on the calibration logits and scores on the held-out test logits (never on test labels).
Temperatures are constrained positive; ECE uses 15 equal-width bins.

examples:
  trustvis calibrate --logits my_logits.npz                       # every calibrator, CE vs SCTL loss
  trustvis calibrate --logits my_logits.npz --method sctl --calibrator cts --out cal/cts_sctl
  trustvis calibrate --run runs/classifier --out cal/run          # a trained classifier: val -> test
  trustvis calibrate --run results/detect-quick/runs/cnndet       # detector: seen family -> unseen

make the .npz with numpy:  np.savez("my_logits.npz", cal_logits=..., cal_labels=..., test_logits=...,
test_labels=...)   (pickled logits files, e.g. NN_calibration's, are never loaded: convert them once)
"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "–" if v != v else f"{v:.3f}"
    return str(v)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    cells = [header] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------
# commands


def cmd_list(args: argparse.Namespace) -> int:
    from trustvis import registry

    rows = [
        [s.name, s.task, "seed" if s.seed_method else "baseline", f"{s.paper.venue}", s.paper.url]
        for s in registry.list_methods(args.task)
    ]
    print(_table(["method", "task", "kind", "paper", "link"], rows))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import dataclasses
    import inspect

    from trustvis import registry
    from trustvis.config import to_dict

    spec = registry.get(args.method)
    print(f"{spec.name}  ({spec.task}, {'seed method' if spec.seed_method else 'baseline'})")
    print(f"paper:   {spec.paper.title}. {spec.paper.venue}. {spec.paper.url}")
    print(f"summary: {spec.summary}")
    print(f"file:    {inspect.getsourcefile(spec.cls)}")
    doc = (sys.modules[spec.cls.__module__].__doc__ or "").strip()
    if doc:
        print("\n" + textwrap.indent(doc, "  "))
    print("\nconfig fields (default preset):")
    default = to_dict(spec.make_config("default"))
    for f in dataclasses.fields(spec.config):
        print(f"  model.{f.name} = {default[f.name]!r}")
    print("\npresets:")
    for name, values in spec.presets.items():
        run = getattr(spec.cls, "run_defaults", {}).get(name, {})
        print(f"  {name}: model {dict(values) or '{}'}  run {run or '{}'}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    if args.data_cmd == "status":
        from trustvis.data import sources
        from trustvis.nn.backbones import weights_status

        rows, weights = sources.status(), weights_status()
        if args.json:
            print(
                json.dumps(
                    rows + [{"name": w["backbone"], "kind": "weights", **w} for w in weights],
                    indent=2,
                    default=str,
                )
            )
        else:
            print(sources.format_status(rows))
            print("\nImageNet weights (offline; `model.weights=imagenet`):")
            for w in weights:
                where = w["path"] if w["installed"] else f"not found — {w['install_hint']}"
                print(f"  {w['backbone']:<20} {where}")
        return 0
    if args.data_cmd == "build":
        if args.name != "synthbench":
            raise UsageError(f"Unknown data set {args.name!r}; choose from ['synthbench']")
        from trustvis.data.synthbench import build_synthbench

        size = "quick" if args.quick else args.size
        t0 = time.perf_counter()
        path = build_synthbench(size, force=args.force, progress=not args.no_progress)
        print(f"SynthBench {size} ready at {path} ({time.perf_counter() - t0:.0f} s)")
        return 0
    raise UsageError("usage: trustvis data {status,build}")


def cmd_train(args: argparse.Namespace) -> int:
    """``trustvis train``: holds the run folder's lock (rank 0) from the first check to the last write."""
    import os

    from trustvis.engine.runlock import RunLock

    out = Path(args.out or f"runs/{args.method}-{time.strftime('%Y%m%d-%H%M%S')}")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a run folder; choose another --out")
    if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 locks, checks and writes
        return _train(args, out)
    # the top-most folder this call creates (OUT or one of its parents): an invalid config leaves none behind
    created = next((p for p in reversed([out, *out.parents]) if not p.exists()), None)
    lock = RunLock(out)
    lock.acquire()  # a second training on OUT fails here, naming OUT/.lock and its owner's pid
    try:
        return _train(args, out)
    finally:
        lock.release()
        if created is not None:
            for folder in [out, *out.parents]:
                if not folder.is_dir() or any(folder.iterdir()):
                    break
                folder.rmdir()
                if folder == created:
                    break


def _train(args: argparse.Namespace, out: Path) -> int:
    from trustvis import registry
    from trustvis.config import make_run_config
    from trustvis.engine import Trainer, seed_everything
    from trustvis.engine.checkpoint import build_method, latest_checkpoint, read_meta

    overrides = list(args.set or [])
    if args.data:
        overrides += ["data.name=folder", f"data.root={args.data}"]
    if (
        args.steps is not None
    ):  # checked with the rest of the config by validate_run (fit-only methods take 0)
        overrides.append(f"train.steps={args.steps}")
    if args.resume and (out / "config.yaml").is_file():
        from trustvis.config import load_yaml

        saved = load_yaml(out / "config.yaml")
        if saved.get("method") != args.method:
            raise UsageError(f"{out} is a run of {saved.get('method')!r}, not {args.method!r}")
        run = make_run_config(args.method, saved.get("preset", args.preset), args.config,
                              base={k: v for k, v in saved.items() if k not in ("method", "preset")},
                              overrides=overrides)  # fmt: skip
    else:
        if (out / "model.json").is_file() and not args.resume:
            meta = read_meta(out)
            raise UsageError(f"{out} already holds a finished {meta['method']!r} run; choose another --out")
        metrics = out / "metrics.jsonl"
        if not args.resume and (
            latest_checkpoint(out) is not None or (metrics.is_file() and metrics.stat().st_size > 0)
        ):
            raise UsageError(
                f"{out} holds an unfinished run (checkpoints/metrics.jsonl, no model.json); pass --resume to "
                "continue it, or choose another --out"
            )
        run = make_run_config(args.method, args.preset, args.config, overrides)
    if args.lora:
        from trustvis.config import LoraConfig, merge_dict
        from trustvis.methods.adapt.lora import parse_lora_spec

        own = getattr(run.model, "lora", None)  # the lora method carries its own adapter settings
        merge_dict(own if isinstance(own, LoraConfig) else run.lora, parse_lora_spec(args.lora), "lora")
    seed_everything(run.train.seed)
    task = registry.get(run.method).task
    if task == "detect":
        from trustvis.bench.detect import detection_datasets as datasets_fn
        from trustvis.bench.detect import evaluate_detector

        def val_fn(m: Any, val_set: Any) -> dict[str, float]:
            return evaluate_detector(m, val_set, batch_size=max(run.train.batch_size, 64), progress=False)[
                "mean"
            ]

    elif task in CLASSIFY_TASKS:
        from trustvis.bench.classify import classification_datasets as datasets_fn
        from trustvis.bench.classify import classifier_val_metrics as val_fn
        from trustvis.bench.classify import load_classification_split

        if not any(o.startswith("model.num_classes=") for o in overrides):
            run.model.num_classes = load_classification_split(run, "train").num_classes
    elif task == "anomaly":
        from trustvis.bench.anomaly import anomaly_datasets as datasets_fn
        from trustvis.bench.anomaly import anomaly_val_metrics as val_fn
    elif task == "calibrate":
        raise UsageError(
            f"{run.method} is a post-hoc calibrator: fit it with `trustvis calibrate --method {run.method}`"
        )
    else:
        raise UsageError(f"`trustvis train` does not support {task} methods yet ({run.method})")
    method = build_method(run)
    train_set, val_set = datasets_fn(run, method)
    evaluate_fn = None
    if val_set is not None:

        def evaluate_fn(m: Any) -> dict[str, float]:
            return {f"val_{k}": v for k, v in val_fn(m, val_set).items()}

    trainer = Trainer(method, run, out)
    log.info("training %s (%s preset) for %d steps -> %s", run.method, run.preset, run.train.steps, out)
    summary = trainer.fit(train_set, evaluate_fn=evaluate_fn, resume=args.resume)
    if task == "anomaly" and trainer.is_main and val_set is not None:
        from trustvis.bench.anomaly import set_threshold
        from trustvis.config import to_dict
        from trustvis.engine.checkpoint import save_final

        thr = set_threshold(method, val_set)  # stored with the weights; `trustvis predict` uses it
        save_final(method, out, to_dict(run), summary["steps"])
        print(f"threshold (0.99 quantile of normal validation scores): {thr:.4g}")
    if trainer.is_main:
        print(
            f"trained {run.method} for {summary['steps']} steps in {summary['train_seconds']:.0f} s -> {out}"
        )
        if summary["eval"]:
            print("validation: " + ", ".join(f"{k}={v:.3f}" for k, v in summary["eval"].items()))
        lora_cfg = getattr(run.model, "lora", None) if not run.lora.r else run.lora
        if lora_cfg is not None and lora_cfg.r:
            from trustvis.methods.adapt.lora import export_adapter
            from trustvis.nn.lora import describe

            path = export_adapter(method, lora_cfg, out / "adapter")
            print(f"LoRA: {describe(method)}\nPEFT adapter -> {path}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from trustvis import registry
    from trustvis.atomic import atomic_write_json
    from trustvis.bench.detect import evaluate_detector
    from trustvis.data.forensynths import ForenSynthsDataset
    from trustvis.engine import load_method
    from trustvis.engine.checkpoint import read_meta

    if args.eps is not None and args.eps < 0:
        raise UsageError(f"--eps must be >= 0, got {args.eps}")
    meta = read_meta(args.run_dir)
    task = registry.get(meta["method"]).task
    if task != "detect":
        instead = {
            "anomaly": "score images with `trustvis predict RUN IMAGE...` (uses the stored threshold); "
            "`trustvis bench anomaly` measures AUROC/AUPRO",
            "calibrate": "`trustvis calibrate` fits and scores calibrators",
        }.get(task, "score images with `trustvis predict RUN IMAGE...`; `trustvis calibrate --run RUN` "
              "measures a classifier's calibration")  # fmt: skip
        raise UsageError(
            f"{args.run_dir} holds a run of task {task!r} ({meta['method']}); `trustvis eval` measures detectors (task "
            f"detect) on a ForenSynths/GenImage folder; {instead}"
        )
    method = load_method(args.run_dir, device=args.device)
    dataset = ForenSynthsDataset(
        args.data, transform=method.make_transform(False), max_per_class=args.max_images, split=args.split
    )
    res = evaluate_detector(method, dataset, batch_size=args.batch_size, progress=not args.no_progress)
    res["data"] = str(args.data)
    if not args.json:
        rows = [[g, m["n_real"], m["n_fake"], m["acc"], m["acc_real"], m["acc_fake"], m["ap"], m["auc"]]
                for g, m in res["per_generator"].items()]  # fmt: skip
        mean = res["mean"]
        rows.append(["mean", "", "", mean["acc"], "", "", mean["ap"], mean["auc"]])
        print(_table(["generator", "n_real", "n_fake", "acc", "acc_real", "acc_fake", "ap", "auc"], rows))
        if dataset.skipped:
            print(f"\nskipped {len(dataset.skipped)} unreadable file(s); first: {dataset.skipped[0]}")
    if args.attack:
        res["adversarial"] = _eval_attacks(method, dataset, args)
    if args.json:
        print(json.dumps(res, indent=2, default=float))
    atomic_write_json(Path(args.run_dir) / "eval.json", res)
    return 0


def _eval_attacks(method: Any, dataset: Any, args: argparse.Namespace) -> dict[str, Any]:
    """``eval --attack``: adversarial accuracy on fake images (the attacker wants fake -> real)."""
    from trustvis.attacks.evaluate import default_eps
    from trustvis.bench.detect import adversarial_eval, attack_images_of

    fakes, reals = attack_images_of(dataset, args.attack_images)
    fakes, reals = fakes.to(method.device), reals.to(method.device)
    for p in method.parameters():
        p.requires_grad_(False)  # gradients are needed w.r.t. the images only
    budgets = {a: (args.eps if args.eps is not None else default_eps(a)) for a in dict.fromkeys(args.attack)}
    res = adversarial_eval(method.logits, fakes, reals, budgets, steps=args.attack_steps,
                           queries=args.queries, seed=args.seed, progress=not args.no_progress)  # fmt: skip
    if not args.json:
        rows = [[a, r["norm"], r["eps"], r["eps_abs"], r["n"], r["clean_acc"], r["adv_acc"], r["median_norm"],
                 r["steps"] if r["steps"] is not None else r["queries"]] for a, r in res.items()]  # fmt: skip
        print(f"\nadversarial accuracy on {len(fakes)} fake images (share still flagged fake; the attacker "
              "wants fake -> real)")  # fmt: skip
        print(_table(["attack", "norm", "eps", "eps (abs)", "n", "clean acc", "adv acc", "median |δ|",
                      "steps/queries"], rows))  # fmt: skip
        print(
            "eps for l2 attacks is the normalised L2 ‖δ‖₂/sqrt(C·H·W) (D4's convention); for linf, max |δ|."
        )
    return res


_NPZ_KEYS = {"cal": ("cal_logits", "val_logits", "logits"), "cal_y": ("cal_labels", "val_labels", "labels"),
             "test": ("test_logits",), "test_y": ("test_labels",)}  # fmt: skip


def _check_logit_arrays(data: dict[str, Any], source: str, keys: dict[str, str], allow_probs: bool) -> None:
    """Validate calibration/test logits and labels in place (labels -> int64); every error names ``source``
    and the array's key. Probabilities passed as logits are refused unless ``allow_probs``."""
    import numpy as np

    from trustvis.methods.calibrate.temperature import looks_like_probabilities

    k_cal = None
    for role, lab in (("cal", "cal_y"), ("test", "test_y")):
        z, y = data[role], data[lab]
        if z is None:
            continue
        zk, yk = keys[role], keys[lab]
        z = np.asarray(z)
        if (
            z.dtype.kind not in "fiu"
            or z.ndim not in (1, 2)
            or z.size == 0
            or (z.ndim == 2 and z.shape[1] < 2)
        ):
            raise UsageError(f"{source}: {zk} must be a non-empty numeric (N, K) array with K >= 2, or (N,) for a "
                             f"binary detector; got dtype {z.dtype}, shape {z.shape}")  # fmt: skip
        bad = ~np.isfinite(z.reshape(len(z), -1)).all(1)
        if bad.any():
            raise UsageError(f"{source}: {zk} has {int(bad.sum())} row(s) with NaN or inf (first: row "
                             f"{int(np.argmax(bad))}); calibration needs finite logits")  # fmt: skip
        k = 2 if z.ndim == 1 else int(z.shape[1])
        if k_cal is not None and (k != k_cal or z.ndim != np.asarray(data["cal"]).ndim):
            raise UsageError(f"{source}: {zk} has shape {z.shape} but the calibration logits {keys['cal']} have "
                             f"shape {np.asarray(data['cal']).shape}; they need the same classes")  # fmt: skip
        k_cal = k if k_cal is None else k_cal
        hint = looks_like_probabilities(z)
        if hint and not allow_probs:
            raise UsageError(f"{source}: {zk} look like probabilities, not logits ({hint}); pass logits "
                             "(log-probabilities work: np.log(p)), or --inputs-are-logits if they are logits")  # fmt: skip
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.dtype.kind not in "fiub" or y.ndim != 1:
            raise UsageError(f"{source}: {yk} must be a 1-D array of class indices; got dtype {y.dtype}, "
                             f"shape {y.shape}")  # fmt: skip
        if len(y) != len(z):
            raise UsageError(f"{source}: {yk} has {len(y)} labels but {zk} has {len(z)} rows")
        if y.dtype.kind == "f" and not (np.isfinite(y).all() and (y == np.round(y)).all()):
            raise UsageError(
                f"{source}: {yk} must hold integer class indices; found non-integer or NaN values"
            )
        y = y.astype(np.int64)
        if y.min() < 0 or y.max() >= k:
            raise UsageError(f"{source}: {yk} must lie in [0, {k - 1}] ({k} classes from the shape of {zk}); "
                             f"got [{int(y.min())}, {int(y.max())}]")  # fmt: skip
        data[role], data[lab] = z, y


def _read_logits_npz(path: str, allow_probs: bool = False) -> dict[str, Any]:
    """Calibration (and test) logits/labels from an ``.npz`` file (never a pickle), validated: finite
    logits, labels in range, no probabilities in place of logits (unless ``allow_probs``)."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            found = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: not a readable .npz file of arrays ({e})") from e
    out: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for role, names in _NPZ_KEYS.items():
        keys[role] = next((n for n in names if n in found), names[0])
        out[role] = found.get(keys[role])
    if out["cal"] is None or out["cal_y"] is None:
        raise UsageError(f"{path} holds {sorted(found)}; it needs cal_logits and cal_labels (or val_logits/val_labels, "
                         "or logits/labels), and optionally test_logits and test_labels")  # fmt: skip
    if (out["test"] is None) != (out["test_y"] is None):
        raise UsageError(f"{path}: test_logits and test_labels go together")
    _check_logit_arrays(out, path, keys, allow_probs)
    return out


_RUN_KEYS = {"cal": "the validation logits", "cal_y": "the validation labels", "test": "the test logits",
             "test_y": "the test labels"}  # fmt: skip


def _run_logits(run_dir: str, device: str) -> dict[str, Any]:
    """Calibration/test logits of a trained run: a classifier (its val/test splits) or a detector
    (val of its training family / test of the other SynthBench families)."""
    from trustvis.engine import load_method

    method = load_method(run_dir, device=device)
    run = method.run_config
    if method.task in CLASSIFY_TASKS:
        from trustvis.bench.classify import class_logits, load_classification_split
        from trustvis.data.classification import ClassificationDataset

        parts = {}
        for role, split in (("cal", "val"), ("test", "test")):
            o = class_logits(method, ClassificationDataset(load_classification_split(run, split),
                                                           method.make_transform(False)))  # fmt: skip
            parts[role], parts[f"{role}_y"] = o["logits"], o["label"]
        _check_logit_arrays(parts, run_dir, _RUN_KEYS, allow_probs=True)  # a model's own logits
        return parts
    if method.task == "detect" and run.data.name == "synthbench":
        from trustvis.bench.calibrate import detector_logits
        from trustvis.data.synthbench import FAMILIES, build_synthbench

        root = build_synthbench(run.data.size)
        cal, cal_y = detector_logits(method, root, [run.data.train_family], "val")
        test, test_y = detector_logits(
            method, root, [f for f in FAMILIES if f != run.data.train_family], "test"
        )
        parts = {"cal": cal, "cal_y": cal_y, "test": test, "test_y": test_y}
        _check_logit_arrays(parts, run_dir, _RUN_KEYS, allow_probs=True)
        return parts
    raise UsageError(f"calibrate --run supports classifier runs and SynthBench detector runs; {run_dir} is a "
                     f"{method.task} run on {run.data.name!r}: export its logits to an .npz and use --logits")  # fmt: skip


def cmd_calibrate(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from trustvis.atomic import atomic_write_json
    from trustvis.bench.calibrate import CALIBRATORS, argmax_changed, calibrate_logits, calibrator_method

    if bool(args.logits) == bool(args.run):
        raise UsageError("give exactly one of --logits FILE.npz or --run RUN_DIR")
    allow_probs = bool(getattr(args, "inputs_are_logits", False))
    data = _read_logits_npz(args.logits, allow_probs) if args.logits else _run_logits(args.run, args.device)
    if data["test"] is None:
        log.warning(
            "no test_logits: scoring on the calibration set itself (optimistic; pass held-out test logits)"
        )
        data["test"], data["test_y"] = data["cal"], data["cal_y"]
    out = Path(args.out) if args.out else None
    if args.method == "all":
        rows = calibrate_logits(data["cal"], data["cal_y"], data["test"], data["test_y"], args.max_iter)
        diagrams = rows.pop("_diagrams")
    else:
        spec_name = args.method
        loss = "sctl" if spec_name == "sctl" else "ce"
        cal = args.calibrator if spec_name == "sctl" else spec_name
        if cal not in CALIBRATORS:
            raise UsageError(f"--calibrator must be one of {list(CALIBRATORS)}")
        k = 2 if np.asarray(data["cal"]).ndim == 1 else int(np.asarray(data["cal"]).shape[1])
        method = calibrator_method(cal, loss, k, args.max_iter)
        report = method.fit((data["cal"], data["cal_y"]))
        from trustvis.metrics.calibration import as_probs, calibration_metrics, reliability_bins

        raw = as_probs(np.asarray(data["test"], dtype=np.float64), from_logits=True)
        probs = method.predict({"logits": torch.as_tensor(data["test"]).float()})["probs"].numpy()
        rows = {"uncalibrated": calibration_metrics(raw, data["test_y"], from_logits=False),
                f"{cal}+{loss}": {**calibration_metrics(probs, data["test_y"], from_logits=False),
                                  "argmax_changed": argmax_changed(raw.argmax(1), probs),
                                  "fit": {k_: v for k_, v in report.items() if isinstance(v, int | float | bool | str)}}}  # fmt: skip
        diagrams = {"uncalibrated": reliability_bins(raw, data["test_y"]),
                    f"{cal}+{loss}": reliability_bins(probs, data["test_y"])}  # fmt: skip
        if out is not None:
            from trustvis.config import RunConfig, to_dict
            from trustvis.engine.checkpoint import save_final

            save_final(method, out, to_dict(RunConfig(method=method.method_name, model=method.config)), 0)
    header = ["calibrator + loss", "acc", "ECE %", "cw-ECE %", "MCE %", "NLL", "Brier", "argmax changed"]
    table = [[n, m["acc"], 100 * m["ece"], 100 * m["cw_ece"], 100 * m["mce"], m["nll"], m["brier"],
              m.get("argmax_changed", "")] for n, m in rows.items()]  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2, default=float))
    else:
        print(_table(header, table))
    if out is not None:
        from trustvis.report.plots import plot_reliability

        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "calibration.json", rows)
        panels = {n: {**diagrams[n], "ece": rows[n]["ece"]} for n in list(diagrams)[:12]}
        plot_reliability(panels, out / "reliability.png", title="Reliability on the test logits")
        print(f"wrote {out / 'calibration.json'} and {out / 'reliability.png'}"
              + (f"; the fitted calibrator loads with trustvis.engine.load_method('{out}')" if args.method != "all" else ""))  # fmt: skip
    return 0


PREDICT_HELP = """\
Score image files and folders with a trained detector, anti-spoofing or anomaly run.

Folders are searched recursively (symbolic links followed, each real folder and file once). Multi-frame
files (GIF, APNG, animated WebP, multi-page TIFF) are scored on their first frame, with a warning.
Large images: an image with a side longer than --max-side (default 2048) is reduced at load time,
before it becomes a tensor. Detector runs score its centre crop of at most max-side x max-side pixels
at full resolution (resizing would erase the traces they read); anomaly runs score a copy reduced
(Lanczos) to a longer side of max-side (their models resize to the run's image size anyway). A file
whose decoding would need more than 2 GiB of memory is refused before it is decoded.
A file that cannot be scored (missing, unreadable, too large, the model failing on it, a score that is
not a finite number) gets an error row; the other images keep their results. Exit status: 0 if any
image was scored, 1 if none."""


def cmd_predict(args: argparse.Namespace) -> int:
    """``trustvis predict``: what it does with folders, large images and failures is ``PREDICT_HELP``."""
    import numpy as np
    import torch

    from trustvis.data.io import IMAGE_EXTENSIONS, ImageReadError, iter_image_files, load_image
    from trustvis.engine import load_method

    if args.threshold is not None and not math.isfinite(args.threshold):
        raise UsageError(f"--threshold must be a finite number, got {args.threshold}")
    method = load_method(args.run_dir, device=args.device)
    anomaly = method.task == "anomaly"
    threshold = args.threshold
    if threshold is None:
        threshold = float(method.threshold) if anomaly else 0.5
        if anomaly and not np.isfinite(threshold):
            raise UsageError(f"{args.run_dir} has no stored threshold; pass --threshold")
    maps_dir = Path(args.maps or Path(args.run_dir) / "maps") if anomaly else None
    transform = method.make_transform(False)
    fit = "resize" if anomaly else "crop"
    files: list[Path] = []
    for p in args.paths:
        p = Path(p)
        files.extend(iter_image_files(p) if p.is_dir() else [p])
    if not files:
        exts = ", ".join(sorted(e[1:] for e in IMAGE_EXTENSIONS))
        raise UsageError(f"no image files in {', '.join(args.paths)} (extensions: {exts})")
    results: dict[int, dict] = {}
    errors: dict[int, dict] = {}
    batch: list[tuple[int, Path, torch.Tensor]] = []
    budget = max(args.max_side or 2048, 256) ** 2  # pixels per forward pass

    def fail(i: int, path: Path, reason: str) -> None:
        errors[i] = {"path": str(path), "error": reason}
        log.warning("skipped %s: %s", path, reason)

    def score(items: list[tuple[int, Path, torch.Tensor]]) -> None:
        try:
            out = method.predict({"image": torch.stack([t for _, _, t in items]).to(method.device)})
            scores = out["score"].float().cpu().numpy()
        except (RuntimeError, MemoryError, ValueError) as e:
            if len(items) > 1:  # find the image it fails on; the others still get their result
                for item in items:
                    score([item])
                return
            msg = (str(e).strip().splitlines() or [""])[0][:200]
            fail(items[0][0], items[0][1], f"the model failed on this image ({type(e).__name__}: {msg})")
            return
        for j, ((i, path, t), s) in enumerate(zip(items, scores)):
            if not np.isfinite(s):
                fail(i, path, f"model output is not finite (score {s}); the run's weights may be broken")
                continue
            rec = {"path": str(path), "score": float(s), "fake": bool(s >= threshold)}
            if maps_dir is not None:
                from trustvis.report.plots import save_overlay

                # the input's index keeps overlays of same-named files from different folders apart
                name = f"{i:05d}_{path.stem}.png"
                rec["map"] = str(save_overlay((t.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8),
                                              out["anomaly_map"][j].cpu().numpy(), maps_dir / name,
                                              vmin=threshold / 2, vmax=1.5 * threshold))  # fmt: skip
            results[i] = rec

    def flush() -> None:
        # images of different sizes are scored one by one; equal sizes are batched
        groups: dict[tuple, list[tuple[int, Path, torch.Tensor]]] = {}
        for item in batch:
            groups.setdefault(tuple(item[2].shape), []).append(item)
        for items in groups.values():
            score(items)
        batch.clear()

    pixels = 0
    for i, f in enumerate(files):
        try:
            x = transform(load_image(f, max_side=args.max_side, fit=fit))
        except ImageReadError as e:
            fail(i, f, e.reason)
            continue
        except (RuntimeError, MemoryError, ValueError, TypeError) as e:
            fail(i, f, f"cannot prepare the image for the model ({type(e).__name__}: {e})")
            continue
        n = int(x.shape[-1] * x.shape[-2])
        if batch and pixels + n > budget:
            flush()
            pixels = 0
        batch.append((i, f, x))
        pixels += n
        if len(batch) >= args.batch_size:
            flush()
            pixels = 0
    flush()
    res, errs = [results[i] for i in sorted(results)], [errors[i] for i in sorted(errors)]
    if args.json:
        print(json.dumps({"results": res, "errors": errs}, indent=2))
    else:
        pos, neg, what = ("anomalous", "normal", "anomaly score") if anomaly else ("fake", "real", "p(fake)")
        rows = [[r["path"], r["score"], pos if r["fake"] else neg] for r in res]
        rows += [[e["path"], float("nan"), f"error: {e['error']}"] for e in errs]
        print(_table(["path", what, "verdict"], rows))
        if res:
            print(f"\n{sum(r['fake'] for r in res)}/{len(res)} scored {pos} at threshold {threshold:.4g}")
            if maps_dir is not None:
                print(f"anomaly-map overlays -> {maps_dir}")
        if errs:
            print(f"{len(errs)} image(s) could not be scored (see the error rows)")
    return 0 if res else 1


BENCHES = ("detect", "augment", "calibrate", "adapt", "anomaly", "codec")


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _int_at_least(lo: int):
    """argparse type: an integer >= lo (a clear ``argument --flag: ...`` error otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lo}, got {text!r}") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, got {value}")
        return value

    parse.__name__ = f"integer >= {lo}"
    return parse


def _csv_of(kind: type, *, positive: bool = False):
    """argparse type: a comma-separated list of ``kind`` values (finite and > 0 with ``positive``)."""

    def parse(text: str) -> list:
        values = []
        for item in _csv(text) or []:
            try:
                v = kind(item)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{item!r} is not a {kind.__name__}") from None
            if positive and not (math.isfinite(v) and v > 0):
                raise argparse.ArgumentTypeError(f"{item!r} must be finite and > 0")
            values.append(v)
        if not values:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
        return values

    parse.__name__ = f"comma-separated {kind.__name__} list"
    return parse


def cmd_bench(args: argparse.Namespace) -> int:
    if args.task not in BENCHES:
        raise UsageError(f"Unknown bench {args.task!r}; choose from {list(BENCHES)}")
    if args.task == "codec":
        from trustvis.bench.codec import run_codec_bench

        out = run_codec_bench(quick=args.quick, codecs=_csv(args.methods), out_dir=args.out, images=args.images,
                              iterations=args.iterations, lambdas=args.lambdas, seed=args.seed, folder=args.data_dir,
                              command="trustvis " + " ".join(args._argv), progress=not args.quiet,
                              ablation=args.ablation)  # fmt: skip
        print(f"results: {out / 'results.md'}\nreport:  {out / 'report.html'}")
        print((out / "results.md").read_text(encoding="utf-8"))
        return 0
    common = {"quick": args.quick, "out_dir": args.out, "steps": args.steps, "device": args.device,
              "preset": args.preset, "overrides": args.set, "command": "trustvis " + " ".join(args._argv)}  # fmt: skip
    if args.task == "detect":
        from trustvis.bench.detect import run_detect_bench

        out = run_detect_bench(methods=_csv(args.methods), seed=args.seed, attack_images=args.attack_images,
                               attack_queries=args.queries, **common)  # fmt: skip
    elif args.task == "augment":
        from trustvis.bench.augment import run_augment_bench

        out = run_augment_bench(
            datasets=_csv(args.datasets), conditions=_csv(args.methods), seeds=args.seeds, **common
        )
    elif args.task == "anomaly":
        from trustvis.bench.anomaly import run_anomaly_bench

        out = run_anomaly_bench(
            datasets=_csv(args.datasets),
            methods=_csv(args.methods),
            seed=args.seed,
            per_category=not args.pooled,
            **common,
        )
    elif args.task == "adapt":
        from trustvis.bench.adapt import run_adapt_bench

        out = run_adapt_bench(conditions=_csv(args.methods), parts=_csv(args.datasets), seed=args.seed,
                              family=args.family, **common)  # fmt: skip
    else:
        from trustvis.bench.calibrate import run_calibrate_bench

        datasets = _csv(args.datasets) or ["fashion-mnist"]
        if len(datasets) != 1:
            raise UsageError(f"bench calibrate takes one --datasets entry, got {datasets}")
        out = run_calibrate_bench(seed=args.seed, detect_dir=args.detect_dir, dataset=datasets[0],
                                  detectors=not args.no_detectors, **common)  # fmt: skip
    print(f"results: {out / 'results.md'}\nreport:  {out / 'report.html'}")
    print((out / "results.md").read_text(encoding="utf-8"))
    return 0


def _check_codec_output(output: str, source: str, what: str) -> None:
    """Refuse an output path that would overwrite the input or is a folder (before any work)."""
    if Path(output).is_dir():
        raise UsageError(f"{output}: is a folder; give a file path for {what}")
    if Path(output).resolve() == Path(source).resolve():
        raise UsageError(
            f"{output}: is the input file; give another path for {what} (it would be overwritten)"
        )


def cmd_codec(args: argparse.Namespace) -> int:
    import numpy as np

    from trustvis import registry
    from trustvis.atomic import atomic_write_bytes
    from trustvis.config import make_run_config
    from trustvis.data.io import ImageReadError, load_image, save_png
    from trustvis.methods.codec import bitstream as bs
    from trustvis.methods.codec.coolchic import decode, lambda_for_quality
    from trustvis.metrics.compression import psnr

    if args.codec_cmd == "info":
        if not Path(args.file).is_file():
            raise UsageError(f"{args.file}: no such file")
        try:
            header, words = bs.unpack(Path(args.file).read_bytes())
        except bs.BitstreamError as e:
            raise UsageError(f"{args.file}: {e}") from None
        info = {**header.__dict__, "bytes": Path(args.file).stat().st_size, "payload_bytes": 4 * len(words)}
        info["bpp"] = 8 * info["bytes"] / (header.height * header.width)
        print(json.dumps(info, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in info.items()))
        return 0
    if args.codec_cmd == "decode":
        t0 = time.perf_counter()
        if not Path(args.input).is_file():
            raise UsageError(f"{args.input}: no such file")
        _check_codec_output(args.output, args.input, "the decoded PNG")
        try:
            x = decode(Path(args.input).read_bytes(), progress=not args.no_progress)
        except bs.BitstreamError as e:
            raise UsageError(f"{args.input}: {e}") from None
        img = np.round(x.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        save_png(args.output, img)
        print(
            f"{args.input} -> {args.output} ({img.shape[1]}x{img.shape[0]}, {time.perf_counter() - t0:.1f} s)"
        )
        return 0
    if args.method not in ("eqlinr", "coolchic"):
        raise UsageError(f"Unknown codec {args.method!r}; choose from ['eqlinr', 'coolchic']")
    if args.quality is not None and args.lmbda is not None:
        raise UsageError("give --quality or --lambda, not both")
    if args.quality is not None and not 1 <= args.quality <= 8:
        raise UsageError(f"--quality must be in 1..8, got {args.quality}")
    if args.lmbda is not None and not (math.isfinite(args.lmbda) and args.lmbda > 0):
        raise UsageError(f"--lambda must be a finite number > 0 (typically 1e-4 .. 2e-2), got {args.lmbda}")
    if args.iterations is not None and args.iterations < 1:
        raise UsageError(f"--iterations must be >= 1, got {args.iterations}")
    if not Path(args.input).is_file():
        raise UsageError(f"{args.input}: no such file")
    _check_codec_output(args.output, args.input, "the .tvc file")
    if args.recon:
        _check_codec_output(args.recon, args.input, "--recon")
        if Path(args.recon).resolve() == Path(args.output).resolve():
            raise UsageError(f"--recon {args.recon} is the .tvc output file; give another path")
    lmbda = args.lmbda if args.lmbda is not None else lambda_for_quality(args.quality or 5)
    overrides = [f"model.lmbda={lmbda}", f"model.seed={args.seed}", *(f"model.{kv}" for kv in args.set or [])]
    if args.iterations is not None:
        overrides.append(f"model.iterations={args.iterations}")
    run_cfg = make_run_config(args.method, args.preset, overrides=overrides)
    try:
        method = registry.get(args.method).cls(run_cfg.model)
    except ValueError as e:
        raise UsageError(f"invalid codec setting (--set / --preset {args.preset}): {e}") from None
    try:
        image = load_image(args.input)
    except ImageReadError as e:
        raise UsageError(str(e)) from e
    h, w = image.shape[:2]
    cfg = method.config
    try:
        bs.check_size(h, w, cfg.n_grids, tuple(cfg.synthesis))
    except ValueError as e:
        raise UsageError(f"{args.input}: {e}") from None
    log.info("encoding %s (%dx%d) with %s, lambda=%g, %d iterations", args.input, w, h, args.method, lmbda,
             method.config.iterations)  # fmt: skip
    res = method.encode(image, progress=not args.no_progress)
    atomic_write_bytes(args.output, res.data)
    x8 = np.round(res.x_hat.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    if args.recon:
        save_png(args.recon, x8)
    st = res.stats
    print(f"{args.input} -> {args.output}: {len(res.data)} bytes, {st['bpp']:.4f} bpp, PSNR {psnr(image, x8):.2f} dB "
          f"(RGB), encoded in {st['encode_seconds']:.1f} s")  # fmt: skip
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from trustvis.report.html import write_report

    path = write_report(args.folder, out=args.out)
    print(f"wrote {path}")
    return 0


# ----------------------------------------------------------------------------------------------------
# parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="trustvis",
        description="trustvis: detect generated, recaptured and anomalous images; train, adapt, calibrate "
        "and compress the models involved.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="run `trustvis COMMAND --help` for the options and an example of each command",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    raw = argparse.RawDescriptionHelpFormatter

    s = sub.add_parser("list", help="list registered methods", formatter_class=raw,
                       epilog="example:\n  trustvis list --task detect")  # fmt: skip
    s.add_argument("--task", help="only methods of this task (detect, anomaly, classify, ...)")
    s.set_defaults(fn=cmd_list)

    s = sub.add_parser("info", help="describe one method: paper, presets, config fields", formatter_class=raw,
                       epilog="example:\n  trustvis info bihpf")  # fmt: skip
    s.add_argument("method")
    s.set_defaults(fn=cmd_info)

    s = sub.add_parser("data", help="real-data sources and benchmark builders", formatter_class=raw,
                       epilog="examples:\n  trustvis data status\n  trustvis data build synthbench --quick")  # fmt: skip
    dsub = s.add_subparsers(dest="data_cmd", required=True, metavar="{status,build}")
    st = dsub.add_parser("status", help="which sources are installed and how many images each gives")
    st.add_argument("--json", action="store_true")
    b = dsub.add_parser("build", help="build a benchmark data set into the cache ($TRUSTVIS_HOME)")
    b.add_argument("name", help="synthbench")
    b.add_argument("--size", default="quick", choices=["quick", "full"])
    b.add_argument("--quick", action="store_true", help="same as --size quick")
    b.add_argument("--force", action="store_true", help="rebuild even if a valid cache exists")
    b.add_argument("--no-progress", action="store_true")
    s.set_defaults(fn=cmd_data)

    s = sub.add_parser("train", help="train a method", formatter_class=raw, epilog=EPILOG_TRAIN)
    s.add_argument("method")
    s.add_argument("--preset", default="default", help="named preset of the method (see `trustvis info`)")
    s.add_argument("--config", action="append", help="YAML file(s) of overrides (model:, train:, data:)")
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. train.steps=500")
    s.add_argument("--data", help="ForenSynths root with train/ (and val/), or a GenImage root "
                   "(<generator>/{train,val}/{ai,nature}), instead of SynthBench")  # fmt: skip
    s.add_argument("--steps", type=_int_at_least(0), help="shortcut for --set train.steps=N")
    s.add_argument("--out", help="run folder (default runs/METHOD-TIME)")
    s.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    s.add_argument(
        "--lora", metavar="SPEC",
        help="train with LoRA adapters on the method's backbone(s), e.g. r=8,alpha=16,targets=layer3+layer4 "
        "(lists joined by '+', 're:REGEX' for a full-match regex; keys: r, alpha, dropout, targets, exclude, "
        "train_modules, init, rank_pattern, alpha_pattern, rslora). Default targets: every Conv2d/Linear/"
        "attention layer of the backbone; the head trains in full. Writes a PEFT adapter to RUN/adapter/",
    )  # fmt: skip
    s.set_defaults(fn=cmd_train)

    s = sub.add_parser("eval", help="evaluate a trained run on a ForenSynths-layout folder", formatter_class=raw,
                       epilog="examples:\n  trustvis eval runs/bihpf --data ~/.cache/trustvis/synthbench/v1-quick/test\n"
                       "  trustvis eval runs/d4 --data DIR --attack pgd-l2 --attack hsja --eps 0.0257 --queries 2000")  # fmt: skip
    s.add_argument("run_dir")
    s.add_argument("--data", required=True, help="ForenSynths root/<generator>/[<class>/]{0_real,1_fake}/* or "
                   "GenImage root/<generator>/{train,val}/{ai,nature}/*")  # fmt: skip
    s.add_argument("--batch-size", type=_int_at_least(1), default=64)
    s.add_argument(
        "--split", help="GenImage layouts (<generator>/{train,val}/{ai,nature}): which split to read"
    )
    s.add_argument(
        "--max-images", type=_int_at_least(0), default=0, help="cap per generator and class (0 = all)"
    )
    s.add_argument("--device", default="cpu")
    s.add_argument("--json", action="store_true")
    s.add_argument("--no-progress", action="store_true")
    from trustvis.attacks.evaluate import ATTACKS

    a = s.add_argument_group("adversarial evaluation (fake images only; the attacker wants fake -> real)")
    a.add_argument("--attack", action="append", choices=ATTACKS,
                   help="white-box PGD (pgd-l2, pgd-linf) or black-box HopSkipJump (hsja); repeatable")  # fmt: skip
    a.add_argument("--eps", type=float, help="budget: normalised L2 ‖δ‖₂/sqrt(C·H·W) for pgd-l2 and hsja "
                   "(default 0.0257, D4's), max |δ| for pgd-linf (default 4/255)")  # fmt: skip
    a.add_argument("--attack-steps", type=_int_at_least(1), default=10, help="PGD steps (default 10)")
    a.add_argument(
        "--queries",
        type=_int_at_least(1),
        default=1000,
        help="HopSkipJump query budget per image (default 1000)",
    )
    a.add_argument(
        "--attack-images", type=_int_at_least(1), default=100, help="fake images attacked (default 100)"
    )
    a.add_argument("--seed", type=int, default=0, help="seeds the attacks' randomness")
    s.set_defaults(fn=cmd_eval)

    s = sub.add_parser("calibrate", help="fit post-hoc calibrators (TS, CTS, ETS, PTS, SCTL) to logits",
                       formatter_class=raw, epilog=EPILOG_CALIBRATE)  # fmt: skip
    s.add_argument("--logits", help=".npz with cal_logits (N,K) or (N,) binary, cal_labels (N,), and optionally "
                   "test_logits, test_labels (aliases: val_logits/val_labels, logits/labels)")  # fmt: skip
    s.add_argument("--run", help="a trained classifier run (val -> test) or SynthBench detector run "
                   "(training family's val -> unseen families' test)")  # fmt: skip
    s.add_argument("--method", default="all", choices=["all", "ts", "cts", "ets", "pts", "sctl"],
                   help="one calibrator, or all of them with the CE and the SCTL loss (default all)")  # fmt: skip
    s.add_argument(
        "--calibrator", default="ts", help="with --method sctl: the calibrator it fits (ts|cts|ets|pts)"
    )
    s.add_argument(
        "--out", help="folder for calibration.json, reliability.png and (one method) the fitted calibrator"
    )
    s.add_argument(
        "--max-iter",
        type=_int_at_least(1),
        help="optimiser iterations per calibrator (default 1000, the official budget)",
    )
    s.add_argument("--device", default="cpu")
    s.add_argument("--json", action="store_true")
    s.add_argument("--inputs-are-logits", action="store_true",
                   help="the --logits arrays are logits even though they look like probabilities (values in [0, 1], "
                   "rows summing to 1); without it such a file is refused")  # fmt: skip
    s.set_defaults(fn=cmd_calibrate)

    s = sub.add_parser("predict", help="score images or folders with a trained run", formatter_class=raw,
                       description=PREDICT_HELP,
                       epilog="example:\n  trustvis predict runs/bihpf photo.jpg more_images/ --json")  # fmt: skip
    s.add_argument("run_dir")
    s.add_argument("paths", nargs="+", help="image files and folders (searched recursively)")
    s.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="decision threshold (default: 0.5 for detectors; the run's stored threshold for anomaly runs)",
    )
    s.add_argument("--maps", help="anomaly runs: folder for the heat-map overlays (default RUN/maps)")  # fmt: skip
    s.add_argument("--batch-size", type=_int_at_least(1), default=32)
    s.add_argument("--max-side", type=_int_at_least(0), default=2048,
                   help="longest image side given to the model (default 2048; 0 = no limit): larger images are "
                   "centre-cropped (detectors) or reduced (anomaly runs) at load time")  # fmt: skip
    s.add_argument("--device", default="cpu")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_predict)

    s = sub.add_parser("bench", help="run a benchmark protocol end to end", formatter_class=raw,
                       epilog=EPILOG_BENCH)  # fmt: skip
    s.add_argument("task", help="detect | augment | calibrate | adapt | anomaly | codec")
    s.add_argument("--quick", action="store_true",
                   help="CPU-sized protocol (on 2 cores: detect 40 min to 2.5 hours; augment, calibrate, adapt, anomaly "
                   "under 30 min each; codec 39 min)")  # fmt: skip
    s.add_argument("--methods", help="comma-separated subset: detectors (detect) or conditions (augment: none, "
                   "mixup, cutmix, dcutmix-K2, ..., dmixup-K5; adapt: linear, full, lora-r4, lora-r8, lora-r16)")  # fmt: skip
    s.add_argument("--steps", type=_int_at_least(1), help="training steps per run (default: the protocol's)")
    s.add_argument("--preset", help="method preset for every method (default: quick with --quick)")
    s.add_argument("--seed", type=int, default=0, help="training seed (detect, calibrate)")
    s.add_argument(
        "--seeds", type=_csv_of(int), help="augment: comma-separated training seeds (default 0,1,2)"
    )
    s.add_argument(
        "--datasets",
        help="augment: comma-separated data sets (default fashion-mnist,opencv-digits); "
        "calibrate: the one classification data set (default fashion-mnist); adapt: the parts to run "
        "(default fmnist,detect); anomaly: the sets (default elpv-mono,elpv-poly,textures,textures-misaligned)",
    )
    s.add_argument(
        "--family", default="dcgan", help="adapt: the unseen SynthBench family the detector adapts to"
    )
    s.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override for every method, e.g. train.num_workers=8 (model.* keys must exist in all)",
    )
    s.add_argument("--device", default="auto")
    s.add_argument("--out", help="output folder (default results/<task>-quick or results/<task>)")
    s.add_argument("--attack-images", type=_int_at_least(0), default=28,
                   help="detect: fake test images attacked for the adversarial table (default 28; 0 skips it)")  # fmt: skip
    s.add_argument(
        "--queries",
        type=_int_at_least(1),
        default=1000,
        help="detect: HopSkipJump queries per image (default 1000)",
    )
    s.add_argument("--detect-dir", help="calibrate: a `bench detect` folder whose trained detectors to calibrate "
                   "(default: train a quick cnndet here)")  # fmt: skip
    s.add_argument("--no-detectors", action="store_true", help="calibrate: skip the binary detectors' part")
    s.add_argument("--images", type=_int_at_least(1), help="codec: only the first N images")
    s.add_argument(
        "--iterations",
        type=_int_at_least(1),
        help="codec: overfitting iterations per image (quick 800, full 3000)",
    )
    s.add_argument(
        "--lambdas",
        type=_csv_of(float, positive=True),
        help="codec: comma-separated lambdas of the neural codecs",
    )
    s.add_argument("--data-dir", help="codec: a Kodak-style folder of images instead of the built-in set")
    s.add_argument("--ablation", action="store_true", help="codec: also EQLINR with one addition removed at a time "
                   "(LEM, SGA, temperature penalty, Gaussian); reuses the folder's points")  # fmt: skip
    s.add_argument("--pooled", action="store_true", help="anomaly: one model for all textures of a texture set "
                   "(default: one per texture, metrics averaged, the MVTec convention)")  # fmt: skip
    s.set_defaults(fn=cmd_bench)

    s = sub.add_parser("codec", help="compress / decompress images with the neural codecs (EQLINR, COOL-CHIC)",
                       formatter_class=raw, epilog=EPILOG_CODEC)  # fmt: skip
    csub = s.add_subparsers(dest="codec_cmd", required=True, metavar="{encode,decode,info}")
    e = csub.add_parser("encode", help="overfit the codec to one image and write its .tvc file", formatter_class=raw,
                        epilog=EPILOG_CODEC)  # fmt: skip
    e.add_argument(
        "input", help="image file (PNG, JPEG, ...; grayscale, RGBA and 16-bit are converted to 8-bit RGB)"
    )
    e.add_argument("output", help="the .tvc file to write")
    e.add_argument("--method", default="eqlinr", help="eqlinr (default) or coolchic")
    e.add_argument(
        "--quality", type=int, help="1 (smallest file) .. 8 (best quality); default 5 (lambda 1e-3)"
    )
    e.add_argument(
        "--lambda", dest="lmbda", type=float, help="rate weight instead of --quality (1e-4 .. 2e-2)"
    )
    e.add_argument(
        "--iterations", type=int, help="overfitting budget (default: the preset's; more = better, slower)"
    )
    e.add_argument("--preset", default="default", help="default (3000 iterations) or quick (1500)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument(
        "--set", action="append", metavar="FIELD=VALUE", help="any codec config field, e.g. lem_layers=0"
    )
    e.add_argument("--recon", help="also write the decoded image (PNG) the file gives")
    e.add_argument("--no-progress", action="store_true")
    d = csub.add_parser("decode", help="decode a .tvc file to PNG")
    d.add_argument("input", help="the .tvc file")
    d.add_argument("output", help="PNG to write")
    d.add_argument("--no-progress", action="store_true")
    i = csub.add_parser("info", help="print the header of a .tvc file")
    i.add_argument("file")
    i.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_codec)

    s = sub.add_parser("report", help="write a self-contained HTML report", formatter_class=raw,
                       epilog="example:\n  trustvis report results/detect-quick")  # fmt: skip
    s.add_argument("folder", help="a bench folder (results.json) or a run folder (model.json)")
    s.add_argument("--out", help="HTML file (default FOLDER/report.html)")
    s.set_defaults(fn=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args._argv = argv
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    from trustvis.config import ConfigError
    from trustvis.engine.checkpoint import CheckpointError
    from trustvis.engine.runlock import RunLockError

    try:
        return int(args.fn(args) or 0)
    except (
        UsageError, ConfigError, CheckpointError, RunLockError, FloatingPointError, KeyError, FileNotFoundError,
        ValueError,
    ) as e:  # fmt: skip
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"trustvis: error: {msg}", file=sys.stderr)
        return 2


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
