"""Pieces every benchmark protocol shares: train-or-reuse a run folder, and the environment record."""

from __future__ import annotations

import json
import logging
import platform
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
