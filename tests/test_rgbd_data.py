"""Tests for the real RGB-D readers (trustvis.data.rgbd) and the reader of users' RGB-D folders.

The package data (scikit-image, opencv-doc, visp-images-data, mrpt-common) is read once per module; a
test whose package is missing is skipped with the command that installs it.
"""

from __future__ import annotations

import gzip
import logging
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from trustvis.data import rgbd
from trustvis.data import sources as S
from trustvis.data.io import ImageReadError

PACKAGES = {
    "middlebury": "scikit-image",
    "aloe": "opencv-doc",
    "castel": "visp-images-data",
    "kinect": "mrpt-common",
}
SENSORS = {"middlebury": "stereo-gt", "aloe": "stereo-gt", "castel": "sr300", "kinect": "kinect"}
# (median depth bounds in metres, minimum valid fraction, number of frames)
EXPECT = {
    "middlebury": ((2.6, 2.9), 0.9, 1),
    "aloe": ((0.98, 1.02), 0.9, 1),
    "castel": ((0.2, 0.4), 0.55, 30),
    "kinect": ((1.8, 2.3), 0.8, 1),
}


@pytest.fixture(scope="module")
def frames() -> dict[str, list[rgbd.RGBDFrame] | None]:
    """Each source's frames, read once (None when its package is missing)."""
    out = {}
    for name, read in rgbd._READERS.items():
        try:
            out[name] = read()
        except FileNotFoundError:
            out[name] = None
    return out


def _need(frames, name) -> list[rgbd.RGBDFrame]:
    if frames[name] is None:
        pytest.skip(f"RGB-D source {name} not installed: {rgbd._INSTALL[name]}")
    return frames[name]


def _kinect_payload() -> bytes:
    path = S.get_source("kinect").base_dir()
    if path is None or not (path / "tests_rgbd.rawlog").is_file():
        pytest.skip(f"mrpt-common not installed: {rgbd._INSTALL['kinect']}")
    return gzip.decompress((path / "tests_rgbd.rawlog").read_bytes())


def _write_rawlog(path: Path, payload: bytes) -> Path:
    path.write_bytes(gzip.compress(payload, compresslevel=1, mtime=0))
    return path


# ---- the package sources --------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(rgbd.RGBD_SOURCES))
def test_source_frames(frames, name):
    got = _need(frames, name)
    (lo, hi), min_valid, n = EXPECT[name]
    assert len(got) == n
    for f in got:
        assert f.rgb.dtype == np.uint8 and f.rgb.ndim == 3 and f.rgb.shape[2] == 3
        assert f.depth.dtype == np.float32 and f.depth.shape == f.rgb.shape[:2]
        assert np.all(np.isfinite(f.depth)) and f.depth.min() >= 0
        valid = f.depth > 0
        assert valid.mean() >= min_valid, (f.name, valid.mean())
        assert lo <= float(np.median(f.depth[valid])) <= hi, (f.name, np.median(f.depth[valid]))
        assert f.sensor == SENSORS[name] and f.metric == (name != "aloe")
        assert PACKAGES[name] in f.source
    assert len({f.name for f in got}) == len(got)
    assert len({f.scene for f in got}) == 1


def test_middlebury_depth_formula(frames):
    (f,) = _need(frames, "middlebury")
    disp = np.load(S.get_source("middlebury").base_dir() / "motorcycle_disp.npz")["arr_0"]
    v, u = 250, 370
    assert np.isfinite(disp[v, u])
    assert f.depth[v, u] == pytest.approx(994.978 * 193.001 / (disp[v, u] + 31.086) / 1000, rel=1e-5)
    assert np.all(f.depth[~np.isfinite(disp)] == 0)
    assert 2.0 < f.depth[f.depth > 0].min() and f.depth.max() < 5.1


def test_status_counts_frames(frames):
    status = rgbd.rgbd_status()
    assert list(status) == list(rgbd.RGBD_SOURCES)
    for name, n in status.items():
        assert n == (0 if frames[name] is None else len(frames[name]))
    rows = {r["name"]: r for r in S.status()}
    for name in rgbd.RGBD_SOURCES:
        assert rows[name]["purpose"] == "rgbd" and rows[name]["n_images"] == status[name]
    # photos are counted as before: the rgbd rows do not add to "N real photos available"
    n_photos = sum(r["n_images"] for r in rows.values() if r["purpose"] == "photos" and r["installed"])
    assert f"{n_photos} real photos available." in S.format_status(list(rows.values()))


