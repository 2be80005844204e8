"""Pieces every benchmark protocol shares: train-or-reuse a run folder, and the environment record."""

from __future__ import annotations

import json
import logging
import math
import platform
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from trustvis.atomic import atomic_write_json
from trustvis.config import LEGACY_DATA_KEYS, RunConfig, to_dict
from trustvis.engine import checkpoint as ckpt
from trustvis.engine import load_method
from trustvis.engine.distributed import resolve_device
from trustvis.tasks.train import fit_run

log = logging.getLogger(__name__)

#: (run config, freshly built method) -> (train set, validation set or None)
DatasetsFn = Callable[[RunConfig, Any], tuple[Dataset, Dataset | None]]
#: (method, validation set) -> {metric: value}, logged as val_<metric>
ValFn = Callable[[Any, Dataset], dict[str, float]]


def payload_header(bench: str, command: str, device: str) -> dict[str, Any]:
    """The first keys of every bench's ``results.json``: which bench, version, time, command, environment."""
    import time

    import trustvis

    return {
        "bench": bench,
        "trustvis_version": trustvis.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "command": command,
        "environment": environment(device),
    }


def run_line(res: dict[str, Any]) -> str:
    """``trustvis V, torch V, device (N threads), created`` of a bench payload (for results.md)."""
    env = res["environment"]
    return (
        f"trustvis {res['trustvis_version']}, torch {env['torch']}, {env['device']} ({env['threads']} threads), "
        f"{res['created']}."
    )


def write_results(out: Path, payload: dict[str, Any], markdown: Callable[[dict[str, Any]], str]) -> Path:
    """``results.json``, ``results.md`` (from ``markdown(payload)``) and ``report.html`` into ``out``."""
    from trustvis.atomic import atomic_write_text
    from trustvis.report.html import write_report

    atomic_write_json(out / "results.json", payload)
    atomic_write_text(out / "results.md", markdown(payload))
    write_report(out)
    log.info("%s bench finished in %.0f s -> %s", payload["bench"], payload.get("bench_seconds", 0.0), out)
    return out


