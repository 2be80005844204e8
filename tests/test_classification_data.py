"""Tests for trustvis.data.classification: IDX / digits / folder readers, splits, imbalanced subsets."""

from __future__ import annotations

import gzip
import logging
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from trustvis.data import classification as C
from trustvis.data.classification import (
    DATASETS,
    FASHION_MNIST_CLASSES,
    ClassificationDataset,
    ImageSet,
    dominant_indices,
    image_folder,
    load_idx_folder,
    load_split,
    long_tailed_indices,
    opencv_digits,
    read_idx,
    sklearn_digits,
    stratified_split,
)
from trustvis.data.sources import apt_root

IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}


def idx_bytes(arr: np.ndarray) -> bytes:
    """Encode an array as IDX by hand (header: 0, 0, type code, ndim, big-endian dims)."""
    arr = np.asarray(arr)
    be = arr.astype(arr.dtype.newbyteorder(">")) if arr.dtype.itemsize > 1 else arr
    head = bytes([0, 0, IDX_CODES[be.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + be.tobytes()


def write_idx(path, arr: np.ndarray, gz: bool = True):
    data = idx_bytes(arr)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def make_idx_folder(root, n_train=40, n_test=20, k=4, gz=True, seed=0):
    """train-/t10k- IDX pairs; image i of class c is filled with value 10*c (plus noise in a corner)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n, dtype=np.uint8) % k
        imgs = np.repeat((labels * 10)[:, None, None], 6, 1).repeat(5, 2).astype(np.uint8)
        imgs[:, 0, 0] = rng.integers(0, 256, n)
        ext = ".gz" if gz else ""
        write_idx(root / f"{prefix}-images-idx3-ubyte{ext}", imgs, gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{ext}", labels, gz)
        out[prefix] = (imgs, labels)
    return out


# ------------------------------------------------------------------------------------------------ IDX


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (5, 4, 3)).astype(np.uint8)
    b = rng.integers(-(2**31), 2**31 - 1, (3, 2), dtype=np.int64).astype(np.int32)
    f = rng.normal(size=(7,)).astype(np.float32)
    s = rng.integers(-128, 128, (2, 2, 2, 2)).astype(np.int8)
    for name, arr in (("a", a), ("b", b), ("f", f), ("s", s)):
        out = read_idx(write_idx(tmp_path / f"{name}.idx", arr, gz))
        assert out.shape == arr.shape and out.dtype.kind == arr.dtype.kind and out.dtype.isnative
        np.testing.assert_array_equal(out, arr)
    # the gzip magic decides, not the name; a rewritten file is re-read, not served from the cache
    p = write_idx(tmp_path / "plain-name", a, gz=True)
    np.testing.assert_array_equal(read_idx(p), a)
    write_idx(p, a[:2], gz=False)
    np.testing.assert_array_equal(read_idx(p), a[:2])


def test_idx_corrupt_files(tmp_path):
    arr = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    raw = idx_bytes(arr)
    cases = {
        "trunc_payload": (raw[:-7], "truncated"),
        "trunc_header": (raw[:6], "truncated"),
        "tiny": (b"\x00\x00", "truncated"),
        "trailing": (raw + b"xx", "trailing"),
        "magic": (b"\x01" + raw[1:], "magic"),
        "code": (raw[:2] + b"\x07" + raw[3:], "type code"),
        "trunc_gzip": (gzip.compress(raw)[:-12], "gzip"),
        "bad_gzip": (gzip.compress(raw)[:10] + b"\xff" * 30, "gzip"),
        "trunc_in_gzip": (gzip.compress(raw[:-1]), "truncated"),
    }
    for name, (data, msg) in cases.items():
        p = tmp_path / f"{name}-ubyte"
        p.write_bytes(data)
        with pytest.raises(ValueError, match=msg) as e:
            read_idx(p)
        assert p.name in str(e.value), name
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing")


def test_idx_folder(tmp_path):
    ref = make_idx_folder(tmp_path / "gz", gz=True)
    make_idx_folder(tmp_path / "raw", gz=False)
    for sub in ("gz", "raw"):
        tr = load_idx_folder(tmp_path / sub, "train")
        te = load_idx_folder(tmp_path / sub, "test")
        np.testing.assert_array_equal(tr.images, ref["train"][0])
        np.testing.assert_array_equal(te.labels, ref["t10k"][1].astype(np.int64))
        assert tr.labels.dtype == np.int64 and tr.classes == ["0", "1", "2", "3"] and len(te) == 20
        np.testing.assert_array_equal(tr.class_counts(), [10, 10, 10, 10])
    named = load_idx_folder(tmp_path / "gz", "train", classes=list("abcd"))
    assert named.classes == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="class names"):
        load_idx_folder(tmp_path / "gz", "train", classes=["a"])
    with pytest.raises(ValueError, match="choose from"):
        load_idx_folder(tmp_path / "gz", "val")
    # missing test files: the error lists what is there and what was expected
    (tmp_path / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\[\.gz\].*t10k-images-idx3-ubyte"):
        load_idx_folder(tmp_path / "raw", "test")
    # mismatched counts
    write_idx(tmp_path / "gz" / "train-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="40 images but"):
        load_idx_folder(tmp_path / "gz", "train")


def test_fashion_mnist_from_apt_root(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUSTVIS_APT_ROOT", str(tmp_path))
    ref = make_idx_folder(tmp_path / C.FASHION_MNIST_DIR, n_train=100, n_test=30, k=10)
    d = C.fashion_mnist("train")
    assert d.classes == list(FASHION_MNIST_CLASSES) and d.name == "fashion-mnist/train" and len(d) == 100
    train, val, test = (load_split("fashion-mnist", s, val_fraction=0.2) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (80, 20, 30)
    np.testing.assert_array_equal(val.class_counts(), np.full(10, 2))
    np.testing.assert_array_equal(test.images, ref["t10k"][0])  # test = the t10k file, untouched
    # train and val are disjoint and cover the train file (images carry a unique noise pixel + label)
    keys = lambda s: {(int(a), int(b)) for a, b in zip(s.images[:, 0, 0], s.labels)}  # noqa: E731
    assert not keys(train) & keys(val)
    assert test.images.flags.writeable  # load_split returns copies of the cached arrays
    monkeypatch.setenv("TRUSTVIS_APT_ROOT", str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        C.fashion_mnist("test")


# --------------------------------------------------------------------------------------------- digits


def _synthetic_digits_png(path):
    """2000x1000 grid of 20x20 cells: cell (r, c) is filled with r // 5 * 20 + 30; [0, 0] = r, [0, 1] = c."""
    img = np.zeros((1000, 2000), np.uint8)
    for r in range(50):
        for c in range(100):
            cell = img[r * 20 : (r + 1) * 20, c * 20 : (c + 1) * 20]
            cell[:] = r // 5 * 20 + 30
            cell[0, 0], cell[0, 1] = r, c
    Image.fromarray(img).save(path)
    return path


def test_opencv_digits_grid(tmp_path, monkeypatch):
    d = opencv_digits(_synthetic_digits_png(tmp_path / "digits.png"))
    assert d.images.shape == (5000, 20, 20) and d.images.dtype == np.uint8 and d.classes == list("0123456789")
    np.testing.assert_array_equal(d.labels, np.repeat(np.arange(10), 500))
    np.testing.assert_array_equal(d.images[:, 5, 5], d.labels * 20 + 30)  # every cell lands in its class
    i = np.arange(5000)
    np.testing.assert_array_equal(d.images[:, 0, 0], i // 100)  # grid row
    np.testing.assert_array_equal(d.images[:, 0, 1], i % 100)  # grid column
    # default path under the apt root
    monkeypatch.setenv("TRUSTVIS_APT_ROOT", str(tmp_path / "apt"))
    with pytest.raises(FileNotFoundError, match="opencv-doc"):
        opencv_digits()
    target = tmp_path / "apt" / C.OPENCV_DIGITS_PATH
    target.parent.mkdir(parents=True)
    target.write_bytes((tmp_path / "digits.png").read_bytes())
    np.testing.assert_array_equal(opencv_digits().images, d.images)
    Image.new("L", (200, 100)).save(tmp_path / "small.png")
    with pytest.raises(ValueError, match="2000x1000"):
        opencv_digits(tmp_path / "small.png")


def test_sklearn_digits():
    from sklearn.datasets import load_digits

    d = sklearn_digits()
    ref = load_digits()
    assert d.images.shape == (1797, 8, 8) and d.images.dtype == np.uint8 and d.labels.dtype == np.int64
    assert d.images.min() == 0 and d.images.max() == 255 and d.num_classes == 10
    np.testing.assert_array_equal(d.images, np.rint(ref.images * 255 / 16).astype(np.uint8))
    np.testing.assert_array_equal(d.labels, ref.target)
    assert set(np.unique(d.images[ref.images == 16])) == {255} and set(
        np.unique(d.images[ref.images == 8])
    ) == {128}


# --------------------------------------------------------------------------------------------- folders


def _value(cls: str) -> int:
    """Pixel value that encodes a class name (independent of the folder's class order)."""
    return sum(map(ord, cls)) % 200 + 20


def _folder(root, classes=("cat", "dog"), n=3, size=(10, 12), seed=0):
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            arr = np.full((*size, 3), _value(c), np.uint8)
            arr[0, 0] = rng.integers(0, 256, 3)
            Image.fromarray(arr).save(root / c / f"{i}.png")
    return root


def test_image_folder_modes_and_skips(tmp_path, caplog):
    root = tmp_path / "tree"
    (root / "cat").mkdir(parents=True)
    (root / "dog" / "nested").mkdir(parents=True)
    Image.fromarray(np.full((10, 12, 3), (1, 2, 3), np.uint8)).save(root / "cat" / "a.png")
    Image.fromarray(np.full((7, 9, 4), (200, 10, 30, 0), np.uint8)).save(root / "cat" / "b.png")  # RGBA
    (root / "cat" / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # corrupt
    (root / "cat" / "notes.txt").write_text("ignored")
    Image.fromarray(np.full((16, 16), 32896, np.uint16)).save(root / "dog" / "d.png")  # 16-bit gray
    Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(root / "dog" / "nested" / "e.JPG")
    with caplog.at_level(logging.WARNING):
        d = image_folder(root, size=8)
    assert d.classes == ["cat", "dog"] and d.images.shape == (4, 8, 8, 3) and d.images.dtype == np.uint8
    np.testing.assert_array_equal(d.labels, [0, 0, 1, 1])
    assert d.skipped == [str(root / "cat" / "c.png")] and "c.png" in caplog.text
    assert (d.images[0] == [1, 2, 3]).all()
    assert (d.images[1] == [200, 10, 30]).all()  # alpha dropped, colours kept
    assert (d.images[2] == 128).all()  # 32896 / 257 = 128
    assert np.abs(d.images[3].astype(int) - 90).max() <= 2  # JPEG found case-insensitively, in a subfolder
    # cached: a second call is equal and does not share mutable state
    d2 = image_folder(root, size=8)
    np.testing.assert_array_equal(d2.images, d.images)
    d2.skipped.append("x")
    assert image_folder(root, size=8).skipped == d.skipped


def test_image_folder_wrong_layouts(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected layout"):
        image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty.*expected layout root/<class>"):
        image_folder(tmp_path / "empty")
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        Image.new("RGB", (5, 5)).save(flat / f"{i}.png")
    with pytest.raises(ValueError, match="3 images directly in"):
        image_folder(flat)
    one = _folder(tmp_path / "one", classes=("only",))
    with pytest.raises(ValueError, match="at least 2"):
        image_folder(one)
    bad = tmp_path / "bad"
    for c in ("a", "b"):
        (bad / c).mkdir(parents=True)
        (bad / c / "x.png").write_bytes(b"junk")
    with pytest.raises(ValueError, match="could be read"):
        image_folder(bad)


# ---------------------------------------------------------------------------------------------- splits


def test_stratified_split_exact_counts():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    parts = stratified_split(labels, (0.6, 0.2, 0.2), seed=0)
    counts = [np.bincount(labels[p], minlength=3).tolist() for p in parts]
    assert counts == [[30, 18, 12], [10, 6, 4], [10, 6, 4]]
    allidx = np.concatenate(parts)
    assert sorted(allidx.tolist()) == list(range(100))  # disjoint and complete
    assert all((np.diff(p) > 0).all() for p in parts)
    again = stratified_split(labels, (0.6, 0.2, 0.2), seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    other = stratified_split(labels, (0.6, 0.2, 0.2), seed=1)
    assert not np.array_equal(parts[2], other[2])
    # tiny classes still reach every part with a positive fraction
    tiny = stratified_split(np.array([0, 0, 0, 1, 1, 1, 1]), (0.6, 0.2, 0.2))
    assert [np.bincount(np.array([0, 0, 0, 1, 1, 1, 1])[p], minlength=2).tolist() for p in tiny] == [
        [1, 2],
        [1, 1],
        [1, 1],
    ]
    with pytest.raises(ValueError, match="sum to 1"):
        stratified_split(labels, (0.5, 0.2))


def test_load_split_digits_deterministic():
    parts = {s: load_split("sklearn-digits", s) for s in ("train", "val", "test")}
    assert sum(len(p) for p in parts.values()) == 1797
    assert parts["test"].name == "sklearn-digits/test"
    assert abs(len(parts["train"]) - 0.6 * 1797) <= 10 and abs(len(parts["test"]) - 0.2 * 1797) <= 10
    full = sklearn_digits().class_counts()
    assert (np.abs(parts["test"].class_counts() - 0.2 * full) <= 1).all()  # stratified
    full_set = sklearn_digits()
    for name, idx in zip(("train", "val", "test"), stratified_split(full_set.labels, (0.6, 0.2, 0.2))):
        np.testing.assert_array_equal(parts[name].images, full_set.images[idx])  # disjoint index sets
    again = load_split("sklearn-digits", "test")
    np.testing.assert_array_equal(again.images, parts["test"].images)
    moved = load_split("sklearn-digits", "test", split_seed=1)
    assert not np.array_equal(moved.labels, parts["test"].labels) or not np.array_equal(
        moved.images, parts["test"].images
    )
    with pytest.raises(ValueError, match="fashion-mnist"):
        load_split("cifar10", "train")
    with pytest.raises(ValueError, match="'val'"):
        load_split("sklearn-digits", "holdout")
    assert DATASETS == ("fashion-mnist", "opencv-digits", "sklearn-digits", "tuxpaint-stamps", "folder")


def test_load_split_opencv_digits(tmp_path):
    png = _synthetic_digits_png(tmp_path / "digits.png")
    parts = [load_split("opencv-digits", s, root=png) for s in ("train", "val", "test")]
    assert [len(p) for p in parts] == [3000, 1000, 1000]
    assert all((p.class_counts() == len(p) // 10).all() for p in parts)
    cells = [{(int(a), int(b)) for a, b in zip(p.images[:, 0, 0], p.images[:, 0, 1])} for p in parts]
    assert not (cells[0] & cells[1]) and not (cells[0] & cells[2]) and not (cells[1] & cells[2])
    assert len(cells[0] | cells[1] | cells[2]) == 5000


def test_load_split_folders(tmp_path):
    # flat class tree: 60/20/20
    flat = _folder(tmp_path / "flat", classes=("a", "b", "c"), n=10)
    sizes = [len(load_split("folder", s, root=flat, size=6)) for s in ("train", "val", "test")]
    assert sizes == [18, 6, 6]
    assert load_split("folder", "val", root=flat, size=6).images.shape[1:] == (6, 6, 3)
    # train/ + test/: test used as is (with class indices of train/), val carved from train
    tree = tmp_path / "tree"
    _folder(tree / "train", classes=("a", "b", "c"), n=10)
    _folder(tree / "test", classes=("b", "c"), n=2, seed=1)
    tr = load_split("folder", "train", root=tree, size=6, val_fraction=0.2)
    va = load_split("folder", "val", root=tree, size=6, val_fraction=0.2)
    te = load_split("folder", "test", root=tree, size=6)
    assert (len(tr), len(va), len(te)) == (24, 6, 4) and te.classes == ["a", "b", "c"]
    np.testing.assert_array_equal(te.labels, [1, 1, 2, 2])
    for sub in (tr, te):  # class b of test/ is class b of train/ (corner far from the noise pixel)
        assert (sub.images[sub.labels == 1][:, 3:, 3:] == _value("b")).all()
    # an explicit val/ folder is used
    _folder(tree / "val", classes=("a", "b", "c"), n=1, seed=2)
    assert len(load_split("folder", "val", root=tree, size=6)) == 3
    assert len(load_split("folder", "train", root=tree, size=6)) == 30
    _folder(tree / "test", classes=("zebra",), n=1)
    with pytest.raises(ValueError, match="zebra"):
        load_split("folder", "test", root=tree, size=6)
    # split folders but no test/
    half = tmp_path / "half"
    _folder(half / "train", n=2)
    with pytest.raises(ValueError, match="train/ and test/"):
        load_split("folder", "train", root=half)
    with pytest.raises(ValueError, match="root="):
        load_split("folder", "train")
    # a folder of IDX files (e.g. MNIST) is read as such, classes "0".."K-1"
    make_idx_folder(tmp_path / "idx", n_train=40, n_test=12, k=4)
    idx_test = load_split("folder", "test", root=tmp_path / "idx")
    assert len(idx_test) == 12 and idx_test.classes == ["0", "1", "2", "3"]
    assert len(load_split("folder", "val", root=tmp_path / "idx", val_fraction=0.2)) == 8


# ----------------------------------------------------------------------------------- imbalanced subsets


def test_long_tailed_cifar10_lt_sizes():
    labels = np.repeat(np.arange(10), 5000)  # CIFAR-10 train: 5000 per class
    lt100 = np.bincount(labels[long_tailed_indices(labels, 100)], minlength=10)
    lt10 = np.bincount(labels[long_tailed_indices(labels, 10)], minlength=10)
    # CIFAR-10-LT of Cao et al. (2019): 12,406 images at ratio 100, 20,431 at ratio 10
    assert lt100.tolist() == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50] and lt100.sum() == 12406
    assert lt10.tolist() == [5000, 3871, 2997, 2320, 1796, 1391, 1077, 834, 645, 500] and lt10.sum() == 20431


@pytest.mark.parametrize("ratio", [1, 10, 100])
def test_long_tailed_profile(ratio):
    labels = np.tile(np.arange(10), 200)  # balanced, interleaved
    idx = long_tailed_indices(labels, ratio, seed=3)
    counts = np.bincount(labels[idx], minlength=10)
    assert counts.max() / counts.min() == pytest.approx(ratio)
    assert counts[0] == 200 and (np.diff(counts) <= 0).all()
    assert (np.diff(idx) > 0).all() and idx.dtype == np.int64
    np.testing.assert_array_equal(idx, long_tailed_indices(labels, ratio, seed=3))
    if ratio > 1:
        assert not np.array_equal(idx, long_tailed_indices(labels, ratio, seed=4))
    else:
        np.testing.assert_array_equal(idx, np.arange(2000))


def test_long_tailed_errors_and_small():
    with pytest.raises(ValueError, match=">= 1"):
        long_tailed_indices(np.arange(4) % 2, 0.5)
    tiny = long_tailed_indices(np.repeat(np.arange(3), 2), 1000)
    assert np.bincount(np.repeat(np.arange(3), 2)[tiny]).tolist() == [2, 1, 1]  # at least one per class


def test_dominant_indices():
    labels = np.repeat(np.arange(10), 50)
    idx = dominant_indices(labels, k=3, seed=0)
    counts = np.bincount(labels[idx], minlength=10)
    assert counts.tolist() == [5, 5, 5, 50, 5, 5, 5, 5, 5, 5]
    assert set(np.flatnonzero(labels == 3)) <= set(idx.tolist()) and (np.diff(idx) > 0).all()
    np.testing.assert_array_equal(idx, dominant_indices(labels, k=3, seed=0))
    assert not np.array_equal(idx, dominant_indices(labels, k=3, seed=1))
    few = np.bincount(labels[dominant_indices(labels, k=0, keep_fraction=0.01)], minlength=10)
    assert few.tolist() == [50] + [1] * 9
    with pytest.raises(ValueError, match="choose from"):
        dominant_indices(labels, k=10)
    with pytest.raises(ValueError, match="keep_fraction"):
        dominant_indices(labels, k=0, keep_fraction=0)


# ----------------------------------------------------------------------------------- ImageSet / Dataset


def test_imageset_basics():
    s = ImageSet(np.zeros((4, 3, 3), np.uint8), np.array([0, 2, 2, 1], np.int32), ["a", "b", "c"], "x")
    assert s.labels.dtype == np.int64 and len(s) == 4 and s.num_classes == 3
    assert s.class_counts().tolist() == [1, 1, 2]
    sub = s.subset([3, 0])
    assert sub.labels.tolist() == [1, 0] and sub.classes == ["a", "b", "c"]
    with pytest.raises(ValueError, match="0..1"):
        ImageSet(np.zeros((2, 3, 3), np.uint8), np.array([0, 2]), ["a", "b"])
    with pytest.raises(ValueError, match="uint8"):
        ImageSet(np.zeros((2, 3, 3), np.float32), np.array([0, 1]), ["a", "b"])
    with pytest.raises(ValueError, match="shape"):
        ImageSet(np.zeros((2, 3, 3), np.uint8), np.array([0, 1, 1]), ["a", "b"])


def test_dataset_items_and_pickle():
    gray = ImageSet(np.arange(2 * 6 * 5, dtype=np.uint8).reshape(2, 6, 5), np.array([1, 0]), ["a", "b"])
    ds = ClassificationDataset(gray)
    item = ds[0]
    assert set(item) == {"image", "label"}
    assert item["image"].shape == (3, 6, 5) and item["image"].dtype == torch.float32
    assert item["label"].dtype == torch.int64 and item["label"].ndim == 0 and int(item["label"]) == 1
    assert torch.equal(item["image"][0], item["image"][2])
    assert float(item["image"][0, 0, 1]) == pytest.approx(1 / 255) and float(item["image"].max()) <= 1.0
    rgb = ImageSet(np.full((3, 4, 4, 3), 255, np.uint8), np.array([0, 1, 1]), ["a", "b"])
    seen = []

    def spy(img):
        seen.append((img.dtype, img.shape))
        return torch.zeros(3, 2, 2)

    assert ClassificationDataset(rgb, transform=spy)[1]["image"].shape == (3, 2, 2)
    assert seen == [(np.uint8, (4, 4, 3))]
    seen.clear()
    ClassificationDataset(gray, transform=spy)[1]
    assert seen == [(np.uint8, (6, 5, 3))]
    assert torch.equal(ClassificationDataset(rgb)[2]["image"], torch.ones(3, 4, 4))
    clone = pickle.loads(pickle.dumps(ds))
    assert len(clone) == 2 and torch.equal(clone[1]["image"], ds[1]["image"]) and clone.classes == ["a", "b"]
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (2, 3, 6, 5) and batch["label"].tolist() == [1, 0]


_FASHION = apt_root() / C.FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz"


@pytest.mark.skipif(not _FASHION.is_file(), reason="apt package dataset-fashion-mnist not installed")
def test_real_fashion_mnist_test_split():
    d = load_split("fashion-mnist", "test")
    assert d.images.shape == (10000, 28, 28) and d.classes[0] == "T-shirt/top"
    assert d.class_counts().tolist() == [1000] * 10
