"""Pillow baselines: round trips, rate/quality monotonicity on a real photo, settings and errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from trustvis.methods.codec import classic
from trustvis.methods.codec.classic import (
    CLASSIC_CODECS,
    classic_available,
    decode_classic,
    default_qualities,
    encode_classic,
)
from trustvis.metrics.compression import bpp, psnr

AVAILABLE = [n for n, ok in classic_available().items() if ok]


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """skimage's astronaut (a real photo), Lanczos-resized to 128x128."""
    import skimage.data

    return np.asarray(Image.fromarray(skimage.data.astronaut()).resize((128, 128), Image.Resampling.LANCZOS))


def test_available_lists_every_codec():
    avail = classic_available()
    assert set(avail) == set(CLASSIC_CODECS) and all(isinstance(v, bool) for v in avail.values())
    assert avail["jpeg"]  # Pillow always has libjpeg


@pytest.mark.parametrize("name", AVAILABLE)
def test_round_trip_shape_and_dtype(name, photo):
    img = photo[:48, :40]  # non-square, not a multiple of 8/16
    q = default_qualities(name)[-1]  # highest setting (JPEG 2000: 2 bpp, headers included)
    rec = decode_classic(encode_classic(name, img, q))
    assert rec.shape == img.shape and rec.dtype == np.uint8
    assert psnr(img, rec) > 24.0  # a real reconstruction, not noise (which gives ~10 dB)


@pytest.mark.parametrize("name", AVAILABLE)
def test_higher_quality_more_bytes_higher_psnr(name, photo):
    sizes, psnrs = [], []
    for q in default_qualities(name, quick=True):
        data = encode_classic(name, photo, q)
        sizes.append(len(data))
        psnrs.append(psnr(photo, decode_classic(data)))
    assert all(a < b for a, b in zip(sizes, sizes[1:])), sizes
    assert all(a < b for a, b in zip(psnrs, psnrs[1:])), psnrs


def test_default_grids_are_increasing():
    for name in CLASSIC_CODECS:
        for quick in (False, True):
            grid = default_qualities(name, quick)
            assert grid == sorted(grid) and len(set(grid)) == len(grid)
            assert len(grid) == (4 if quick else len(grid)) and len(grid) >= 4
        assert len(default_qualities(name)) >= 9


@pytest.mark.skipif("jpeg2000" not in AVAILABLE, reason="Pillow without OpenJPEG")
def test_jpeg2000_quality_is_target_bpp(photo):
    for target in (0.5, 1.0):
        got = bpp(len(encode_classic("jpeg2000", photo, target)), 128, 128)
        assert got == pytest.approx(target, rel=0.1)


def test_jpeg_uses_420_subsampling(photo):
    with Image.open(io.BytesIO(encode_classic("jpeg", photo, 75))) as im:
        assert JpegImagePlugin.get_sampling(im) == 2  # 2 = 4:2:0
    with Image.open(io.BytesIO(encode_classic("jpeg", photo, 75, subsampling="4:4:4"))) as im:
        assert JpegImagePlugin.get_sampling(im) == 0  # options override the default


def test_unknown_codec_and_bad_inputs(photo):
    with pytest.raises(ValueError, match=r"choose from \['jpeg', 'webp', 'avif', 'jpeg2000'\]"):
        encode_classic("bpg", photo, 50)
    with pytest.raises(ValueError, match="choose from"):
        default_qualities("heic")
    with pytest.raises(ValueError, match="1..100"):
        encode_classic("jpeg", photo, 0)
    with pytest.raises(ValueError, match="integer"):
        encode_classic("webp", photo, 50.5)
    with pytest.raises(ValueError, match="bpp"):
        encode_classic("jpeg2000", photo, 0.0)
    with pytest.raises(ValueError, match="uint8"):
        encode_classic("jpeg", photo.astype(np.float32), 50)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        encode_classic("jpeg", photo[..., 0], 50)
    with pytest.raises(ValueError, match="Cannot decode"):
        decode_classic(b"not an image at all")


def test_missing_plugin_is_a_clear_runtime_error(photo, monkeypatch):
    real_check = classic.features.check
    monkeypatch.setattr(classic.features, "check", lambda f: False if f == "avif" else real_check(f))
    assert classic_available()["avif"] is False
    with pytest.raises(RuntimeError, match="'avif' feature"):
        encode_classic("avif", photo, 50)
    assert classic.available_codecs(["jpeg", "avif"]) == ["jpeg"]
