"""Scoring images with a trained method, for every task that predicts (``trustvis predict`` and the Python
API, :mod:`trustvis.api`).

files ──► load_image(max_side, task.predict_fit) ──┐
arrays (ImageArray, uint8 (H,W,3)) ──► fit_array ──┴► task.predict_image ──► method.make_transform(False)
      ──► batches of equal-shape images, at most batch_size images and max_side² pixels each
      ──► method.predict ──► task.predict_records ──► Prediction (records + error rows)

Files and images already in memory go through the same loop: an in-memory image is fitted to
``max_side`` by the same Pillow code as a file, so a PNG and the array read from it get the same record.
An input that cannot be scored (missing, unreadable, too large, the model failing on it, an output that is
not finite) gets an error row and a warning; the other images keep their results. A batch the model fails
on is retried image by image, so that one bad image does not take its neighbours down.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustvis.tasks.base import Prediction, PredictOptions, Task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageArray:
    """An image already in memory, as an input of :func:`predict_files`.

    Attributes:
        name: What stands for its file path in its record, its error row and the log.
        pixels: ``uint8 (H, W, 3)`` RGB array (as :func:`~trustvis.data.io.load_image` returns).
    """

    name: str
    pixels: Any


def collect_files(paths: Sequence[str | Path], extensions: frozenset[str] | None = None) -> list[Path]:
    """Input files of ``paths``: files as given, folders searched recursively (each real file once) for files
    with one of ``extensions`` (default: the image extensions; a task's :meth:`~trustvis.tasks.base.Task.input_suffixes`)."""
    from trustvis.data.io import iter_image_files

    files: list[Path] = []
    for p in paths:
        p = Path(p)
        files.extend(iter_image_files(p, extensions) if p.is_dir() else [p])
    return files


def load_run(run_dir: str | Path, device: str = "cpu") -> tuple[Task, Any]:
    """(task, method) of the trained run in ``run_dir``, ready to predict: what ``trustvis predict`` and
    :func:`trustvis.load` open.

    Raises:
        CheckpointError: ``run_dir`` is not a run (no ``model.json``), or its files are damaged.
        TaskError: the run's method does not predict (a calibrator, a codec); the message says what does.
    """
    from trustvis import registry
    from trustvis.engine import load_method
    from trustvis.engine.checkpoint import read_meta
    from trustvis.tasks.base import task_of

    spec = registry.get(read_meta(run_dir)["method"])
    task = task_of(spec.task)
    task.check_method(spec, "predict")
    return task, load_method(run_dir, device=device)


def predict_files(
    task: Task, method: Any, files: Sequence[Path | ImageArray], opts: PredictOptions
) -> Prediction:
    """Run ``method`` on ``files``: image files, or images already in memory (:class:`ImageArray`), both
    through the same loop. Records keep the inputs' order; failures become error rows."""
    import torch

    from trustvis.data.io import ImageReadError, fit_array, load_image

    def read(src: Path | ImageArray) -> Any:  # uint8 (H, W, 3), fitted to opts.max_side
        if isinstance(src, ImageArray):
            return fit_array(src.pixels, opts.max_side, task.predict_fit)
        return load_image(src, max_side=opts.max_side, fit=task.predict_fit)

    transform = method.make_transform(False)
    records: dict[int, dict] = {}
    errors: dict[int, dict] = {}
    batch: list[tuple[int, Path, torch.Tensor]] = []
    budget = max(opts.max_side or 2048, 256) ** 2  # pixels per forward pass

    def fail(i: int, path: Path, reason: str) -> None:
        errors[i] = {"path": str(path), "error": reason}
        log.warning("skipped %s: %s", path, reason)

    def score(items: list[tuple[int, Path, torch.Tensor]]) -> None:
        try:
            with torch.no_grad():
                out = method.predict({"image": torch.stack([t for _, _, t in items]).to(method.device)})
            recs = task.predict_records(method, out, items, opts)
        except (RuntimeError, MemoryError, ValueError) as e:
            if len(items) > 1:  # find the image it fails on; the others still get their result
                for item in items:
                    score([item])
                return
            msg = (str(e).strip().splitlines() or [""])[0][:200]
            fail(items[0][0], items[0][1], f"the model failed on this image ({type(e).__name__}: {msg})")
            return
        for (i, path, _), rec in zip(items, recs):
            if isinstance(rec, str):
                fail(i, path, rec)
            else:
                records[i] = rec

    def flush() -> None:
        # images of different sizes are scored one by one; equal sizes are batched
        groups: dict[tuple, list[tuple[int, Path, torch.Tensor]]] = {}
        for item in batch:
            groups.setdefault(tuple(item[2].shape), []).append(item)
        for items in groups.values():
            score(items)
        batch.clear()

    method.eval()
    pixels = 0
    for i, src in enumerate(files):
        f = Path(src.name) if isinstance(src, ImageArray) else Path(src)
        try:
            x = transform(task.predict_image(read(src), opts))
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
        if len(batch) >= opts.batch_size:
            flush()
            pixels = 0
    flush()
    return Prediction(
        records=[records[i] for i in sorted(records)], errors=[errors[i] for i in sorted(errors)]
    )
