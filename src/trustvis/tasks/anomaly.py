"""Task ``anomaly``: is an image (and where is it) anomalous? Methods fit on normal images only (``padim``,
``fyd``).

data       elpv-mono | elpv-poly (real solar-cell defects) | textures | textures-misaligned (real textures,
           synthetic defects with masks) | mvtec (MVTec AD layout under root, one category) | folder
           (ROOT/normal/*, ROOT/abnormal/*, optional ROOT/mask/*); see :mod:`trustvis.data.anomaly`
validation the normal validation scores' mean and the threshold they give
after fit  the threshold: the 0.99 quantile of the normal validation scores, stored with the weights
predict    anomaly score, the threshold, verdict at it and a heat-map overlay per image (the Python
           API: the map itself, as an array, unless it asks for overlays); large images are reduced
           (Lanczos), since the models resize to their image size anyway. An overlay, ``<stem>_anomaly.png``
           in RUN/maps, shows the image and its map side by side (at most ``overlay_side`` = 1024 px on its
           long side, aspect kept), a colour bar with the threshold, and the score, threshold and verdict
eval       image AUROC / AP / F1 (and pixel AUROC / AUPRO when masks exist) on the test split of a folder
           in the ``folder`` layout: its held-out normal images (a seeded 20 %) and every abnormal one
"""

from __future__ import annotations

import math
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

#: the threshold is this quantile of the normal validation scores (never test labels)
NORMAL_QUANTILE = 0.99


@dataclass
class AnomalyData:
    """Where an anomaly method's normal training and validation images come from."""

    name: str = "elpv-mono"  # elpv-mono | elpv-poly | textures | textures-misaligned | mvtec | folder
    root: str = ""  # data folder, required for mvtec and folder
    category: str = ""  # the MVTec AD category under root (name == mvtec)

    def check(self) -> None:
        from trustvis.data.anomaly import ANOMALY_DATASETS

        if self.name not in ANOMALY_DATASETS:
            raise ConfigError(
                f"data.name={self.name!r} is invalid for an anomaly method; choose from {list(ANOMALY_DATASETS)}"
            )


# ----------------------------------------------------------------------------------------------------
# data and metrics (shared with `trustvis bench anomaly`)


def load_anomaly_split(run: Any, split: str, size: int) -> Any:
    """``split`` of the run's anomaly data set at ``size`` px (train and val hold normal images only)."""
    from trustvis.data.anomaly import load_anomaly

    d = run.data
    return load_anomaly(d.name, split, root=d.root, category=d.category, size=size)


def anomaly_datasets(run: Any, method: Any) -> tuple[Any, Any]:
    """(normal train images, normal validation images) of an anomaly run."""
    from trustvis.data.anomaly import AnomalyDataset

    size = method.config.image_size
    train = load_anomaly_split(run, "train", size)
    val = load_anomaly_split(run, "val", size)
    return AnomalyDataset(train, method.make_transform(True)), AnomalyDataset(
        val, method.make_transform(False)
    )


def anomaly_outputs(method: Any, dataset: Any, batch_size: int = 32) -> dict[str, Any]:
    """``score (N,)``, ``anomaly_map (N,H,W)``, ``label``, ``mask`` and throughput of ``method`` on ``dataset``."""
    from trustvis.engine import predict_dataset

    return predict_dataset(
        method, dataset, batch_size=batch_size, keys=("score", "anomaly_map"), progress=False
    )


def set_threshold(method: Any, val_set: Any, quantile: float = NORMAL_QUANTILE) -> float:
    """Store the adaptive threshold (``quantile`` of the normal validation scores) in ``method.threshold``."""
    from trustvis.metrics.anomaly import adaptive_threshold

    out = anomaly_outputs(method, val_set)
    t = adaptive_threshold(out["score"], normal_quantile=quantile)
    method.threshold.fill_(t)
    return float(t)


