"""Image classification data: readers, fixed splits, imbalanced subsets and a torch Dataset.

What is implemented:

- Readers that return an :class:`ImageSet` (uint8 images, int64 labels, class names):
  :func:`read_idx` / :func:`load_idx_folder` (IDX files, gzip or raw; any folder named like MNIST's),
  :func:`fashion_mnist` (apt ``dataset-fashion-mnist``), :func:`opencv_digits` (``digits.png`` of
  apt ``opencv-doc``: 5,000 digits of 20x20 on a 50x100 grid, 5 grid rows per class),
  :func:`sklearn_digits` (1,797 8x8 UCI optdigits, 0..16 scaled to 0..255) and :func:`image_folder`
  (``root/<class>/*.png|jpg|...``, every image resized to ``size x size`` RGB).
- :func:`load_split`: named data sets (:data:`DATASETS`) cut into train/val/test by a *split seed* that
  is independent of any training seed, so the test set never moves::

      fashion-mnist   train file --stratified (1-val_fraction, val_fraction)--> train, val;  t10k -> test
      opencv-digits,
      sklearn-digits,
      tuxpaint-stamps,
      folder (flat)   all images --stratified 60/20/20--> train, val, test
      folder with     train/ [val/] test/ used as they are (val carved from train when absent);
      train/, test/   a folder of IDX files (train-*/t10k-*) is read the same way

- Imbalanced subsets: :func:`long_tailed_indices` (exponential profile of Cao et al., "Learning
  Imbalanced Datasets with Label-Distribution-Aware Margin Loss", NeurIPS 2019, arXiv 1906.07413, and
  Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019, arXiv 1901.05555)
  and :func:`dominant_indices` (the "dominant-k" pools of VaB-AL, Choi et al., CVPR 2021: class k
  whole, the others sub-sampled to 10%).
- :class:`ClassificationDataset`: items ``{"image": float (3, H, W) in [0, 1], "label": int64}``.

Deviations / choices:

- :func:`image_folder` resizes every image straight to ``size x size`` (aspect ratio not kept, no crop)
  so that nothing of the object is cut away; decoding goes through :func:`trustvis.data.io.load_image`
  (alpha dropped, 16-bit scaled by 1/257), unreadable files are skipped and listed in
  :attr:`ImageSet.skipped`.
- The long-tailed profile adds ``1e-9`` before the floor so that exact products (``600 * 10**-1``) are
  not lost to rounding, and keeps at least one sample per class.
- Decoded arrays are cached in-process (keyed by path, size and modification time) and returned
  read-only; :meth:`ImageSet.subset` and :func:`load_split` return fresh, writable copies.
"""

from __future__ import annotations

import functools
import gzip
import logging
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from trustvis.data.io import IMAGE_EXTENSIONS, ImageReadError, iter_image_files, load_image
from trustvis.data.sources import apt_root
from trustvis.data.transforms import to_tensor

log = logging.getLogger(__name__)

__all__ = [
    "ImageSet",
    "read_idx",
    "load_idx_folder",
    "FASHION_MNIST_CLASSES",
    "fashion_mnist",
    "opencv_digits",
    "sklearn_digits",
    "image_folder",
    "DATASETS",
    "SPLITS",
    "stratified_split",
    "load_split",
    "long_tailed_indices",
    "dominant_indices",
    "ClassificationDataset",
]

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: Data set names understood by :func:`load_split`.
DATASETS: tuple[str, ...] = ("fashion-mnist", "opencv-digits", "sklearn-digits", "tuxpaint-stamps", "folder")
#: Split names understood by :func:`load_split`.
SPLITS: tuple[str, ...] = ("train", "val", "test")

FASHION_MNIST_DIR = "usr/share/datasets/fashion-mnist"
OPENCV_DIGITS_PATH = "usr/share/doc/opencv-doc/examples/data/digits.png"
_FOLDER_LAYOUT = "root/<class>/<image>.png|jpg|... (one subfolder per class, at least 2 classes)"


