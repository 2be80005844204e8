"""The display + camera + ToF simulator behind RecaptureBench's spoof pairs (trustvis.data.display)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from trustvis.data import display as D

WHITE = np.full((64, 64, 3), 255, np.uint8)
FRONTAL = {"tilt_x": 0.0, "tilt_y": 0.0, "roll": 0.0, "distance": 0.3, "bezel": [], "glare": 0.0, "veil": 0.0}


def _flat_display(layout: str) -> D.DisplayType:
    return D.DisplayType("test", layout, (1.0, 2.0), (2.2, 2.2), (1.0, 1.0, 1.0), (0.5, 0.5), 0.0, 0.0)


def _off_lattice(img: np.ndarray, period: tuple[float, float]) -> float:
    """Fraction of the non-DC spectral energy of img (H, W) off the lattice of a (py, px)-periodic image."""
    h, w = img.shape
    e = np.abs(np.fft.fft2(img)) ** 2
    e[0, 0] = 0.0
    ky, kx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    on = (ky % (h / period[0]) == 0) & (kx % (w / period[1]) == 0)
    return float(e[~on].sum() / e.sum())


# --- sub-pixel layouts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", D.SUBPIXEL_LAYOUTS)
def test_tile_redistributes_light(layout):
    rows, cols = D.layout_period(layout)
    tile = D.subpixel_tile(layout, 6)
    assert tile.shape == (rows * 6, cols * 6, 3) and tile.dtype == np.float32
    assert tile.min() >= 0
    np.testing.assert_allclose(tile.mean(axis=(0, 1)), 1.0, atol=1e-6)
    assert (tile == 0).any(), "black matrix between sub-pixels"


def test_stripe_order():
    def centroid(layout, axis):
        prof = D.subpixel_tile(layout, 30).mean(axis=1 - axis)  # (30, 3) profile along `axis`
        return (prof * np.arange(30)[:, None]).sum(0) / prof.sum(0)

    r, g, b = centroid("rgb-stripe", 1)
    assert r < g < b
    r, g, b = centroid("bgr-stripe", 1)
    assert b < g < r
    r, g, b = centroid("hstripe", 0)
    assert r < g < b


@pytest.mark.parametrize("layout", D.SUBPIXEL_LAYOUTS)
def test_radiance_has_the_declared_period(layout):
    s, n = 8, 16  # sub-samples per display pixel; display pixels per side (a multiple of every period)
    rows, cols = D.layout_period(layout)
    rad = D.display_radiance(WHITE[:n, :n], _flat_display(layout), samples=s)
    assert rad.shape == (n * s, n * s, 3)
    # every channel's energy sits on the declared lattice ...
    assert max(_off_lattice(rad[..., c], (rows * s, cols * s)) for c in range(3)) < 1e-10
    # ... and a wrong (half) period along either axis leaves much of some channel's off it (a channel alone,
    # like PenTile's green, may repeat faster than the layout)
    for wrong in ((rows * s / 2, cols * s), (rows * s, cols * s / 2)):
        assert max(_off_lattice(rad[..., c], wrong) for c in range(3)) > 1e-3


@pytest.mark.parametrize(
    ("layout", "axis"), [("rgb-stripe", 1), ("bgr-stripe", 1), ("hstripe", 0), ("pentile-rgbg", None)]
)
def test_radiance_spectrum_peak_bin(layout, axis):
    """The strongest non-DC peak is the sub-pixel frequency, 1/samples cycles per sub-sample."""
    s, n = 8, 16
    rad = D.display_radiance(WHITE[:n, :n], _flat_display(layout), samples=s)
    channels = range(3) if axis is not None else [1]  # PenTile: green is on every pixel (stripe-like)
    for c in channels:
        e = np.abs(np.fft.fft2(rad[..., c]))
        e[0, 0] = 0
        ky, kx = np.unravel_index(np.argmax(e), e.shape)
        ky, kx = min(ky, n * s - ky), min(kx, n * s - kx)
        assert (ky, kx) == ((n, 0) if axis == 0 else (0, n))  # n cycles over n*s sub-samples


@pytest.mark.parametrize("layout", ["pentile-rgbg", "pentile-diamond"])
def test_pentile_red_blue_on_a_checkerboard(layout):
    s, n = 8, 16
    rad = D.display_radiance(WHITE[:n, :n], _flat_display(layout), samples=s)
    for c in (0, 2):
        e = np.abs(np.fft.fft2(rad[..., c]))
        dc = e[0, 0]
        assert e[n // 2, n // 2] > 0.1 * dc  # the diagonal frequency of a checkerboard ...
        assert e[0, n // 2] < 1e-6 * dc and e[n // 2, 0] < 1e-6 * dc  # ... and not the axis ones


def test_delta_triads_on_a_shifted_lattice():
    """Each colour's dots repeat along (1, 0) and (1/2, 1) display px: every other row shifted by half."""
    s, n = 8, 16
    rad = D.display_radiance(WHITE[:n, :n], _flat_display("delta"), samples=s)
    for c in range(3):
        e = np.abs(np.fft.fft2(rad[..., c]))
        dc = e[0, 0]
        assert e[n // 2, n] > 0.05 * dc  # half a cycle per row and one per pixel: the shifted rows
        assert e[n // 2, 0] < 1e-6 * dc and e[0, n // 2] < 1e-6 * dc


def test_unknown_layout_names_the_valid_ones():
    with pytest.raises(ValueError, match="rgb-stripe"):
        D.layout_period("oled-swirl")
    with pytest.raises(ValueError, match="pentile-diamond"):
        D.subpixel_tile("oled-swirl", 4)
    bad = replace(D.DISPLAY_TYPES["phone-lcd-stripe"], layout="oled-swirl")
    with pytest.raises(ValueError, match="delta"):
        D.capture_spoof(WHITE, bad, np.random.default_rng(0))


def test_display_types_are_valid_and_varied():
    types = D.DISPLAY_TYPES
    assert len(types) >= 8
    assert all(name == t.name for name, t in types.items())
    assert len({t.name for t in types.values()}) == len(types)
    for t in types.values():
        assert t.layout in D.SUBPIXEL_LAYOUTS
        for r in (t.pitch, t.gamma, t.brightness, t.bezel):
            assert len(r) == 2 and 0 < r[0] <= r[1]
        assert 1.5 <= t.gamma[0] and t.gamma[1] <= 3.0
        assert len(t.white) == 3 and min(t.white) > 0
        assert t.glare >= 0 and t.matte >= 0 and t.description
    assert len({t.layout for t in types.values()}) == len(D.SUBPIXEL_LAYOUTS)  # every layout is used
    assert any(t.curvature != 0 for t in types.values())
    assert min(t.pitch[0] for t in types.values()) < 1.0 < 2.5 < max(t.pitch[1] for t in types.values())
    assert max(t.glare for t in types.values()) > 3 * min(t.glare for t in types.values())


def test_unknown_override_is_an_error():
    with pytest.raises(ValueError, match="tilt_x"):
        D.capture_spoof(WHITE, D.DISPLAY_TYPES["crt-delta"], np.random.default_rng(0), overrides={"tilt": 3})
    with pytest.raises(ValueError, match="jitter"):
        D.capture_real(WHITE, np.ones((64, 64)), np.random.default_rng(0), overrides={"tilt": 3})


# --- capture: moire from the declared pitch -------------------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "pitch", "axis", "bin_", "jpeg"),
    [
        # 0.375 cycles/px: below Nyquist, seen as is (without JPEG: 4:2:0 chroma would fold it to 0.125)
        ("rgb-stripe", 64 / 24, 1, 24, None),
        ("rgb-stripe", 64 / 51, 1, 13, 95),  # 51/64 cycles/px aliases to |51/64 - 1| = 13/64: moire
        ("rgb-stripe", 64 / 71, 1, 7, 95),  # pitch below 1 px: 71/64 -> 7/64
        ("bgr-stripe", 64 / 51, 1, 13, 95),
        ("hstripe", 64 / 51, 0, 13, 95),  # rotated panel: the same along y
    ],
)
def test_capture_moire_lands_where_the_pitch_predicts(layout, pitch, axis, bin_, jpeg):
    cam = D.CameraConfig(size=64, blur=(0.3, 0.3), noise=(0.005, 0.005))
    ov = {**FRONTAL, "pitch": pitch, "jpeg": jpeg}
    cap = D.capture_spoof(WHITE, _flat_display(layout), np.random.default_rng(1), cam, overrides=ov)
    assert cap.meta["pitch_x"] == pytest.approx(pitch) and cap.meta["pitch_y"] == pytest.approx(pitch)
    img = cap.rgb.astype(np.float64)
    for c in range(3):
        ch = img[..., c] - img[..., c].mean()
        spec = np.abs(np.fft.fft(ch, axis=axis)).mean(axis=1 - axis)  # (64,) mean over the other axis
        assert int(np.argmax(spec[1:33])) + 1 == bin_
        assert spec[bin_] > 5 * np.median(spec[1:33])
        other = np.abs(np.fft.fft(ch, axis=1 - axis)).mean(axis=axis)
        assert other[bin_] < 0.5 * spec[bin_]  # stripes: the pattern runs along one axis only


# --- capture: depth -------------------------------------------------------------------------------------


def _plane_residuals(depth: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Residuals of the valid ToF pixels from the best plane (1/Z is linear in image coordinates)."""
    z = depth[::f, ::f].astype(np.float64)  # one value per ToF pixel
    yy, xx = np.mgrid[: z.shape[0], : z.shape[1]]
    ok = z > 0
    a = np.stack([xx[ok], yy[ok], np.ones(ok.sum())], 1)
    coef, *_ = np.linalg.lstsq(a, 1 / z[ok], rcond=None)
    fit = 1 / (a @ coef)
    return z[ok] - fit, fit


def _normalised_plane_std(name: str, n: int = 10, bump: float = 0.0) -> float:
    cam = D.CameraConfig(size=64, bezel_prob=0.0)
    rng = np.random.default_rng(3)
    res = []
    for _ in range(n):
        cap = D.capture_spoof(WHITE, D.DISPLAY_TYPES[name], rng, cam)
        assert not cap.meta["bezel_in_view"] and cap.meta["screen_fraction"] == 1.0
        depth = cap.depth.copy()
        if bump:
            yy, xx = np.mgrid[:64, :64]
            depth += np.where(depth > 0, bump * np.exp(-((xx - 32.0) ** 2 + (yy - 32.0) ** 2) / 200), 0)
        r, fit = _plane_residuals(depth, cam.tof_scale)
        res.append(r / (cam.tof_noise * fit**2))
    return float(np.concatenate(res).std())


def test_spoof_depth_is_planar_within_the_tof_noise():
    s = _normalised_plane_std("tablet-lcd-stripe")
    assert 0.8 < s < 1.25  # the sensor's noise and nothing else
    assert _normalised_plane_std("tablet-lcd-stripe", bump=0.01) > 3  # the check can fail
    assert _normalised_plane_std("curved-led-tv", n=3) > 5  # a curved TV is not a plane


def test_spoof_depth_distance_and_holes():
    cam = D.CameraConfig(size=64, bezel_prob=0.0)
    cap = D.capture_spoof(WHITE, D.DISPLAY_TYPES["phone-lcd-stripe"], np.random.default_rng(0), cam)
    d = cap.meta["distance"]
    valid = cap.depth[cap.depth > 0]
    assert cam.distance[0] <= d <= cam.distance[1]
    lo, hi = cap.meta["depth_range"]  # of the ray hits, before the sensor
    assert 0.5 * d < lo < d < hi < 2 * d
    assert lo - 0.01 < valid.min() and valid.max() < hi + 0.01
    assert (cap.depth[::4, ::4] == 0).sum() == round(cam.tof_holes * 16 * 16)


def test_bezel_shows_the_wall_behind():
    cam = D.CameraConfig(size=64)
    ov = {"tilt_x": 0.0, "tilt_y": 0.0, "roll": 0.0, "distance": 0.3, "bezel": ["right"]}
    cap = D.capture_spoof(
        WHITE, D.DISPLAY_TYPES["tablet-lcd-stripe"], np.random.default_rng(0), cam, overrides=ov
    )
    assert cap.meta["bezel_in_view"] and cap.meta["screen_fraction"] < 0.95
    wall = 0.3 + cap.meta["background_distance"]
    right, left = cap.depth[:, -4:], cap.depth[:, :4]
    assert np.median(right[right > 0]) == pytest.approx(wall, rel=0.05)
    assert np.median(left[left > 0]) == pytest.approx(0.3, rel=0.05)


# --- real captures and the ToF sensor -------------------------------------------------------------------


def _scene(n: int = 96) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:n, :n] / n
    depth = 0.6 + 0.4 * xx + 0.2 * yy - 0.3 * np.exp(-((xx - 0.6) ** 2 + (yy - 0.4) ** 2) / 0.02)
    rgb = rng.integers(0, 256, (n, n, 3), dtype=np.uint8)
    return rgb, depth.astype(np.float32)


def test_real_capture_keeps_the_depth_structure():
    rgb, depth = _scene()
    cam = D.CameraConfig(size=32)
    cap = D.capture_real(rgb, depth, np.random.default_rng(0), cam)
    assert cap.rgb.shape == (32, 32, 3) and cap.rgb.dtype == np.uint8
    assert cap.depth.shape == (32, 32) and cap.depth.dtype == np.float32
    ref = depth.reshape(32, 3, 32, 3).mean(axis=(1, 3))
    ok = cap.depth > 0
    assert np.corrcoef(cap.depth[ok], ref[ok])[0, 1] > 0.95
    json.dumps(cap.meta)


def test_real_capture_without_jitter_is_the_pixel_integration():
    rgb, depth = _scene()
    depth[30:66, 30:66] = 0  # a hole in the scene's depth
    cam = D.CameraConfig(size=32, tof_noise=0.0, tof_holes=0.0)
    ov = {"roll": 0.0, "jitter": 0.0, "blur": 0.0, "noise": 0.0, "jpeg": None, "exposure": 1.0}
    cap = D.capture_real(rgb, depth, np.random.default_rng(0), cam, overrides=ov)
    # colour: the 3 x 3 sub-samples of each pixel land on input pixel centres; mean in linear light
    lin = D._srgb_to_linear(rgb / 255.0).reshape(32, 3, 32, 3, 3).mean(axis=(1, 3))
    expect = np.rint(D._linear_to_srgb(lin) * 255)
    assert np.abs(cap.rgb - expect).max() <= 1
    # depth: nearest sample at pixel centres, median per 4 x 4 ToF block over valid values; holes stay
    near = depth[1::3, 1::3].astype(np.float64)
    blocks = near.reshape(8, 4, 8, 4).transpose(0, 2, 1, 3).reshape(8, 8, 16)
    med = np.array([[np.median(b[b > 0]) if (b > 0).any() else 0.0 for b in row] for row in blocks])
    np.testing.assert_allclose(cap.depth[::4, ::4], med, rtol=1e-6)
    assert (cap.depth[12:20, 12:20] == 0).all() and (cap.depth[:8] > 0).all()


def test_tof_sensor_holes_noise_and_resolution():
    cam = D.CameraConfig(tof_holes=0.02, tof_noise=0.004)
    z = np.full((256, 256), 1.0)
    z[:, 128:] = 0.5
    out = D.tof_sensor(z, np.random.default_rng(0), cam)
    assert out.shape == z.shape and out.dtype == np.float32
    blocks = out.reshape(64, 4, 64, 4)
    assert (blocks == blocks[:, :1, :, :1]).all()  # constant per 4 x 4 block: nearest up-sampling
    coarse = out[::4, ::4]
    holes = coarse == 0
    assert holes.sum() == round(0.02 * 64 * 64)
    assert (holes[1:] & holes[:-1]).any() or (holes[:, 1:] & holes[:, :-1]).any()  # some blobs
    far, near = coarse[:, :32][~holes[:, :32]], coarse[:, 32:][~holes[:, 32:]]
    assert far.std() == pytest.approx(0.004, rel=0.08)  # noise grows with Z**2
    assert near.std() == pytest.approx(0.004 * 0.25, rel=0.08)
    assert far.mean() == pytest.approx(1.0, abs=3e-4) and near.mean() == pytest.approx(0.5, abs=1e-4)
    with pytest.raises(ValueError, match="tof_scale"):
        D.tof_sensor(np.ones((30, 30)), np.random.default_rng(0), cam)


# --- determinism and output -----------------------------------------------------------------------------


def test_same_seed_same_capture():
    rgb, depth = _scene(64)
    cam = D.CameraConfig(size=32)
    t = D.DISPLAY_TYPES["phone-oled-diamond"]
    a, b, c = (D.capture_spoof(rgb, t, np.random.default_rng(s), cam) for s in (7, 7, 8))
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.depth, b.depth)
    assert json.dumps(a.meta) == json.dumps(b.meta)
    assert not np.array_equal(a.rgb, c.rgb) and not np.array_equal(a.depth, c.depth)
    r1, r2, r3 = (D.capture_real(rgb, depth, np.random.default_rng(s), cam) for s in (7, 7, 8))
    assert np.array_equal(r1.rgb, r2.rgb) and np.array_equal(r1.depth, r2.depth)
    assert not np.array_equal(r1.rgb, r3.rgb)


@pytest.mark.parametrize("name", list(D.DISPLAY_TYPES))
def test_every_display_type_captures_a_plausible_photo(name):
    rgb, _ = _scene(64)
    cap = D.capture_spoof(rgb, D.DISPLAY_TYPES[name], np.random.default_rng(0), D.CameraConfig(size=32))
    assert cap.rgb.shape == (32, 32, 3) and cap.rgb.dtype == np.uint8
    assert cap.depth.shape == (32, 32) and cap.depth.dtype == np.float32
    assert 40 < cap.rgb.mean() < 220 and (cap.rgb == 255).mean() < 0.2  # neither black nor blown out
    assert cap.meta["display"] == name and json.loads(json.dumps(cap.meta))["layout"] == cap.meta["layout"]