def anomaly_val_metrics(method: Any, val_set: Any) -> dict[str, float]:
    """Validation record of an anomaly run: the normal scores' mean and the threshold they give."""
    import numpy as np

    from trustvis.metrics.anomaly import adaptive_threshold

    out = anomaly_outputs(method, val_set)
    return {
        "score_mean": float(np.mean(out["score"])),
        "threshold": adaptive_threshold(out["score"], normal_quantile=NORMAL_QUANTILE),
    }


#: the smallest ``PredictOptions.overlay_side`` an annotated overlay fits in (0 = no limit)
MIN_OVERLAY_SIDE = 400


def overlay_names(files: Any) -> list[str]:
    """The overlay file name of each input: ``<stem>_anomaly.png``, its input's name kept; an input whose
    stem an earlier one has (case-insensitively: ``a/x.png``, ``b/x.jpg``) gets ``<stem>_anomaly_2.png``,
    ``_3``, ... in input order. ``files``: paths, or in-memory images with a ``name``."""
    used: set[str] = set()
    names = []
    for f in files:
        stem = Path(str(getattr(f, "name", f))).stem or "image"
        name, n = f"{stem}_anomaly.png", 1
        while name.casefold() in used:
            n += 1
            name = f"{stem}_anomaly_{n}.png"
        used.add(name.casefold())
        names.append(name)
    return names


def overlay_scale(threshold: float) -> tuple[float | None, float | None]:
    """Colour scale of a predicted overlay: from half to one and a half times the threshold (the threshold
    in the middle); a zero threshold leaves the scale to the map."""
    if threshold == 0 or not math.isfinite(threshold):
        return None, None
    lo, hi = 0.5 * threshold, 1.5 * threshold
    return min(lo, hi), max(lo, hi)


# ----------------------------------------------------------------------------------------------------
# the task object


