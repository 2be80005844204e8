"""Tests for the ForenSynths/CNNDetection folder reader."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from trustvis.data.forensynths import ForenSynthsDataset, LayoutError, genimage_splits, scan_forensynths


def _save(path, arr, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)


def _rgb(seed, h=8, w=10):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "fs"
    for i in range(3):
        _save(root / "gen1" / "0_real" / f"r{i}.png", _rgb(i))
        _save(root / "gen1" / "1_fake" / f"f{i}.png", _rgb(10 + i))
    for cls in ("cat", "dog"):
        _save(root / "gen2" / cls / "0_real" / "a.jpg", _rgb(20))
        _save(root / "gen2" / cls / "1_fake" / "b.png", _rgb(21))
    # special files in gen1
    _save(root / "gen1" / "0_real" / "gray.png", np.full((8, 10), 77, np.uint8))
    _save(root / "gen1" / "0_real" / "rgba.png", np.dstack([_rgb(30), np.full((8, 10), 9, np.uint8)]))
    _save(root / "gen1" / "1_fake" / "deep16.png", np.full((8, 10), 40000, np.uint16))
    (root / "gen1" / "1_fake" / "corrupt.png").write_bytes(b"not an image at all" * 10)
    data = (root / "gen1" / "1_fake" / "f0.png").read_bytes()
    big = root / "gen1" / "0_real" / "trunc.jpg"
    _save(big, _rgb(40, 64, 64), quality=90)
    big.write_bytes(big.read_bytes()[:400])
    (root / "gen1" / "0_real" / "notes.txt").write_text("ignored")
    (root / "gen1" / "0_real" / ".hidden.png").write_bytes(data)
    return root


def test_scan(tree):
    items = scan_forensynths(tree)
    gens = {g for _, _, g in items}
    assert gens == {"gen1", "gen2"}
    names = [p.name for p, _, _ in items]
    assert "notes.txt" not in names and ".hidden.png" not in names
    assert sum(1 for _, lab, g in items if g == "gen2" and lab == 1) == 2
    assert items == sorted(items, key=lambda t: (t[2], t[1], str(t[0])))


def test_dataset_skips_bad_files(tree, caplog):
    with caplog.at_level(logging.WARNING):
        ds = ForenSynthsDataset(tree)
    skipped = {p.name for p, _ in ds.skipped}
    assert skipped == {"corrupt.png", "trunc.jpg"}
    assert all(reason for _, reason in ds.skipped)
    assert "corrupt.png" in caplog.text and "trunc.jpg" in caplog.text
    assert len(ds) == 6 + 3 + 4  # gen1 good files + gray/rgba/16-bit + gen2
    assert ds.generators == ["gen1", "gen2"]
    assert ds.labels.dtype == np.int64 and len(ds.labels) == len(ds)
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (3, 8, 10) and item["image"].dtype == torch.float32
        assert int(item["label"]) in (0, 1) and item["generator"] in ("gen1", "gen2")
    by = ds.indices_by_generator()
    assert sorted(by) == ["gen1", "gen2"] and len(by["gen2"]) == 4
    deep = next(ds[i] for i in range(len(ds)) if ds[i]["path"].endswith("deep16.png"))
    assert torch.allclose(deep["image"], torch.full((3, 8, 10), round(40000 / 257) / 255))


def test_generator_filter_and_cap(tree):
    ds = ForenSynthsDataset(tree, generators=["gen2"])
    assert ds.generators == ["gen2"] and len(ds) == 4
    with pytest.raises(ValueError, match=r"gen1.*gen2|available"):
        ForenSynthsDataset(tree, generators=["nope"])
    capped = ForenSynthsDataset(tree, generators="gen1", max_per_class=2)
    assert len(capped) == 4
    # the first two readable files per class, in path order; corrupt.png is skipped on the way
    assert sorted(p.name for p, _, _ in capped.items) == ["deep16.png", "f0.png", "gray.png", "r0.png"]
    assert [p.name for p, _ in capped.skipped] == ["corrupt.png"]
    ds2 = ForenSynthsDataset(tree, transform=lambda im: torch.zeros(1), check=False)
    assert len(ds2) == 15 and ds2.skipped == []
    assert ds2[0]["image"].shape == (1,)


def test_direct_layout(tmp_path, caplog):
    root = tmp_path / "mygen"
    _save(root / "1_fake" / "x.png", _rgb(1))
    with caplog.at_level(logging.WARNING):
        ds = ForenSynthsDataset(root)
    assert ds.generators == ["mygen"] and len(ds) == 1 and int(ds[0]["label"]) == 1
    assert "only generated" in caplog.text


def test_wrong_layout(tmp_path):
    root = tmp_path / "bad"
    _save(root / "real" / "a.png", _rgb(0))
    _save(root / "fake" / "b.png", _rgb(1))
    with pytest.raises(LayoutError) as ei:
        scan_forensynths(root)
    msg = str(ei.value)
    assert "0_real" in msg and "1_fake" in msg and "<generator>" in msg
    assert "real/" in msg and "fake/" in msg  # says what it found
    with pytest.raises(FileNotFoundError):
        scan_forensynths(tmp_path / "missing")
    (tmp_path / "empty" / "g" / "0_real").mkdir(parents=True)
    with pytest.raises(LayoutError, match="no image files"):
        ForenSynthsDataset(tmp_path / "empty")


# --- GenImage layout -----------------------------------------------------------------------------


def _genimage(root, gens=("imagenet_ai_0419_sdv4", "imagenet_glide"), splits=("train", "val"), n=2):
    """root/<gen>/<split>/{ai,nature}/*.png with n images each; returns root."""
    for gi, gen in enumerate(gens):
        for si, split in enumerate(splits):
            for sub in ("ai", "nature"):
                for i in range(n):
                    _save(root / gen / split / sub / f"{split}_{sub}_{i}.png", _rgb(100 * gi + 10 * si + i))
    return root


def test_genimage_two_generators_split_selection(tmp_path):
    root = _genimage(tmp_path / "genimage")
    train = scan_forensynths(root, split="train")
    assert {g for _, _, g in train} == {"imagenet_ai_0419_sdv4", "imagenet_glide"}
    assert len(train) == 2 * 2 * 2
    for path, label, gen in train:
        assert path.parent.name == ("ai" if label == 1 else "nature")  # ai = generated, nature = real
        assert path.parent.parent.name == "train" and path.parent.parent.parent.name == gen
    val = scan_forensynths(root, split="val")
    assert all(p.parent.parent.name == "val" for p, _, _ in val) and len(val) == 8
    ds = ForenSynthsDataset(root, split="val", check=False)
    assert ds.layout == "genimage" and ds.split == "val" and len(ds) == 8
    assert ds.generators == ["imagenet_ai_0419_sdv4", "imagenet_glide"]
    assert sorted(ds.labels.tolist()) == [0] * 4 + [1] * 4
    item = ds[0]
    assert item["image"].shape == (3, 8, 10) and int(item["label"]) == 0  # sorted: real first


def test_genimage_split_errors(tmp_path):
    root = _genimage(tmp_path / "gi")
    with pytest.raises(LayoutError, match=r"split=") as ei:  # both splits, none chosen
        scan_forensynths(root)
    msg = str(ei.value)
    assert "'train'" in msg and "'val'" in msg
    assert "0_real" in msg and "{ai,nature}" in msg  # both expected layouts are shown
    with pytest.raises(LayoutError, match=r"No split 'test'.*\['train', 'val'\]"):
        ForenSynthsDataset(root, split="test")
    only_train = _genimage(tmp_path / "gi1", splits=("train",))
    assert len(scan_forensynths(only_train)) == 8  # one split: used without asking
    with pytest.raises(LayoutError, match=r"No split 'val'.*\['train'\]"):
        scan_forensynths(only_train, split="val")
    fs = tmp_path / "fs"
    _save(fs / "gen" / "0_real" / "a.png", _rgb(0))
    with pytest.raises(LayoutError, match="no <split> folders"):
        scan_forensynths(fs, split="train")


def test_genimage_generator_missing_a_split_is_left_out(tmp_path, caplog):
    root = _genimage(tmp_path / "gi", gens=("a_gen",))
    _genimage(root, gens=("b_gen",), splits=("train",))
    with caplog.at_level(logging.WARNING):
        items = scan_forensynths(root, split="val")
    assert {g for _, _, g in items} == {"a_gen"}
    assert "b_gen" in caplog.text


def test_genimage_label_folders_directly_under_root(tmp_path):
    gen = tmp_path / "imagenet_ai_0419_sdv4"
    for sub in ("ai", "nature"):  # root/{ai,nature}
        _save(gen / sub / "cls" / "0.png", _rgb(1))  # class sub-folders inside ai/ are read too
    items = scan_forensynths(gen)
    assert [(lab, g) for _, lab, g in items] == [(0, "imagenet_ai_0419_sdv4"), (1, "imagenet_ai_0419_sdv4")]
    # a split folder as root: the generator is its parent's name
    split_root = _genimage(tmp_path / "one", gens=("imagenet_glide",)) / "imagenet_glide" / "val"
    ds = ForenSynthsDataset(split_root, check=False)
    assert ds.generators == ["imagenet_glide"] and ds.split == "val" and len(ds) == 4
    assert ForenSynthsDataset(split_root, split="val", check=False).split == "val"
    # one generator with its split folders: root/<split>/{ai,nature}
    one = tmp_path / "one" / "imagenet_glide"
    assert {g for _, _, g in scan_forensynths(one, split="train")} == {"imagenet_glide"}
    # the GenImage download: root/<family>/<generator>/<split>/{ai,nature}
    dl = tmp_path / "download"
    _genimage(dl / "stable_diffusion_v_1_4", gens=("imagenet_ai_0419_sdv4",), n=1)
    _genimage(dl / "glide", gens=("imagenet_glide",), n=1)
    assert {g for _, _, g in scan_forensynths(dl, split="train")} == {
        "imagenet_ai_0419_sdv4",
        "imagenet_glide",
    }
    # split-less generators: root/<generator>/{ai,nature}
    flat = tmp_path / "flat"
    _save(flat / "midj" / "ai" / "a.png", _rgb(2))
    _save(flat / "midj" / "nature" / "b.png", _rgb(3))
    ds = ForenSynthsDataset(flat)
    assert ds.generators == ["midj"] and ds.split is None and ds.labels.tolist() == [0, 1]


def test_genimage_hidden_folders_ignored_and_label_filter(tmp_path):
    root = _genimage(tmp_path / "gi")
    _save(root / ".cache" / "train" / "ai" / "x.png", _rgb(5))  # hidden generator
    _save(root / "imagenet_glide" / "train" / "ai" / ".thumbs" / "y.png", _rgb(6))  # hidden sub-folder
    _save(root / "imagenet_glide" / ".train_old" / "ai" / "z.png", _rgb(7))  # hidden split
    items = scan_forensynths(root, split="train")
    assert {g for _, _, g in items} == {"imagenet_ai_0419_sdv4", "imagenet_glide"} and len(items) == 8
    real = ForenSynthsDataset(root, split="train", labels=[0])
    assert len(real) == 4 and set(real.labels.tolist()) == {0}
    assert all(p.parent.name == "nature" for p, _, _ in real.items)
    fake = ForenSynthsDataset(root, split="train", labels=[1], generators=["imagenet_glide"])
    assert len(fake) == 2 and all(p.parent.name == "ai" for p, _, _ in fake.items)


def test_mixed_layouts_are_an_error(tmp_path):
    root = tmp_path / "mixed"
    _save(root / "progan" / "0_real" / "a.png", _rgb(0))
    _genimage(root, gens=("sdv4",), n=1)
    with pytest.raises(LayoutError, match="mixes the ForenSynths layout") as ei:
        scan_forensynths(root, split="train")
    assert "progan" in str(ei.value) and "sdv4" in str(ei.value)
    shapes = tmp_path / "shapes"
    _genimage(shapes, gens=("with_splits",), n=1)
    _save(shapes / "no_splits" / "ai" / "a.png", _rgb(0))
    with pytest.raises(LayoutError, match="different shapes"):
        scan_forensynths(shapes, split="train")


def test_genimage_splits_and_forensynths_label_filter(tmp_path, tiny_forensynths):
    root = _genimage(tmp_path / "gi", n=1)
    assert genimage_splits(root) == ["train", "val"]
    assert genimage_splits(root / "imagenet_glide") == ["train", "val"]
    assert genimage_splits(root / "imagenet_glide" / "val") == ["val"]
    assert genimage_splits(tiny_forensynths) == [] and genimage_splits(tmp_path / "missing") == []
    # the ForenSynths tree still reads as before, and the label filter keeps working there
    fakes = ForenSynthsDataset(tiny_forensynths / "train", labels=[1])
    assert fakes.layout == "forensynths" and fakes.split is None
    assert len(fakes) == 8 and set(fakes.labels.tolist()) == {1}
    assert all(p.parent.name == "1_fake" for p, _, _ in fakes.items)
