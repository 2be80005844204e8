"""ELPV: real electroluminescence images of solar cells with expert defect grades (no pixel masks).

**ELPV** (Buerhop-Lutz et al., "A Benchmark for Visual Identification of Defective Solar Cells in
Electroluminescence Imagery", EU PVSEC 2018; Deitsch et al., "Automatic classification of defective
photovoltaic module cells in electroluminescence images", Solar Energy 2019, arXiv 1807.02894). Found with
``importlib`` (package ``elpv_dataset``, files ``data/images/cellNNNN.png`` and ``data/labels.csv``):
2,624 cells, 300x300 gray, expert defect probability p in {0, 1/3, 2/3, 1}.
**Licence: the images are CC BY-NC-SA 4.0 -- non-commercial use only** (the package code is Apache-2.0).
One cell type at a time (mono- and polycrystalline cells look very different). The experts' four
grades are 0 (functional, sure), 1/3 (functional, unsure), 2/3 (defective, unsure), 1 (defective, sure).
Choice: ``p == 0`` is normal, ``p >= defect_min`` (default 0.5: grades 2/3 and 1) is anomalous, and the
unsure-functional grade 1/3 is left out by default -- it is neither clean training data nor a confirmed
defect (``defect_min=0.3`` counts it as defective, ``defect_min=1`` keeps only sure defects). The normal
cells of each type are split 60/10/30 (train/val/test) by
:func:`~trustvis.data.classification.stratified_split` seeded with ``seed``; every defective cell goes to
test. Counts at the defaults::

    elpv-mono  train 353 normal | val 59 normal | test 176 normal + 369 defective (56 p=2/3, 313 p=1)
    elpv-poly  train 552 normal | val 92 normal | test 276 normal + 452 defective (50 p=2/3, 402 p=1)

Grayscale cells are resized (bicubic) and replicated to 3 channels.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from trustvis.data.anomaly.base import AnomalySet, _check_fractions, _check_size, _check_split, _normal_parts
from trustvis.data.io import ImageReadError, load_image

log = logging.getLogger(__name__)

__all__ = ["ELPV_LICENCE", "elpv_root", "elpv"]

ELPV_LICENCE = "CC BY-NC-SA 4.0 (images; non-commercial use only), Apache-2.0 (code)"


def elpv_root() -> Path:
    """Folder holding ``labels.csv`` and ``images/`` of the installed ``elpv-dataset`` package.

    Raises:
        FileNotFoundError: The package is not installed (the message says how to install it).
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec("elpv_dataset")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The elpv-dataset package is not installed: pip install elpv-dataset "
            f"(data licence {ELPV_LICENCE})"
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not (root / "labels.csv").is_file():
        raise FileNotFoundError(f"elpv-dataset is installed but {root / 'labels.csv'} is missing")
    return root


def _read_elpv_labels(csv: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``labels.csv`` (whitespace separated: path, probability, type) -> paths, probabilities, types."""
    paths: list[str] = []
    probs: list[float] = []
    types: list[str] = []
    for k, line in enumerate(csv.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or parts[2] not in ("mono", "poly"):
            raise ValueError(f"{csv}:{k}: expected 'path probability mono|poly', got {line!r}")
        paths.append(parts[0])
        probs.append(float(parts[1]))
        types.append(parts[2])
    return paths, np.asarray(probs, np.float64), np.asarray(types)


@functools.lru_cache(maxsize=4)
def _elpv_cells(
    root: str, cell_type: str, size: int, csv_mtime: int
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """All cells of one type: gray ``(N, S, S)`` (read-only, cached), probabilities, names, skipped."""
    del csv_mtime  # cache key only
    paths, probs, types = _read_elpv_labels(Path(root) / "labels.csv")
    imgs: list[np.ndarray] = []
    keep: list[int] = []
    skipped: list[str] = []
    for i in np.flatnonzero(types == cell_type):
        path = Path(root) / paths[i]
        try:
            gray = load_image(path)[:, :, 0]  # (300, 300); the cells are 8-bit grayscale
        except ImageReadError as e:
            log.warning("Skipping unreadable ELPV cell: %s", e)
            skipped.append(str(path))
            continue
        if gray.shape != (size, size):
            gray = np.asarray(Image.fromarray(gray).resize((size, size), Image.Resampling.BICUBIC), np.uint8)
        imgs.append(gray)
        keep.append(int(i))
    images = np.stack(imgs) if imgs else np.zeros((0, size, size), np.uint8)  # (N, S, S)
    images.setflags(write=False)
    p = probs[keep]
    p.setflags(write=False)
    names = tuple(Path(paths[i]).stem for i in keep)
    return images, p, names, tuple(skipped)


def _grade(p: float) -> str:
    return "good" if p == 0 else f"p={Fraction(p).limit_denominator(3)}"


def elpv(
    cell_type: str,
    split: str,
    size: int = 128,
    seed: int = 0,
    defect_min: float = 0.5,
    fractions: Sequence[float] = (0.6, 0.1, 0.3),
) -> AnomalySet:
    """One split of the ELPV solar-cell set for one cell type (no pixel masks).

    Licence of the images: CC BY-NC-SA 4.0, non-commercial use only.

    Args:
        cell_type: ``"mono"`` or ``"poly"``.
        split: ``"train"`` and ``"val"`` (defect-free cells only) or ``"test"`` (held-out defect-free
            cells and every defective cell).
        size: Image side (bicubic resize from 300; gray replicated to 3 channels).
        seed: Split seed of the defect-free cells (keep it fixed; it is not a training seed).
        defect_min: Cells with ``p >= defect_min`` are defective; cells with ``0 < p < defect_min`` are
            left out as uncertain. 0.5 (default) keeps grades 2/3 and 1 and drops 1/3.
        fractions: Train/val/test shares of the defect-free cells.

    Returns:
        ``AnomalySet`` named ``"elpv-<type>/<split>"``; ``kinds`` is ``"good"``, ``"p=2/3"`` or ``"p=1"``
        (or ``"p=1/3"``), ``names`` the file stems (``cell0001`` ...), ``groups`` the cell type.
    """
    if cell_type not in ("mono", "poly"):
        raise ValueError(f"Unknown ELPV cell type {cell_type!r}; choose from ['mono', 'poly']")
    _check_split(split)
    size = _check_size(size)
    if not 0.0 < float(defect_min) <= 1.0:
        raise ValueError(f"defect_min must be in (0, 1], got {defect_min}")
    fr = _check_fractions(fractions, "ELPV fractions")
    root = elpv_root()
    csv = root / "labels.csv"
    gray, probs, names, skipped = _elpv_cells(str(root), cell_type, size, csv.stat().st_mtime_ns)
    normal = np.flatnonzero(probs == 0)
    defective = np.flatnonzero(probs >= float(defect_min) - 1e-9)
    parts = _normal_parts(len(normal), fr, seed)
    idx = normal[parts[split]]
    if split == "test":
        idx = np.concatenate([idx, defective])
    images = np.repeat(gray[idx][..., None], 3, axis=3)  # (N, S, S) -> (N, S, S, 3)
    labels = (probs[idx] > 0).astype(np.int64)
    out = AnomalySet(
        images=images,
        labels=labels,
        masks=None,
        names=[names[i] for i in idx],
        groups=np.full(len(idx), cell_type),
        kinds=np.asarray([_grade(float(p)) for p in probs[idx]]),
        name=f"elpv-{cell_type}/{split}",
        skipped=list(skipped),
    )
    log.info("Loaded %s: %s", out.name, out.counts())
    return out
