"""The Python API: a trained run as a predictor, a method built by name, the registered method names.

    >>> import trustvis
    >>> detector = trustvis.load("runs/bihpf")                    # doctest: +SKIP
    >>> detector.predict("photo.jpg")                             # doctest: +SKIP
    {'path': 'photo.jpg', 'score': 0.97, 'fake': True, 'verdict': 'fake'}
    >>> detector.predict([Image.open("a.png"), np.zeros((64, 64, 3), np.uint8)])  # doctest: +SKIP
    [{'path': None, 'score': ...}, {'path': None, 'score': ...}]
    >>> trustvis.build("cnndet", preset="tiny", blur_prob=0.1, train={"lr": 1e-3})  # doctest: +SKIP
    >>> trustvis.list_methods("anomaly")                          # doctest: +SKIP
    ['fyd', 'padim']

A predictor runs the loop of ``trustvis predict`` (:func:`trustvis.tasks.predict.predict_files`); images in
memory join it as ``uint8 (H, W, 3)`` arrays, where a file is read by :func:`~trustvis.data.io.load_image`::

    path (str / PathLike) ───────────────────────────────────────┐
    PIL image / numpy array / torch tensor ──► _pixels ──► ImageArray ─┴► task.predict ──► records ──► dicts

so the dict of an input is the record ``trustvis predict --json`` prints for it, made by the task's hooks:
detect ``{path, score, fake, verdict}``; anomaly ``{path, score, anomalous, verdict, anomaly_map}`` (the
map a float32 ``(H, W)`` array at the model's input size; ``predict(..., maps_dir=DIR)`` also writes the
overlays and adds their ``map`` path); classify ``{path, class, prob, top_k, others}``. ``path`` is None
for an image given in memory. A float image is quantised to uint8 (``round(255 x)``) like a PNG of it.

Errors: where the command line gives an image that fails an error row and goes on with the others, the
API raises, so that no result is ever silently missing from a list: an input that cannot be read (a
missing or corrupt file, an array of another dtype or shape, floats outside [0, 1]) or scored raises a
one-line ValueError naming it (and its position, in a list); an object that is no image raises TypeError.
In-memory inputs are checked before the model runs, files as they are read.

``build`` overrides: ``model=``, ``train=``, ``data=``, ``lora=`` take a dict of that section's fields
(``train={"lr": 1e-3}``); any other keyword is a field of the method's model config (``blur_prob=0.1``,
the same as ``model={"blur_prob": 0.1}``; a model field named like a section, the ``lora`` method's own
``lora``, is set through ``model=``). They are composed by :func:`trustvis.config.make_run_config`, as
``trustvis train --set`` values are: type-checked, an unknown key named with the valid ones.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from trustvis.tasks.predict import ImageArray

if TYPE_CHECKING:
    import numpy as np
    import PIL.Image
    import torch

    from trustvis.tasks.base import Task

    #: one input of :meth:`Predictor.predict`
    ImageLike = str | os.PathLike[str] | PIL.Image.Image | np.ndarray | torch.Tensor

__all__ = ["Predictor", "build", "list_methods", "load"]

#: the run config sections ``build`` takes as dicts; any other keyword is a model field
RUN_SECTIONS = ("model", "train", "data", "lora")


class Predictor:
    """A trained run, ready to score images: :func:`load` makes one.

    Attributes:
        run_dir: The run folder.
        task: The task object of the run's method (:mod:`trustvis.tasks`): it makes each record.
        method: The loaded method (an ``nn.Module`` in eval mode).
        threshold: The decision threshold (detect, anomaly; None for a classifier). May be changed.
        top_k: Classes listed per image by a classifier. May be changed.
        batch_size: Images per forward pass (at most).
        max_side: Longest image side given to the model (0 = no limit): larger images are centre-cropped
            (detectors) or reduced (anomaly, classifiers), files and in-memory images alike.
    """

    def __init__(
        self,
        run_dir: Path,
        task: Task,
        method: Any,
        *,
        threshold: float | None,
        top_k: int = 3,
        batch_size: int = 32,
        max_side: int = 2048,
    ) -> None:
        self.run_dir = run_dir
        self.task = task
        self.method = method
        self.threshold = threshold
        self.top_k = top_k
        self.batch_size = batch_size
        self.max_side = max_side

    @property
    def method_name(self) -> str:
        """The registry name of the run's method (e.g. ``cnndet``)."""
        return type(self.method).method_name

    def __repr__(self) -> str:
        thr = "" if self.threshold is None else f", threshold={self.threshold:.4g}"
        return f"Predictor({self.method_name!r} {self.task.name} run {str(self.run_dir)!r}{thr})"

    @overload
    def predict(
        self,
        images: list[ImageLike] | tuple[ImageLike, ...],
        *,
        maps_dir: str | os.PathLike[str] | None = None,
    ) -> list[dict[str, Any]]: ...

    @overload
    def predict(
        self, images: ImageLike, *, maps_dir: str | os.PathLike[str] | None = None
    ) -> dict[str, Any]: ...

    def predict(self, images: Any, *, maps_dir: str | os.PathLike[str] | None = None) -> Any:
        """The task's record of each image: one input gives one dict, a list (or tuple) a list of dicts.

        Args:
            images: An image file path (str or PathLike), a PIL image, a numpy array (``uint8`` or floats
                in [0, 1]; ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)``, alpha dropped), a
                torch tensor (``uint8`` or floats in [0, 1]; ``(C, H, W)`` with C = 1, 3 or 4, or
                ``(H, W)``); or a list of them.
            maps_dir: Anomaly runs: also write the heat-map overlays to this folder (the record's ``map``).

        Raises:
            ValueError: an input cannot be read or scored (the message names it; see the module docstring).
            TypeError: an input is no image.
        """
        from trustvis.tasks.base import PredictOptions

        single = not isinstance(images, list | tuple)
        items = [images] if single else list(images)
        labels: dict[str, str] = {}  # the name of an input in its error row -> how the message names it
        inputs: list[Path | ImageArray] = []
        for i, x in enumerate(items):
            label = _describe(x) if single else f"input {i} ({_describe(x)})"
            if isinstance(x, str | os.PathLike):
                path = Path(x)
                if path.is_dir():
                    raise ValueError(
                        f"{label}: is a folder, not an image file; pass its files (e.g. "
                        "trustvis.tasks.predict.collect_files([folder])) or use `trustvis predict`"
                    )
                inputs.append(path)
                labels[str(path)] = label
            else:
                inputs.append(ImageArray(f"input-{i}", _pixels(x, label)))
                labels[f"input-{i}"] = label
        if not inputs:
            return []
        opts = PredictOptions(threshold=self.threshold, top_k=self.top_k, batch_size=self.batch_size,
                              max_side=self.max_side, maps_dir=Path(maps_dir) if maps_dir else None,
                              map_arrays=True)  # fmt: skip
        pred = self.task.predict(self.method, inputs, opts, self.run_dir)
        if pred.errors:
            first = pred.errors[0]
            why = (first["error"].strip().splitlines() or [""])[0]
            more = f" ({len(pred.errors) - 1} more input(s) failed too)" if len(pred.errors) > 1 else ""
            raise ValueError(f"{labels.get(first['path'], first['path'])}: {why}{more}")
        records = pred.records
        for rec, src in zip(records, inputs):
            if isinstance(src, ImageArray):
                rec["path"] = None
        return records[0] if single else records


