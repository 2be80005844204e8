"""Task ``antispoof``: is this RGB photo + ToF depth pair a recapture of a screen? (``mtofnet`` and baselines)

data       RecaptureBench (built on first use; protocol ``unseen``: train on the seen display types, validate
           on them; ``seen``: every display type) or a folder of pairs in the plain RGB-D layout
           ROOT/[train|val/]{real,spoof}/<medium>/<id>_rgb.(png|jpg) + <id>_depth.png (8- or 16-bit depth)
validation AUC, EER and APCER / BPCER / ACER at the validation EER threshold (ISO/IEC 30107-3)
after fit  the decision threshold: where APCER = BPCER on the validation split (stored with the weights)
predict    p(spoof) and the verdict for RGB files with their depth (``--depth``, or ``<id>_depth.png`` beside
           ``<id>_rgb.*``); a folder of pairs is read pair by pair
eval       per-medium APCER / BPCER / ACER / AUC / EER on a folder of pairs, at the run's threshold
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustvis.config import ConfigError
from trustvis.tasks.base import (
    Prediction,
    PredictOptions,
    Task,
    TaskError,
    register_task,
    score_records,
    verdict_table,
)

DATA_NAMES = ("recapturebench", "folder")


@dataclass
class AntispoofData:
    """Where an anti-spoofing run's pairs come from."""

    name: str = "recapturebench"  # recapturebench | folder (plain RGB-D layout under root)
    root: str = ""  # the folder when name == folder
    size: str = "quick"  # RecaptureBench size: tiny (seconds) | quick | full
    protocol: str = "unseen"  # unseen: train on the seen display types only | seen: on every type
    train_displays: str = ""  # comma-separated display types the unseen protocol trains on ("" = the bench's)
    max_images: int = 0  # folder: cap per (label, medium); 0 = all

    def check(self) -> None:
        from trustvis.data.recapturebench import PROTOCOLS, SIZES

        if self.name not in DATA_NAMES:
            raise ConfigError(
                f"data.name={self.name!r} is invalid for anti-spoofing; choose from {list(DATA_NAMES)}"
            )
        if self.size not in SIZES:
            raise ConfigError(
                f"data.size={self.size!r} is not a RecaptureBench size; choose from {list(SIZES)}"
            )
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"data.protocol={self.protocol!r} is invalid; choose from {list(PROTOCOLS)}")
        if self.max_images < 0:
            raise ConfigError(f"data.max_images={self.max_images!r} is invalid; it must be >= 0 (0 = all)")

    def displays(self) -> list[str] | None:
        return [d.strip() for d in self.train_displays.split(",") if d.strip()] or None


# ----------------------------------------------------------------------------------------------------
# data sets, outputs and metrics (shared with `trustvis bench antispoof`)


def antispoof_pairs(data: AntispoofData, split: str) -> Any:
    """The :class:`~trustvis.data.pairs.PairSet` of ``split`` (train | val | test) for a data config; None when
    a folder has no such split."""
    if data.name == "recapturebench":
        from trustvis.data.recapturebench import build_recapturebench, protocol_pairs

        root = build_recapturebench(data.size, progress=True)
        return protocol_pairs(root, split, data.protocol, data.displays())
    from trustvis.data.pairs import load_pair_folder

    if not data.root:
        raise ValueError("data.name=folder needs data.root (or pass --data ROOT)")
    root = Path(data.root).expanduser()
    if (root / split).is_dir():
        return load_pair_folder(root / split, data.max_images)
    if split == "train" and not any((root / s).is_dir() for s in ("train", "val", "test")):
        return load_pair_folder(root, data.max_images)  # no split folders: the whole folder trains
    return None


def antispoof_datasets(run: Any, method: Any) -> tuple[Any, Any | None]:
    """(train set, val set or None) of an anti-spoofing run, with ``method``'s pair transforms."""
    from trustvis.data.pairs import PairDataset

    train = antispoof_pairs(run.data, "train")
    if train is None:
        raise ValueError(
            f"{run.data.root} has no training pairs (expected train/ or real/ and spoof/ folders)"
        )
    val = antispoof_pairs(run.data, "val")
    return PairDataset(train, method.make_transform(True)), (
        PairDataset(val, method.make_transform(False)) if val is not None else None
    )


def antispoof_outputs(
    method: Any, dataset: Any, batch_size: int = 64, progress: bool = False
) -> dict[str, Any]:
    """``{"score", "label", "medium", "index", "images_per_second", ...}`` of ``method`` on a PairDataset."""
    from trustvis.engine import predict_dataset

    return predict_dataset(method, dataset, batch_size=batch_size, keys=("score",), progress=progress)


def set_threshold(method: Any, val_set: Any) -> float:
    """Store the validation EER threshold (APCER = BPCER) in ``method.threshold``; returns it."""
    from trustvis.metrics.antispoof import eer_threshold

    out = antispoof_outputs(method, val_set)
    if len(set(out["label"].tolist())) < 2:
        raise ValueError("the validation pairs hold one class only; an APCER = BPCER threshold needs real and spoof "
                         "pairs (pass --threshold to predict, or add val/real and val/spoof folders)")  # fmt: skip
    t = float(eer_threshold(out["label"], out["score"]))
    method.threshold.fill_(t)
    return t


