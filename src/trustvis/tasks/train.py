"""One training run of a method of any trainable task (``trustvis train``; the benches train through
:func:`trustvis.bench.common.train_or_reuse`, which shares the task's datasets and validation).

run config ──► task.check_method ──► task.train (default, fit_and_finish:)
    seed ──► build_method (init_from, linear probe, LoRA)
    ──► task.datasets(run, method) ──► Trainer.fit (validation: task.val_metrics, logged as val_*)
    ──► rank 0: task.after_fit (threshold, class names)  ──► LoRA adapter export (PEFT layout)
(the active task's train is its own loop of such fits: :mod:`trustvis.tasks.active`)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustvis import registry
from trustvis.tasks.base import TaskError, task_of

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished :func:`train_run` returns."""

    method: Any
    summary: dict[str, Any]  # the trainer's: steps, train_seconds, eval
    is_main: bool  # rank 0 (or a single process): it printed and wrote
    lines: list[str] = field(default_factory=list)  # what the task's after-fit step reports, to print
    adapter_lines: list[str] = field(default_factory=list)  # the LoRA summary and adapter path


def check_trainable(method_name: str) -> Any:
    """The task of ``method_name`` if ``trustvis train`` can train it; a clear error otherwise."""
    spec = registry.get(method_name)
    task = task_of(spec.task)
    task.check_method(spec, "train")
    if not task.trains:
        raise TaskError(
            f"`trustvis train` does not train {spec.task} methods ({spec.name}); {task.instead('train')}"
        )
    return task


def fit_run(
    run: Any,
    out: Path,
    datasets_fn: Callable[[Any, Any], tuple[Any, Any | None]],
    val_fn: Callable[[Any, Any], dict[str, float]] | None = None,
    resume: bool = False,
) -> tuple[TrainResult, Any | None]:
    """Seed, build the method, make its data sets with ``datasets_fn(run, method)`` and fit it into ``out``,
    validating with ``val_fn(method, val_set)`` (logged as ``val_*``). Returns the result and the val set.
    Shared by :func:`train_run` and the benches' ``train_or_reuse``."""
    from trustvis.engine import Trainer, seed_everything
    from trustvis.engine.checkpoint import build_method

    seed_everything(run.train.seed)
    method = build_method(run)
    train_set, val_set = datasets_fn(run, method)
    evaluate_fn = None
    if val_fn is not None and val_set is not None:

        def evaluate_fn(m: Any) -> dict[str, float]:
            return {f"val_{k}": v for k, v in val_fn(m, val_set).items()}

    trainer = Trainer(method, run, out)
    log.info("training %s (%s preset) for %d steps -> %s", run.method, run.preset, run.train.steps, out)
    summary = trainer.fit(train_set, evaluate_fn=evaluate_fn, resume=resume)
    return TrainResult(method, summary, trainer.is_main), val_set


def train_run(run: Any, out: Path, resume: bool = False) -> TrainResult:
    """Train ``run`` into the run folder ``out`` (``resume``: continue from its last checkpoint) the way its
    task trains (:meth:`~trustvis.tasks.base.Task.train`)."""
    return check_trainable(run.method).train(run, out, resume)


def fit_and_finish(task: Any, run: Any, out: Path, resume: bool = False) -> TrainResult:
    """The default training of a task: one fit of its datasets, then its after-fit step and the LoRA export."""
    result, val_set = fit_run(run, out, task.datasets, lambda m, v: task.val_metrics(m, v, run), resume)
    method, summary = result.method, result.summary
    if result.is_main:
        result.lines += task.after_fit(method, run, val_set, out, summary["steps"])
        lora_cfg = getattr(run.model, "lora", None) if not run.lora.r else run.lora
        if lora_cfg is not None and lora_cfg.r:
            from trustvis.methods.adapt.lora import export_adapter
            from trustvis.nn.lora import describe

            path = export_adapter(method, lora_cfg, out / "adapter")
            result.adapter_lines.append(f"LoRA: {describe(method)}\nPEFT adapter -> {path}")
    return result
