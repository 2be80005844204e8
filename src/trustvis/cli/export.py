"""``trustvis export``: a trained run's network as an ONNX or TorchScript file, with a JSON sidecar.

The command reads the run, gathers what a user of the file needs (input size and range, how to shape a
photo, the decision threshold, class names) and calls :func:`trustvis.engine.export.export_method`, which
exports, checks the file against torch and writes both files.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from trustvis.cli.common import RAW, UsageError, int_at_least

#: the input side of a detector that reads any size, when neither the run nor --image-size gives one
DEFAULT_SIZE = 256

EXPORT_HELP = """\
Export the network of a trained run (detector, anomaly or classifier) as one file that runs without
trustvis: ONNX (onnxruntime, TensorRT, OpenVINO, ...) or TorchScript (torch.jit.load).

The graph takes `image`, a float32 batch (N,3,H,W): RGB, channels first, values in [0,1] (pixel / 255),
transformed as the method's eval transform does (detectors: a centre crop at full resolution; anomaly
and classifier runs: the photo resized to H x W). No mean/std is applied outside the graph: the network
normalises its input itself. N is free (a dynamic axis in ONNX); H and W are fixed when exporting
(default: the size the run was built or trained for; detectors that read any size: 256).
It returns the method's main outputs: detectors score (N,) = p(fake) and logits (N,); anomaly runs
score (N,) and anomaly_map (N,H,W); classifiers logits (N,C) and probs (N,C).

The file is written only after a check: onnxruntime (or torch.jit.load) must reproduce torch's outputs
within 1e-4 on a random batch of another size. FILE.json, next to it, describes the input (shape,
range, mean/std, how to shape a photo), the outputs, the run's method and task, and its threshold
(detectors 0.5 on score; anomaly runs the stored one) and class names where the run has them.
Codecs and post-hoc calibrators have no image network to export: the command says so.
ONNX export needs the onnx and onnxscript packages, its check onnxruntime (the dev extra has them)."""

EPILOG = """\
examples:
  trustvis export runs/classifier --format onnx                  # -> runs/classifier/model.onnx (+ .json)
  trustvis export runs/d4 --format torchscript --out d4.pt
"""


def _check_target(out: Path) -> None:
    """Refuse to overwrite a file that is not a previous export (a run's model.json, weights, ...)."""
    import json

    from trustvis.engine.export import SIDECAR_FORMAT, sidecar_path

    side = sidecar_path(out)
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give the file to write (e.g. {out / 'model.onnx'})")

    def ours(path: Path) -> bool:
        try:
            return json.loads(path.read_text(encoding="utf-8")).get("format") == SIDECAR_FORMAT
        except (OSError, ValueError, AttributeError):
            return False

    if side.exists() and not ours(side):
        raise UsageError(f"{side} exists and is not an export sidecar; choose another --out")
    if out.exists() and not side.exists():
        raise UsageError(f"{out} exists and is not a trustvis export (no {side.name}); choose another --out")


def _preprocess(fit: str, h: int, w: int, gray: bool) -> str:
    """How to make the graph's input from a photo (the task's predict path), in one line."""
    how = (
        f"centre crop {h}x{w} at full resolution (no resampling)"
        if fit == "crop"
        else f"resize to {h}x{w} (Lanczos)"
    )
    gray_step = " -> gray, repeated over the 3 channels" if gray else ""
    return f"RGB uint8 photo{gray_step} -> {how} -> float32 / 255 -> (N,3,{h},{w})"


def cmd_export(args: argparse.Namespace) -> int:
    from trustvis import registry
    from trustvis.engine import load_method
    from trustvis.engine.checkpoint import read_meta
    from trustvis.engine.export import FORMATS, export_method, sidecar_path
    from trustvis.tasks import TaskError, task_of
    from trustvis.tasks.classify import read_classes

    run_dir = Path(args.run_dir)
    meta = read_meta(run_dir)
    spec = registry.get(meta["method"])
    task = task_of(spec.task)
    out = Path(args.out) if args.out else run_dir / f"model{FORMATS[args.format]}"
    _check_target(out)
    method = load_method(run_dir, device="cpu")
    method.export_module()  # NotExportable (codecs, calibrators, ...) before any other work
    classes = read_classes(run_dir)  # {} unless the run stored its class names and image size
    size: Any = args.image_size or method.export_image_size() or classes.get("image_size") or DEFAULT_SIZE
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    try:
        threshold = task.default_threshold(method, run_dir)
    except TaskError:
        threshold = None  # e.g. an anomaly run saved before its threshold was set
    info: dict[str, Any] = {
        "run": str(run_dir),
        "preset": meta.get("preset"),
        "step": meta.get("step"),
        "preprocess": _preprocess(task.predict_fit, h, w, bool(classes.get("gray"))),
    }
    if threshold is not None:
        info["threshold"] = {"value": float(threshold), "on": method.export_outputs()[0]}
    if classes.get("classes"):
        info["classes"] = list(classes["classes"])
    side = export_method(method, out, args.format, image_size=(h, w), info=info, check=not args.no_check)
    outs = ", ".join(f"{o['name']} ({','.join(map(str, o['shape']))})" for o in side["outputs"])
    print(f"exported {spec.name} ({spec.task}) -> {out}")
    print(f"input image (N,3,{h},{w}) float32 in [0,1]; outputs {outs}")
    check = side["check"]
    if check:
        runner = "onnxruntime" if args.format == "onnx" else "torch.jit.load"
        print(
            f"checked with {runner} on a batch of {check['batch']}: max |difference| {check['max_abs_diff']:.2g}"
        )
    else:
        print("not checked (--no-check, or onnxruntime is not installed)")
    print(f"sidecar -> {sidecar_path(out)}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("export", help="export a trained run's network to ONNX or TorchScript", formatter_class=RAW,
                       description=EXPORT_HELP, epilog=EPILOG)  # fmt: skip
    s.add_argument("run_dir", metavar="RUN", help="a trained run folder (trustvis train --out RUN)")
    s.add_argument("--format", required=True, choices=("onnx", "torchscript"), help="file format")
    s.add_argument("--out", metavar="FILE", help="file to write (default RUN/model.onnx or RUN/model.pt)")
    s.add_argument("--image-size", type=int_at_least(1), metavar="N",
                   help="export for N x N inputs (default: the run's own size; detectors that read any size: "
                   f"{DEFAULT_SIZE})")  # fmt: skip
    s.add_argument("--no-check", action="store_true", help="skip running the file against torch")
    s.set_defaults(fn=cmd_export)


__all__ = ["add_parsers", "cmd_export"]
