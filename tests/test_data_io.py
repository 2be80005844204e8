"""Tests for trustvis.data.io: robust image loading and deterministic PNG writing."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from trustvis.data.io import IMAGE_EXTENSIONS, ImageReadError, iter_image_files, load_image, save_png


def _rgb(h: int = 12, w: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png16_rgb(path, arr16: np.ndarray, filt: int = 0) -> None:
    """Write a 16-bit RGB PNG by hand (Pillow cannot), with filter type 0 (None) or 2 (Up)."""
    h, w, _ = arr16.shape
    raw = arr16.astype(">u2").tobytes()
    stride = w * 6
    rows = [raw[i * stride : (i + 1) * stride] for i in range(h)]
    body = b""
    prev = bytes(stride)
    for r in rows:
        if filt == 2:
            body += b"\x02" + bytes((a - b) & 0xFF for a, b in zip(r, prev))
        else:
            body += b"\x00" + r
        prev = r

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(body))
        + chunk(b"IEND", b"")
    )


def test_rgb_png_roundtrip(tmp_path):
    arr = _rgb()
    p = save_png(tmp_path / "a.png", arr)
    out = load_image(p)
    assert out.dtype == np.uint8 and out.shape == (12, 16, 3)
    np.testing.assert_array_equal(out, arr)


def test_save_png_deterministic_and_plain(tmp_path):
    arr = _rgb()
    a = save_png(tmp_path / "a.png", arr).read_bytes()
    b = save_png(tmp_path / "sub" / "b.png", arr, compress_level=6).read_bytes()
    assert a == b
    assert b"tIME" not in a and b"tEXt" not in a
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(TypeError):
        save_png(tmp_path / "c.png", arr.astype(np.float32))


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grayscale(tmp_path, mode):
    g = np.random.default_rng(1).integers(0, 256, (9, 7), dtype=np.uint8)
    img = Image.fromarray(g).convert(mode)
    img.save(tmp_path / "g.png")
    out = load_image(tmp_path / "g.png")
    assert out.shape == (9, 7, 3)
    expect = np.asarray(img.convert("L"))
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], expect)


def test_rgba_and_la_drop_alpha(tmp_path):
    arr = _rgb()
    alpha = np.full(arr.shape[:2], 7, dtype=np.uint8)
    Image.fromarray(np.dstack([arr, alpha]), "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(load_image(tmp_path / "a.png"), arr)
    Image.fromarray(np.dstack([arr[..., 0], alpha]), "LA").save(tmp_path / "la.png")
    out = load_image(tmp_path / "la.png")
    np.testing.assert_array_equal(out[..., 1], arr[..., 0])


def test_palette_with_transparency(tmp_path):
    img = Image.fromarray(_rgb()).quantize(colors=16)
    img.info["transparency"] = 0
    img.save(tmp_path / "p.png", transparency=0)
    out = load_image(tmp_path / "p.png")
    expect = np.asarray(img.convert("RGB"))
    assert out.shape == (12, 16, 3)
    np.testing.assert_array_equal(out, expect)


def test_16bit_gray(tmp_path):
    v = np.array([[0, 257, 1000, 32768, 65535, 65407]], dtype=np.uint16)
    Image.fromarray(v).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    out = load_image(tmp_path / "g16.png")
    expect = np.rint(v / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(out[..., 0], expect)
    np.testing.assert_array_equal(out[..., 2], expect)


@pytest.mark.parametrize("filt", [0, 2])
def test_16bit_rgb(tmp_path, filt):
    rng = np.random.default_rng(3)
    v = rng.integers(0, 65536, (5, 6, 3)).astype(np.uint16)
    v[0, 0] = [65535, 0, 128]
    v[0, 1] = [65407, 640, 32767]  # round(v/257) = 255, 2, 127 while the high byte is 255, 2, 127
    v[0, 2] = [65278, 767, 1151]  # round(v/257) = 254, 3, 4 while the high byte is 254, 2, 4
    _png16_rgb(tmp_path / "c16.png", v, filt=filt)
    out = load_image(tmp_path / "c16.png")
    assert out.dtype == np.uint8 and out.shape == (5, 6, 3)
    # Pillow keeps the high byte of 16-bit colour: within 1 of the exact round(v / 257)
    assert np.abs(out.astype(int) - np.rint(v / 257.0).astype(int)).max() <= 1


def test_cmyk_jpeg(tmp_path):
    arr = np.zeros((16, 16, 3), np.uint8)
    arr[:, :8] = (200, 30, 30)
    Image.fromarray(arr).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    out = load_image(tmp_path / "c.jpg")
    assert out.shape == (16, 16, 3)
    assert np.abs(out[4, 2].astype(int) - (200, 30, 30)).max() < 20
    assert np.abs(out[4, 13].astype(int)).max() < 20


def test_float_tiff(tmp_path):
    f = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    Image.fromarray(f, mode="F").save(tmp_path / "f.tif")
    out = load_image(tmp_path / "f.tif")
    np.testing.assert_array_equal(out[..., 0], np.rint(f * 255).astype(np.uint8))


def test_exif_orientation(tmp_path):
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :10] = 255  # left half white
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 CW when displayed
    img.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    out = load_image(tmp_path / "r.jpg")
    assert out.shape == (20, 10, 3)
    assert out[2, 5].mean() > 200 and out[17, 5].mean() < 50  # white ends up on top


def test_truncated_png(tmp_path):
    data = (save_png(tmp_path / "ok.png", _rgb(64, 64), compress_level=0)).read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError) as ei:
        load_image(tmp_path / "t.png")
    assert ei.value.path == tmp_path / "t.png"
    assert "t.png" in str(ei.value) and ei.value.reason in str(ei.value)


def test_truncated_jpeg(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(buf, format="JPEG", quality=90)
    data = buf.getvalue()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated"):
        load_image(tmp_path / "t.jpg")


def test_garbage_missing_empty(tmp_path):
    (tmp_path / "x.png").write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(ImageReadError, match="not an image"):
        load_image(tmp_path / "x.png")
    with pytest.raises(ImageReadError, match="does not exist"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        load_image(tmp_path / "e.png")
    with pytest.raises(ImageReadError):
        load_image(tmp_path)


def test_max_bytes_is_a_memory_cap(tmp_path):
    p = save_png(tmp_path / "big.png", _rgb(50, 40))  # Pillow keeps RGB as 4 bytes/px, the array 3
    with pytest.raises(ImageReadError) as ei:
        load_image(p, max_bytes=10_000)
    msg = str(ei.value)
    assert "big.png" in msg and "40x50" in msg and "13.7 KB" in msg and "max_bytes=10,000" in msg
    assert load_image(p, max_bytes=14_000).shape == (50, 40, 3)
    # reduced at load time, the RGB array is smaller: 8000 + 3 * 16 * 20 bytes fit under 10 000
    assert load_image(p, max_bytes=10_000, max_side=20).shape == (20, 16, 3)


def test_iter_image_files(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    for rel in ["a.PNG", "b/c.jpeg", "b/d.txt", ".e.png", ".hidden/f.png", "g.TIFF"]:
        (tmp_path / rel).write_bytes(b"x")
    got = [p.relative_to(tmp_path).as_posix() for p in iter_image_files(tmp_path)]
    assert got == ["a.PNG", "b/c.jpeg", "g.TIFF"]
    assert ".webp" in IMAGE_EXTENSIONS


def test_draft_side_jpeg(tmp_path):
    Image.fromarray(_rgb(300, 400)).save(tmp_path / "big.jpg", quality=90)
    full = load_image(tmp_path / "big.jpg")
    small = load_image(tmp_path / "big.jpg", draft_side=90)
    assert full.shape == (300, 400, 3)
    assert small.shape[1] < 400 and max(small.shape[:2]) >= 90
