"""Kodak-like evaluation set: geometry, manifest, cache reuse, missing packages, and the folder reader."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from PIL import Image

from trustvis.data import kodaklike
from trustvis.data.cache import sha256_file
from trustvis.data.kodaklike import (
    KODAKLIKE_IDS,
    build_kodaklike,
    load_image_folder,
    load_kodaklike,
    resize_cover_crop,
    target_size,
)
from trustvis.data.photos import NoPhotosError

PIP_IDS = [i for i in KODAKLIKE_IDS if i.startswith("scikit-image/")]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUSTVIS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def fake_apt(tmp_path, monkeypatch):
    """An apt root with only libjxl-testdata: a big synthetic 'flower' and a too-small 'hdr_room'."""
    root = tmp_path / "apt"
    jxl = root / "usr/share/libjxl-testdata/jxl"
    (jxl / "flower").mkdir(parents=True)
    yy, xx = np.mgrid[:700, :1000]
    smooth = np.stack([xx % 256, yy % 256, (xx + yy) % 256], axis=-1).astype(np.uint8)
    Image.fromarray(smooth).save(jxl / "flower/flower.png")
    Image.fromarray(smooth[:200, :300]).save(jxl / "hdr_room.png")
    monkeypatch.setenv("TRUSTVIS_APT_ROOT", str(root))
    return root


# -- geometry ------------------------------------------------------------------------------------------


def test_target_size_orientation():
    assert target_size(2268, 1512) == (768, 512)
    assert target_size(500, 500) == (768, 512)  # square counts as landscape
    assert target_size(400, 600) == (512, 768)


def test_crop_only_when_one_side_fits_exactly():
    # 512 x 1000: scale max(768/1000, 512/512) = 1 -> no resampling, crop columns 116..883
    img = np.broadcast_to((np.arange(1000) % 256).astype(np.uint8)[None, :, None], (512, 1000, 3)).copy()
    out = resize_cover_crop(img, (768, 512))
    assert out.shape == (512, 768, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, img[:, 116:884])


def test_downscale_and_portrait_geometry():
    img = np.zeros((1536, 1024, 3), np.uint8)  # portrait, exactly 2x the target
    img[:, 512:] = 200  # right half bright
    out = resize_cover_crop(img, target_size(1024, 1536))
    assert out.shape == (768, 512, 3)
    assert out[:, :250].max() == 0 and out[:, 262:].min() == 200  # the edge stays in the middle
    small = np.full((400, 600, 3), 7, np.uint8)  # 1.28x enlargement, then crop 512 -> 512 rows
    assert resize_cover_crop(small, (768, 512)).shape == (512, 768, 3)


# -- building ------------------------------------------------------------------------------------------


def test_build_with_fake_apt_root(home, fake_apt, caplog):
    caplog.set_level(logging.WARNING, logger="trustvis.data.kodaklike")
    root = build_kodaklike()
    assert root == home / "kodaklike" / "v1"
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["ids"] == ["libjxl-testdata/flower", *PIP_IDS]  # list order kept
    for e in manifest["images"]:
        f = root / e["file"]
        assert sha256_file(f) == e["sha256"]
        with Image.open(f) as im:
            assert im.format == "PNG" and im.mode == "RGB" and im.size == tuple(e["size"]) == (768, 512)
    flower = manifest["images"][0]
    assert flower["original_size"] == [1000, 700] and flower["scale"] == pytest.approx(0.768)
    skipped = {s["id"]: s["reason"] for s in manifest["skipped"]}
    assert "2.56x enlargement" in skipped["libjxl-testdata/hdr_room"]  # 300x200 -> 768x512
    assert "sudo apt-get install opencv-doc" in skipped["opencv-doc/graf1"]
    assert "sudo apt-get install opencv-doc" in caplog.text and "hdr_room" in caplog.text


def test_cache_is_reused_rebuilt_on_change_and_forced(home, fake_apt):
    root = build_kodaklike()
    png = root / "flower.png"
    stamp = png.stat().st_mtime_ns
    assert build_kodaklike() == root and png.stat().st_mtime_ns == stamp  # reused
    png.write_bytes(b"tampered")
    build_kodaklike()
    assert sha256_file(png) == json.loads((root / "manifest.json").read_text())["images"][0]["sha256"]
    stamp = png.stat().st_mtime_ns
    build_kodaklike(force=True)
    assert png.stat().st_mtime_ns != stamp


def test_load_quick_limit_and_custom_root(home, fake_apt, tmp_path):
    full = load_kodaklike()
    assert [n for n, _ in full] == ["flower", *(i.split("/")[1] for i in PIP_IDS)]
    quick = load_kodaklike(quick=True, limit=2)
    assert [n for n, _ in quick] == [n for n, _ in full[:2]]
    for (_, q), (_, f) in zip(quick, full):
        assert q.shape == (256, 256, 3) and q.dtype == np.uint8
        np.testing.assert_array_equal(q, f[128:384, 256:512])  # the centre of 512x768
    with pytest.raises(ValueError, match=">= 1"):
        load_kodaklike(limit=0)
    other = build_kodaklike(root=tmp_path / "elsewhere")
    assert (other / "manifest.json").is_file() and other == tmp_path / "elsewhere"


def test_pip_only_is_never_empty(home, tmp_path, monkeypatch):
    monkeypatch.setenv("TRUSTVIS_APT_ROOT", str(tmp_path / "no_apt"))
    images = load_kodaklike()
    assert len(images) == len(PIP_IDS) >= 2
    assert all(img.shape == (512, 768, 3) for _, img in images)


def test_nothing_available_is_an_error(home, tmp_path, monkeypatch):
    monkeypatch.setenv("TRUSTVIS_APT_ROOT", str(tmp_path / "no_apt"))
    monkeypatch.setattr(kodaklike, "KODAKLIKE_IDS", ("opencv-doc/graf1",))
    with pytest.raises(NoPhotosError, match="opencv-doc"):
        build_kodaklike()
    assert not (home / "kodaklike" / "v1").exists()


def test_installed_sources_build(home):
    """Whatever is installed on this machine (scikit-image always is) gives a valid set."""
    root = build_kodaklike()
    manifest = json.loads((root / "manifest.json").read_text())
    assert len(manifest["ids"]) >= len(PIP_IDS)
    assert set(manifest["ids"]) <= set(KODAKLIKE_IDS)
    assert all(e["scale"] <= kodaklike.MAX_UPSCALE for e in manifest["images"])
    assert all(e["source_path"].endswith(".png") for e in manifest["images"])  # lossless sources only


# -- user folders --------------------------------------------------------------------------------------


def test_load_image_folder(tmp_path, caplog):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)).save(tmp_path / "kodim02.png")
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / "kodim01.png")  # gray
    Image.fromarray(rng.integers(0, 256, (6, 6, 4), dtype=np.uint8)).save(tmp_path / "kodim03.png")  # RGBA
    (tmp_path / "kodim04.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "sub" / "deep.png")
    caplog.set_level(logging.WARNING, logger="trustvis.data.kodaklike")
    out = load_image_folder(tmp_path)
    assert [n for n, _ in out] == ["kodim01", "kodim02", "kodim03"]
    assert [a.shape for _, a in out] == [(8, 8, 3), (8, 12, 3), (6, 6, 3)]
    assert all(a.dtype == np.uint8 for _, a in out)
    assert "kodim04.png" in caplog.text


def test_load_image_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="No image files"):
        load_image_folder(tmp_path)
    with pytest.raises(NotADirectoryError):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(ValueError, match="could be read"):
        load_image_folder(tmp_path)
