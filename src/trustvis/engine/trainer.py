"""A small generic trainer (minGPT-style): steps, callbacks, checkpoints, resume, AMP, DDP.

It knows nothing about tasks. Per step::

    DistributedSampler ─► DataLoader ─► batch to device ─► ddp_or_method(batch) == method.training_step
        ─► zero_grad, backward(loss), clip, optimiser step(s)   (manual methods: Method.optimizer_step)
        ─► every log_every:  mean scalars ─► metrics.jsonl + progress bar      (rank 0)
        ─► every eval_every: evaluate_fn(method) ─► metrics.jsonl               (rank 0)
              every record also ─► metrics.csv (train.metrics_csv), TensorBoard (train.tensorboard)
        ─► every ckpt_every: checkpoints/step-N (weights + optimiser + RNG)    (rank 0)

Under ``torchrun`` the method is wrapped in DistributedDataParallel and every process sees its own
shard of each epoch (DistributedSampler); rank 0 logs and writes. Data order depends only on the
seed and the epoch, and the optimiser/RNG states are checkpointed, so a resumed run continues where
the interrupted one stopped (bit-exact with ``num_workers=0``).

Events for callbacks (``trainer.add_callback(event, fn)``, ``fn(trainer)``): ``on_step_end``,
``on_log``, ``on_eval``, ``on_checkpoint``, ``on_fit_end``.

One training per run folder: rank 0 holds ``OUT/.lock`` (:mod:`trustvis.engine.runlock`) from the start of
:meth:`Trainer.fit` to its end, error or Ctrl-C included. A resumed run drops the ``metrics.jsonl`` records
of the steps after its checkpoint (they are redone), so no step is recorded twice.

Metrics records (:class:`MetricsLog`) are ``{"step", "split": train | val | fit, **scalars}``, one JSON line
each in ``OUT/metrics.jsonl``. On request they also go to ``OUT/metrics.csv`` (``train.metrics_csv``: the same
records, the union of their keys as columns in first-seen order, empty where a record lacks a key; rewritten
from metrics.jsonl when a new key appears or a run resumes) and to TensorBoard event files in
``OUT/tensorboard`` (``train.tensorboard``: one scalar ``<split>/<key>`` per value at the record's step; a
resumed run purges the events after its checkpoint). ``tensorboard`` is an optional package.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import json
import logging
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from tqdm.auto import tqdm

from trustvis.atomic import atomic_write_text
from trustvis.config import ConfigError, RunConfig, dump_yaml, to_dict, validate_run
from trustvis.engine import checkpoint as ckpt
from trustvis.engine import distributed as dist_utils
from trustvis.engine.runlock import RunLock
from trustvis.records import records_csv

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002  (seeds legacy global RNG users, e.g. third-party code)
    torch.manual_seed(seed)


class _SkipSampler(Sampler[int]):
    """Yields the indices of ``base`` for the current epoch, skipping the first ``skip`` of them."""

    def __init__(self, base: DistributedSampler, skip: int = 0) -> None:
        self.base, self.skip = base, skip

    def __iter__(self):
        indices = list(self.base)
        return iter(indices[self.skip :])

    def __len__(self) -> int:
        return len(self.base) - self.skip


def _manual_step(
    opt: torch.optim.Optimizer,
    loss: torch.Tensor,
    scaler: torch.amp.GradScaler,
    grad_clip: float,
    distributed: bool,
) -> None:
    """The trainer's implementation of :meth:`Method.optimizer_step` (AMP, clipping, DDP averaging)."""
    if not torch.isfinite(loss):
        raise FloatingPointError(
            f"training diverged: loss is {loss.item()} in a manual optimiser step; lower train.lr or set "
            "train.grad_clip"
        )
    params = [p for g in opt.param_groups for p in g["params"] if p.requires_grad]
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward(inputs=params)
    if distributed:
        dist_utils.all_reduce_gradients(params)
    if grad_clip > 0:
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    scaler.step(opt)