# --------------------------------------------------------------------------------------------- ImageSet


@dataclass
class ImageSet:
    """A labelled set of images held in memory.

    Attributes:
        images: ``uint8`` array, ``(N, H, W)`` grayscale or ``(N, H, W, 3)`` RGB.
        labels: ``int64 (N,)`` class indices into ``classes``.
        classes: Class names; ``labels`` lie in ``0 .. len(classes) - 1``.
        name: Human-readable name (e.g. ``"fashion-mnist/train"``).
        skipped: Files that could not be read and were left out.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    name: str = ""
    skipped: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        imgs = self.images
        if not isinstance(imgs, np.ndarray) or imgs.dtype != np.uint8:
            raise ValueError(
                f"ImageSet.images must be a uint8 array, got {getattr(imgs, 'dtype', type(imgs))}"
            )
        if not (imgs.ndim == 3 or (imgs.ndim == 4 and imgs.shape[3] == 3)):
            raise ValueError(f"ImageSet.images must be (N, H, W) or (N, H, W, 3), got shape {imgs.shape}")
        labels = np.asarray(self.labels)
        if labels.ndim != 1 or len(labels) != len(imgs):
            raise ValueError(f"ImageSet.labels must be (N,) with N={len(imgs)}, got shape {labels.shape}")
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"ImageSet.labels must be integers, got dtype {labels.dtype}")
        self.labels = labels.astype(np.int64, copy=False)
        self.classes = [str(c) for c in self.classes]
        if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError(
                f"ImageSet labels must lie in 0..{len(self.classes) - 1} ({len(self.classes)} classes), "
                f"got {self.labels.min()}..{self.labels.max()}"
            )

    @property
    def num_classes(self) -> int:
        """Number of classes (``len(classes)``)."""
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageSet:
        """A new set with the given items, in the given order (arrays are copied)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1:
            raise ValueError(f"subset() expects 1-D indices, got shape {idx.shape}")
        return ImageSet(
            images=self.images[idx],
            labels=self.labels[idx],
            classes=list(self.classes),
            name=self.name,
            skipped=list(self.skipped),
        )

    def class_counts(self) -> np.ndarray:
        """``int64 (num_classes,)``: number of items per class."""
        return np.bincount(self.labels, minlength=self.num_classes).astype(np.int64)

    def __repr__(self) -> str:
        return (
            f"ImageSet(name={self.name!r}, n={len(self)}, shape={self.images.shape[1:]}, "
            f"classes={self.num_classes}, skipped={len(self.skipped)})"
        )


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


def _file_key(path: Path) -> tuple[str, int, int]:
    """Cache key of a file: resolved path, size, modification time (a changed file is re-read)."""
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


# -------------------------------------------------------------------------------------------------- IDX