def environment(device: str = "auto") -> dict[str, Any]:
    """Where a benchmark ran: versions, device, threads, platform."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(resolve_device(device)),
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


def _same_run(saved: Any, run_dict: dict[str, Any]) -> bool:
    """Is the saved config that of ``run_dict``? A run saved before each task had its own data config holds
    the other tasks' data keys too (``config.LEGACY_DATA_KEYS``); they are not part of the comparison, so an
    existing bench folder is reused rather than retrained."""
    if not isinstance(saved, dict):
        return False
    data = saved.get("data")
    if isinstance(data, dict):
        keep = run_dict.get("data") or {}
        saved = {**saved, "data": {k: v for k, v in data.items() if k in keep or k not in LEGACY_DATA_KEYS}}
    return saved == run_dict


def train_or_reuse(
    run: RunConfig, out: Path, datasets_fn: DatasetsFn, val_fn: ValFn | None = None
) -> tuple[Any, dict[str, Any]]:
    """Train ``run`` into ``out``, or load it if ``out`` already holds the same finished run.

    An interrupted run of the same config resumes from its last checkpoint; checkpoints of another
    config are discarded (they cannot continue this one). Returns the method (in eval mode) and
    ``{"train_steps", "train_seconds", "val"}``.
    """
    run_dict = to_dict(run)
    meta_path = out / "model.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if _same_run(meta.get("config"), run_dict):
            method = load_method(out, device=str(resolve_device(run.train.device)))
            summary = out / "train_summary.json"
            info = json.loads(summary.read_text(encoding="utf-8")) if summary.is_file() else {}
            log.info("reusing trained %s from %s", run.method, out)
            return method, info
        log.info("config of %s changed; retraining", out)
        shutil.rmtree(out / "checkpoints", ignore_errors=True)  # the old run's records would mix with the new
        (out / "metrics.jsonl").unlink(missing_ok=True)
    latest = ckpt.latest_checkpoint(out) if not meta_path.is_file() else None
    resume = False
    if latest is not None:
        state = json.loads((latest / "state.json").read_text(encoding="utf-8"))
        resume = _same_run(state.get("config"), run_dict)
        if not resume:
            log.info("checkpoints in %s belong to another config; training from scratch", out)
            shutil.rmtree(out / "checkpoints")
            (out / "metrics.jsonl").unlink(missing_ok=True)
    result, _ = fit_run(run, out, datasets_fn, val_fn, resume)
    method, summary = result.method, result.summary
    info = {
        "train_steps": summary["steps"],
        "train_seconds": summary["train_seconds"],
        "val": summary["eval"],
    }
    atomic_write_json(out / "train_summary.json", info)
    return method, info


# ----------------------------------------------------------------------------------------------------
# what the benches that compare methods over seeds share


def check_methods(methods: list[str], task: str, what: str) -> None:
    """Every name in ``methods`` is a registered method of ``task`` (``what`` names one in the error)."""
    from trustvis import registry

    for name in methods:
        if registry.get(name).task != task:
            raise ValueError(
                f"{name!r} is not {what}; choose from {[s.name for s in registry.list_methods(task)]}"
            )


def seed_run(name: str, preset: str, opts: Any, seed: int, data: dict[str, Any], model: dict[str, Any] | None = None,
             train: dict[str, Any] | None = None) -> RunConfig:  # fmt: skip
    """The run config of method ``name`` for one seed of a bench: the bench's ``preset``, ``data`` and its own
    ``model``/``train`` values, the run settings of ``opts`` (device, progress bars, ``--steps``) and the user's
    ``--set`` overrides last."""
    from trustvis.config import make_run_config

    train = {**(train or {}), "seed": seed, "device": opts.device, "progress": opts.progress}
    if opts.steps:
        train["steps"] = opts.steps
    return make_run_config(name, preset, overrides=opts.overrides, model=model, train=train, data=data)


def mean_std(values: list[float]) -> dict[str, float]:
    """``{"mean", "std" (ddof 1; NaN for one value), "n"}`` of the finite ``values`` (NaNs if none)."""
    v = [float(x) for x in values if isinstance(x, (int, float)) and math.isfinite(x)]
    if not v:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {
        "mean": float(np.mean(v)),
        "std": float(np.std(v, ddof=1)) if len(v) > 1 else float("nan"),
        "n": len(v),
    }


def pm(stat: dict[str, float], scale: float = 100.0, digits: int = 1) -> str:
    """``"mean ± std"`` of a :func:`mean_std` record, scaled (percent by default); ``–`` when there is no mean."""
    m, sd = stat.get("mean", float("nan")), stat.get("std", float("nan"))
    if not math.isfinite(m):
        return "–"
    return f"{scale * m:.{digits}f}" + (f" ± {scale * sd:.{digits}f}" if math.isfinite(sd) else "")


def seed_verdict(a: dict[str, float], b: dict[str, float], name: str, other: str, what: str,
                 lower_is_better: bool = False) -> str:  # fmt: skip
    """Does ``name`` (stat ``a``) beat ``other`` (stat ``b``) on ``what``? A difference counts only beyond twice
    the larger std over seeds; one seed gives no spread to judge by."""
    spread = max(a.get("std", float("nan")), b.get("std", float("nan")))
    diff = (b["mean"] - a["mean"]) if lower_is_better else (a["mean"] - b["mean"])
    if not (math.isfinite(diff) and math.isfinite(spread)):
        return f"{name} {pm(a)} vs {other} {pm(b)} {what} (one seed: no spread to judge by)"
    if abs(diff) <= 2 * spread:
        return f"{name} ties {other} on {what} ({pm(a)} vs {pm(b)}: within twice the seeds' std)"
    word = "beats" if diff > 0 else "does not beat"
    return f"{name} {word} {other} on {what} ({pm(a)} vs {pm(b)}, beyond twice the seeds' std)"