def load(
    run_dir: str | os.PathLike[str],
    *,
    device: str = "cpu",
    threshold: float | None = None,
    top_k: int = 3,
    batch_size: int = 32,
    max_side: int = 2048,
) -> Predictor:
    """The trained run in ``run_dir`` as a :class:`Predictor` (what ``trustvis predict RUN_DIR`` loads).

    Args:
        run_dir: A run folder (``trustvis train METHOD --out RUN_DIR``).
        device: ``cpu`` (the default, as ``trustvis predict``), ``auto`` (a GPU if there is one), ``cuda:N``.
        threshold: Decision threshold; None = the task's default for the run (0.5 for a detector, the
            stored threshold of an anomaly run).
        top_k: Classifiers: classes listed per image.
        batch_size: Images per forward pass (at most).
        max_side: Longest image side given to the model (0 = no limit).

    Raises:
        CheckpointError: (a ValueError) ``run_dir`` is not a run (no ``model.json``) or its files are damaged;
            the one-line message names the folder or file.
        TaskError: (a ValueError) the run's method does not score images (a calibrator, a codec).
        ValueError: an option is out of range.
    """
    from trustvis.tasks.predict import load_run

    if threshold is not None and not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold}")
    for key, value, low in (("top_k", top_k, 1), ("batch_size", batch_size, 1), ("max_side", max_side, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{key} must be an integer >= {low}, got {value!r}")
    task, method = load_run(run_dir, device=device)
    run_dir = Path(run_dir)
    if threshold is None:
        threshold = task.default_threshold(method, run_dir)
    return Predictor(run_dir, task, method, threshold=threshold, top_k=top_k, batch_size=batch_size,
                     max_side=max_side)  # fmt: skip


def build(name: str, preset: str = "default", **overrides: Any) -> Any:
    """A new method ``name`` from its ``preset``, with config ``overrides``: the method ``trustvis train`` starts
    from (pretrained backbone weights where the config names them, ``train.init_from``, LoRA adapters).

    Args:
        name: A registered method (:func:`list_methods`).
        preset: One of its presets (``trustvis info NAME`` lists them).
        **overrides: ``model=``, ``train=``, ``data=``, ``lora=`` a dict of that section's fields (always the
            run's sections); any other keyword a field of the model config (``blur_prob=0.1`` is
            ``model={"blur_prob": 0.1}``).

    Returns:
        The method (an ``nn.Module``, in training mode); ``method.run_config`` holds the composed run config.

    Raises:
        KeyError: an unknown method.
        ConfigError: (a ValueError) an unknown preset or key, or a value of the wrong type or range.
        TypeError: a section given as something else than a dict.
    """
    from trustvis.config import ConfigError, make_run_config
    from trustvis.engine.checkpoint import build_method

    sections: dict[str, dict[str, Any]] = {}
    for key in RUN_SECTIONS:
        if key in overrides:
            values = overrides.pop(key)
            if not isinstance(values, Mapping):
                raise TypeError(f"{key}= takes a dict of {key}.* fields, got {type(values).__name__}")
            sections[key] = dict(values)
    model = sections.setdefault("model", {})
    both = sorted(set(model) & set(overrides))
    if both:
        raise ConfigError(f"model field(s) {both} given twice: as keywords and in model=")
    model.update(overrides)
    run = make_run_config(name, preset, **sections)
    method = build_method(run)
    method.run_config = run
    return method


def list_methods(task: str | None = None) -> list[str]:
    """The names of the registered methods (of one method task: detect, anomaly, classify, adapt, ...), sorted;
    what ``trustvis list`` shows, read from the catalog without importing torch.

    Raises:
        KeyError: an unknown task (the message lists the valid ones).
    """
    from trustvis import registry

    cat = registry.catalog()
    if task is not None and task not in cat["tasks"]:
        raise KeyError(f"Unknown task {task!r}; choose from {cat['tasks']}")
    return sorted(m["name"] for m in cat["methods"] if task is None or m["task"] == task)


# ----------------------------------------------------------------------------------------------------
# in-memory images


def _describe(x: Any) -> str:
    """How an error message names the input ``x``."""
    if isinstance(x, str | os.PathLike):
        return str(x)
    shape, dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return f"torch tensor {tuple(shape)} {str(dtype).removeprefix('torch.')}"
    if type(x).__module__ == "numpy" and shape is not None:
        return f"numpy array {tuple(shape)} {dtype}"
    if hasattr(x, "mode") and hasattr(x, "size") and type(x).__module__.startswith("PIL"):
        return f"PIL image {x.mode} {x.size[0]}x{x.size[1]}"
    return f"{type(x).__name__} object"


def _pixels(x: Any, label: str) -> Any:
    """``x`` (a PIL image, a numpy array or a torch tensor) as a ``uint8 (H, W, 3)`` RGB array.

    Raises:
        ValueError: ``x`` has a dtype or shape that is no image, or float values outside [0, 1]; the
            message starts with ``label``.
        TypeError: ``x`` is none of these kinds.
    """
    import numpy as np
    from PIL import Image, ImageOps

    from trustvis.data.io import to_rgb8

    if isinstance(x, Image.Image):  # as load_image reads a file: EXIF orientation applied, any mode
        try:
            x.load()
            if x.width == 0 or x.height == 0:
                raise ValueError(f"zero size ({x.width}x{x.height})")
            return to_rgb8(ImageOps.exif_transpose(x))
        except (OSError, ValueError, SyntaxError, EOFError) as e:
            raise ValueError(f"{label}: cannot read the image: {e}") from None
    torch = sys.modules.get("torch")  # a tensor exists only if torch was imported
    if torch is not None and isinstance(x, torch.Tensor):
        if x.dim() == 3 and x.shape[0] not in (1, 3, 4):
            hint = (
                "; channels last? pass x.permute(2, 0, 1)"
                if x.shape[2] in (1, 3, 4) and x.shape[0] > 4
                else ""
            )
            raise ValueError(f"{label}: a tensor image is (C, H, W) with C = 1, 3 or 4, or (H, W){hint}")
        if x.dim() not in (2, 3):
            hint = "; for a batch pass list(images)" if x.dim() == 4 else ""
            raise ValueError(f"{label}: a tensor image is (C, H, W) with C = 1, 3 or 4, or (H, W){hint}")
        x = x.detach().cpu()
        x = x.permute(1, 2, 0) if x.dim() == 3 else x  # (H, W, C)
        if x.is_floating_point():
            x = x.float()  # numpy has no bfloat16
        elif x.dtype != torch.uint8:
            raise ValueError(
                f"{label}: dtype {x.dtype} is not an image; pass uint8 (0..255) or floats in [0, 1]"
            )
        x = x.numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{label} is not an image: pass a file path, a PIL image, a numpy array or a torch tensor, "
            "or a list of them"
        )
    if x.ndim == 3 and x.shape[2] not in (1, 3, 4):
        hint = (
            "; channels first? pass x.transpose(1, 2, 0)"
            if x.shape[0] in (1, 3, 4) and x.shape[2] > 4
            else ""
        )
        raise ValueError(f"{label}: an array image is (H, W, C) with C = 1, 3 or 4, or (H, W){hint}")
    if x.ndim not in (2, 3):
        hint = "; for a batch pass list(images)" if x.ndim == 4 else ""
        raise ValueError(f"{label}: an array image is (H, W, C) with C = 1, 3 or 4, or (H, W){hint}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{label}: the image is empty (zero height or width)")
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise ValueError(f"{label}: holds NaN or inf")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > 1:
            raise ValueError(
                f"{label}: float values must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]; pass uint8 for 0..255"
            )
        x = np.rint(x.astype(np.float64) * 255.0).astype(np.uint8)
    elif x.dtype != np.uint8:
        raise ValueError(f"{label}: dtype {x.dtype} is not an image; pass uint8 (0..255) or floats in [0, 1]")
    if x.ndim == 2:
        x = x[:, :, None]
    x = x[:, :, :3] if x.shape[2] >= 3 else np.repeat(x, 3, axis=2)  # alpha dropped, gray repeated
    return np.ascontiguousarray(x)