SCHEDULES = ("constant", "cosine")


def lr_factor(step: int, total: int, schedule: str = "constant", warmup: int = 0) -> float:
    """Multiplier of the base learning rate for the optimiser step that follows ``step`` steps."""
    if schedule not in SCHEDULES:
        raise ValueError(f"Unknown train.schedule {schedule!r}; choose from {list(SCHEDULES)}")
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "cosine":
        done = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, done)))
    return 1.0


def trim_metrics(path: str | Path, step: int) -> int:
    """Drop the records of ``metrics.jsonl`` after ``step`` (and a line cut short); returns how many."""
    path = Path(path)
    if not path.is_file():
        return 0
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines(keepends=True)
    keep = []
    for line in lines:
        if not line.endswith("\n"):
            continue  # a record cut short by a killed process
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            keep.append(line)  # not ours to judge; kept as it is
            continue
        if isinstance(rec, dict) and isinstance(rec.get("step"), int) and rec["step"] > step:
            continue
        keep.append(line)
    dropped = len(lines) - len(keep)
    if dropped:
        atomic_write_text(path, "".join(keep))
    return dropped


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (complete lines that hold a JSON object; others are skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True):
        if not line.endswith("\n"):
            continue  # a record cut short by a killed process
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records


def _csv_cell(v: Any) -> Any:  # None stays an empty cell; bools, lists and dicts as JSON
    return json.dumps(v) if isinstance(v, list | dict | bool) else v


def metrics_csv_text(
    records: list[dict[str, Any]], columns: list[str] | None = None
) -> tuple[str, list[str]]:
    """(CSV text, its columns) of metrics ``records`` (see :func:`trustvis.records.records_csv`)."""
    return records_csv(records, columns or [], _csv_cell)


def write_metrics_csv(run_dir: str | Path) -> Path:
    """Write ``run_dir/metrics.csv`` from ``run_dir/metrics.jsonl`` (e.g. for a run trained without
    ``train.metrics_csv``); returns its path."""
    run_dir = Path(run_dir)
    text, _ = metrics_csv_text(read_metrics(run_dir / "metrics.jsonl"))
    return atomic_write_text(run_dir / "metrics.csv", text)


def check_tensorboard(cfg: Any) -> None:
    """A one-line ConfigError when ``train.tensorboard`` is asked for and the package is not installed."""
    if cfg.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            "train.tensorboard=true needs the tensorboard package: pip install tensorboard "
            "(metrics.jsonl is written either way)"
        )


