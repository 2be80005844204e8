"""Task ``classify``: image classification — classifiers, the mixing augmentations (``kmix``, ``mixup``,
``cutmix``), LoRA adaptation and the post-hoc calibrators (``ts`` … ``sctl``), which fit on a classifier's
logits (``trustvis calibrate``) instead of on images.

data       fashion-mnist | opencv-digits | sklearn-digits (installed with the project) | folder (a
           class-per-folder tree ROOT/<class>/*, or ROOT/{train,[val],test}/<class>/*); optionally
           long-tailed (``data.imbalance``) or dominant-k (``data.dominant``) train/val, capped per class
validation accuracy, NLL, ECE, ... on the val split (``val_*``)
after fit  ``classes.json`` next to the weights: class names, image size and colour of the training data,
           so that ``predict`` names classes and shapes a photo like the training images
predict    the top-k classes with their probabilities
eval       accuracy and calibration on a class-per-folder tree (classes matched by name)

::

    run.data (name, root, imbalance, dominant, max_images) ──► load_split(train|val) [──► LT subset]
        ──► ClassificationDataset(method.make_transform(train))
    method + dataset ──► class_logits ──► logits (N,C), labels (N,) ──► calibration_metrics
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustvis.config import ConfigError
from trustvis.tasks.base import Prediction, PredictOptions, Task, TaskError, register_task

#: seed of the long-tailed sub-sampling: a property of the data set, never of a training run
LT_SEED = 0
CLASSES_FILE = "classes.json"


@dataclass
class ClassifyData:
    """Where a classifier's training and validation images come from."""

    name: str = "fashion-mnist"  # fashion-mnist | opencv-digits | sklearn-digits | tuxpaint-stamps | folder
    root: str = ""  # folder root when name == folder (or an IDX folder / digits.png for the named sets)
    max_images: int = 0  # cap per class (train and val); 0 = all
    imbalance: float = 1.0  # long-tailed train/val with max/min class ratio (1 = as is)
    dominant: int = -1  # VaB-AL "dominant-k" train/val: class k whole, the others at 10 %; -1 = off

    def check(self) -> None:
        from trustvis.data.classification import DATASETS

        def bad(key: str, value: Any, valid: str) -> ConfigError:
            return ConfigError(f"data.{key}={value!r} is invalid; it must be {valid}")

        if self.name not in DATASETS:
            raise ConfigError(
                f"data.name={self.name!r} is invalid for a classifier; choose from {list(DATASETS)}"
            )
        if self.max_images < 0:
            raise bad("max_images", self.max_images, "an integer >= 0 (0 = all)")
        if not (math.isfinite(self.imbalance) and self.imbalance >= 1):
            raise bad("imbalance", self.imbalance, "a number >= 1 (1 = as is)")
        if self.dominant < -1:
            raise bad("dominant", self.dominant, "a class index >= 0, or -1 (off)")


# ----------------------------------------------------------------------------------------------------
# data and metrics (shared with `bench augment` / `bench calibrate` / `bench adapt`)


def cap_per_class(data: Any, max_per_class: int, seed: int = LT_SEED) -> Any:
    """At most ``max_per_class`` items of each class (a seeded random choice); 0 keeps all."""
    import numpy as np

    if max_per_class <= 0:
        return data
    rng = np.random.default_rng(seed)
    keep = [
        rng.permutation(np.flatnonzero(data.labels == c))[:max_per_class] for c in range(data.num_classes)
    ]
    return data.subset(np.sort(np.concatenate(keep)))


def load_classification_split(run: Any, split: str) -> Any:
    """``split`` of the run's data set, long-tailed or dominant-k (train and val only) and capped as configured."""
    from trustvis.data.classification import dominant_indices, load_split, long_tailed_indices

    data = run.data
    images = load_split(data.name, split, root=data.root)
    if split != "test" and data.imbalance > 1:
        images = images.subset(long_tailed_indices(images.labels, data.imbalance, seed=LT_SEED))
    if split != "test" and data.dominant >= 0:
        if data.dominant >= images.num_classes:
            raise ValueError(
                f"data.dominant={data.dominant} but {data.name} has classes 0..{images.num_classes - 1}"
            )
        images = images.subset(dominant_indices(images.labels, data.dominant, seed=LT_SEED))
    if split != "test":
        images = cap_per_class(images, data.max_images)
    return images


def classification_datasets(run: Any, method: Any) -> tuple[Any, Any]:
    """(train set, val set) of a classification run; the method's class count must match the data."""
    from trustvis.data.classification import ClassificationDataset

    train = load_classification_split(run, "train")
    val = load_classification_split(run, "val")
    k = getattr(method.config, "num_classes", None)
    if k is not None and k != train.num_classes:
        raise ValueError(
            f"{run.data.name} has {train.num_classes} classes but model.num_classes={k}; "
            f"set model.num_classes={train.num_classes}"
        )
    return (
        ClassificationDataset(train, method.make_transform(True)),
        ClassificationDataset(val, method.make_transform(False)),
    )


