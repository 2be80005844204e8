"""The task contract: what a task owns, so that the CLI, the trainer and the benches never branch on it.

A *task* (detect, classify, anomaly, codec, ...) is one object, registered by name, that owns::

    data config   its own dataclass (``run.data``): the data sets it reads and their fields
    datasets      run config + method ──► (train set, val set | None)
    validation    method + val set ──► {metric: value}     (the trainer logs them as ``val_*``)
    after fit     what a finished fit still needs (the anomaly threshold, the class names)
    predict       method + image files ──► one record per image, its table columns and summary
    eval          method + a folder in the task's standard layout ──► metrics (JSON-able)
    tiny folder   a few images in that layout, for the contract tests and the examples

Methods name their task in ``@register(task=...)``; one task object may serve several method tasks
(``classify`` serves the classifiers, the mixing augmentations, LoRA adaptation and the calibrators).
Everything a task does not support raises :class:`TaskError` with the command that does it instead.

A new task is one module in ``trustvis/tasks/`` defining a :class:`Task` subclass and registering an
instance with :func:`register_task`, plus one import line in ``trustvis/tasks/__init__.py``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from trustvis import registry

log = logging.getLogger(__name__)


class TaskError(ValueError):
    """A task cannot do what was asked (the message says what does it instead)."""


@dataclass
class PredictOptions:
    """What ``trustvis predict`` passes to a task (every field has a safe default)."""

    threshold: float | None = None  # decision threshold; None = the task's default for the run
    top_k: int = 3  # classification: classes listed per image
    maps_dir: Path | None = None  # anomaly: folder for the heat-map overlays
    map_arrays: bool = False  # anomaly: each record holds its map as an array (the Python API)
    batch_size: int = 32
    max_side: int = 2048  # longest image side given to the model (0 = no limit)
    overlay_side: int = 1024  # anomaly: longest side of an overlay PNG (0 = the model input's size)
    context: dict[str, Any] = field(default_factory=dict)  # what the task read from the run folder
    depth: list[Path] = field(default_factory=list)  # antispoof: the depth map of each RGB input, in order


@dataclass
class Prediction:
    """The records of one ``predict`` call: one per scored image, one per image that failed."""

    records: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # the record keys the table shows, in order
    header: list[str] = field(default_factory=list)  # their column titles
    summary: list[str] = field(default_factory=list)  # lines printed under the table

    def rows(self) -> list[list[Any]]:
        """Table rows: records first, then one row per error (``error: ...`` in the last column)."""
        rows = [[_cell(r.get(c)) for c in self.columns] for r in self.records]
        blank = [""] * (len(self.columns) - 2)
        rows += [[e["path"], *blank, f"error: {e['error']}"] for e in self.errors]
        return rows

    def json_lines(self) -> str:
        """One JSON object per image (records, then errors with an ``error`` key)."""
        return "\n".join(json.dumps(r) for r in [*self.records, *self.errors])

    def csv_text(self) -> str:
        """CSV of the records and errors: the union of their keys as columns, in first-seen order."""
        from trustvis.records import records_csv

        return records_csv([*self.records, *self.errors])[0]


def _cell(v: Any) -> Any:
    if isinstance(v, bool):
        return str(v).lower()
    return v


@dataclass
class NoData:
    """The data config of a task that trains on no data set (``run.data`` is empty)."""

    def check(self) -> None:
        """Nothing to check."""


class Task:
    """Base class of a task. Subclasses set the class attributes and override what they support."""

    name: ClassVar[str] = ""
    #: the registry task names (``@register(task=...)``) whose methods this object serves
    method_tasks: ClassVar[tuple[str, ...]] = ()
    #: the dataclass of ``run.data`` for this task's runs
    data_config: ClassVar[type] = NoData
    #: ``trustvis train`` trains this task's methods
    trains: ClassVar[bool] = True
    #: what a user's folder for ``trustvis eval`` looks like (shown in errors and ``--help``)
    eval_layout: ClassVar[str] = ""
    #: how ``trustvis predict`` fits a large image to the model: "crop" (full-resolution centre crop,
    #: for detectors reading pixel-level traces) or "resize" (Lanczos reduction)
    predict_fit: ClassVar[str] = "crop"

    # --- training ---------------------------------------------------------------------------------
    def prepare(self, run: Any, explicit: set[str]) -> None:
        """Adjust ``run`` to its data before the method is built (``explicit``: dotted keys the user set)."""

    def datasets(self, run: Any, method: Any) -> tuple[Any, Any | None]:
        """(train set, val set or None) of ``run``, with ``method``'s transforms."""
        raise TaskError(f"task {self.name!r} has no training data sets; {self.instead('train')}")

    def train(self, run: Any, out: Path, resume: bool = False) -> Any:
        """Train ``run`` into the run folder ``out`` (``trustvis train``); returns a
        :class:`~trustvis.tasks.train.TrainResult`. Default: one trainer fit on :meth:`datasets`, validated by
        :meth:`val_metrics`, finished by :meth:`after_fit`. A task whose training is a loop of its own (active
        learning: rounds of fitting and querying) overrides it."""
        from trustvis.tasks.train import fit_and_finish

        return fit_and_finish(self, run, out, resume)

    def check_method(self, spec: Any, command: str) -> None:
        """Refuse a method this task cannot run under ``command`` (train, predict, eval)."""

    def val_metrics(self, method: Any, val_set: Any, run: Any) -> dict[str, float]:
        """Validation metrics of ``method`` on ``val_set`` during ``run`` (logged as ``val_<key>``)."""
        return {}

    def after_fit(self, method: Any, run: Any, val_set: Any | None, out: Path, steps: int) -> list[str]:
        """Finish a fitted run (rank 0, after the trainer saved it): store what ``predict`` needs next to
        the weights (the anomaly threshold, the class names); ``steps`` is the run's final step. Returns
        the lines to print."""
        return []

    # --- inference --------------------------------------------------------------------------------
    def default_threshold(self, method: Any, run_dir: Path) -> float | None:
        """The decision threshold ``predict`` uses when none is given (None: the task has no verdict)."""
        return None

    def input_suffixes(self) -> frozenset[str] | None:
        """The file suffixes ``predict`` collects from a folder (None: the image extensions)."""
        return None

    def predict_inputs(self, files: Sequence[Path]) -> list[Path]:
        """The files of a ``predict`` call that are inputs of their own (default: all of them; an RGB + depth
        task leaves out the depth maps, which go with their RGB image)."""
        return list(files)

    def predict_image(self, img: Any, opts: PredictOptions) -> Any:
        """Shape a loaded ``uint8 (H,W,3)`` image for the model before its transform (default: as is)."""
        return img

    def predict_records(
        self, method: Any, out: dict[str, Any], items: list[tuple[int, Path, Any]], opts: PredictOptions
    ) -> list[dict[str, Any] | str]:
        """One record per item from ``method.predict``'s output ``out`` on their stacked images; an item
        whose output is unusable (not finite) gets a string: the reason it failed."""
        raise TaskError(f"task {self.name!r} does not score images; {self.instead('predict')}")

    def predict_table(self, pred: Prediction, opts: PredictOptions, run_dir: Path) -> None:
        """Fill ``pred.columns``, ``pred.header`` and ``pred.summary`` for the table ``predict`` prints."""
        pred.columns = ["path"]
        pred.header = ["path"]

    def predict(self, method: Any, files: Sequence[Any], opts: PredictOptions, run_dir: Path) -> Prediction:
        """Score ``files``: image paths or in-memory images (see :func:`trustvis.tasks.predict.predict_files`)."""
        from trustvis.tasks.predict import predict_files

        if opts.depth:
            raise TaskError(
                f"depth maps are read by RGB + depth (antispoof) runs only; this is a {self.name} run"
            )
        pred = predict_files(self, method, files, opts)
        self.predict_table(pred, opts, run_dir)
        return pred

    # --- evaluation -------------------------------------------------------------------------------
    def evaluate(self, method: Any, root: Path, run_dir: Path, **options: Any) -> dict[str, Any]:
        """Metrics of ``method`` (the run in ``run_dir``) on the user's folder ``root`` (in :attr:`eval_layout`).
        ``options``: ``batch_size``, ``max_images``, ``split``, ``progress``; a task ignores the others."""
        raise TaskError(f"task {self.name!r} has no folder evaluation; {self.instead('eval')}")

    def eval_table(self, result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
        """(header, rows) of the table ``trustvis eval`` prints for :meth:`evaluate`'s result."""
        return ["metric", "value"], [[k, v] for k, v in result.items() if isinstance(v, int | float)]

    def instead(self, command: str) -> str:
        """What to use instead of ``command`` for this task (one sentence)."""
        return f"`trustvis {command}` does not support it"

    # --- tests and examples -----------------------------------------------------------------------
    def tiny_folder(self, root: Path) -> Path:
        """Write a few images in :attr:`eval_layout` under ``root``; returns the folder to pass to eval."""
        raise TaskError(f"task {self.name!r} has no folder layout")

    def tiny_overrides(self, folder: Path) -> list[str]:
        """``--set`` overrides that train a ``tiny`` preset on ``folder`` (made by :meth:`tiny_folder`)."""
        return []


def score_records(
    scores: Any, items: list[tuple[int, Path, Any]], threshold: float, flag: str
) -> list[dict[str, Any] | str]:
    """Records of a task that scores images against a threshold:
    ``{"path", "score", "threshold", flag: score >= threshold}`` (``flag`` names the positive verdict, e.g.
    ``"fake"`` or ``"anomalous"``); a score that is not finite becomes the reason the image failed."""
    recs: list[dict[str, Any] | str] = []
    for (_, path, _), s in zip(items, scores):
        if not math.isfinite(float(s)):
            recs.append(f"model output is not finite (score {s}); the run's weights may be broken")
        else:
            recs.append({"path": str(path), "score": float(s), "threshold": float(threshold),
                         flag: bool(s >= threshold)})  # fmt: skip
    return recs


def verdict_table(
    pred: Prediction, flag: str, words: tuple[str, str], score_title: str, threshold: float
) -> None:
    """Table of scored records: path, score, verdict (``words`` = (positive, negative)), and the count line."""
    pred.columns, pred.header = ["path", "score", "verdict"], ["path", score_title, "verdict"]
    for r in pred.records:
        r["verdict"] = words[0] if r[flag] else words[1]
    if pred.records:
        n = sum(r[flag] for r in pred.records)
        pred.summary.append(f"{n}/{len(pred.records)} scored {words[0]} at threshold {threshold:.4g}")


TASK_OBJECTS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add ``task`` to the table; each method task name may be served by one task object only."""
    if not task.name:
        raise ValueError(f"{type(task).__name__} has no name")
    if task.name in TASK_OBJECTS:
        raise ValueError(f"A task is already registered under the name {task.name!r}")
    for t in task.method_tasks:
        if t not in registry.TASKS:
            raise ValueError(
                f"task {task.name!r} serves unknown method task {t!r}; choose from {sorted(registry.TASKS)}"
            )
        owner = next((o for o in TASK_OBJECTS.values() if t in o.method_tasks), None)
        if owner is not None:
            raise ValueError(f"method task {t!r} is served by task {owner.name!r} already")
    if not dataclasses.is_dataclass(task.data_config):
        raise ValueError(f"data_config of task {task.name!r} must be a dataclass")
    TASK_OBJECTS[task.name] = task
    for t in task.method_tasks:  # make_run_config reads run.data's class from the registry
        registry.DATA_CONFIGS[t] = task.data_config
    return task


def _ensure_loaded() -> None:
    import trustvis.tasks  # noqa: F401  (registers every built-in task)


def get_task(name: str) -> Task:
    """The task object named ``name``; the error lists the valid names."""
    _ensure_loaded()
    if name not in TASK_OBJECTS:
        raise KeyError(f"Unknown task {name!r}; choose from {sorted(TASK_OBJECTS)}")
    return TASK_OBJECTS[name]


def task_of(method_task: str) -> Task:
    """The task object serving methods registered with ``task=method_task`` (e.g. augment -> classify)."""
    _ensure_loaded()
    for t in TASK_OBJECTS.values():
        if method_task in t.method_tasks:
            return t
    raise TaskError(
        f"no task object serves {method_task!r} methods yet; tasks: "
        + ", ".join(f"{t.name} ({'/'.join(t.method_tasks)})" for t in TASK_OBJECTS.values())
    )


def list_tasks() -> list[Task]:
    """Every registered task object, by name."""
    _ensure_loaded()
    return [TASK_OBJECTS[k] for k in sorted(TASK_OBJECTS)]