class AnomalyTask(Task):
    """Anomaly detection and localisation from normal images only."""

    name = "anomaly"
    method_tasks = ("anomaly",)
    data_config = AnomalyData
    predict_fit = "resize"
    eval_layout = "ROOT/normal/*, ROOT/abnormal/* and optionally ROOT/mask/<same name as the abnormal image>"

    def datasets(self, run: Any, method: Any) -> tuple[Any, Any]:
        return anomaly_datasets(run, method)

    def val_metrics(self, method: Any, val_set: Any, run: Any) -> dict[str, float]:
        return anomaly_val_metrics(method, val_set)

    def after_fit(self, method: Any, run: Any, val_set: Any | None, out: Path, steps: int) -> list[str]:
        if val_set is None:
            return []
        from trustvis.config import to_dict
        from trustvis.engine.checkpoint import save_final

        thr = set_threshold(method, val_set)  # stored with the weights; `trustvis predict` uses it
        save_final(method, out, to_dict(run), steps)
        return [f"threshold (0.99 quantile of normal validation scores): {thr:.4g}"]

    def default_threshold(self, method: Any, run_dir: Path) -> float | None:
        t = float(method.threshold)
        if not math.isfinite(t):
            raise TaskError(f"{run_dir} has no stored threshold; pass --threshold")
        return t

    def predict(self, method: Any, files: Any, opts: PredictOptions, run_dir: Path) -> Prediction:
        if opts.maps_dir is not None or not opts.map_arrays:  # the CLI's default: overlays in RUN/maps
            opts.maps_dir = Path(opts.maps_dir or Path(run_dir) / "maps")
        if 0 < opts.overlay_side < MIN_OVERLAY_SIDE or opts.overlay_side < 0:
            raise TaskError(
                f"overlay_side must be 0 (no limit) or at least {MIN_OVERLAY_SIDE}, got {opts.overlay_side}"
            )
        opts.context["overlay_names"] = overlay_names(files)
        return super().predict(method, files, opts, run_dir)

    def predict_records(
        self, method: Any, out: dict[str, Any], items: list[tuple[int, Path, Any]], opts: PredictOptions
    ) -> list[dict[str, Any] | str]:
        import numpy as np

        from trustvis.report.plots import save_overlay

        recs = score_records(out["score"].float().cpu().numpy(), items, opts.threshold, "anomalous")
        for j, ((i, path, t), rec) in enumerate(zip(items, recs)):
            if isinstance(rec, str):
                continue
            amap = out["anomaly_map"][j].float().cpu().numpy()  # (H, W) at the model's input size
            if opts.map_arrays:
                rec["anomaly_map"] = amap
            if opts.maps_dir is None:
                continue
            names = opts.context.get("overlay_names") or []
            name = names[i] if i < len(names) else f"{path.stem}_anomaly.png"
            image = (t.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
            lo, hi = overlay_scale(opts.threshold)
            rec["map"] = str(save_overlay(image, amap, opts.maps_dir / name, vmin=lo, vmax=hi,
                                          max_side=opts.overlay_side, score=rec["score"], threshold=opts.threshold,
                                          verdict="anomalous" if rec["anomalous"] else "normal",
                                          title=path.name))  # fmt: skip
        return recs

    def predict_table(self, pred: Prediction, opts: PredictOptions, run_dir: Path) -> None:
        verdict_table(pred, "anomalous", ("anomalous", "normal"), "anomaly score", opts.threshold)
        if pred.records and opts.maps_dir is not None:
            pred.summary.append(f"anomaly-map overlays -> {opts.maps_dir}")

    def evaluate(
        self, method: Any, root: Path, run_dir: Path, *, batch_size: int = 32, **_: Any
    ) -> dict[str, Any]:
        from trustvis.data.anomaly import AnomalyDataset, load_anomaly
        from trustvis.metrics.anomaly import anomaly_metrics

        test = load_anomaly("folder", "test", root=root, size=method.config.image_size)
        out = anomaly_outputs(
            method, AnomalyDataset(test, method.make_transform(False)), batch_size=batch_size
        )
        t = float(method.threshold)
        res = anomaly_metrics(out["label"], out["score"], masks=test.masks,
                              maps=out["anomaly_map"] if test.masks is not None else None,
                              threshold=t if math.isfinite(t) else None)  # fmt: skip
        res = {k: (float(v) if isinstance(v, float) else v) for k, v in res.items()}
        res.update({"n": int(len(out["score"])), "data": str(root), "split": "test"})
        return res

    def eval_table(self, res: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
        keys = [k for k, v in res.items() if isinstance(v, int | float) and not isinstance(v, bool)]
        return ["metric", "value"], [[k, res[k]] for k in keys]

    def instead(self, command: str) -> str:
        return "`trustvis bench anomaly` measures AUROC/AUPRO on the built-in sets"

    def tiny_folder(self, root: Path) -> Path:
        """20 normal 32x32 smooth images, 4 abnormal ones with a bright square and its mask."""
        import numpy as np

        from trustvis.data.io import save_png

        rng = np.random.default_rng(0)
        for d in ("normal", "abnormal", "mask"):
            (root / d).mkdir(parents=True, exist_ok=True)
        base = np.linspace(80, 160, 32)[None, :, None].repeat(32, 0).repeat(3, 2)
        for i in range(20):
            save_png(
                root / "normal" / f"n{i}.png",
                np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8),
            )
        for i in range(4):
            img = np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
            mask = np.zeros((32, 32), np.uint8)
            y, x = 4 + 6 * i, 20 - 4 * i
            img[y : y + 6, x : x + 6] = 255
            mask[y : y + 6, x : x + 6] = 255
            save_png(root / "abnormal" / f"a{i}.png", img)
            save_png(root / "mask" / f"a{i}.png", np.repeat(mask[:, :, None], 3, axis=2))
        return root

    def tiny_overrides(self, folder: Path) -> list[str]:
        return ["data.name=folder", f"data.root={folder}"]


register_task(AnomalyTask())
