"""Bad-input corpus, RGB-D readers (issue 21): every bad file ends in a correct result or a one-line error
naming the file.

Depth PNGs that are corrupt, truncated, RGB, palette, 2-channel or JPEG under a .png name; a depth map of
another size (resized: not an error) or another aspect ratio (skipped); a zero-byte rgb; ViSP depth .bin
files with a wrong header; MRPT rawlogs that are truncated, empty, plain (not gzip) or not rawlogs at all;
folders with only real/, with neither real/ nor spoof/, or given as a file.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trustvis.data import rgbd
from trustvis.data.io import ImageReadError

MRPT_CLASS = b"mrpt::obs::CObservation3DRangeScan"


def _one_line(err: BaseException, *needles: str) -> str:
    msg = str(err)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, f"{n!r} not named in: {msg}"
    return msg


def _rgb(path: Path, w: int = 16, h: int = 12) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _depth(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _pair(root: Path, medium: str, pid: str, depth: np.ndarray | None = None, label: str = "spoof"):
    rgb = _rgb(root / label / medium / f"{pid}_rgb.png")
    d = root / label / medium / f"{pid}_depth.png"
    if depth is not None:
        _depth(d, depth)
    return rgbd.PairItem(rgb=rgb, depth=d, label=int(label == "spoof"), medium=medium, id=pid)


# ---- depth PNGs -----------------------------------------------------------------------------------


def test_corrupt_depth_png(tmp_path):
    bad = tmp_path / "x_depth.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    with pytest.raises(ImageReadError) as e:
        rgbd.load_depth_png(bad)
    _one_line(e.value, "x_depth.png")
    _depth(tmp_path / "full.png", np.random.default_rng(1).integers(0, 60000, (64, 64), dtype=np.uint16))
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "half_depth.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError) as e:
        rgbd.load_depth_png(tmp_path / "half_depth.png")
    _one_line(e.value, "half_depth.png", "truncated")


@pytest.mark.parametrize(
    "mode, needle",
    [("RGB", "3-channel RGB"), ("RGBA", "4-channel"), ("P", "palette"), ("LA", "2-channel"), ("1", "1-bit")],
)
def test_depth_png_of_wrong_mode(tmp_path, mode, needle):
    path = tmp_path / f"{mode}_depth.png"
    Image.new(mode, (8, 6)).save(path)
    with pytest.raises(ImageReadError) as e:
        rgbd.load_depth_png(path)
    _one_line(e.value, path.name, needle, "1-channel")


def test_depth_that_is_a_jpeg(tmp_path):
    path = tmp_path / "j_depth.png"
    Image.new("L", (8, 6)).save(path, format="JPEG")
    with pytest.raises(ImageReadError) as e:
        rgbd.load_depth_png(path)
    _one_line(e.value, "j_depth.png", "PNG", "JPEG")


def test_missing_and_empty_depth(tmp_path):
    with pytest.raises(ImageReadError) as e:
        rgbd.load_depth_png(tmp_path / "none_depth.png")
    _one_line(e.value, "none_depth.png", "does not exist")
    (tmp_path / "zero_depth.png").write_bytes(b"")
    with pytest.raises(ImageReadError) as e:
        rgbd.load_depth_png(tmp_path / "zero_depth.png")
    _one_line(e.value, "zero_depth.png", "empty")


def test_depth_of_another_size_is_resized(tmp_path):
    small = np.array([[1, 2], [3, 4]], dtype=np.uint16) * 1000  # 2x2 for a 16x12 rgb: not the same aspect
    item = _pair(tmp_path, "tv", "a", np.kron(small, np.ones((3, 4), dtype=np.uint16)))  # 6x8, 4:3 as the rgb
    rgb, depth = rgbd.load_pair(item)
    assert rgb.shape == (12, 16, 3) and depth.shape == (12, 16) and depth.dtype == np.float32
    assert np.array_equal(depth, np.kron(small, np.ones((6, 8))).astype(np.float32))  # nearest: no new values
    folder = rgbd.read_rgbd_folder(tmp_path)
    assert [it.id for it in folder.items] == ["a"] and folder.skipped == []


def test_rgb_with_exif_rotation(tmp_path):
    """A phone photo stored sideways with an EXIF orientation: the depth (no tag) is turned the same way."""
    depth = np.arange(12 * 16, dtype=np.uint8).reshape(12, 16)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    rgb = np.repeat(depth[..., None], 3, axis=2)
    path = tmp_path / "real/object/r_rgb.png"
    path.parent.mkdir(parents=True)
    Image.fromarray(rgb).save(path, exif=exif)
    _depth(tmp_path / "real/object/r_depth.png", depth[::2, ::2].copy())  # half size, stored like the rgb
    (item,) = rgbd.read_rgbd_folder(tmp_path).items
    got_rgb, got_depth = rgbd.load_pair(item)
    assert got_rgb.shape == (16, 12, 3) and got_depth.shape == (16, 12)
    assert np.array_equal(got_rgb[..., 0], np.rot90(depth, -1))
    assert np.array_equal(got_depth, np.rot90(np.kron(depth[::2, ::2], np.ones((2, 2))), -1))


def test_depth_of_another_aspect_is_skipped(tmp_path):
    _pair(tmp_path, "tv", "good", np.zeros((12, 16), np.uint8))
    _pair(tmp_path, "tv", "wide", np.zeros((10, 40), np.uint8))
    folder = rgbd.read_rgbd_folder(tmp_path)
    assert [it.id for it in folder.items] == ["good"]
    ((path, reason),) = folder.skipped
    assert path.endswith("wide_depth.png") and "aspect ratio" in reason
    assert "40x10" in reason and "16x12" in reason


def test_rgb_png_given_as_depth_in_a_folder(tmp_path):
    _pair(tmp_path, "tv", "ok", np.zeros((12, 16), np.uint16))
    _rgb(tmp_path / "spoof/tv/col_rgb.png")
    _rgb(tmp_path / "spoof/tv/col_depth.png")  # a colour-mapped depth picture
    folder = rgbd.read_rgbd_folder(tmp_path)
    assert [it.id for it in folder.items] == ["ok"]
    ((path, reason),) = folder.skipped
    assert Path(path).name == "col_depth.png" and "RGB" in reason


def test_zero_byte_rgb(tmp_path):
    item = _pair(tmp_path, "phone", "z", np.zeros((12, 16), np.uint8))
    item.rgb.write_bytes(b"")
    with pytest.raises(ImageReadError) as e:
        rgbd.load_pair(item)
    _one_line(e.value, "z_rgb.png", "empty")
    _pair(tmp_path, "phone", "ok", np.zeros((12, 16), np.uint8))
    folder = rgbd.read_rgbd_folder(tmp_path)
    assert [it.id for it in folder.items] == ["ok"]
    ((path, reason),) = folder.skipped
    assert Path(path).name == "z_rgb.png" and "empty" in reason


# ---- folders --------------------------------------------------------------------------------------


def test_folder_with_only_real(tmp_path):
    _pair(tmp_path, "object", "r1", np.zeros((12, 16), np.uint8), label="real")
    folder = rgbd.read_rgbd_folder(tmp_path)
    assert [(it.id, it.label, it.medium) for it in folder.items] == [("r1", 0, "object")]


def test_folder_with_neither(tmp_path):
    _rgb(tmp_path / "photos/a_rgb.png")
    with pytest.raises(ValueError) as e:
        rgbd.read_rgbd_folder(tmp_path)
    _one_line(e.value, str(tmp_path), "neither real/ nor spoof/", "photos", "_depth.png")
    with pytest.raises(ValueError) as e:
        rgbd.read_rgbd_folder(tmp_path / "photos/a_rgb.png")
    _one_line(e.value, "a_rgb.png", "not a folder")


def test_stray_and_duplicate_files(tmp_path):
    _pair(tmp_path, "tv", "ok", np.zeros((12, 16), np.uint8))
    _rgb(tmp_path / "spoof/loose_rgb.png")  # not inside a <medium> folder
    _depth(tmp_path / "spoof/tv/orphan_depth.png", np.zeros((12, 16), np.uint8))  # no rgb
    _rgb(tmp_path / "spoof/tv/ok_rgb.jpg")  # a second rgb for id "ok"
    (tmp_path / "spoof/tv/notes.txt").write_text("ignored")
    folder = rgbd.read_rgbd_folder(tmp_path)
    assert [(it.id, it.rgb.name) for it in folder.items] == [("ok", "ok_rgb.jpg")]
    reasons = {Path(p).name: r for p, r in folder.skipped}
    assert set(reasons) == {"loose_rgb.png", "orphan_depth.png", "ok_rgb.png"}
    assert "<medium>" in reasons["loose_rgb.png"] and "without an rgb" in reasons["orphan_depth.png"]
    assert "second rgb" in reasons["ok_rgb.png"]


# ---- ViSP castel .bin -----------------------------------------------------------------------------


def _castel(root: Path, depth_bytes: bytes) -> Path:
    (root / "castel").mkdir(parents=True)
    Image.new("L", (4, 3), 100).save(root / "castel/image_0000.pgm")
    (root / "castel/depth_image_0000.bin").write_bytes(depth_bytes)
    np.savetxt(root / "depth_M_color.txt", np.eye(4))
    return root / "castel"


def test_castel_bin_good_tiny(tmp_path):
    raw = np.array([[0, 2000, 2000, 2000]] * 3, dtype="<u2")  # a header that matches the length is read
    (frame,) = rgbd.read_visp_castel(_castel(tmp_path, struct.pack("<II", 3, 4) + raw.tobytes()))
    assert frame.name == "castel/0000" and frame.rgb.shape == (3, 4, 3) and frame.depth.shape == (3, 4)
    assert frame.depth.dtype == np.float32 and np.all(np.isfinite(frame.depth)) and frame.depth.min() >= 0


@pytest.mark.parametrize(
    "data, needle",
    [
        (struct.pack("<II", 480, 640) + b"\x00" * 100, "header says 480x640"),
        (struct.pack("<II", 3, 4) + b"\x00" * 25, "header says 3x4"),
        (struct.pack("<II", 0, 4), "header says 0x4"),
        (b"\x01\x02\x03", "fewer than the 8-byte"),
    ],
)
def test_castel_bin_wrong_header(tmp_path, data, needle):
    root = _castel(tmp_path, data)
    with pytest.raises(rgbd.RGBDReadError) as e:
        rgbd.read_visp_castel(root)
    _one_line(e.value, "depth_image_0000.bin", needle)


def test_castel_bad_extrinsic(tmp_path):
    root = _castel(tmp_path, struct.pack("<II", 3, 4) + b"\x00" * 24)
    (tmp_path / "depth_M_color.txt").write_text("1 0 0\n0 1 0\n")
    with pytest.raises(rgbd.RGBDReadError) as e:
        rgbd.read_visp_castel(root)
    _one_line(e.value, "depth_M_color.txt", "4x4")
    with pytest.raises(FileNotFoundError, match="image_NNNN.pgm"):
        rgbd.read_visp_castel(tmp_path / "nothing")


# ---- MRPT rawlog ----------------------------------------------------------------------------------


def _scan_start() -> bytes:
    """The first fields of a CObservation3DRangeScan v9: header, maxRange, an identity CPose3D v3."""
    pose = b"\x94mrpt::poses::CPose3D\x03" + struct.pack("<12d", 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1) + b"\x88"
    return bytes([0x80 | len(MRPT_CLASS)]) + MRPT_CLASS + b"\x09" + struct.pack("<f", 5.0) + pose


def test_truncated_rawlog(tmp_path):
    plain = tmp_path / "plain.rawlog"  # not gzip-compressed: read as it is
    plain.write_bytes(_scan_start() + b"\x01" + struct.pack("<I", 1000) + b"\x00" * 10)
    with pytest.raises(rgbd.RGBDReadError) as e:
        rgbd.read_mrpt_rawlog(plain)
    _one_line(e.value, "plain.rawlog", "truncated", "3D points")
    gz = tmp_path / "gz.rawlog"
    gz.write_bytes(gzip.compress(_scan_start() + b"\x00\x01")[:-6])  # stream cut inside the gzip trailer
    with pytest.raises(rgbd.RGBDReadError) as e:
        rgbd.read_mrpt_rawlog(gz)
    _one_line(e.value, "gz.rawlog", "truncated")


def test_rawlog_without_range_image(tmp_path):
    path = tmp_path / "norange.rawlog"
    path.write_bytes(gzip.compress(_scan_start() + b"\x00" + b"\x00" + b"\x00" * 64))
    with pytest.raises(rgbd.RGBDReadError) as e:
        rgbd.read_mrpt_rawlog(path)
    _one_line(e.value, "norange.rawlog", "no range image")


@pytest.mark.parametrize(
    "data, needle",
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "object header"),
        (b"\x8dmrpt::obs::CX\x01" + b"\x00" * 40, "'mrpt::obs::CX'"),
        (bytes([0x80 | len(MRPT_CLASS)]) + MRPT_CLASS + b"\x0b" + b"\x00" * 40, "version 11"),
        (b"\x1f\x8b\x08\x00" + b"\xff" * 40, "gzip"),
    ],
)
def test_not_a_range_scan_rawlog(tmp_path, data, needle):
    path = tmp_path / "odd.rawlog"
    path.write_bytes(data)
    with pytest.raises(rgbd.RGBDReadError) as e:
        rgbd.read_mrpt_rawlog(path)
    _one_line(e.value, "odd.rawlog", needle)


def test_missing_rawlog(tmp_path):
    with pytest.raises(FileNotFoundError, match="gone.rawlog"):
        rgbd.read_mrpt_rawlog(tmp_path / "gone.rawlog")
