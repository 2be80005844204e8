"""Tests for the ForenSynths/CNNDetection folder reader."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from trustvis.data.forensynths import ForenSynthsDataset, LayoutError, scan_forensynths


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
