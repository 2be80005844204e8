"""Reader for the two common folder layouts of real-vs-generated image sets: ForenSynths and GenImage.

ForenSynths / CNNDetection (Wang et al., "CNN-generated images are surprisingly easy to spot... for
now", CVPR 2020)::

    root/
      progan/                 <- generator
        airplane/             <- optional object class
          0_real/*.png        <- label 0: real
          1_fake/*.png        <- label 1: generated
        bird/...
      stylegan/
        0_real/  1_fake/      <- class level may be omitted

``root/{0_real,1_fake}`` directly is accepted too; the generator is then the root folder's name.

GenImage (Zhu et al., "GenImage: A Million-Scale Benchmark for Detecting AI-Generated Image",
NeurIPS 2023 Datasets and Benchmarks)::

    root/
      imagenet_ai_0419_sdv4/  <- generator
        train/                <- split (train | val); pick one with ``split=``
          ai/**/*.png         <- label 1: generated (class sub-folders allowed)
          nature/**/*.JPEG    <- label 0: real
        val/
          ai/  nature/
      imagenet_glide/...

Also accepted: the GenImage download itself, ``root/<family>/<generator>/<split>/{ai,nature}``
(``stable_diffusion_v_1_4/imagenet_ai_0419_sdv4/train/ai``); one generator,
``root/<split>/{ai,nature}``; a split folder, ``root/{ai,nature}``; and split-less trees,
``root/<generator>/{ai,nature}``. The generator is always the folder that holds the split folders (or
the ``{ai,nature}`` folders when there are no splits), so every entry point names a generator the same
way. When a root holds both splits, ``split=`` must say which one to read; a root with one split uses
it. One root holds one layout: ForenSynths and GenImage folders together, or GenImage generators with
and without split folders, are a :class:`LayoutError`.

Hidden files and folders and files without an image extension are ignored. Unreadable images are
skipped (with one warning each) instead of stopping a long evaluation.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.pool import ThreadPool
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from trustvis.data.io import IMAGE_EXTENSIONS, ImageReadError, iter_image_files, load_image
from trustvis.data.transforms import to_tensor

log = logging.getLogger(__name__)

__all__ = [
    "LABEL_DIRS",
    "GENIMAGE_LABEL_DIRS",
    "SPLITS",
    "LayoutError",
    "scan_forensynths",
    "genimage_splits",
    "ForenSynthsDataset",
]

#: ForenSynths folder name -> label.
LABEL_DIRS: dict[str, int] = {"0_real": 0, "1_fake": 1}
#: GenImage folder name -> label.
GENIMAGE_LABEL_DIRS: dict[str, int] = {"nature": 0, "ai": 1}
#: Folder names read as GenImage splits.
SPLITS: tuple[str, ...] = ("train", "val", "test")

_LAYOUT_DIRS = {"forensynths": LABEL_DIRS, "genimage": GENIMAGE_LABEL_DIRS}

EXPECTED_LAYOUT = """\
Expected one of two layouts.
1. ForenSynths/CNNDetection:
  root/<generator>/[<class>/]{0_real,1_fake}/<images>      (0_real = real, 1_fake = generated)
for example
  root/
    progan/
      airplane/0_real/000.png
      airplane/1_fake/000.png
    stylegan/
      0_real/000.png
      1_fake/000.png
