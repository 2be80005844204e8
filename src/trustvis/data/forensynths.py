"""Reader for the ForenSynths / CNNDetection folder layout of real-vs-generated image sets.

The layout (Wang et al., "CNN-generated images are surprisingly easy to spot... for now", CVPR 2020)::

    root/
      progan/                 <- generator
        airplane/             <- optional object class
          0_real/*.png        <- label 0: real
          1_fake/*.png        <- label 1: generated
        bird/...
      stylegan/
        0_real/  1_fake/      <- class level may be omitted

``root/{0_real,1_fake}`` directly is accepted too; the generator is then the root folder's name.
Hidden files and folders and files without an image extension are ignored. Unreadable images are
skipped (with one warning each) instead of stopping a long evaluation.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from multiprocessing.pool import ThreadPool
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from trustvis.data.io import ImageReadError, iter_image_files, load_image
from trustvis.data.transforms import to_tensor

log = logging.getLogger(__name__)

__all__ = ["LABEL_DIRS", "LayoutError", "scan_forensynths", "ForenSynthsDataset"]

#: Folder name -> label.
LABEL_DIRS: dict[str, int] = {"0_real": 0, "1_fake": 1}

EXPECTED_LAYOUT = """\
Expected the ForenSynths/CNNDetection layout:
  root/<generator>/[<class>/]{0_real,1_fake}/<images>
for example
  root/
    progan/
      airplane/0_real/000.png
      airplane/1_fake/000.png
    stylegan/
      0_real/000.png
      1_fake/000.png