_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST / Fashion-MNIST format), gzip-compressed or raw.

    Compression is detected from the gzip magic bytes, not the file name. The header (two zero bytes,
    a type code, the number of dimensions, then one big-endian ``uint32`` per dimension) is validated
    and the payload must have exactly the announced size.

    Args:
        path: IDX file.

    Returns:
        Array of the announced shape in native byte order, read-only (it is cached in-process).

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is truncated, has trailing bytes, a bad magic number, an unknown type code
            or is not valid gzip (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    return _read_idx_cached(*_file_key(path))


@functools.lru_cache(maxsize=16)
def _read_idx_cached(path: str, size: int, mtime_ns: int) -> np.ndarray:
    del size, mtime_ns  # cache key only
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"Corrupt or truncated gzip data in IDX file {path}: {e}") from e
    if len(raw) < 4:
        raise ValueError(f"IDX file {path} is truncated: {len(raw)} bytes, no complete 4-byte header")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"Not an IDX file: {path} (magic starts with {raw[:2].hex()}, expected 0000; "
            "is it another format?)"
        )
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        valid = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise ValueError(f"IDX file {path} has unknown type code 0x{code:02X}; valid codes: {valid}")
    if ndim == 0:
        raise ValueError(f"IDX file {path} declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"IDX file {path} is truncated inside its header ({len(raw)} < {header} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got < expected:
        raise ValueError(
            f"IDX file {path} is truncated: shape {dims} needs {expected} data bytes, found {got}"
        )
    if got > expected:
        raise ValueError(
            f"IDX file {path} is corrupt: {got - expected} unexpected trailing bytes after shape {dims}"
        )
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return _readonly(arr.astype(dtype.newbyteorder("="), copy=True))


_IDX_PREFIX = {"train": "train", "test": "t10k"}


def _find_idx(root: Path, prefix: str, kind: str) -> Path | None:
    """``<prefix>-<kind>-ubyte[.gz]`` (also the ``<prefix>-images.idx3-ubyte`` spelling) in ``root``."""
    stem, idx = kind.split("-")
    for name in (f"{prefix}-{kind}-ubyte", f"{prefix}-{stem}.{idx}-ubyte"):
        for ext in ("", ".gz"):
            p = root / f"{name}{ext}"
            if p.is_file():
                return p
    return None


def _has_idx(root: Path) -> bool:
    return _find_idx(root, "train", "images-idx3") is not None


def load_idx_folder(root: str | Path, split: str, classes: Sequence[str] | None = None) -> ImageSet:
    """Read one split of a folder of IDX files named like MNIST's.

    Expected files: ``train-images-idx3-ubyte[.gz]`` and ``train-labels-idx1-ubyte[.gz]`` for
    ``split="train"``, ``t10k-...`` for ``"test"`` (the ``train-images.idx3-ubyte`` spelling is
    accepted too).

    Args:
        root: Folder holding the IDX files.
        split: ``"train"`` or ``"test"``.
        classes: Class names; default ``"0" .. "K-1"`` with ``K = max(label) + 1``.

    Returns:
        ``ImageSet`` with ``(N, H, W)`` uint8 images (read-only arrays, cached).

    Raises:
        ValueError: Unknown split, missing files (the message lists what was found and expected),
            mismatched counts or invalid contents.
    """
    if split not in _IDX_PREFIX:
        raise ValueError(f"Unknown IDX split {split!r}; choose from {list(_IDX_PREFIX)}")
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"IDX folder not found: {root}")
    prefix = _IDX_PREFIX[split]
    img_path = _find_idx(root, prefix, "images-idx3")
    lab_path = _find_idx(root, prefix, "labels-idx1")
    if img_path is None or lab_path is None:
        found = sorted(p.name for p in root.iterdir() if "ubyte" in p.name or "idx" in p.name)
        raise ValueError(
            f"IDX files for split {split!r} not found in {root}: expected "
            f"{prefix}-images-idx3-ubyte[.gz] and {prefix}-labels-idx1-ubyte[.gz]; "
            f"found {found or 'no IDX files'}"
        )
    images = read_idx(img_path)
    labels = read_idx(lab_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{img_path}: expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{lab_path}: expected integer labels of shape (N,), got {labels.dtype} {labels.shape}"
        )
    if len(images) != len(labels):
        raise ValueError(f"{img_path} has {len(images)} images but {lab_path} has {len(labels)} labels")
    if labels.size and labels.min() < 0:
        raise ValueError(f"{lab_path}: negative label {labels.min()}")
    k = int(labels.max()) + 1 if labels.size else 0
    names = [str(i) for i in range(k)] if classes is None else list(classes)
    if len(names) < k:
        raise ValueError(f"{lab_path}: labels go up to {k - 1} but only {len(names)} class names were given")
    return ImageSet(images, labels.astype(np.int64), names, name=f"{root.name}/{split}")


def fashion_mnist(split: str, root: str | Path | None = None) -> ImageSet:
    """Fashion-MNIST (Xiao et al., 2017): 28x28 grayscale, 10 clothing classes.

    Args:
        split: ``"train"`` (60,000) or ``"test"`` (10,000; the ``t10k`` files).
        root: Folder with the IDX files; default the apt package ``dataset-fashion-mnist``
            (``/usr/share/datasets/fashion-mnist`` under :func:`~trustvis.data.sources.apt_root`).
    """
    folder = Path(root) if root else apt_root() / FASHION_MNIST_DIR
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Fashion-MNIST folder not found: {folder}. Install it with "
            "'sudo apt-get install dataset-fashion-mnist' (or set TRUSTVIS_APT_ROOT), or pass root= a "
            "folder of IDX files"
        )
    out = load_idx_folder(folder, split, classes=FASHION_MNIST_CLASSES)
    out.name = f"fashion-mnist/{split}"
    return out