def test_apt_root_missing_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUSTVIS_APT_ROOT", str(tmp_path))
    status = rgbd.rgbd_status()
    assert status["aloe"] == status["castel"] == status["kinect"] == 0
    with pytest.raises(FileNotFoundError, match="sudo apt-get install visp-images-data") as e:
        rgbd.real_rgbd_frames(["aloe", "castel", "kinect"])
    assert "mrpt-common" in str(e.value) and "opencv-doc" in str(e.value)
    with pytest.raises(FileNotFoundError, match="mrpt-common"):
        rgbd.read_mrpt_rawlog()
    with pytest.raises(KeyError, match="choose from"):
        rgbd.real_rgbd_frames(["nope"])


def test_real_rgbd_frames_order(frames):
    _need(frames, "aloe")
    got = rgbd.real_rgbd_frames(["kinect", "aloe"]) if frames["kinect"] else rgbd.real_rgbd_frames(["aloe"])
    assert got[0].name == "aloe"  # the fixed order of RGBD_SOURCES, whatever the order asked
    if frames["kinect"]:
        assert [f.name for f in got] == ["aloe", "kinect/mrpt-0"]


def test_castel_intrinsics_match_package_files(frames):
    _need(frames, "castel")
    base = S.get_source("castel").base_dir()
    for xml, k in (("chateau.xml", rgbd.CASTEL_COLOR_K), ("chateau_depth.xml", rgbd.CASTEL_DEPTH_K)):
        text = (base / xml).read_text()
        vals = [float(text.split(f"<{t}>")[1].split("<")[0]) for t in ("px", "py", "u0", "v0")]
        assert np.allclose(vals, k), xml


def test_castel_gray_and_bin_layout(frames):
    f = _need(frames, "castel")[7]
    assert f.name == "castel/0007" and np.array_equal(f.rgb[..., 0], f.rgb[..., 2])
    raw = (S.get_source("castel").base_dir() / "castel/depth_image_0007.bin").read_bytes()
    assert struct.unpack("<II", raw[:8]) == (480, 640) and len(raw) == 8 + 2 * 480 * 640


# ---- registration sanity --------------------------------------------------------------------------


def _silhouette_score(rgb: np.ndarray, depth: np.ndarray, shifts) -> list[float]:
    """Mean image gradient on the outline of the valid-depth region (speckle removed), for each shift."""
    m = ndimage.binary_opening(depth > 0, iterations=2)
    lab, n = ndimage.label(~m)
    m |= np.isin(lab, np.nonzero(ndimage.sum(~m, lab, range(1, n + 1)) < 400)[0] + 1)  # fill small holes
    edge = m & ~ndimage.binary_erosion(m)
    edge[:3] = edge[-3:] = False
    edge[:, :3] = edge[:, -3:] = False
    return _gradient_at(rgb, np.nonzero(edge), shifts)


def _gradient_at(rgb, pts, shifts) -> list[float]:
    gray = ndimage.gaussian_filter(rgb.astype(np.float64).mean(2), 1.0)
    grad = np.hypot(ndimage.sobel(gray, 0), ndimage.sobel(gray, 1))
    h, w = gray.shape
    out = []
    for dx, dy in shifts:
        u, v = pts[1] + dx, pts[0] + dy
        k = (u >= 0) & (u < w) & (v >= 0) & (v < h)
        out.append(float(grad[v[k], u[k]].mean()))
    return out


def test_castel_registration(frames, tmp_path):
    """Depth outlines sit on image edges: better than the depth moved 40 px, or than the extrinsic used
    the wrong way round (depth_M_color instead of its inverse, ~100 px off)."""
    got = _need(frames, "castel")
    base = S.get_source("castel").base_dir()
    (tmp_path / "castel").mkdir()
    for idx in ("0000", "0010", "0020"):
        for name in (f"image_{idx}.pgm", f"depth_image_{idx}.bin"):
            (tmp_path / "castel" / name).symlink_to(base / "castel" / name)
    m = np.loadtxt(base / "depth_M_color.txt")
    np.savetxt(tmp_path / "depth_M_color.txt", np.linalg.inv(m))
    wrong = {f.name: f for f in rgbd.read_visp_castel(tmp_path / "castel")}
    assert list(wrong) == ["castel/0000", "castel/0010", "castel/0020"]
    shifts = [(0, 0), (-40, 0), (40, 0), (0, -40), (0, 40)]
    right_total, shifted_total, wrong_total = 0.0, np.zeros(4), 0.0
    for f in (got[0], got[10], got[20]):
        s = _silhouette_score(f.rgb, f.depth, shifts)
        right_total += s[0]
        shifted_total += s[1:]
        wrong_total += _silhouette_score(f.rgb, wrong[f.name].depth, [(0, 0)])[0]
    assert right_total > 1.1 * wrong_total, (right_total, wrong_total)
    assert right_total > 1.05 * shifted_total.max(), (right_total, shifted_total)