or root/{0_real,1_fake}/<images> directly (the generator is then the root folder's name).
2. GenImage:
  root/<generator>/<split>/{ai,nature}/<images>            (nature = real, ai = generated; split = train|val)
for example
  root/
    imagenet_ai_0419_sdv4/
      train/ai/000.png
      train/nature/000.JPEG
      val/ai/001.png
      val/nature/001.JPEG
also root/<family>/<generator>/<split>/{ai,nature} (the GenImage download), root/<split>/{ai,nature}
(one generator), root/{ai,nature} (the generator is the root folder's name, or its parent's when the
root is a split folder) and root/<generator>/{ai,nature} (no splits).
Pass split='train' or split='val' when a GenImage root holds both splits."""


class LayoutError(ValueError):
    """A folder follows neither supported layout; the message shows the expected layouts."""


def _visible_dirs(folder: Path) -> list[Path]:
    """Sub-folders not starting with a dot (``os.scandir``: no stat call per file in big folders)."""
    with os.scandir(folder) as it:
        return sorted(Path(e.path) for e in it if not e.name.startswith(".") and e.is_dir())


def _describe_root(root: Path, limit: int = 8) -> str:
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    if not entries:
        return f"{root} is empty."
    shown = [p.name + ("/" if p.is_dir() else "") for p in entries[:limit]]
    more = f", ... ({len(entries) - limit} more)" if len(entries) > limit else ""
    return f"Found at {root}: {', '.join(shown)}{more}"


@dataclass(frozen=True)
class _Group:
    """One folder holding label folders: where it is, which layout, and what it means."""

    parts: tuple[str, ...]  # path of the folder relative to the root
    layout: str  # forensynths | genimage
    label_dirs: tuple[tuple[Path, int], ...]  # (label folder, label)
    generator: str = ""
    split: str | None = None


def _find_groups(root: Path, max_depth: int = 3) -> list[_Group]:
    """Every folder at depth <= ``max_depth`` that holds label folders (searching stops there)."""
    found: list[_Group] = []

    def visit(folder: Path, parts: tuple[str, ...]) -> None:
        hit = False
        for layout, names in _LAYOUT_DIRS.items():
            dirs = tuple((folder / d, lab) for d, lab in names.items() if (folder / d).is_dir())
            if dirs:
                found.append(_Group(parts, layout, dirs))
                hit = True
        if not hit and len(parts) < max_depth:
            for sub in _visible_dirs(folder):
                visit(sub, (*parts, sub.name))

    visit(root, ())
    return found


def _name_group(root: Path, g: _Group) -> _Group | None:
    """Fill in generator and split; None where the folder is at no valid position of its layout."""
    here = root.resolve()
    p = g.parts
    if g.layout == "forensynths":
        if len(p) > 2:
            return None
        return _Group(p, g.layout, g.label_dirs, p[0] if p else here.name, None)
    if not p:  # root/{ai,nature}: a split folder or a split-less generator folder
        if here.name in SPLITS:
            return _Group(p, g.layout, g.label_dirs, here.parent.name, here.name)
        return _Group(p, g.layout, g.label_dirs, here.name, None)
    if len(p) == 1:  # root/<split>/{ai,nature} (one generator) or root/<generator>/{ai,nature}
        if p[0] in SPLITS:
            return _Group(p, g.layout, g.label_dirs, here.name, p[0])
        return _Group(p, g.layout, g.label_dirs, p[0], None)
    if p[-1] in SPLITS:  # root/[<family>/]<generator>/<split>/{ai,nature}
        return _Group(p, g.layout, g.label_dirs, p[-2], p[-1])
    return None


def _shape(g: _Group) -> str:
    """How a GenImage group sits in the tree, for the mixed-layout check and its message."""
    depth = len(g.parts) - (g.split is not None and len(g.parts) > 0)
    gen = ["root/", "root/<generator>/", "root/<family>/<generator>/"][min(depth, 2)]
    return gen + ("<split>/" if g.split is not None else "") + "{ai,nature}"


def _where(root: Path, g: _Group) -> str:
    return "/".join(("root", *g.parts)) + "/" + "{" + ",".join(d.name for d, _ in g.label_dirs) + "}"


def _resolve_groups(root: Path, split: str | None) -> tuple[list[_Group], str, str | None]:
    """Valid label-folder groups of ``root`` for ``split``, with the layout name and the split used."""
    raw = _find_groups(root)
    groups = [n for g in raw if (n := _name_group(root, g)) is not None]
    if not groups:
        where = ""
        if raw:
            where = "Label folders at unsupported places: " + ", ".join(_where(root, g) for g in raw[:6])
            where += "\n"
        raise LayoutError(
            f"No 0_real/1_fake or ai/nature folders under {root} at a supported place.\n"
            f"{where}{EXPECTED_LAYOUT}\n{_describe_root(root)}"
        )
    layouts = {g.layout for g in groups}
    if len(layouts) > 1:
        fs = next(g for g in groups if g.layout == "forensynths")
        gi = next(g for g in groups if g.layout == "genimage")
        raise LayoutError(
            f"{root} mixes the ForenSynths layout ({_where(root, fs)}) and the GenImage layout "
            f"({_where(root, gi)}); point the root at one data set.\n{EXPECTED_LAYOUT}"
        )
    layout = layouts.pop()
    if layout == "genimage":
        shapes = sorted({_shape(g) for g in groups})
        if len(shapes) > 1:
            examples = "; ".join(
                f"{s}: {next(_where(root, g) for g in groups if _shape(g) == s)}" for s in shapes
            )
            raise LayoutError(
                f"{root} mixes GenImage trees of different shapes ({examples}); every generator needs "
                f"the same depth and either split folders or none.\n{EXPECTED_LAYOUT}"
            )
    found = sorted({g.split for g in groups if g.split is not None}, key=lambda s: (SPLITS.index(s), s))
    if not found:
        if split is not None:
            raise LayoutError(
                f"split={split!r} was given, but {root} has no <split> folders (the {layout} layout "
                f"without splits was found); split= selects root/<generator>/<split>/{{ai,nature}} of the "
                f"GenImage layout. Leave split=None, or point the root at the split folder.\n{EXPECTED_LAYOUT}"
            )
        return groups, layout, None
    if split is None:
        if len(found) > 1:
            raise LayoutError(
                f"{root} holds the GenImage splits {found}; pass split= to choose one "
                f"(e.g. split={found[0]!r}).\n{EXPECTED_LAYOUT}"
            )
        split = found[0]
    elif split not in found:
        raise LayoutError(
            f"No split {split!r} under {root}; the splits found are {found}.\n{EXPECTED_LAYOUT}"
        )
    missing = sorted({g.generator for g in groups} - {g.generator for g in groups if g.split == split})
    if missing:
        log.warning("Generator(s) %s in %s have no %r split; they are left out", missing, root, split)
    return [g for g in groups if g.split == split], layout, split


def _scan(
    root: str | Path, split: str | None, labels: set[int] | None = None
) -> tuple[list[tuple[Path, int, str]], str, str | None]:
    """(items, layout, split used); label folders not in ``labels`` are never listed."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Dataset root {root} is not an existing folder.\n{EXPECTED_LAYOUT}")
    groups, layout, used = _resolve_groups(root, split)
    dirs = [(folder, label, g.generator) for g in groups for folder, label in g.label_dirs]
    if labels is not None:
        dirs = [d for d in dirs if d[1] in labels]
    items = sorted(
        {(p, label, gen) for folder, label, gen in dirs for p in iter_image_files(folder)},
        key=lambda t: (t[2], t[1], str(t[0])),
    )
    if not items:
        folders = ", ".join(str(f.relative_to(root)) for f, _, _ in dirs[:6]) or "none"
        which = "" if labels is None else f" with labels {sorted(labels)}"
        raise LayoutError(
            f"Found label folders{which} under {root} ({folders}) but no image files in them "
            f"(extensions: {', '.join(sorted(e[1:] for e in IMAGE_EXTENSIONS))}).\n{EXPECTED_LAYOUT}"
        )
    return items, layout, used


