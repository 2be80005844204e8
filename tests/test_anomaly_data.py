"""Anomaly data: MVTec-AD / folder readers on tiny trees, ELPV splits, texture defects, the torch Dataset."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trustvis.data.anomaly import (
    ANOMALY_DATASETS,
    DEFECT_KINDS,
    AnomalyDataset,
    AnomalySet,
    folder_anomaly,
    load_anomaly,
    mvtec_ad,
    texture_image,
    texture_regions,
    textures,
)

HAS_ELPV = importlib.util.find_spec("elpv_dataset") is not None
PIP_TEXTURES = ["brick", "gravel"]  # scikit-image, always installed
SMALL = {"size": 32, "n_train": 8, "n_val": 4, "n_test": 12, "categories": PIP_TEXTURES}


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _img(value: int, size: int = 16) -> np.ndarray:
    """A 16x16 RGB image whose pixel (y, x) is (value, y * 8, x * 8): identifiable and exact in PNG."""
    yy, xx = np.mgrid[:size, :size]
    return np.stack([np.full((size, size), value), yy * 8, xx * 8], axis=-1).astype(np.uint8)


def _block_mask(y0: int, y1: int, x0: int, x1: int, size: int = 16) -> np.ndarray:
    m = np.zeros((size, size), np.uint8)
    m[y0:y1, x0:x1] = 255
    return m


@pytest.fixture
def mvtec_root(tmp_path: Path) -> Path:
    """<root>/bottle: 5 train/good, test/good (1), test/crack (2) with masks in ground_truth/crack."""
    cat = tmp_path / "mvtec" / "bottle"
    for i in range(5):
        _png(cat / "train" / "good" / f"{i:03d}.png", _img(10 + i))
    _png(cat / "test" / "good" / "000.png", _img(100))
    _png(cat / "test" / "crack" / "000.png", _img(200))
    _png(cat / "test" / "crack" / "001.png", _img(201))
    _png(cat / "ground_truth" / "crack" / "000_mask.png", _block_mask(0, 8, 0, 8))
    _png(cat / "ground_truth" / "crack" / "001_mask.png", _block_mask(8, 16, 4, 12))
    return tmp_path / "mvtec"


@pytest.fixture
def folder_root(tmp_path: Path) -> Path:
    """<root>/normal (10), abnormal (2 + 1 in abnormal/scratch/), mask/ for each abnormal image."""
    root = tmp_path / "parts"
    for i in range(10):
        _png(root / "normal" / f"n{i}.png", _img(i))
    _png(root / "abnormal" / "a0.png", _img(150))
    _png(root / "abnormal" / "a1.png", _img(151))
    _png(root / "abnormal" / "scratch" / "a2.png", _img(152))
    _png(root / "mask" / "a0.png", _block_mask(0, 4, 0, 4))
    _png(root / "mask" / "a1_mask.png", _block_mask(4, 8, 4, 8))
    _png(root / "mask" / "scratch" / "a2.png", _block_mask(0, 16, 0, 2))
    return root


# ------------------------------------------------------------------------------------------- MVTec AD


def test_mvtec_reads_splits_and_masks(mvtec_root: Path) -> None:
    train = mvtec_ad(mvtec_root, "bottle", "train", size=16, val_fraction=0.2)
    val = mvtec_ad(mvtec_root, "bottle", "val", size=16, val_fraction=0.2)
    assert (len(train), len(val)) == (4, 1)
    assert sorted(train.names + val.names) == [f"good/{i:03d}" for i in range(5)]
    assert train.labels.sum() == 0 and val.labels.sum() == 0
    assert train.has_masks and not train.masks.any()
    # pixels are the file's pixels (no resize at size=16): red channel identifies the file
    for img, name in zip(train.images, train.names):
        np.testing.assert_array_equal(img, _img(10 + int(name[-3:])))

    test = mvtec_ad(mvtec_root, "bottle", "test", size=16)
    assert test.names == ["crack/000", "crack/001", "good/000"]
    assert test.labels.tolist() == [1, 1, 0]
    assert test.kinds.tolist() == ["crack", "crack", "good"]
    assert test.groups.tolist() == ["bottle"] * 3
    np.testing.assert_array_equal(test.masks[0], _block_mask(0, 8, 0, 8) // 255)
    np.testing.assert_array_equal(test.masks[1], _block_mask(8, 16, 4, 12) // 255)
    assert not test.masks[2].any()

    small = mvtec_ad(mvtec_root, "bottle", "test", size=8)  # masks resized with nearest
    assert small.images.shape == (3, 8, 8, 3) and small.masks.shape == (3, 8, 8)
    np.testing.assert_array_equal(small.masks[0], _block_mask(0, 4, 0, 4, size=8) // 255)
    # a category folder itself can be the root
    same = mvtec_ad(mvtec_root / "bottle", "", "test", size=16)
    np.testing.assert_array_equal(same.masks, test.masks)


def test_mvtec_layout_errors(mvtec_root: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train/good"):
        mvtec_ad(tmp_path / "nowhere", "bottle", "train")
    with pytest.raises(ValueError, match=r"'screw' not found.*bottle"):
        mvtec_ad(mvtec_root, "screw", "train")
    with pytest.raises(ValueError, match=r"needs a category.*bottle"):
        mvtec_ad(mvtec_root, "", "train")
    with pytest.raises(ValueError, match="Unknown split 'dev'"):
        mvtec_ad(mvtec_root, "bottle", "dev")
    with pytest.raises(ValueError, match="val_fraction"):
        mvtec_ad(mvtec_root, "bottle", "val", val_fraction=0.0)
    (mvtec_root / "empty" / "test").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"No training images.*train/good"):
        mvtec_ad(mvtec_root, "empty", "test")
    (mvtec_root / "bottle" / "ground_truth" / "crack" / "001_mask.png").unlink()
    with pytest.raises(ValueError, match=r"Missing mask for anomalous image .*001\.png"):
        mvtec_ad(mvtec_root, "bottle", "test", size=16)


def test_mvtec_missing_ground_truth_folder(mvtec_root: Path) -> None:
    gt = mvtec_root / "bottle" / "ground_truth"
    for p in sorted(gt.rglob("*.png")):
        p.unlink()
    (gt / "crack").rmdir()
    gt.rmdir()
    with pytest.raises(ValueError, match="ground-truth folder"):
        mvtec_ad(mvtec_root, "bottle", "test")


# --------------------------------------------------------------------------------------------- folder


def test_folder_layout_splits_and_masks(folder_root: Path) -> None:
    parts = {s: folder_anomaly(folder_root, s, size=16) for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [7, 1, 5]  # 10 normals 70/10/20 + 3 abnormal
    normals = [n for s in parts for n, lab in zip(parts[s].names, parts[s].labels) if lab == 0]
    assert sorted(normals) == sorted(f"normal/n{i}" for i in range(10))  # a partition of the normals
    assert parts["train"].labels.sum() == 0 and parts["val"].labels.sum() == 0
    test = parts["test"]
    assert test.labels.tolist() == [0, 0, 1, 1, 1]
    assert test.names[2:] == ["abnormal/a0", "abnormal/a1", "abnormal/scratch/a2"]
    assert test.kinds[2:].tolist() == ["abnormal", "abnormal", "scratch"]
    np.testing.assert_array_equal(test.masks[2], _block_mask(0, 4, 0, 4) // 255)
    np.testing.assert_array_equal(test.masks[3], _block_mask(4, 8, 4, 8) // 255)  # a1_mask.png
    np.testing.assert_array_equal(test.masks[4], _block_mask(0, 16, 0, 2) // 255)  # mask/scratch/a2.png
    assert not test.masks[:2].any()
    again = folder_anomaly(folder_root, "test", size=16)
    assert again.names == test.names
    assert folder_anomaly(folder_root, "train", size=16, seed=1).names != parts["train"].names


def test_folder_without_masks_and_errors(folder_root: Path, tmp_path: Path) -> None:
    (folder_root / "mask" / "scratch" / "a2.png").unlink()
    with pytest.raises(ValueError, match=r"Missing mask for anomalous image .*a2\.png"):
        folder_anomaly(folder_root, "test", size=16)
    for p in sorted((folder_root / "mask").rglob("*.png")):
        p.unlink()
    (folder_root / "mask" / "scratch").rmdir()
    (folder_root / "mask").rmdir()
    test = folder_anomaly(folder_root, "test", size=16)
    assert test.masks is None and not test.has_masks and test.labels.sum() == 3
    bad = tmp_path / "bad"
    _png(bad / "good" / "x.png", _img(1))
    with pytest.raises(ValueError, match=r"No normal images.*found sub-folders \['good'\].*normal"):
        folder_anomaly(bad, "train")
    with pytest.raises(FileNotFoundError, match="expected layout"):
        folder_anomaly(tmp_path / "missing", "train")


# ----------------------------------------------------------------------------------------------- ELPV


@pytest.mark.skipif(not HAS_ELPV, reason="elpv-dataset not installed")
def test_elpv_mono_splits() -> None:
    sets = {s: load_anomaly("elpv-mono", s, size=32) for s in ("train", "val", "test")}
    # 588 defect-free mono cells 60/10/30; test adds 56 (p=2/3) + 313 (p=1) defective, drops 117 (p=1/3)
    assert [len(sets[s]) for s in ("train", "val", "test")] == [353, 59, 545]
    assert sets["train"].labels.sum() == 0 and sets["val"].labels.sum() == 0
    test = sets["test"]
    assert test.counts() == {"normal": 176, "anomalous": 369}
    assert sorted(set(test.kinds.tolist())) == ["good", "p=1", "p=2/3"]
    names = [set(sets[s].names) for s in ("train", "val", "test")]
    assert not (names[0] & names[1]) and not (names[0] & names[2]) and not (names[1] & names[2])
    for s in sets.values():
        assert s.images.shape[1:] == (32, 32, 3) and s.images.dtype == np.uint8
        assert s.masks is None and set(s.groups.tolist()) == {"mono"}
    img = test.images[0]
    assert (img[..., 0] == img[..., 1]).all() and (img[..., 0] == img[..., 2]).all()  # gray replicated
    again = load_anomaly("elpv-mono", "test", size=32)
    assert again.names == test.names and np.array_equal(again.images, test.images)
    assert load_anomaly("elpv-mono", "train", size=32, seed=1).names != sets["train"].names
    assert len(load_anomaly("elpv-mono", "test", size=32, defect_min=0.3)) == 545 + 117
    assert load_anomaly("elpv-mono", "test", size=32, defect_min=1.0).counts() == {
        "normal": 176,
        "anomalous": 313,
    }
    with pytest.raises(ValueError, match=r"choose from \['mono', 'poly'\]"):
        from trustvis.data.anomaly import elpv

        elpv("thin-film", "train")


# ------------------------------------------------------------------------------------------- textures

_NAME = re.compile(r"^(\w+)/(train|val|test)/(\d{4})@y=(\d+),x=(\d+)$")


def test_textures_masks_and_labels() -> None:
    test = textures("test", **SMALL)
    assert len(test) == 24 and test.images.shape == (24, 32, 32, 3) and test.masks.shape == (24, 32, 32)
    assert test.counts() == {"normal": 12, "anomalous": 12}  # half of 12 per texture
    normal, bad = test.labels == 0, test.labels == 1
    assert not test.masks[normal].any()
    area = test.masks.reshape(len(test), -1).mean(axis=1)
    assert (area[bad] > 0).all() and (area[bad] < 0.15).all()
    assert set(test.kinds[bad].tolist()) == set(DEFECT_KINDS)
    for g in PIP_TEXTURES:  # the three kinds in equal shares per texture
        kinds, counts = np.unique(test.kinds[bad & (test.groups == g)], return_counts=True)
        assert kinds.tolist() == sorted(DEFECT_KINDS) and counts.tolist() == [2, 2, 2]
    # the same crops without defects: pixels outside the mask are untouched, inside they changed
    clean = textures("test", anomaly_fraction=0.0, **SMALL)
    assert clean.names == test.names and clean.labels.sum() == 0
    np.testing.assert_array_equal(clean.images[normal], test.images[normal])
    for i in np.flatnonzero(bad):
        m = test.masks[i].astype(bool)
        np.testing.assert_array_equal(clean.images[i][~m], test.images[i][~m])
        diff = np.abs(clean.images[i][m].astype(int) - test.images[i][m].astype(int)).mean()
        assert diff > 5, (test.names[i], test.kinds[i], diff)
    for split in ("train", "val"):
        s = textures(split, **SMALL)
        assert s.labels.sum() == 0 and not s.masks.any() and len(s) == 2 * SMALL[f"n_{split}"]


def test_textures_split_regions_are_disjoint() -> None:
    size = SMALL["size"]
    for g in PIP_TEXTURES:
        h, w = texture_image(g, size).shape[:2]
        assert min(h, w) == 4 * size
        regions = texture_regions(h, w)
        occupied = np.zeros((h, w), np.int64)
        for y0, y1, x0, x1 in regions.values():
            occupied[y0:y1, x0:x1] += 1
        assert occupied.max() == 1  # no pixel belongs to two regions
    for split in ("train", "val", "test"):
        for mis in (False, True):
            s = textures(split, misaligned=mis, **SMALL)
            for name, group in zip(s.names, s.groups):
                tex, sp, _, y, x = _NAME.match(name).groups()
                y0, y1, x0, x1 = texture_regions(*texture_image(tex, size).shape[:2])[sp]
                assert tex == group and sp == split
                assert y0 <= int(y) and int(y) + size <= y1 and x0 <= int(x) and int(x) + size <= x1, name


def test_textures_misaligned_and_deterministic() -> None:
    a = textures("train", **SMALL)
    assert np.array_equal(a.images, textures("train", **SMALL).images)  # deterministic
    assert a.names != textures("train", seed=1, **SMALL).names
    m = textures("train", misaligned=True, **SMALL)
    assert m.names == a.names  # same crop positions, only the pose differs
    changed = np.abs(m.images.astype(int) - a.images.astype(int)).reshape(len(a), -1).mean(axis=1)
    assert (changed > 1).all()
    assert np.array_equal(m.images, textures("train", misaligned=True, **SMALL).images)
    still = textures("train", misaligned=True, max_angle=0.0, max_shift=0.0, **SMALL)
    np.testing.assert_array_equal(still.images, a.images)  # identity warp reproduces the plain crops
    mt = textures("test", misaligned=True, **SMALL)
    assert (
        not mt.masks[mt.labels == 0].any()
        and (mt.masks[mt.labels == 1].reshape(-1, 32 * 32).sum(1) > 0).all()
    )


def test_texture_errors() -> None:
    with pytest.raises(ValueError, match=r"Unknown texture 'marble'; choose from \['brick'"):
        textures("train", categories=["marble"])
    with pytest.raises(ValueError, match="Unknown split"):
        textures("holdout")
    one = load_anomaly("textures", "val", category="gravel", size=32, n_val=3)
    assert one.groups.tolist() == ["gravel"] * 3 and one.name == "textures/val"


# ----------------------------------------------------------------------------------- Dataset and sets


def test_anomaly_dataset_items(folder_root: Path) -> None:
    test = folder_anomaly(folder_root, "test", size=16)
    ds = AnomalyDataset(test)
    item = ds[2]
    assert item["image"].shape == (3, 16, 16) and item["image"].dtype == torch.float32
    assert item["mask"].shape == (16, 16) and item["mask"].dtype == torch.float32
    assert item["label"].dtype == torch.int64 and int(item["label"]) == 1 and bool(item["has_mask"])
    assert float(item["mask"].sum()) == 16.0  # the 4x4 block of a0
    assert float(item["image"][0, 0, 0]) == pytest.approx(150 / 255)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=5)))
    assert batch["image"].shape == (5, 3, 16, 16) and batch["mask"].shape == (5, 16, 16)
    assert batch["has_mask"].dtype == torch.bool and batch["label"].tolist() == [0, 0, 1, 1, 1]

    no_masks = AnomalySet(test.images, test.labels, None, test.names, test.groups)
    item = AnomalyDataset(no_masks)[3]
    assert not bool(item["has_mask"]) and not item["mask"].any()
    with pytest.raises(ValueError, match="changed the image size"):
        AnomalyDataset(test, transform=lambda img: torch.zeros(3, 8, 8))[0]


def test_anomaly_set_validation_and_subset() -> None:
    imgs = np.zeros((3, 4, 4, 3), np.uint8)
    masks = np.zeros((3, 4, 4), np.uint8)
    masks[2, 1, 1] = 1
    s = AnomalySet(imgs, np.array([0, 0, 1]), masks, ["a", "b", "c"], np.array(["g"] * 3))
    assert s.kinds.tolist() == ["good", "good", "anomaly"] and len(s) == 3
    sub = s.subset([2, 0])
    assert sub.names == ["c", "a"] and sub.labels.tolist() == [1, 0] and sub.masks[0, 1, 1] == 1
    with pytest.raises(ValueError, match="normal items"):
        AnomalySet(imgs, np.array([1, 0, 0]), masks, ["a", "b", "c"], ["g"] * 3)
    with pytest.raises(ValueError, match="0 \\(normal\\) or 1"):
        AnomalySet(imgs, np.array([0, 2, 1]), masks, ["a", "b", "c"], ["g"] * 3)
    with pytest.raises(ValueError, match="masks must hold 0 and 1"):
        AnomalySet(imgs, np.array([0, 0, 1]), masks * 255, ["a", "b", "c"], ["g"] * 3)


def test_load_anomaly_dispatch_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Unknown anomaly data set 'mvtec-ad'; choose from \['elpv-mono'"):
        load_anomaly("mvtec-ad", "train")
    with pytest.raises(
        ValueError, match=r"Unknown split 'validation'; choose from \['train', 'val', 'test'\]"
    ):
        load_anomaly("textures", "validation")
    with pytest.raises(ValueError, match="needs root="):
        load_anomaly("mvtec", "train", category="bottle")
    with pytest.raises(ValueError, match="takes no category"):
        load_anomaly("folder", "train", root=tmp_path, category="x")
    assert set(ANOMALY_DATASETS) == {
        "elpv-mono",
        "elpv-poly",
        "textures",
        "textures-misaligned",
        "mvtec",
        "folder",
    }
