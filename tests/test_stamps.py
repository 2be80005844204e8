"""The Tux Paint stamps reader (issue 24's real colour set) on a tiny tree, and on the installed package."""

from __future__ import annotations

import numpy as np
import pytest

from trustvis.data.classification import load_split
from trustvis.data.sources import apt_root
from trustvis.data.stamps import (
    STAMPS_DIR,
    largest_categories,
    stamp_categories,
    tiny_stamps,
    tuxpaint_stamps,
)


def test_tiny_tree_reads_pngs_recursively_on_white(tmp_path):
    root = tiny_stamps(tmp_path / "stamps")
    cats = stamp_categories(root)
    assert {k: len(v) for k, v in cats.items()} == {"animals": 16, "food": 12, "town": 8}  # SVGs left out
    assert largest_categories(cats, 2) == ["animals", "food"]
    data = tuxpaint_stamps(root, categories=2, size=16)
    assert data.classes == ["animals", "food"] and data.images.shape == (28, 16, 16, 3)
    assert data.class_counts().tolist() == [16, 12]
    corner = data.images[:, 0, 0]
    assert (corner == 255).all()  # transparent border and padding are white
    assert (data.images[:, 8, 8] < 255).any()  # the picture itself is not


def test_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="tuxpaint-stamps-default"):
        stamp_categories(tmp_path / "nowhere")
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no <category>"):
        stamp_categories(tmp_path / "empty")
    root = tiny_stamps(tmp_path / "s")
    with pytest.raises(ValueError, match="3 categories"):
        tuxpaint_stamps(root, categories=5)
    (root / "food" / "broken.png").write_bytes(b"not a png")
    data = tuxpaint_stamps(root, categories=3, size=16)
    assert len(data.skipped) == 1 and "broken.png" in data.skipped[0]


@pytest.mark.skipif(
    not (apt_root() / STAMPS_DIR).is_dir(), reason="data not installed: tuxpaint-stamps-default"
)
def test_installed_package_splits_by_file():
    parts = {s: load_split("tuxpaint-stamps", s) for s in ("train", "val", "test")}
    assert parts["train"].num_classes == 10 and parts["train"].images.shape[1:] == (64, 64, 3)
    total = sum(len(p) for p in parts.values())
    assert 600 <= total <= 800
    assert abs(len(parts["test"]) / total - 0.2) < 0.02
    sums = {
        s: {int(x) for x in p.images.reshape(len(p), -1).astype(np.int64).sum(1)} for s, p in parts.items()
    }
    assert len(sums["train"] & sums["test"]) < 0.1 * len(
        sums["test"]
    )  # different files (a few variants repeat)