def scan_forensynths(root: str | Path, split: str | None = None) -> list[tuple[Path, int, str]]:
    """List the images of a ForenSynths- or GenImage-layout folder.

    Args:
        root: Dataset root (see the module docstring for both layouts).
        split: GenImage split to read (``"train"`` or ``"val"``). Needed when the root holds both; a
            root with one split uses it. Must stay None for roots without split folders.

    Returns:
        Sorted ``(path, label, generator)`` tuples; label 0 is real, 1 is generated.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        LayoutError: No label folder with images was found; the layouts are mixed; or ``split`` is
            missing (both splits present), unknown, or given for a root without splits.
    """
    return _scan(root, split)[0]


def genimage_splits(root: str | Path) -> list[str]:
    """The GenImage splits under ``root`` (e.g. ``["train", "val"]``); ``[]`` for any other folder.

    Never raises: a missing or malformed root gives ``[]`` (reading it then reports the problem).
    """
    try:
        groups = [n for g in _find_groups(Path(root)) if (n := _name_group(Path(root), g)) is not None]
    except OSError:
        return []
    if not groups or any(g.layout != "genimage" for g in groups):
        return []
    return sorted({g.split for g in groups if g.split is not None}, key=lambda s: (SPLITS.index(s), s))


def _check_file(path: Path) -> str | None:
    try:
        load_image(path)
    except ImageReadError as e:
        return e.reason
    return None


class ForenSynthsDataset(Dataset):
    """Real-vs-generated images in the ForenSynths or GenImage layout, as a PyTorch dataset.

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
        split: GenImage split to read (``"train"`` or ``"val"``); needed when the root holds both
            (see :func:`scan_forensynths`).

    Attributes:
        items: ``(path, label, generator)`` per sample.
        labels: ``int64`` array of labels.
        generators: Sorted generator names present.
        skipped: ``(path, reason)`` of unreadable files.
        layout: ``"forensynths"`` or ``"genimage"``.
        split: The GenImage split read (None for roots without splits).
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
        split: str | None = None,
    ) -> None:
        self.root = Path(root)
        self.transform = transform
        if max_per_class < 0:
            raise ValueError(f"max_per_class must be >= 0 (0 = no cap), got {max_per_class}")
        keep = None if labels is None else {int(lab) for lab in labels}
        if keep is not None and not keep <= set(LABEL_DIRS.values()):
            raise ValueError(f"labels must be a subset of {sorted(LABEL_DIRS.values())}, got {sorted(keep)}")
        items, self.layout, self.split = _scan(self.root, split, keep)
        available = sorted({g for _, _, g in items})
        if generators is not None:
            wanted = [generators] if isinstance(generators, str) else list(generators)
            unknown = sorted(set(wanted) - set(available))
            if unknown:
                raise ValueError(f"Unknown generator(s) {unknown} in {self.root}; available: {available}")
            items = [t for t in items if t[2] in set(wanted)]

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
                only = "real (0_real/nature)" if present == {0} else "generated (1_fake/ai)"
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
            f"fake={n_fake}, generators={self.generators}, layout={self.layout!r}, split={self.split!r}, "
            f"skipped={len(self.skipped)})"
        )


class _NoPool:
    def __enter__(self):
        return None

    def __exit__(self, *exc) -> None:
        return None