# ---------------------------------------------------------------------------------------------- digits

_DIGIT_CELL, _DIGIT_ROWS, _DIGIT_COLS = 20, 50, 100


def opencv_digits(path: str | Path | None = None) -> ImageSet:
    """OpenCV's ``digits.png``: 5,000 handwritten digits of 20x20, 500 per class.

    The 2000x1000 image is a grid of 50 rows x 100 columns of cells; grid rows ``5c .. 5c+4`` hold
    class ``c``.

    Args:
        path: The PNG; default ``/usr/share/doc/opencv-doc/examples/data/digits.png`` (apt
            ``opencv-doc``) under :func:`~trustvis.data.sources.apt_root`.

    Raises:
        FileNotFoundError: No file (the message says which package installs it).
        ImageReadError: The file cannot be decoded.
        ValueError: The image is not 2000x1000.
    """
    p = Path(path) if path else apt_root() / OPENCV_DIGITS_PATH
    if not p.is_file():
        raise FileNotFoundError(
            f"OpenCV digits image not found: {p}. Install it with 'sudo apt-get install opencv-doc' "
            "(or set TRUSTVIS_APT_ROOT), or pass path="
        )
    images, labels = _opencv_digits_cached(*_file_key(p))
    return ImageSet(images, labels, [str(i) for i in range(10)], name="opencv-digits")