class MetricsLog:
    """Where the trainer's metrics records go (rank 0): ``metrics.jsonl`` always; ``metrics.csv`` and
    TensorBoard event files (``tensorboard/``) when the run config asks for them."""

    def __init__(self, out_dir: Path, csv_file: bool = False, tensorboard: bool = False) -> None:
        self.out_dir = Path(out_dir)
        self.jsonl = self.out_dir / "metrics.jsonl"
        self.csv = self.out_dir / "metrics.csv" if csv_file else None
        self.tensorboard = tensorboard
        self.columns: list[str] = []
        self.writer: Any = None

    def open(self, step: int) -> None:
        """Start logging after ``step`` (0, or the checkpoint a run resumes from): the CSV is rewritten from
        metrics.jsonl; TensorBoard events after ``step`` (a killed run's) are purged."""
        if self.csv is not None:
            self._rewrite_csv()
        if self.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = step + 1 if step else None  # the events a killed run logged after its checkpoint
            self.writer = SummaryWriter(str(self.out_dir / "tensorboard"), purge_step=purge)

    def write(self, record: dict[str, Any]) -> None:
        with open(self.jsonl, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.csv is not None:
            if set(record) <= set(self.columns):
                with open(self.csv, "a", encoding="utf-8", newline="") as fh:
                    w = csv.DictWriter(fh, fieldnames=self.columns, lineterminator="\n")
                    w.writerow({k: _csv_cell(v) for k, v in record.items()})
            else:  # a new key: a new column, so the header and every row change
                self._rewrite_csv()
        if self.writer is not None:
            split = record.get("split", "train")
            for key, value in record.items():
                if (
                    key not in ("step", "split")
                    and isinstance(value, int | float)
                    and not isinstance(value, bool)
                ):
                    self.writer.add_scalar(f"{split}/{key}", value, global_step=int(record.get("step", 0)))
            self.writer.flush()

    def _rewrite_csv(self) -> None:
        text, self.columns = metrics_csv_text(read_metrics(self.jsonl), self.columns)
        atomic_write_text(self.csv, text)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _move(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}


class Trainer:
    """Runs ``run.train.steps`` optimiser steps of ``method`` and writes the run folder ``out_dir``."""

    def __init__(self, method: Any, run: RunConfig, out_dir: str | Path) -> None:
        self.method = method
        self.run = run
        self.cfg = run.train
        self.out_dir = Path(out_dir)
        self.step = 0
        self.callbacks: dict[str, list[Callable[[Trainer], None]]] = defaultdict(list)
        self.last_log: dict[str, float] = {}
        self.last_eval: dict[str, float] = {}
        self.train_seconds = 0.0
        self.device = dist_utils.resolve_device(self.cfg.device)
        self.distributed = dist_utils.init_if_needed(self.device)
        self.is_main = dist_utils.is_main()
        self.metrics = MetricsLog(self.out_dir, self.cfg.metrics_csv, self.cfg.tensorboard)

    def add_callback(self, event: str, fn: Callable[[Trainer], None]) -> None:
        self.callbacks[event].append(fn)

    def _fire(self, event: str) -> None:
        for fn in self.callbacks.get(event, []):
            fn(self)

    # ----------------------------------------------------------------------------------------------
    def _log_record(self, record: dict[str, Any]) -> None:
        if self.is_main:
            self.metrics.write(record)

    def _loader(self, dataset: Dataset, epoch: int, skip: int) -> DataLoader:
        sampler = DistributedSampler(
            dataset,
            num_replicas=dist_utils.world_size(),
            rank=dist_utils.rank(),
            shuffle=True,
            seed=self.cfg.seed,
            drop_last=True,
        )
        sampler.set_epoch(epoch)
        gen = torch.Generator().manual_seed(self.cfg.seed * 1000 + epoch)  # keeps global RNG untouched
        return DataLoader(
            dataset,
            batch_size=self.cfg.batch_size,
            sampler=_SkipSampler(sampler, skip),
            num_workers=self.cfg.num_workers,
            drop_last=True,
            generator=gen,
            persistent_workers=False,
            pin_memory=self.device.type == "cuda",
        )

    def fit(
        self,
        train_set: Dataset,
        evaluate_fn: Callable[[Any], dict[str, float]] | None = None,
        resume: bool = False,
    ) -> dict[str, Any]:
        """Train for ``train.steps`` steps; returns a summary dict (steps, seconds, last metrics).

        Raises:
            ConfigError: an invalid train setting (e.g. ``train.steps < 1``, ``train.lr`` not in (0, 10]).
            RunLockError: another training holds the run folder's lock.
            FloatingPointError: the loss became NaN/inf (the last checkpoint stays; resume with a lower lr).
        """
        validate_run(self.run, trainable=bool(getattr(self.method, "trainable", True)))
        check_tensorboard(self.cfg)
        lock = RunLock(self.out_dir) if self.is_main else None
        if lock is not None:
            lock.acquire()
        try:
            return self._fit(train_set, evaluate_fn, resume)
        finally:
            self.metrics.close()
            if lock is not None:
                lock.release()

    def _fit(
        self,
        train_set: Dataset,
        evaluate_fn: Callable[[Any], dict[str, float]] | None,
        resume: bool,
    ) -> dict[str, Any]:
        cfg = self.cfg
        # fit-only methods (PaDiM) take no gradient step; methods with statistics of the training set
        # (PaDiM, FYD) get one ordered pass over it through ``method.fit`` after the steps
        trainable = bool(getattr(self.method, "trainable", True))
        fits_stats = bool(getattr(self.method, "fits_statistics", False))  # evaluated after the fit only
        per_rank = len(train_set) // dist_utils.world_size()
        steps_per_epoch = per_rank // cfg.batch_size
        if trainable and steps_per_epoch < 1:
            raise ValueError(
                f"training set has {len(train_set)} items, fewer than one batch of {cfg.batch_size} per process; "
                "lower train.batch_size"
            )
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out_dir / "config.yaml", dump_yaml(self.run))
        seed_everything(cfg.seed + dist_utils.rank())
        method = self.method.to(self.device)
        method.train()
        optimizers = method.configure_optimizers(cfg) if trainable else {}
        method.optimizers = optimizers
        lr_factor(0, cfg.steps, cfg.schedule, cfg.warmup_steps)  # fails early on an unknown schedule
        base_lrs = [[g["lr"] for g in opt.param_groups] for opt in optimizers.values()]
        run_dict = to_dict(self.run)

        if resume:
            latest = ckpt.latest_checkpoint(self.out_dir)
            if latest is None:
                log.warning("--resume: no checkpoint in %s; starting from step 0", self.out_dir)
            else:
                state = ckpt.load_checkpoint(latest, method, optimizers, self.run.method)
                self.step = int(state["step"])
                self.train_seconds = float(state.get("extra", {}).get("train_seconds", 0.0))
                method.to(self.device)
                log.info("resumed %s from step %d", self.run.method, self.step)
            if self.is_main:
                dropped = trim_metrics(self.out_dir / "metrics.jsonl", self.step)
                if dropped:
                    log.info("dropped %d metrics record(s) after step %d (redone now)", dropped, self.step)
        if self.is_main:
            self.metrics.open(self.step)

        model = method
        amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and self.device.type == "cuda")
        params = [p for p in method.parameters() if p.requires_grad]
        if method.manual_optimization:
            # the method steps its own optimisers inside training_step (Method.optimizer_step); DDP
            # cannot see those steps, so gradients are averaged explicitly instead of wrapping in DDP
            if self.distributed:
                dist_utils.broadcast_parameters(method)
            method._step_fn = functools.partial(
                _manual_step, scaler=scaler, grad_clip=cfg.grad_clip, distributed=self.distributed
            )
        elif self.distributed:
            model = DistributedDataParallel(
                method, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )

        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            desc=f"train {self.run.method}",
            disable=not (cfg.progress and self.is_main),
            dynamic_ncols=True,
        )
        sums: dict[str, float] = defaultdict(float)
        count = 0
        t0 = time.perf_counter()
        try:
            while trainable and self.step < cfg.steps:
                epoch, pos = divmod(self.step, steps_per_epoch)
                loader = self._loader(train_set, epoch, pos * cfg.batch_size)
                for batch in loader:
                    batch = _move(batch, self.device)
                    if cfg.schedule != "constant" or cfg.warmup_steps:
                        f = lr_factor(self.step, cfg.steps, cfg.schedule, cfg.warmup_steps)
                        for opt, lrs in zip(optimizers.values(), base_lrs):
                            for g, lr in zip(opt.param_groups, lrs):
                                g["lr"] = lr * f
                    method.on_step_start(
                        self.step
                    )  # a method's own phases (engine/phases.py): rates, restores
                    with torch.autocast(self.device.type, dtype=amp_dtype, enabled=cfg.amp):
                        if method.manual_optimization:
                            out = method.training_step(batch)
                        else:
                            out = model(batch)
                    if method.manual_optimization:
                        scaler.update()  # once per iteration, after all of the method's optimiser steps
                    else:
                        loss = out["loss"]
                        if not torch.isfinite(loss):
                            raise FloatingPointError(
                                f"training diverged: loss is {loss.item()} at step {self.step} "
                                f"(train.lr={cfg.lr}); lower train.lr or set train.grad_clip"
                            )
                        for opt in optimizers.values():
                            opt.zero_grad(set_to_none=True)
                        scaler.scale(loss).backward()
                        if cfg.grad_clip > 0:
                            for opt in optimizers.values():
                                scaler.unscale_(opt)
                            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                        for opt in optimizers.values():
                            scaler.step(opt)
                        scaler.update()
                    self.step += 1
                    for k, v in out.items():
                        if torch.is_tensor(v) and v.numel() == 1:
                            sums[k] += float(v.detach())
                    count += 1
                    bar.update(1)
                    self._fire("on_step_end")

                    if cfg.log_every and self.step % cfg.log_every == 0 or self.step == cfg.steps:
                        self.last_log = {
                            k: dist_utils.all_reduce_mean(v / max(count, 1)) for k, v in sums.items()
                        }
                        lr = next(iter(optimizers.values())).param_groups[0]["lr"] if optimizers else 0.0
                        self._log_record({"step": self.step, "split": "train", "lr": lr, **self.last_log})
                        bar.set_postfix({k: f"{v:.4f}" for k, v in list(self.last_log.items())[:3]})
                        sums.clear()
                        count = 0
                        self._fire("on_log")
                    if (
                        evaluate_fn is not None
                        and not fits_stats
                        and ((cfg.eval_every and self.step % cfg.eval_every == 0) or self.step == cfg.steps)
                    ):
                        self._evaluate(method, evaluate_fn)
                    if cfg.ckpt_every and self.step % cfg.ckpt_every == 0 and self.step < cfg.steps:
                        self._checkpoint(method, optimizers, run_dict, t0)
                    if self.step >= cfg.steps:
                        break
        except KeyboardInterrupt:
            if self.is_main and self.step > 0:
                self._checkpoint(method, optimizers, run_dict, t0)
                log.warning("interrupted at step %d; resume with --resume", self.step)
            raise
        finally:
            bar.close()
            method._step_fn = None
        if fits_stats:
            method.eval()
            loader = DataLoader(
                train_set, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.num_workers
            )
            with torch.no_grad():
                info = method.fit(loader) or {}
            self._log_record({"step": self.step, "split": "fit", **{k: v for k, v in info.items()
                                                                     if isinstance(v, int | float)}})  # fmt: skip
            if evaluate_fn is not None:
                self._evaluate(method, evaluate_fn)
        self.train_seconds += time.perf_counter() - t0
        if self.is_main:
            self._checkpoint(method, optimizers, run_dict, None)
            ckpt.save_final(method, self.out_dir, run_dict, self.step)
        dist_utils.barrier()
        self._fire("on_fit_end")
        method.eval()
        return {
            "steps": self.step,
            "train_seconds": self.train_seconds,
            "last": self.last_log,
            "eval": self.last_eval,
        }

    def _evaluate(self, method: Any, evaluate_fn: Callable[[Any], dict[str, float]]) -> None:
        method.eval()
        if self.is_main:
            metrics = evaluate_fn(method)
            self.last_eval = {
                k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and math.isfinite(v)
            }
            self._log_record({"step": self.step, "split": "val", **self.last_eval})
            self._fire("on_eval")
        dist_utils.barrier()
        method.train()

    def _checkpoint(self, method: Any, optimizers: dict, run_dict: dict, t0: float | None) -> None:
        if not self.is_main:
            return
        seconds = self.train_seconds + (time.perf_counter() - t0 if t0 is not None else 0.0)
        ckpt.save_checkpoint(
            self.out_dir, method, optimizers, run_dict, self.step, {"train_seconds": seconds}
        )
        self._fire("on_checkpoint")
