"""Tests for the real-data sources and the photo corpus (splits by photo, patches)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from trustvis.data import sources as S
from trustvis.data.photos import NoPhotosError, Photo, list_photos, photo_patches, split_photos

ROW_KEYS = {"name", "kind", "package", "installed", "n_images", "purpose", "install_hint", "licence"}
PIP_SOURCES = ["scikit-image", "scikit-learn", "matplotlib"]


def _fake_photos(tmp_path, n, size=(60, 80)):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        p = tmp_path / f"p{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(p)
        out.append(Photo("fake", f"p{i:03d}", p))
    return out


def test_status_rows():
    rows = S.status()
    assert [r["name"] for r in rows] == [s.name for s in S.SOURCES]
    for r in rows:
        assert set(r) == ROW_KEYS
        assert r["kind"] in ("pip", "apt") and isinstance(r["installed"], bool)
        assert (r["n_images"] > 0) == r["installed"]
    names = {r["name"] for r in rows}
    assert {"scikit-image", "opencv-doc", "mate-backgrounds", "libjxl-testdata", "fashion-mnist"} <= names
    by = {r["name"]: r for r in rows}
    assert by["scikit-image"]["installed"]  # a dependency of trustvis
    text = S.format_status(rows)
    assert "scikit-image" in text and "installed" in text


def test_apt_root_redirect(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUSTVIS_APT_ROOT", str(tmp_path))
    rows = {r["name"]: r for r in S.status()}
    for s in S.SOURCES:
        if s.kind == "apt":
            assert not rows[s.name]["installed"] and rows[s.name]["n_images"] == 0
            assert s.files() == []
    text = S.format_status(list(rows.values()))
    assert "sudo apt-get install" in text
    for pkg in ("opencv-doc", "mate-backgrounds", "plasma-workspace-wallpapers", "dataset-fashion-mnist"):
        assert pkg in text
    # a package unpacked under the redirected root is found
    nature = tmp_path / "usr/share/backgrounds/mate/nature"
    nature.mkdir(parents=True)
    for n in ("Aqua", "Dune"):
        Image.new("RGB", (40, 30), "red").save(nature / f"{n}.jpg")
    (nature / "Other.jpg").write_bytes(b"not listed")
    mate = S.get_source("mate-backgrounds")
    assert [p.name for p in mate.files()] == ["Aqua.jpg", "Dune.jpg"]
    assert {r["name"]: r for r in S.status()}["mate-backgrounds"]["n_images"] == 2
    # plasma: only the largest copy of each wallpaper
    imgs = tmp_path / "usr/share/wallpapers/Kite/contents/images"
    imgs.mkdir(parents=True)
    for wh in ("640x480", "2560x1600", "1920x1080"):
        (imgs / f"{wh}.jpg").write_bytes(b"x")
    assert [p.name for p in S.get_source("plasma-workspace-wallpapers").files()] == ["2560x1600.jpg"]
    with pytest.raises(KeyError, match="opencv-doc"):
        S.get_source("nope")


def test_list_photos_existing_and_unique():
    photos = list_photos()
    assert photos == sorted(photos, key=lambda p: p.id)
    assert len({p.id for p in photos}) == len(photos)
    assert all(p.path.is_file() for p in photos)
    pip = list_photos(PIP_SOURCES)
    assert len(pip) >= 3 and {p.source for p in pip} <= set(PIP_SOURCES)
    assert not any("motorcycle_right" in p.id for p in photos)
    with pytest.raises(KeyError):
        list_photos(["nope"])


def test_list_photos_dedupes(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUSTVIS_APT_ROOT", str(tmp_path))
    nature = tmp_path / "usr/share/backgrounds/mate/nature"
    nature.mkdir(parents=True)
    Image.new("RGB", (40, 30), "red").save(nature / "Aqua.jpg")
    (nature / "Dune.jpg").write_bytes((nature / "Aqua.jpg").read_bytes())
    Image.new("RGB", (40, 30), "blue").save(nature / "Wood.jpg")
    ids = [p.id for p in list_photos(["mate-backgrounds"])]
    assert ids == ["mate-backgrounds/Aqua", "mate-backgrounds/Wood"]


def test_split_photos_properties(tmp_path):
    photos = [Photo("s", f"x{i}", tmp_path / f"x{i}.png") for i in range(40)]
    a = split_photos(photos, seed=0)
    b = split_photos(list(reversed(photos)), seed=0)
    assert {k: [p.id for p in v] for k, v in a.items()} == {k: [p.id for p in v] for k, v in b.items()}
    ids = [p.id for v in a.values() for p in v]
    assert sorted(ids) == sorted(p.id for p in photos) and len(set(ids)) == len(ids)
    assert all(a[k] for k in ("train", "val", "test"))
    assert len(a["train"]) > len(a["test"]) > 0
    # adding photos does not move existing ones
    more = photos + [Photo("t", f"y{i}", tmp_path / f"y{i}.png") for i in range(20)]
    c = split_photos(more, seed=0)
    for k in a:
        assert {p.id for p in a[k]} <= {p.id for p in c[k]}
    assert split_photos(photos, seed=1) != a
    with pytest.raises(ValueError, match="summing to 1"):
        split_photos(photos, fractions=(0.5, 0.5, 0.5))


@pytest.mark.parametrize("n", [3, 4, 5, 10])
def test_split_small_corpus_never_empty(tmp_path, n):
    photos = [Photo("s", f"x{i}", tmp_path / f"x{i}.png") for i in range(n)]
    for seed in range(5):
        sp = split_photos(photos, seed=seed)
        assert all(sp[k] for k in ("train", "val", "test")), (n, seed)
        assert sum(len(v) for v in sp.values()) == n


def test_split_pip_only():
    sp = split_photos(list_photos(PIP_SOURCES))
    assert all(sp[k] for k in ("train", "val", "test"))


def test_photo_patches(tmp_path):
    photos = _fake_photos(tmp_path, 12)
    sp = split_photos(photos)
    x, ids = photo_patches("train", 32, 25, seed=3, photos=photos)
    assert x.shape == (25, 32, 32, 3) and x.dtype == np.uint8 and len(ids) == 25
    train_ids = {p.id for p in sp["train"]}
    assert set(ids) <= train_ids
    counts = np.unique(ids, return_counts=True)[1]
    assert counts.max() - counts.min() <= 1  # round-robin
    x2, ids2 = photo_patches("train", 32, 25, seed=3, photos=photos)
    np.testing.assert_array_equal(x, x2)
    assert ids == ids2
    x3, _ = photo_patches("train", 32, 25, seed=4, photos=photos)
    assert not np.array_equal(x, x3)
    xt, idt = photo_patches("test", 16, 4, photos=photos)
    assert set(idt) <= {p.id for p in sp["test"]} and xt.shape == (4, 16, 16, 3)
    # patches bigger than a photo: the photo is enlarged
    assert photo_patches("val", 100, 2, photos=photos)[0].shape == (2, 100, 100, 3)
    # max_side shrinks photos (80 -> 40 wide, but never below the patch size)
    assert photo_patches("train", 30, 3, max_side=40, photos=photos)[0].shape == (3, 30, 30, 3)


def test_photo_patches_errors(tmp_path, caplog):
    with pytest.raises(NoPhotosError, match="trustvis data status"):
        photo_patches("train", 8, 2, photos=[])
    with pytest.raises(ValueError, match="train"):
        photo_patches("holdout", 8, 2, photos=[])
    photos = _fake_photos(tmp_path, 6)
    sp = split_photos(photos)
    bad = sp["train"][0]
    bad.path.write_bytes(b"broken")
    with caplog.at_level(logging.WARNING):
        x, ids = photo_patches("train", 16, 8, photos=photos)
    assert bad.id not in ids and bad.id in caplog.text and x.shape == (8, 16, 16, 3)


def test_photo_patches_real_pip_photos():
    photos = list_photos(PIP_SOURCES)
    x, ids = photo_patches("val", 64, 3, photos=photos)
    assert x.shape == (3, 64, 64, 3) and x.std() > 5
    assert set(ids) <= {p.id for p in split_photos(photos)["val"]}