or root/{0_real,1_fake}/<images> directly (the generator is then the root folder's name)."""


class LayoutError(ValueError):
    """A folder does not follow the ForenSynths layout; the message shows the expected layout."""


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _describe_root(root: Path, limit: int = 8) -> str:
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    if not entries:
        return f"{root} is empty."
    shown = [p.name + ("/" if p.is_dir() else "") for p in entries[:limit]]
    more = f", ... ({len(entries) - limit} more)" if len(entries) > limit else ""
    return f"Found at {root}: {', '.join(shown)}{more}"


def _label_dirs(root: Path) -> list[tuple[Path, int, str]]:
    """``(label folder, label, generator)`` for every label folder at depth 1, 2 or 3."""
    found: list[tuple[Path, int, str]] = []

    def take(folder: Path, generator: str) -> bool:
        hits = [(folder / d, lab, generator) for d, lab in LABEL_DIRS.items() if (folder / d).is_dir()]
        found.extend(hits)
        return bool(hits)

    if take(root, root.resolve().name):
        return found
    for gen in _visible_dirs(root):
        if take(gen, gen.name):
            continue
        for cls in _visible_dirs(gen):
            take(cls, gen.name)
    return found


def scan_forensynths(root: str | Path) -> list[tuple[Path, int, str]]:
    """List the images of a ForenSynths-layout folder.

    Args:
        root: Dataset root (see the module docstring for the layout).

    Returns:
        Sorted ``(path, label, generator)`` tuples; label 0 is real, 1 is generated.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        LayoutError: No ``0_real`` / ``1_fake`` folder with images was found.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Dataset root {root} is not an existing folder.\n{EXPECTED_LAYOUT}")
    dirs = _label_dirs(root)
    if not dirs:
        raise LayoutError(
            f"No 0_real/1_fake folders under {root}.\n{EXPECTED_LAYOUT}\n{_describe_root(root)}"
        )
    items = sorted(
        {(p, label, gen) for folder, label, gen in dirs for p in iter_image_files(folder)},
        key=lambda t: (t[2], t[1], str(t[0])),
    )
    if not items:
        folders = ", ".join(str(f.relative_to(root)) for f, _, _ in dirs[:6])
        raise LayoutError(
            f"Found label folders under {root} ({folders}) but no image files in them "
            f"(extensions: png, jpg, jpeg, bmp, webp, tif, tiff).\n{EXPECTED_LAYOUT}"
        )
    return items


def _check_file(path: Path) -> str | None:
    try:
        load_image(path)
    except ImageReadError as e:
        return e.reason
    return None


class ForenSynthsDataset(Dataset):
    """Real-vs-generated images in the ForenSynths layout, as a PyTorch dataset.

    Each item is ``{"image": (3, H, W) float in [0, 1] (or transform(img)), "label": long scalar,
    "path": str, "generator": str}``.

    Args:
        root: Dataset root.
        transform: Callable applied to the ``uint8 (H, W, 3)`` image; default
            :func:`~trustvis.data.transforms.to_tensor`. It should return a tensor.
        generators: Keep only these generators (folder names).
        check: Decode every file once now and skip the unreadable ones (each logged with its reason and
            recorded in :attr:`skipped`).
        max_per_class: Keep at most this many images per (generator, label): the first ones in path
            order (after skipping unreadable files); 0 keeps all.
        labels: Keep only these labels (``[0]`` = real images only; the generated files are then never
            listed, decoded or checked).
        num_threads: Threads used by ``check``.

    Attributes:
        items: ``(path, label, generator)`` per sample.
        labels: ``int64`` array of labels.
        generators: Sorted generator names present.
        skipped: ``(path, reason)`` of unreadable files.
    """

    def __init__(
        self,
        root: str | Path,
        transform: Callable | None = None,
        generators: Iterable[str] | None = None,
        check: bool = True,
        max_per_class: int = 0,
        num_threads: int = 2,
        labels: Iterable[int] | None = None,
    ) -> None:
        self.root = Path(root)
        self.transform = transform
        if max_per_class < 0:
            raise ValueError(f"max_per_class must be >= 0 (0 = no cap), got {max_per_class}")
        items = scan_forensynths(self.root)
        available = sorted({g for _, _, g in items})
        if generators is not None:
            wanted = [generators] if isinstance(generators, str) else list(generators)
            unknown = sorted(set(wanted) - set(available))
            if unknown:
                raise ValueError(f"Unknown generator(s) {unknown} in {self.root}; available: {available}")
            items = [t for t in items if t[2] in set(wanted)]
        if labels is not None:
            keep = {int(lab) for lab in labels}
            if not keep <= set(LABEL_DIRS.values()):
                raise ValueError(f"labels must be a subset of {sorted(LABEL_DIRS.values())}, got {sorted(keep)}")
            items = [t for t in items if t[1] in keep]

        groups: dict[tuple[str, int], list[tuple[Path, int, str]]] = defaultdict(list)
        for t in items:
            groups[(t[2], t[1])].append(t)
        self.skipped: list[tuple[Path, str]] = []
        kept: list[tuple[Path, int, str]] = []
        total = sum(len(g) if not max_per_class else min(len(g), max_per_class) for g in groups.values())
        bar = tqdm(
            total=total, desc="checking images", unit="img", disable=not check or total < 200, leave=False
        )
        with ThreadPool(max(1, num_threads)) if check else _NoPool() as pool:
            for key in sorted(groups):
                kept.extend(self._select(groups[key], max_per_class, pool if check else None, bar))
        bar.close()
        self.items: list[tuple[Path, int, str]] = sorted(kept, key=lambda t: (t[2], t[1], str(t[0])))
        if not self.items:
            raise LayoutError(
                f"No readable images under {self.root} ({len(self.skipped)} unreadable).\n{EXPECTED_LAYOUT}"
            )
        self.labels = np.asarray([t[1] for t in self.items], dtype=np.int64)
        self.generators: list[str] = sorted({t[2] for t in self.items})
        for g in self.generators:
            present = {t[1] for t in self.items if t[2] == g}
            if len(present) < 2 and labels is None:
                only = "real (0_real)" if present == {0} else "generated (1_fake)"
                log.warning("Generator %r in %s has only %s images", g, self.root, only)
        if self.skipped:
            log.warning("Skipped %d unreadable image(s) under %s", len(self.skipped), self.root)

    def _select(self, group: list, cap: int, pool, bar) -> list:
        """The first ``cap`` readable items of one (generator, label) group (all if ``cap == 0``)."""
        if pool is None:
            return group[:cap] if cap else list(group)
        good: list = []
        start = 0
        while start < len(group) and (not cap or len(good) < cap):
            batch = group[start : start + (cap - len(good) if cap else len(group))]
            start += len(batch)
            for t, reason in zip(batch, pool.map(_check_file, [p for p, _, _ in batch])):
                bar.update(1)
                if reason is None:
                    good.append(t)
                else:
                    log.warning("Skipping unreadable image %s: %s", t[0], reason)
                    self.skipped.append((t[0], reason))
        return good

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        path, label, generator = self.items[index]
        img = load_image(path)
        image = self.transform(img) if self.transform is not None else to_tensor(img)
        return {
            "image": image,
            "label": torch.tensor(label, dtype=torch.long),
            "path": str(path),
            "generator": generator,
        }

    def indices_by_generator(self) -> dict[str, list[int]]:
        """Dataset indices of each generator."""
        out: dict[str, list[int]] = {g: [] for g in self.generators}
        for i, (_, _, g) in enumerate(self.items):
            out[g].append(i)
        return out

    def __repr__(self) -> str:
        n_fake = int(self.labels.sum())
        return (
            f"ForenSynthsDataset(root={str(self.root)!r}, n={len(self)}, real={len(self) - n_fake}, "
            f"fake={n_fake}, generators={self.generators}, skipped={len(self.skipped)})"
        )


class _NoPool:
    def __enter__(self):
        return None

    def __exit__(self, *exc) -> None:
        return None