def antispoof_val_metrics(method: Any, val_set: Any) -> dict[str, float]:
    """AUC, EER, and APCER / BPCER / ACER at the validation set's own EER threshold."""
    from trustvis.metrics.antispoof import eer_threshold, pad_metrics

    out = antispoof_outputs(method, val_set)
    if len(set(out["label"].tolist())) < 2:
        return {}  # one class: no EER point, no AUC
    m = pad_metrics(out["label"], out["score"], eer_threshold(out["label"], out["score"]))
    return {k: float(m[k]) for k in ("auc", "eer", "apcer", "bpcer", "acer", "threshold")}


# ----------------------------------------------------------------------------------------------------
# predict: pairs of files


def depth_beside(rgb: Path) -> Path:
    """``<id>_depth.png`` beside ``<id>_rgb.*`` (or ``<stem>_depth.png`` beside any other file name)."""
    stem = rgb.stem[: -len("_rgb")] if rgb.stem.endswith("_rgb") else rgb.stem
    return rgb.with_name(f"{stem}_depth.png")


def pair_files(files: Sequence[Any], depths: Sequence[Path]) -> list[tuple[Any, Path]]:
    """(rgb, depth) per input: ``depths`` in order when given (one per RGB file), else the file beside each RGB
    file; depth maps found among ``files`` (``*_depth.*``, from a folder) are not inputs of their own."""
    rgbs = [
        f for f in files if not (isinstance(f, Path | str) and Path(f).stem.endswith("_depth"))
    ]  # see predict_inputs
    if depths:
        if len(depths) != len(rgbs):
            raise TaskError(f"got {len(depths)} depth map(s) for {len(rgbs)} RGB image(s); give one --depth per "
                            "image, in the same order, or none (then <id>_depth.png beside <id>_rgb.* is used)")  # fmt: skip
        return list(zip(rgbs, depths))
    out = []
    for f in rgbs:
        if not isinstance(f, Path | str):
            raise TaskError(
                "an RGB + depth run needs a depth map for an in-memory image; pass file paths instead"
            )
        out.append((Path(f), depth_beside(Path(f))))
    return out


def predict_pairs(
    task: Task, method: Any, pairs: list[tuple[Path, Path]], opts: PredictOptions
) -> Prediction:
    """Score (rgb, depth) file pairs in batches; a pair that cannot be read or scored gets an error row."""
    import torch

    from trustvis.data.io import ImageReadError, load_image
    from trustvis.data.rgbd import load_depth_png

    transform = method.make_transform(False)
    records: dict[int, dict] = {}
    errors: dict[int, dict] = {}
    batch: list[tuple[int, Path, dict]] = []

    def fail(i: int, path: Path, reason: str) -> None:
        import logging

        errors[i] = {"path": str(path), "error": reason}
        logging.getLogger(__name__).warning("skipped %s: %s", path, reason)

    def flush() -> None:
        if not batch:
            return
        try:
            with torch.no_grad():
                out = method.predict({k: torch.stack([b[2][k] for b in batch]).to(method.device)
                                      for k in ("image", "depth")})  # fmt: skip
            recs = task.predict_records(method, out, [(i, p, None) for i, p, _ in batch], opts)
        except (RuntimeError, ValueError) as e:
            for i, p, _ in batch:
                fail(
                    i,
                    p,
                    f"the model failed on this pair ({type(e).__name__}: {str(e).splitlines()[0][:200]})",
                )
            batch.clear()
            return
        for (i, p, _), rec in zip(batch, recs):
            if isinstance(rec, str):
                fail(i, p, rec)
            else:
                rec["depth"] = str(pairs[i][1])
                records[i] = rec
        batch.clear()

    method.eval()
    for i, (rgb_path, depth_path) in enumerate(pairs):
        try:
            rgb = load_image(rgb_path, max_side=opts.max_side, fit="resize")
            if not depth_path.is_file():
                raise ImageReadError(depth_path, "depth map not found (pass --depth FILE, or put <id>_depth.png "
                                     "beside <id>_rgb.*)")  # fmt: skip
            depth = load_depth_png(depth_path)
            x = transform(rgb, depth)
        except ImageReadError as e:
            fail(i, rgb_path, f"{e.path}: {e.reason}" if Path(e.path) != Path(rgb_path) else e.reason)
            continue
        except (OSError, ValueError, TypeError) as e:
            fail(i, rgb_path, f"cannot prepare the pair for the model ({type(e).__name__}: {e})")
            continue
        batch.append((i, Path(rgb_path), x))
        if len(batch) >= opts.batch_size:
            flush()
    flush()
    return Prediction(
        records=[records[i] for i in sorted(records)], errors=[errors[i] for i in sorted(errors)]
    )


# ----------------------------------------------------------------------------------------------------
# the task object


