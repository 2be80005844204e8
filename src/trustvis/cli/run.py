"""``trustvis train | eval | predict``: one run of a method, whatever its task.

The command line only composes the run config and prints; everything task-specific — data sets,
validation metrics, the after-fit step, what a prediction holds, how a folder is evaluated — is the task
object's (:mod:`trustvis.tasks`), found from the method's registry entry.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

from trustvis.cli.common import RAW, UsageError, int_at_least, table

EPILOG_TRAIN = """\
examples:
  trustvis train bihpf --preset quick --out runs/bihpf
  trustvis train cnndet --preset quick --set train.steps=200 --set model.blur_prob=0.1
  trustvis train cnndet --data /data/CNNDetection --set model.weights=/ckpt/resnet50.pth
  trustvis train bihpf --out runs/bihpf --resume          # continue an interrupted run
  torchrun --nproc_per_node 2 -m trustvis train cnndet --preset quick --out runs/ddp

data: each task has its own `data.*` fields (`trustvis info METHOD` lists a method's; --data ROOT is
`--set data.name=folder --set data.root=ROOT`):
  detectors     data.name=synthbench (default; SynthBench train/val of data.train_family, built on first use;
                data.version=v2 for the second edition)
                | folder: ROOT/{train,val}/<generator>/[<class>/]{0_real,1_fake}/* or a GenImage root
  classifiers   data.name=fashion-mnist (default) | opencv-digits | sklearn-digits | tuxpaint-stamps | folder (ROOT/<class>/*
  (classifier,  or ROOT/{train,[val],test}/<class>/*); data.imbalance=100 makes train/val long-tailed
  kmix, mixup,  trustvis train kmix --preset quick --set model.K=3 --out runs/kmix
  cutmix, lora) trustvis train classifier --set data.name=opencv-digits --steps 500
  anomaly       data.name=elpv-mono (default) | elpv-poly | textures | textures-misaligned | mvtec
                (data.root, data.category) | folder: ROOT/normal/*, ROOT/abnormal/*, [ROOT/mask/*]
"""

PREDICT_HELP = """\
Score image files and folders with a trained run: a detector (p(fake) and a verdict), an anomaly run
(anomaly score, verdict at the run's stored threshold and a heat-map overlay per image) or a classifier
(the top-k classes with their probabilities; photos are resized, and made gray, like the training images)
or an RGB + depth anti-spoofing run (p(spoof) and a verdict at the run's validation threshold, for each RGB
image with its depth map: --depth, or <id>_depth.png beside <id>_rgb.*; in a folder of pairs each
<id>_rgb.* is scored with its <id>_depth.png).

Folders are searched recursively (symbolic links followed, each real folder and file once). Multi-frame
files (GIF, APNG, animated WebP, multi-page TIFF) are scored on their first frame, with a warning.
Large images: an image with a side longer than --max-side (default 2048) is reduced at load time,
before it becomes a tensor. Detector runs score its centre crop of at most max-side x max-side pixels
at full resolution (resizing would erase the traces they read); anomaly and classifier runs score a copy
reduced (Lanczos) to a longer side of max-side (their models resize to the run's image size anyway). A
file whose decoding would need more than 2 GiB of memory is refused before it is decoded.
A file that cannot be scored (missing, unreadable, too large, the model failing on it, a score that is
not a finite number) gets an error row; the other images keep their results. Exit status: 0 if any
image was scored, 1 if none."""


# ----------------------------------------------------------------------------------------------------
# train


def cmd_train(args: argparse.Namespace) -> int:
    """``trustvis train``: holds the run folder's lock (rank 0) from the first check to the last write."""
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


def _run_config(args: argparse.Namespace, out: Path):
    """The run config of ``trustvis train`` (preset -> saved config on --resume -> YAML -> --set)."""
    from trustvis.config import load_yaml, make_run_config
    from trustvis.engine.checkpoint import latest_checkpoint, read_meta

    overrides = list(args.set or [])
    if args.data:
        overrides += ["data.name=folder", f"data.root={args.data}"]
    if (
        args.steps is not None
    ):  # checked with the rest of the config by validate_run (fit-only methods take 0)
        overrides.append(f"train.steps={args.steps}")
    if args.resume and (out / "config.yaml").is_file():
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
    return run, {o.split("=", 1)[0] for o in overrides}


def _train(args: argparse.Namespace, out: Path) -> int:
    from trustvis.tasks.train import check_trainable, train_run

    task = check_trainable(args.method)  # before any data is read: calibrators, codecs say what to use
    run, explicit = _run_config(args, out)
    task.prepare(run, explicit)  # e.g. a classifier's class count from its data
    res = train_run(run, out, resume=args.resume)
    if res.is_main:
        for line in res.lines:
            print(line)
        s = res.summary
        print(f"trained {run.method} for {s['steps']} steps in {s['train_seconds']:.0f} s -> {out}")
        if s["eval"]:
            print("validation: " + ", ".join(f"{k}={v:.3f}" for k, v in s["eval"].items()))
        for line in res.adapter_lines:
            print(line)
    return 0


# ----------------------------------------------------------------------------------------------------
# eval


def _run_task(run_dir: str, command: str):
    """(task object, method name) of the run in ``run_dir``, refusing methods the task cannot run here."""
    from trustvis import registry
    from trustvis.engine.checkpoint import read_meta
    from trustvis.tasks import task_of

    spec = registry.get(read_meta(run_dir)["method"])
    task = task_of(spec.task)
    task.check_method(spec, command)
    return task, spec


def cmd_eval(args: argparse.Namespace) -> int:
    from trustvis.atomic import atomic_write_json
    from trustvis.engine import load_method

    if args.eps is not None and args.eps < 0:
        raise UsageError(f"--eps must be >= 0, got {args.eps}")
    task, spec = _run_task(args.run_dir, "eval")
    if args.attack and not hasattr(task, "attack"):
        raise UsageError(f"--attack needs a detector run; {args.run_dir} is a {spec.task} run ({spec.name})")
    method = load_method(args.run_dir, device=args.device)
    res = task.evaluate(method, Path(args.data), Path(args.run_dir), batch_size=args.batch_size,
                        max_images=args.max_images, split=args.split, progress=not args.no_progress)  # fmt: skip
    evaluated = dict(res)
    res.pop("_dataset", None)
    skipped = res.pop("skipped", [])
    if not args.json:
        print(table(*task.eval_table(res)))
        if skipped:
            print(f"\nskipped {len(skipped)} unreadable file(s); first: {skipped[0]}")
    if args.attack:
        res["adversarial"] = task.attack(method, evaluated, args.attack, eps=args.eps, steps=args.attack_steps,
                                         queries=args.queries, images=args.attack_images, seed=args.seed,
                                         progress=not args.no_progress)  # fmt: skip
        if not args.json:
            title, header, rows, note = task.attack_table(res["adversarial"])
            print(f"\n{title}\n{table(header, rows)}\n{note}")
    if args.json:
        print(json.dumps(res, indent=2, default=float))
    atomic_write_json(Path(args.run_dir) / "eval.json", res)
    return 0


# ----------------------------------------------------------------------------------------------------
# predict


def cmd_predict(args: argparse.Namespace) -> int:
    """``trustvis predict``: what it does with folders, large images and failures is ``PREDICT_HELP``."""
    from trustvis.atomic import atomic_write_text
    from trustvis.data.io import IMAGE_EXTENSIONS
    from trustvis.tasks import PredictOptions
    from trustvis.tasks.predict import collect_files, load_run

    if args.threshold is not None and not math.isfinite(args.threshold):
        raise UsageError(f"--threshold must be a finite number, got {args.threshold}")
    task, method = load_run(args.run_dir, device=args.device)
    run_dir = Path(args.run_dir)
    opts = PredictOptions(threshold=args.threshold, top_k=args.top_k, batch_size=args.batch_size,
                          max_side=args.max_side, maps_dir=Path(args.maps) if args.maps else None,
                          depth=[Path(d) for d in args.depth or []])  # fmt: skip
    if opts.threshold is None:
        opts.threshold = task.default_threshold(method, run_dir)
    files = task.predict_inputs(collect_files(args.paths, task.input_suffixes()))
    if not files:
        exts = ", ".join(sorted(e[1:] for e in task.input_suffixes() or IMAGE_EXTENSIONS))
        raise UsageError(f"no input files in {', '.join(args.paths)} (extensions: {exts})")
    pred = task.predict(method, files, opts, run_dir)
    if args.csv:
        atomic_write_text(args.csv, pred.csv_text())
    if args.json:
        print(json.dumps({"results": pred.records, "errors": pred.errors}, indent=2))
    elif args.jsonl:
        if pred.records or pred.errors:
            print(pred.json_lines())
    else:
        print(table(pred.header, pred.rows()))
        if pred.summary:
            print("\n" + "\n".join(pred.summary))
        if pred.errors:
            print(f"{len(pred.errors)} image(s) could not be scored (see the error rows)")
        if args.csv:
            print(f"wrote {args.csv}")
    return 0 if pred.records else 1


# ----------------------------------------------------------------------------------------------------
# parsers


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from trustvis.attacks import ATTACKS  # the names only: no torch

    s = sub.add_parser("train", help="train a method", formatter_class=RAW, epilog=EPILOG_TRAIN)
    s.add_argument("method")
    s.add_argument("--preset", default="default", help="named preset of the method (see `trustvis info`)")
    s.add_argument("--config", action="append", help="YAML file(s) of overrides (model:, train:, data:)")
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. train.steps=500")
    s.add_argument("--data", help="train on the folder ROOT in the task's layout (see below) instead of the "
                   "default data set; for detectors a ForenSynths root with train/ (and val/) or a GenImage root")  # fmt: skip
    s.add_argument("--steps", type=int_at_least(0), help="shortcut for --set train.steps=N")
    s.add_argument("--out", help="run folder (default runs/METHOD-TIME)")
    s.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    s.add_argument(
        "--lora", metavar="SPEC",
        help="train with LoRA adapters on the method's backbone(s), e.g. r=8,alpha=16,targets=layer3+layer4 "
        "(lists joined by '+', 're:REGEX' for a full-match regex; a name or suffix of a container such as a "
        "ResNet's layer3 selects every Conv2d/Linear/attention layer inside it; keys: r, alpha, dropout, "
        "targets, exclude, train_modules, init, rank_pattern, alpha_pattern, rslora). Default targets: every "
        "Conv2d/Linear/attention layer of the backbone. The backbone is frozen but for the adapters; the head "
        "trains in full. Writes a PEFT adapter to RUN/adapter/",
    )  # fmt: skip
    s.set_defaults(fn=cmd_train)

    s = sub.add_parser("eval", help="evaluate a trained run on a folder in its task's layout", formatter_class=RAW,
                       description="Measure a trained run on a folder laid out for its task:\n"
                       "  detectors   ForenSynths ROOT/<generator>/[<class>/]{0_real,1_fake}/* or GenImage "
                       "ROOT/<generator>/{train,val}/{ai,nature}/*: per-generator acc / AP / AUC\n"
                       "  classifiers ROOT/<class>/* (classes named like the run's): accuracy, NLL, ECE\n"
                       "  anomaly     ROOT/normal/*, ROOT/abnormal/*, [ROOT/mask/*]: image (and pixel) AUROC on "
                       "the folder's test split\nThe result is also written to RUN/eval.json.",
                       epilog="examples:\n  trustvis eval runs/bihpf --data ~/.cache/trustvis/synthbench/v1-quick/test\n"
                       "  trustvis eval runs/d4 --data DIR --attack pgd-l2 --attack hsja --eps 0.0257 --queries 2000")  # fmt: skip
    s.add_argument("run_dir")
    s.add_argument("--data", required=True, help="the folder (layouts above)")
    s.add_argument("--batch-size", type=int_at_least(1), default=64)
    s.add_argument(
        "--split", help="GenImage layouts (<generator>/{train,val}/{ai,nature}): which split to read"
    )
    s.add_argument(
        "--max-images",
        type=int_at_least(0),
        default=0,
        help="detectors: cap per generator and class (0 = all)",
    )
    s.add_argument("--device", default="cpu")
    s.add_argument("--json", action="store_true")
    s.add_argument("--no-progress", action="store_true")
    a = s.add_argument_group(
        "adversarial evaluation of detectors (fake images only; the attacker wants fake -> real)"
    )
    a.add_argument("--attack", action="append", choices=ATTACKS,
                   help="white-box PGD (pgd-l2, pgd-linf) or black-box HopSkipJump (hsja); repeatable")  # fmt: skip
    a.add_argument("--eps", type=float, help="budget: normalised L2 ‖δ‖₂/sqrt(C·H·W) for pgd-l2 and hsja "
                   "(default 0.0257, D4's), max |δ| for pgd-linf (default 4/255)")  # fmt: skip
    a.add_argument("--attack-steps", type=int_at_least(1), default=10, help="PGD steps (default 10)")
    a.add_argument(
        "--queries",
        type=int_at_least(1),
        default=1000,
        help="HopSkipJump query budget per image (default 1000)",
    )
    a.add_argument(
        "--attack-images", type=int_at_least(1), default=100, help="fake images attacked (default 100)"
    )
    a.add_argument("--seed", type=int, default=0, help="seeds the attacks' randomness")
    s.set_defaults(fn=cmd_eval)

    s = sub.add_parser("predict", help="score or classify images or folders with a trained run", formatter_class=RAW,
                       description=PREDICT_HELP,
                       epilog="examples:\n  trustvis predict runs/bihpf photo.jpg more_images/ --json\n"
                       "  trustvis predict runs/classifier shirt.png --top-k 5 --csv predictions.csv\n"
                       "  trustvis predict runs/mtofnet photo_rgb.jpg --depth photo_depth.png")  # fmt: skip
    s.add_argument("run_dir")
    s.add_argument("paths", nargs="+", help="image files and folders (searched recursively)")
    s.add_argument(
        "--threshold", type=float, default=None,
        help="decision threshold (default: 0.5 for detectors; the run's stored threshold for anomaly runs)",
    )  # fmt: skip
    s.add_argument(
        "--top-k", type=int_at_least(1), default=3, help="classifiers: classes listed per image (default 3)"
    )
    s.add_argument("--maps", help="anomaly runs: folder for the heat-map overlays (default RUN/maps)")
    s.add_argument("--depth", action="append", metavar="FILE",
                   help="RGB + depth (antispoof) runs: the depth map (8- or 16-bit PNG) of each RGB image, repeated "
                   "in the same order; default: <id>_depth.png beside <id>_rgb.* (a folder of pairs needs none)")  # fmt: skip
    s.add_argument("--batch-size", type=int_at_least(1), default=32)
    s.add_argument("--max-side", type=int_at_least(0), default=2048,
                   help="longest image side given to the model (default 2048; 0 = no limit): larger images are "
                   "centre-cropped (detectors) or reduced (anomaly and classifier runs) at load time")  # fmt: skip
    s.add_argument("--device", default="cpu")
    out = s.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON document {results, errors}")
    out.add_argument("--jsonl", action="store_true", help="print one JSON object per image (errors last)")
    s.add_argument("--csv", metavar="FILE", help="also write one CSV row per image to FILE")
    s.set_defaults(fn=cmd_predict)


__all__ = ["add_parsers", "cmd_eval", "cmd_predict", "cmd_train"]