def class_logits(method: Any, dataset: Any, batch_size: int = 256, progress: bool = False) -> dict[str, Any]:
    """``{"logits": (N,C) float32, "label": (N,) int64, "images_per_second"}`` of ``method`` on ``dataset``."""
    import numpy as np

    from trustvis.engine import predict_dataset

    out = predict_dataset(method, dataset, batch_size=batch_size, keys=("logits",), progress=progress)
    return {
        "logits": out["logits"].astype(np.float32),
        "label": out["label"].astype(np.int64),
        "images_per_second": out["images_per_second"],
    }


def classifier_val_metrics(method: Any, val_set: Any) -> dict[str, float]:
    """Accuracy and calibration of ``method`` on ``val_set`` (the trainer logs them as ``val_*``)."""
    import torch

    from trustvis.metrics.calibration import calibration_metrics

    out = class_logits(method, val_set)
    return calibration_metrics(torch.from_numpy(out["logits"]), out["label"], from_logits=True)


def read_classes(run_dir: Path) -> dict[str, Any]:
    """The ``classes.json`` of a classifier run (``{}`` for runs saved before it existed)."""
    path = Path(run_dir) / CLASSES_FILE
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TaskError(
            f"{path}: not a readable classes file ({e}); delete it to fall back to class indices"
        ) from None
    if not isinstance(info, dict) or not isinstance(info.get("classes", []), list):
        raise TaskError(f"{path}: expected {{'classes': [...], 'image_size': [H, W], 'gray': bool}}")
    return info


# ----------------------------------------------------------------------------------------------------
# the task object