def test_kinect_registration(frames):
    """Depth discontinuities sit on image edges; the measured residual shift improves on the raw range
    image (the frame without it) and on larger shifts."""
    (f,) = _need(frames, "kinect")
    d = ndimage.median_filter(f.depth, 5)
    rel = np.hypot(ndimage.sobel(d, 0), ndimage.sobel(d, 1)) / np.where(d > 0, d, 1)
    edges = np.nonzero((ndimage.minimum_filter(d, 5) > 0) & (rel > 0.5))
    dx, dy = rgbd.MRPT_RESIDUAL_SHIFT
    s = _gradient_at(f.rgb, edges, [(0, 0), (-dx, -dy), (-16, 0), (16, 0), (0, -16), (0, 16)])
    assert s[0] > 1.1 * s[1], s  # the raw range image is ~7 px off
    assert s[0] > 1.05 * max(s[2:]), s


# ---- MRPT rawlog ----------------------------------------------------------------------------------


def test_mrpt_decoder(frames):
    (f,) = _need(frames, "kinect")
    assert f.name == "kinect/mrpt-0" and f.scene == "kinect-mrpt"
    assert f.rgb.shape == (480, 640, 3) and "OPENNI2" in f.source
    r = f.rgb.astype(float)
    assert r[420:470, 70:90, 0].mean() - r[420:470, 70:90, 2].mean() > 30  # wooden shelf: BGR -> RGB done
    assert r[20:100, 200:400, 2].mean() > r[20:100, 200:400, 0].mean()  # bluish white wall
    assert 1.5 < f.depth[f.depth > 0].min() and f.depth.max() <= 2.6  # Kinect millimetres, maxRange 5 m


def test_mrpt_truncated_and_wrong_class(tmp_path):
    payload = _kinect_payload()
    name = b"mrpt::obs::CObservation3DRangeScan"
    assert payload[0] == 0x80 | len(name) and payload[1 : 1 + len(name)] == name

    cut = _write_rawlog(tmp_path / "cut.rawlog", payload[:4_600_000])
    with pytest.raises(rgbd.RGBDReadError, match="truncated") as e:
        rgbd.read_mrpt_rawlog(cut)
    assert "cut.rawlog" in str(e.value) and "\n" not in str(e.value) and "range image" in str(e.value)

    gz = tmp_path / "gzcut.rawlog"
    gz.write_bytes(gzip.compress(payload[:200_000], compresslevel=1)[:5000])
    with pytest.raises(rgbd.RGBDReadError, match="truncated gzip") as e:
        rgbd.read_mrpt_rawlog(gz)
    assert "gzcut.rawlog" in str(e.value)

    other = b"mrpt::obs::CObservationImage"
    wrong = _write_rawlog(
        tmp_path / "other.rawlog", bytes([0x80 | len(other)]) + other + payload[1 + len(name) :][:5000]
    )
    with pytest.raises(rgbd.RGBDReadError, match="CObservationImage") as e:
        rgbd.read_mrpt_rawlog(wrong)
    assert "other.rawlog" in str(e.value) and "\n" not in str(e.value)

    v = 1 + len(name)
    assert payload[v] == 9
    old = _write_rawlog(tmp_path / "v3.rawlog", payload[:v] + b"\x03" + payload[v + 1 : v + 5000])
    with pytest.raises(rgbd.RGBDReadError, match="version 3") as e:
        rgbd.read_mrpt_rawlog(old)
    assert "v3.rawlog" in str(e.value)


def test_mrpt_projection_path(frames, tmp_path):
    """Intrinsics that are not MRPT's defaults are used: colour = depth intrinsics and a ~1 mm pose give
    the raw range image back, i.e. the default-calibration frame without its residual shift."""
    (f,) = _need(frames, "kinect")
    payload = bytearray(_kinect_payload())
    cam = b"\x92mrpt::img::TCamera"
    first = payload.find(cam)
    second = payload.find(cam, first + 1)
    assert first > 0 and second > first
    at = second + len(cam) + 1 + 9 * 8  # version byte, focalLengthMeters, dist[8]
    assert struct.unpack_from("<4d", payload, at) == pytest.approx(rgbd.MRPT_DEFAULT_COLOR_K)
    struct.pack_into("<4d", payload, at, *rgbd.MRPT_DEFAULT_DEPTH_K)
    (p,) = rgbd.read_mrpt_rawlog(_write_rawlog(tmp_path / "calib.rawlog", bytes(payload)))
    shifted = rgbd._shift(p.depth, *rgbd.MRPT_RESIDUAL_SHIFT)
    both = (shifted > 0) & (f.depth > 0)
    assert both.mean() > 0.8
    assert np.mean(np.abs(shifted[both] - f.depth[both]) <= 0.01 * f.depth[both]) > 0.95


# ---- users' folders -------------------------------------------------------------------------------