@functools.lru_cache(maxsize=2)
def _opencv_digits_cached(path: str, size: int, mtime_ns: int) -> tuple[np.ndarray, np.ndarray]:
    del size, mtime_ns
    rgb = load_image(path)  # (H, W, 3)
    gray = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.uint8)  # exact for gray inputs
    h, w = gray.shape
    want_h, want_w = _DIGIT_ROWS * _DIGIT_CELL, _DIGIT_COLS * _DIGIT_CELL
    if (h, w) != (want_h, want_w):
        raise ValueError(
            f"{path}: expected a {want_w}x{want_h} image ({_DIGIT_ROWS}x{_DIGIT_COLS} cells of "
            f"{_DIGIT_CELL}x{_DIGIT_CELL}), got {w}x{h}"
        )
    c = _DIGIT_CELL
    cells = (
        gray.reshape(_DIGIT_ROWS, c, _DIGIT_COLS, c).transpose(0, 2, 1, 3).reshape(-1, c, c)
    )  # (5000, 20, 20)
    labels = np.repeat(np.arange(10, dtype=np.int64), len(cells) // 10)  # 5 grid rows = 500 per class
    return _readonly(np.ascontiguousarray(cells)), _readonly(labels)


def sklearn_digits() -> ImageSet:
    """scikit-learn's ``load_digits()``: 1,797 8x8 digits; values 0..16 become ``round(v * 255 / 16)``."""
    images, labels = _sklearn_digits_cached()
    return ImageSet(images, labels, [str(i) for i in range(10)], name="sklearn-digits")


@functools.lru_cache(maxsize=1)
def _sklearn_digits_cached() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.clip(np.rint(np.asarray(d.images, dtype=np.float64) * (255.0 / 16.0)), 0, 255)  # (1797, 8, 8)
    return _readonly(images.astype(np.uint8)), _readonly(np.asarray(d.target, dtype=np.int64))


# ---------------------------------------------------------------------------------------------- folders


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def image_folder(root: str | Path, size: int = 32) -> ImageSet:
    """Read a class-per-folder tree ``root/<class>/**/<image>`` into ``(N, size, size, 3)`` RGB.

    Class names are the sorted names of the subfolders that hold images (found recursively inside each
    class folder; extensions in :data:`trustvis.data.io.IMAGE_EXTENSIONS`, case-insensitive). Files
    that cannot be decoded are logged and listed in ``skipped``.

    Args:
        root: The tree's root folder.
        size: Output side length in pixels (every image is resized to ``size x size``).

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: No class folders with images, fewer than 2 classes, or no readable image at all
            (the message names the path and the expected layout).
    """
    if int(size) < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Image folder not found: {root}; expected layout {_FOLDER_LAYOUT}")
    per_class = [(d.name, iter_image_files(d)) for d in _class_dirs(root)]
    per_class = [(n, files) for n, files in per_class if files]
    if not per_class:
        loose = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
        hint = (
            f"; found {len(loose)} images directly in {root}: move them into class subfolders"
            if loose
            else ""
        )
        raise ValueError(f"No class folders with images in {root}{hint}; expected layout {_FOLDER_LAYOUT}")
    if len(per_class) < 2:
        raise ValueError(
            f"Only one class folder with images in {root} ({per_class[0][0]!r}); a classifier needs at "
            f"least 2; expected layout {_FOLDER_LAYOUT}"
        )
    if {n for n, _ in per_class} <= set(SPLITS):
        log.warning(
            "Class folders of %s are named %s: for a train/test tree use load_split('folder', ..., root=%s)",
            root,
            [n for n, _ in per_class],
            root,
        )
    key = tuple((str(p), *_file_key(p)[1:]) for _, files in per_class for p in files)
    images, labels, skipped = _image_folder_cached(str(root), int(size), tuple(n for n, _ in per_class), key)
    if len(labels) == 0:
        raise ValueError(f"None of the {len(key)} image files under {root} could be read (see the warnings)")
    return ImageSet(images, labels, [n for n, _ in per_class], name=root.name, skipped=list(skipped))


@functools.lru_cache(maxsize=4)
def _image_folder_cached(
    root: str, size: int, classes: tuple[str, ...], files: tuple[tuple[str, int, int], ...]
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    index = {c: i for i, c in enumerate(classes)}
    out_imgs: list[np.ndarray] = []
    out_labels: list[int] = []
    skipped: list[str] = []
    for path, _, _ in files:
        cls = Path(path).relative_to(root).parts[0]
        try:
            rgb = load_image(path)  # (H, W, 3) uint8
        except ImageReadError as e:
            log.warning("Skipping unreadable image: %s", e)
            skipped.append(path)
            continue
        if rgb.shape[:2] != (size, size):
            rgb = np.asarray(
                Image.fromarray(rgb).resize((size, size), Image.Resampling.BICUBIC), dtype=np.uint8
            )
        out_imgs.append(rgb)
        out_labels.append(index[cls])
    images = np.stack(out_imgs) if out_imgs else np.zeros((0, size, size, 3), np.uint8)  # (N, S, S, 3)
    labels = np.asarray(out_labels, dtype=np.int64)
    for c, n in zip(classes, np.bincount(labels, minlength=len(classes))):
        if n == 0:
            log.warning("Class %r under %s has no readable image", c, root)
    return _readonly(images), _readonly(labels), tuple(skipped)


# ----------------------------------------------------------------------------------------------- splits


def stratified_split(
    labels: np.ndarray, fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0
) -> list[np.ndarray]:
    """Split indices into parts with the same class proportions.

    Per class, the items are shuffled by a generator seeded with ``(seed, class)`` (so one class's
    split does not depend on the others), part ``j >= 1`` takes ``round(n_c * fractions[j])`` items and
    part 0 the rest; a part with a positive fraction gets at least one item of every class that has
    enough items for all such parts.

    Args:
        labels: ``(N,)`` integer labels.
        fractions: Non-negative fractions summing to 1.
        seed: Split seed.

    Returns:
        One sorted ``int64`` index array per part; together they partition ``0 .. N-1``.
    """
    labels = np.asarray(labels)
    f = np.asarray(fractions, dtype=np.float64)
    if f.ndim != 1 or len(f) < 1 or (f < 0).any() or abs(f.sum() - 1.0) > 1e-6:
        raise ValueError(f"fractions must be non-negative and sum to 1, got {list(fractions)}")
    parts: list[list[np.ndarray]] = [[] for _ in f]
    positive = f > 0
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng = np.random.default_rng([int(seed), int(c)])
        idx = idx[rng.permutation(len(idx))]
        n = len(idx)
        counts = np.floor(n * f + 0.5).astype(np.int64)
        if n >= positive.sum():
            counts[1:] = np.where(positive[1:] & (counts[1:] == 0), 1, counts[1:])
        while counts[1:].sum() > n - (1 if positive[0] and n >= positive.sum() else 0):
            j = 1 + int(np.argmax(counts[1:]))  # shrink the largest secondary part
            counts[j] -= 1
        counts[0] = n - counts[1:].sum()
        start = 0
        for j, k in enumerate(counts):
            parts[j].append(idx[start : start + k])
            start += k
    return [np.sort(np.concatenate(p)).astype(np.int64) if p else np.zeros(0, np.int64) for p in parts]


def _copy(data: ImageSet) -> ImageSet:
    """Writable copy (the readers return cached read-only arrays)."""
    return data.subset(np.arange(len(data)))


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose from {list(SPLITS)}")


def _train_val(data: ImageSet, split: str, val_fraction: float, split_seed: int) -> ImageSet:
    tr, va = stratified_split(data.labels, (1.0 - val_fraction, val_fraction), seed=split_seed)
    return data.subset(tr if split == "train" else va)


def _three_way(data: ImageSet, split: str, split_seed: int) -> ImageSet:
    parts = dict(zip(SPLITS, stratified_split(data.labels, (0.6, 0.2, 0.2), seed=split_seed)))
    return data.subset(parts[split])


def _align_classes(data: ImageSet, classes: list[str], where: Path) -> ImageSet:
    """Re-index ``data`` to the class list of the training folder."""
    unknown = [c for c in data.classes if c not in classes]
    if unknown:
        raise ValueError(f"{where} has classes {unknown} that the train/ folder does not have ({classes})")
    remap = np.asarray([classes.index(c) for c in data.classes], dtype=np.int64)
    return ImageSet(data.images, remap[data.labels], list(classes), data.name, list(data.skipped))


def load_split(
    name: str,
    split: str,
    root: str | Path = "",
    split_seed: int = 0,
    val_fraction: float = 0.1,
    size: int = 32,
) -> ImageSet:
    """One split of a named data set; the split depends only on ``split_seed``, never a training seed.

    Args:
        name: One of :data:`DATASETS`.
        split: ``"train"``, ``"val"`` or ``"test"``.
        root: Data location: for ``"fashion-mnist"`` a folder of IDX files (default: the apt package),
            for ``"opencv-digits"`` the ``digits.png`` file (default: the apt package), for
            ``"tuxpaint-stamps"`` a stamps folder (default: the apt package ``tuxpaint-stamps-default``; its 10
            largest categories at 64x64, :mod:`trustvis.data.stamps`), unused for
            ``"sklearn-digits"``, required for ``"folder"`` (a class-per-folder tree, a tree with
            ``train/ [val/] test/`` subfolders, or a folder of ``train-*``/``t10k-*`` IDX files).
        split_seed: Seed of the train/val/test assignment (keep the default so that the test set is
            the same in every run).
        val_fraction: Share of the training data held out for validation when the data set has its own
            test set (Fashion-MNIST, IDX folders, ``train/``+``test/`` trees without ``val/``). Sets
            without any split use a fixed stratified 60/20/20 instead.
        size: Image side for ``"folder"`` (images are resized to ``size x size`` RGB).

    Returns:
        A fresh ``ImageSet`` (writable copies) named ``"<name>/<split>"``.
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown data set {name!r}; choose from {list(DATASETS)}")
    _check_split(split)
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    root_str = os.fspath(root) if root else ""
    if name == "fashion-mnist":
        if split == "test":
            out = _copy(fashion_mnist("test", root_str or None))
        else:
            out = _train_val(fashion_mnist("train", root_str or None), split, val_fraction, split_seed)
    elif name == "opencv-digits":
        out = _three_way(opencv_digits(root_str or None), split, split_seed)
    elif name == "sklearn-digits":
        out = _three_way(sklearn_digits(), split, split_seed)
    elif name == "tuxpaint-stamps":
        from trustvis.data.stamps import tuxpaint_stamps

        out = _three_way(tuxpaint_stamps(root_str or None), split, split_seed)  # 64x64 RGB, 10 categories
    else:
        out = _load_folder_split(root_str, split, split_seed, val_fraction, size)
    out.name = f"{name}/{split}"
    log.info("Loaded %s: %d items, class counts %s", out.name, len(out), out.class_counts().tolist())
    return out


def _load_folder_split(
    root_str: str, split: str, split_seed: int, val_fraction: float, size: int
) -> ImageSet:
    if not root_str:
        raise ValueError(f"Data set 'folder' needs root= a folder laid out as {_FOLDER_LAYOUT}")
    root = Path(root_str)
    if not root.is_dir():
        raise FileNotFoundError(f"Image folder not found: {root}; expected layout {_FOLDER_LAYOUT}")
    if _has_idx(root):
        if split == "test":
            return _copy(load_idx_folder(root, "test"))
        return _train_val(load_idx_folder(root, "train"), split, val_fraction, split_seed)
    subs = {s for s in SPLITS if (root / s).is_dir()}
    if not subs:
        return _three_way(image_folder(root, size), split, split_seed)
    if not {"train", "test"} <= subs:
        raise ValueError(
            f"{root} has split folder(s) {sorted(subs)} but needs both train/ and test/ (val/ optional): "
            f"root/{{train,[val,]test}}/<class>/<image>; or use a plain {_FOLDER_LAYOUT}"
        )
    train = image_folder(root / "train", size)
    if split == "train" and "val" not in subs:
        return _train_val(train, "train", val_fraction, split_seed)
    if split == "val" and "val" not in subs:
        return _train_val(train, "val", val_fraction, split_seed)
    data = image_folder(root / split, size) if split != "train" else train
    return _copy(_align_classes(data, train.classes, root / split))


# ---------------------------------------------------------------------------------- imbalanced subsets


def long_tailed_indices(
    labels: np.ndarray, ratio: float, seed: int = 0, num_classes: int | None = None
) -> np.ndarray:
    """Indices of an exponentially long-tailed subset (Cao et al. 2019; Cui et al. 2019).

    Class ``c`` keeps ``n_c = floor(n_max * ratio ** (-c / (C - 1)))`` items chosen at random (at least
    1, at most what it has), where ``n_max`` is the largest class count and ``C`` the number of classes,
    so that on balanced data ``n_0 / n_{C-1} = ratio``.

    Args:
        labels: ``(N,)`` integer labels.
        ratio: Imbalance ratio ``n_max / n_min >= 1``; 1 keeps everything.
        seed: Seed of the random choice within each class.
        num_classes: ``C``; default ``max(label) + 1``.

    Returns:
        Sorted ``int64`` indices into ``labels``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if not float(ratio) >= 1.0:
        raise ValueError(f"Imbalance ratio must be >= 1 (n_max / n_min), got {ratio}")
    if labels.size == 0:
        return np.zeros(0, np.int64)
    c_total = int(num_classes) if num_classes is not None else int(labels.max()) + 1
    counts = np.bincount(labels, minlength=c_total)
    n_max = int(counts.max())
    rng = np.random.default_rng(seed)
    keep: list[np.ndarray] = []
    for c in range(c_total):
        idx = np.flatnonzero(labels == c)
        if len(idx) == 0:
            continue
        expo = c / (c_total - 1) if c_total > 1 else 0.0
        n_c = max(1, min(len(idx), int(np.floor(n_max * float(ratio) ** (-expo) + 1e-9))))
        keep.append(idx if n_c == len(idx) else rng.choice(idx, size=n_c, replace=False))
    return np.sort(np.concatenate(keep)).astype(np.int64)


def dominant_indices(labels: np.ndarray, k: int, keep_fraction: float = 0.1, seed: int = 0) -> np.ndarray:
    """Indices of a "dominant-k" pool (VaB-AL): class ``k`` whole, every other class sub-sampled.

    Each other class keeps ``floor(n_c * keep_fraction)`` items (at least 1), chosen at random.

    Args:
        labels: ``(N,)`` integer labels.
        k: The dominant class.
        keep_fraction: Share kept of each other class, in ``(0, 1]``.
        seed: Seed of the random choice.

    Returns:
        Sorted ``int64`` indices into ``labels``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    classes = np.unique(labels)
    if int(k) not in set(classes.tolist()):
        raise ValueError(f"Dominant class k={k} does not occur in the labels; choose from {classes.tolist()}")
    if not 0.0 < float(keep_fraction) <= 1.0:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    rng = np.random.default_rng(seed)
    keep: list[np.ndarray] = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        if c == k:
            keep.append(idx)
            continue
        n = max(1, int(np.floor(len(idx) * float(keep_fraction) + 1e-9)))
        keep.append(rng.choice(idx, size=n, replace=False))
    return np.sort(np.concatenate(keep)).astype(np.int64)


# ---------------------------------------------------------------------------------------------- Dataset


class ClassificationDataset(torch.utils.data.Dataset):
    """Torch dataset over an :class:`ImageSet`.

    Items are ``{"image": float32 (3, H, W) in [0, 1], "label": int64 scalar}``. Grayscale images are
    replicated to 3 channels first; ``transform`` receives the ``uint8 (H, W, 3)`` array and must
    return the image tensor (e.g. ``compose(random_hflip, to_tensor)``); without one,
    :func:`trustvis.data.transforms.to_tensor` is applied. Picklable, for DataLoader workers.
    """

    def __init__(
        self, images: ImageSet, transform: Callable[[np.ndarray], torch.Tensor] | None = None
    ) -> None:
        if not isinstance(images, ImageSet):
            raise TypeError(f"ClassificationDataset expects an ImageSet, got {type(images).__name__}")
        self.data = images
        self.transform = transform

    def __len__(self) -> int:
        return len(self.data)

    @property
    def classes(self) -> list[str]:
        """Class names."""
        return self.data.classes

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return self.data.num_classes

    @property
    def labels(self) -> np.ndarray:
        """``int64 (N,)`` labels (for samplers and class counts)."""
        return self.data.labels

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        img = self.data.images[i]
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)  # (H, W) -> (H, W, 3)
        image = self.transform(img) if self.transform is not None else to_tensor(img)  # (3, H, W)
        return {"image": image, "label": torch.tensor(int(self.data.labels[i]), dtype=torch.int64)}