class AntispoofTask(Task):
    """Recaptured-image (presentation attack) detection from RGB + depth pairs (binary: 0 real, 1 spoof)."""

    name = "antispoof"
    method_tasks = ("antispoof",)
    data_config = AntispoofData
    predict_fit = "resize"
    eval_layout = "ROOT/{real,spoof}/<medium>/<id>_rgb.(png|jpg) + <id>_depth.png (8- or 16-bit depth)"

    def datasets(self, run: Any, method: Any) -> tuple[Any, Any | None]:
        return antispoof_datasets(run, method)

    def val_metrics(self, method: Any, val_set: Any, run: Any) -> dict[str, float]:
        return antispoof_val_metrics(method, val_set)

    def after_fit(self, method: Any, run: Any, val_set: Any | None, out: Path, steps: int) -> list[str]:
        if val_set is None:
            return ["no validation pairs: predict uses the threshold 0.5 unless --threshold is given"]
        from trustvis.config import to_dict
        from trustvis.engine.checkpoint import save_final

        try:
            thr = set_threshold(method, val_set)
        except ValueError as e:
            return [f"no threshold stored ({e}); predict uses 0.5 unless --threshold is given"]
        save_final(method, out, to_dict(run), steps)
        return [f"threshold (validation EER point, APCER = BPCER): {thr:.4g}"]

    def default_threshold(self, method: Any, run_dir: Path) -> float | None:
        t = float(method.threshold)
        return t if math.isfinite(t) else 0.5

    def predict_inputs(self, files: Sequence[Path]) -> list[Path]:
        return [f for f in files if not Path(f).stem.endswith("_depth")]

    def predict(self, method: Any, files: Sequence[Any], opts: PredictOptions, run_dir: Path) -> Prediction:
        pred = predict_pairs(self, method, pair_files(files, opts.depth), opts)
        self.predict_table(pred, opts, run_dir)
        return pred

    def predict_records(
        self, method: Any, out: dict[str, Any], items: list[tuple[int, Path, Any]], opts: PredictOptions
    ) -> list[dict[str, Any] | str]:
        return score_records(out["score"].float().cpu().numpy(), items, opts.threshold, "spoof")

    def predict_table(self, pred: Prediction, opts: PredictOptions, run_dir: Path) -> None:
        verdict_table(pred, "spoof", ("spoof", "real"), "p(spoof)", opts.threshold)

    def evaluate(self, method: Any, root: Path, run_dir: Path, *, batch_size: int = 64, max_images: int = 0,
                 progress: bool = True, **_: Any) -> dict[str, Any]:  # fmt: skip
        from trustvis.data.pairs import PairDataset, load_pair_folder
        from trustvis.metrics.antispoof import pad_metrics, per_medium_metrics

        pairs = load_pair_folder(root, max_images, progress=progress)
        out = antispoof_outputs(
            method, PairDataset(pairs, method.make_transform(False)), batch_size, progress
        )
        thr = self.default_threshold(method, run_dir)
        res: dict[str, Any] = {"data": str(root), "threshold": thr, "n": len(pairs)}
        res["overall"] = pad_metrics(out["label"], out["score"], thr)
        if (pairs.labels == 1).any():
            res.update(per_medium_metrics(out["label"], out["score"], list(out["medium"]), thr))
        res["skipped"] = [f"{p}: {r}" for p, r in pairs.skipped]
        return res

    def eval_table(self, res: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
        keys = ("n_attack", "apcer", "bpcer", "acer", "auc", "eer")
        rows = [[m, *(r.get(k) for k in keys)] for m, r in res.get("per_medium", {}).items()]
        if "mean" in res:
            rows.append(["mean over media", "", *(res["mean"].get(k) for k in keys[1:])])
        rows.append(["all pairs", *(res["overall"].get(k) for k in keys)])
        return ["medium", "attacks", "APCER", "BPCER", "ACER", "AUC", "EER"], rows

    def instead(self, command: str) -> str:
        return "`trustvis bench antispoof` measures the methods on RecaptureBench"

    def tiny_folder(self, root: Path) -> Path:
        """train/ and val/ pair folders of 32x32 pairs: reals with a depth bump, spoofs flat with stripes."""
        import numpy as np

        from trustvis.data.io import save_png
        from trustvis.data.recapturebench import save_depth_png

        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[0:32, 0:32]
        for split in ("train", "val"):
            for label, media in ((0, ("object",)), (1, ("screen-a", "screen-b"))):
                for medium in media:
                    folder = root / split / ("spoof" if label else "real") / medium
                    folder.mkdir(parents=True, exist_ok=True)
                    for i in range(4 if label else 8):
                        img = rng.integers(60, 200, (32, 32, 3)).astype(np.uint8)
                        depth = np.full((32, 32), 0.5, np.float32)
                        if label:
                            img[:, ::3] = 255  # sub-pixel stripes
                        else:
                            depth -= 0.1 * np.exp(-((yy - 16) ** 2 + (xx - 16) ** 2) / 60.0)  # an object
                        save_png(folder / f"{split}{i}_rgb.png", img)
                        save_depth_png(folder / f"{split}{i}_depth.png", depth)
        return root / "val"

    def tiny_overrides(self, folder: Path) -> list[str]:
        return ["data.name=folder", f"data.root={folder.parent}"]


register_task(AntispoofTask())