class ClassifyTask(Task):
    """Image classification (and what trains or calibrates a classifier)."""

    name = "classify"
    method_tasks = ("classify", "augment", "adapt", "calibrate")
    data_config = ClassifyData
    predict_fit = "resize"
    eval_layout = "ROOT/<class>/* (one folder per class, named like the training classes)"

    def prepare(self, run: Any, explicit: set[str]) -> None:
        if getattr(run.model, "num_classes", None) is not None and "model.num_classes" not in explicit:
            run.model.num_classes = load_classification_split(run, "train").num_classes

    def check_method(self, spec: Any, command: str) -> None:
        if spec.task == "calibrate" and command in ("train", "predict", "eval"):
            raise TaskError(
                f"{spec.name} is a post-hoc calibrator: fit it with `trustvis calibrate --method {spec.name}`"
            )

    def datasets(self, run: Any, method: Any) -> tuple[Any, Any]:
        return classification_datasets(run, method)

    def val_metrics(self, method: Any, val_set: Any, run: Any) -> dict[str, float]:
        return classifier_val_metrics(method, val_set)

    def after_fit(self, method: Any, run: Any, val_set: Any | None, out: Path, steps: int) -> list[str]:
        from trustvis.atomic import atomic_write_json

        train = load_classification_split(run, "train")
        imgs = train.images
        info = {"classes": list(train.classes), "image_size": [int(imgs.shape[1]), int(imgs.shape[2])],
                "gray": bool(imgs.ndim == 3), "data": run.data.name}  # fmt: skip
        atomic_write_json(out / CLASSES_FILE, info)
        return []

    def predict(self, method: Any, files: Any, opts: PredictOptions, run_dir: Path) -> Prediction:
        opts.context = read_classes(run_dir)
        return super().predict(method, files, opts, run_dir)

    def predict_image(self, img: Any, opts: PredictOptions) -> Any:
        """Shape a photo like the training images: their size (Lanczos) and, for gray data, gray."""
        import numpy as np
        from PIL import Image

        info = opts.context or {}
        if info.get("gray"):
            gray = np.asarray(Image.fromarray(img).convert("L"))
            img = np.repeat(gray[:, :, None], 3, axis=2)
        size = info.get("image_size")
        if size and tuple(img.shape[:2]) != tuple(size):
            img = np.asarray(Image.fromarray(img).resize((int(size[1]), int(size[0])), Image.LANCZOS))
        return img

    def predict_records(
        self, method: Any, out: dict[str, Any], items: list[tuple[int, Path, Any]], opts: PredictOptions
    ) -> list[dict[str, Any] | str]:
        import numpy as np

        probs = out["probs"].float().cpu().numpy()
        names = (opts.context or {}).get("classes") or []
        recs: list[dict[str, Any] | str] = []
        k = max(1, min(opts.top_k, probs.shape[1]))
        for (_, path, _), p in zip(items, probs):
            if not np.isfinite(p).all():
                recs.append("model output is not finite; the run's weights may be broken")
                continue
            top = np.argsort(-p, kind="stable")[:k]
            label = lambda c: names[c] if c < len(names) else str(int(c))  # noqa: E731
            recs.append({"path": str(path), "class": label(top[0]), "prob": float(p[top[0]]),
                         "top_k": [{"class": label(c), "prob": float(p[c])} for c in top]})  # fmt: skip
        return recs

    def predict_table(self, pred: Prediction, opts: PredictOptions, run_dir: Path) -> None:
        pred.columns, pred.header = (
            ["path", "class", "prob", "others"],
            ["path", "class", "p", f"next {opts.top_k - 1}"],
        )
        for r in pred.records:
            r["others"] = ", ".join(f"{t['class']} {t['prob']:.3f}" for t in r["top_k"][1:])
        if pred.records and not (opts.context or {}).get("classes"):
            pred.summary.append(f"{run_dir} has no {CLASSES_FILE}: classes are shown as indices")

    def evaluate(
        self, method: Any, root: Path, run_dir: Path, *, batch_size: int = 64, progress: bool = True, **_: Any
    ) -> dict[str, Any]:
        import numpy as np
        import torch

        from trustvis.data.classification import ClassificationDataset, ImageSet, image_folder
        from trustvis.metrics.calibration import calibration_metrics

        info = read_classes(run_dir)
        size = (info.get("image_size") or [32, 32])[0]
        data = image_folder(root, size=int(size))
        images, labels, classes = data.images, data.labels, list(data.classes)
        if info.get("classes"):
            known = list(info["classes"])
            missing = [c for c in classes if c not in known]
            if missing:
                raise TaskError(f"{root}: class folder(s) {missing} are not classes of the run {run_dir}; its "
                                f"classes: {known} (layout: {self.eval_layout})")  # fmt: skip
            labels = np.array([known.index(classes[i]) for i in labels], dtype=np.int64)
            classes = known
        else:  # a run saved before classes.json: folders in sorted order are the class indices, as in training
            k = getattr(method.config, "num_classes", None)
            if k is not None and len(classes) != k:
                raise TaskError(f"{root}: {len(classes)} class folders {classes[:5]} but the run {run_dir} has {k} "
                                f"classes (layout: {self.eval_layout})")  # fmt: skip
        if info.get("gray"):
            images = np.repeat(images.mean(3, keepdims=True).round().astype(np.uint8), 3, axis=3)
        data = ImageSet(np.ascontiguousarray(images), labels, classes, data.name)
        out = class_logits(
            method, ClassificationDataset(data, method.make_transform(False)), batch_size, progress
        )
        res = calibration_metrics(torch.from_numpy(out["logits"]), out["label"], from_logits=True)
        res = {k: float(v) for k, v in res.items()}
        res.update({"n": int(len(out["label"])), "data": str(root)})
        return res

    def eval_table(self, res: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
        keys = [k for k in ("acc", "nll", "ece", "brier") if k in res]
        return ["n", *keys], [[res["n"], *(res[k] for k in keys)]]

    def calibration_logits(self, method: Any, run_dir: str) -> dict[str, Any]:
        """Calibration (val split) and test logits of a classifier run."""
        from trustvis.data.classification import ClassificationDataset

        run = method.run_config
        parts: dict[str, Any] = {}
        for role, split in (("cal", "val"), ("test", "test")):
            o = class_logits(
                method,
                ClassificationDataset(load_classification_split(run, split), method.make_transform(False)),
            )
            parts[role], parts[f"{role}_y"] = o["logits"], o["label"]
        return parts

    def instead(self, command: str) -> str:
        return "calibrators fit with `trustvis calibrate --method NAME`" if command == "train" else (
            "`trustvis calibrate --run RUN` measures a classifier's calibration")  # fmt: skip

    def tiny_folder(self, root: Path) -> Path:
        """Three classes x 6 images of 16x16: dark, mid and bright squares with noise."""
        import numpy as np

        from trustvis.data.io import save_png

        rng = np.random.default_rng(0)
        for c, level in (("dark", 40), ("mid", 128), ("bright", 215)):
            (root / c).mkdir(parents=True, exist_ok=True)
            for i in range(6):
                img = np.clip(level + rng.normal(0, 12, (16, 16, 3)), 0, 255).astype(np.uint8)
                save_png(root / c / f"{i}.png", img)
        return root

    def tiny_overrides(self, folder: Path) -> list[str]:
        return ["data.name=folder", f"data.root={folder}"]


register_task(ClassifyTask())
