"""Scoring image files with a trained method, for every task that predicts (``trustvis predict``).

files ──► load_image(max_side, task.predict_fit) ──► method.make_transform(False)
      ──► batches of equal-shape images, at most batch_size images and max_side² pixels each
      ──► method.predict ──► task.predict_records ──► Prediction (records + error rows)

A file that cannot be scored (missing, unreadable, too large, the model failing on it, an output that is
not finite) gets an error row and a warning; the other images keep their results. A batch the model fails
on is retried image by image, so that one bad image does not take its neighbours down.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trustvis.tasks.base import Prediction, PredictOptions, Task

log = logging.getLogger(__name__)


def collect_files(paths: Sequence[str | Path]) -> list[Path]:
    """Image files of ``paths``: files as given, folders searched recursively (each real file once)."""
    from trustvis.data.io import iter_image_files

    files: list[Path] = []
    for p in paths:
        p = Path(p)
        files.extend(iter_image_files(p) if p.is_dir() else [p])
    return files


def predict_files(task: Task, method: Any, files: Sequence[Path], opts: PredictOptions) -> Prediction:
    """Run ``method`` on ``files``; records keep the files' order, failures become error rows."""
    import torch

    from trustvis.data.io import ImageReadError, load_image

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
    for i, f in enumerate(files):
        try:
            x = transform(
                task.predict_image(load_image(f, max_side=opts.max_side, fit=task.predict_fit), opts)
            )
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