def _rgb(path: Path, w: int = 16, h: int = 12, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


def _depth(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def make_rgbd_folder(root: Path) -> dict[str, np.ndarray]:
    """real/object: a (png, 16-bit depth), b (jpg, 8-bit depth); spoof/ipad: c (8-bit depth at half
    size); spoof/eink: d (garbage depth), e (no depth)."""
    d16 = (np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) * 300).astype(np.uint16)
    d8 = np.tile(np.arange(16, dtype=np.uint8) * 10, (12, 1))
    d8_half = np.array([[0, 50, 100, 150, 200, 250, 30, 60]] * 6, dtype=np.uint8)
    _rgb(root / "real/object/a_rgb.png")
    _depth(root / "real/object/a_depth.png", d16)
    _rgb(root / "real/object/b_rgb.jpg", seed=1)
    _depth(root / "real/object/b_depth.png", d8)
    _rgb(root / "spoof/ipad/c_rgb.png", seed=2)
    _depth(root / "spoof/ipad/c_depth.png", d8_half)
    _rgb(root / "spoof/eink/d_rgb.png", seed=3)
    (root / "spoof/eink/d_depth.png").write_bytes(b"this is not a png at all")
    _rgb(root / "spoof/eink/e_rgb.png", seed=4)
    return {"a": d16, "b": d8, "c": d8_half}


def test_read_rgbd_folder(tmp_path, caplog):
    depths = make_rgbd_folder(tmp_path)
    with caplog.at_level(logging.WARNING, logger="trustvis.data.rgbd"):
        folder = rgbd.read_rgbd_folder(tmp_path)
    got = {(it.id, it.label, it.medium) for it in folder.items}
    assert got == {("a", 0, "object"), ("b", 0, "object"), ("c", 1, "ipad")}
    skipped = dict(folder.skipped)
    assert set(Path(p).name for p in skipped) == {"d_depth.png", "e_rgb.png"}
    assert "depth unreadable" in skipped[str(tmp_path / "spoof/eink/d_depth.png")]
    assert "e_depth.png" in skipped[str(tmp_path / "spoof/eink/e_rgb.png")]
    assert "d_depth.png" in caplog.text and "e_rgb.png" in caplog.text
    for it in folder.items:
        rgb, depth = rgbd.load_pair(it)
        assert rgb.dtype == np.uint8 and rgb.shape == (12, 16, 3)
        assert depth.dtype == np.float32 and depth.shape == (12, 16)
        if it.id == "c":  # half-size depth, resized by nearest neighbour
            assert np.array_equal(depth, np.kron(depths["c"], np.ones((2, 2))).astype(np.float32))
        else:
            assert np.array_equal(depth, depths[it.id].astype(np.float32))  # raw values, 16-bit kept
    # without the header check, the garbage depth is listed and fails when loaded, naming the file
    loose = rgbd.read_rgbd_folder(tmp_path, check=False)
    (bad,) = [it for it in loose.items if it.id == "d"]
    with pytest.raises(ImageReadError, match="d_depth.png"):
        rgbd.load_pair(bad)
    assert [Path(p).name for p, _ in loose.skipped] == ["e_rgb.png"]


def test_read_rgbd_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere") as e:
        rgbd.read_rgbd_folder(tmp_path / "nowhere")
    assert "_depth.png" in str(e.value)  # says what layout is expected
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="neither real/ nor spoof/"):
        rgbd.read_rgbd_folder(tmp_path / "empty")
    (tmp_path / "nopairs/real/object").mkdir(parents=True)
    with pytest.raises(ValueError, match="No usable RGB-D pair"):
        rgbd.read_rgbd_folder(tmp_path / "nopairs")
    _rgb(tmp_path / "onlybad/spoof/tv/x_rgb.png")
    with pytest.raises(ValueError, match="x_rgb.png"):  # names the first skipped pair
        rgbd.read_rgbd_folder(tmp_path / "onlybad")


def test_load_depth_png(tmp_path):
    d16 = np.array([[0, 1, 65535], [1000, 2000, 3000]], dtype=np.uint16)
    _depth(tmp_path / "d16.png", d16)
    assert np.array_equal(rgbd.load_depth_png(tmp_path / "d16.png"), d16.astype(np.float32))
    _rgb(tmp_path / "rgb.png")
    with pytest.raises(ImageReadError, match="RGB") as e:
        rgbd.load_depth_png(tmp_path / "rgb.png")
    assert "rgb.png" in str(e.value)
    _depth(tmp_path / "big.png", np.random.default_rng(0).integers(0, 65535, (64, 64), dtype=np.uint16))
    good = (tmp_path / "big.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(ImageReadError, match="trunc.png"):
        rgbd.load_depth_png(tmp_path / "trunc.png")
