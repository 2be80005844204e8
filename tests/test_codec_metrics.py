"""Compression metrics: PSNR, MS-SSIM, bpp, BD-rate / BD-PSNR and RD averaging, on hand-checkable cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from trustvis.metrics.compression import (
    MSSSIM_WEIGHTS,
    BDWarning,
    _ms_ssim_scales,
    average_rd,
    bd_psnr,
    bd_rate,
    bpp,
    ms_ssim,
    mse,
    psnr,
    psnr_from_mse,
)


def _image(size: int = 64, seed: int = 0) -> np.ndarray:
    """Smooth random colour image with some texture, uint8 (size, size, 3)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, (size // 8, size // 8, 3))
    img = np.kron(base, np.ones((8, 8, 1))) + rng.normal(0, 12, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


# -- PSNR / MSE / bpp ---------------------------------------------------------------------------------


def test_psnr_of_known_mse_uint8():
    x = np.full((4, 6, 3), 100, np.uint8)
    y = x + np.uint8(5)  # every error is 5 -> MSE 25
    assert mse(x, y) == 25.0
    assert psnr(x, y) == pytest.approx(10 * math.log10(255**2 / 25), abs=1e-12)  # 34.1514 dB


def test_psnr_float_uses_unit_peak_and_mixed_dtypes_fail():
    x = torch.zeros(3, 8, 8)
    y = torch.full((3, 8, 8), 0.1, dtype=torch.float64)
    assert psnr(x, y) == pytest.approx(20.0, abs=1e-9)  # MSE 0.01, peak 1
    assert psnr(x, y, max_val=2.0) == pytest.approx(20.0 + 20 * math.log10(2), abs=1e-9)
    with pytest.raises(ValueError, match="forgotten /255"):
        psnr(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="same shape"):
        psnr(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8))


def test_psnr_identical_is_inf_and_mse_is_symmetric():
    x = _image(16)
    assert psnr(x, x) == math.inf
    y = _image(16, seed=1)
    assert mse(x, y) == mse(y, x)
    assert psnr_from_mse(0.0) == math.inf
    with pytest.raises(ValueError):
        psnr_from_mse(-1.0)


def test_bpp_arithmetic():
    assert bpp(1000, 100, 80) == 1.0  # 8000 bits / 8000 px
    assert bpp(3, 4, 6) == pytest.approx(1.0)
    assert bpp(0, 10, 10) == 0.0
    with pytest.raises(ValueError):
        bpp(10, 0, 10)
    with pytest.raises(ValueError):
        bpp(-1, 10, 10)


# -- MS-SSIM --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [176, 64])  # 5-scale library path and the reduced-scale path
def test_ms_ssim_identity_and_monotone_in_noise(size):
    x = _image(size)
    assert ms_ssim(x, x) == pytest.approx(1.0, abs=1e-9)
    rng = np.random.default_rng(1)
    noisy = [np.clip(x + rng.normal(0, s, x.shape), 0, 255).astype(np.uint8) for s in (4, 16, 48)]
    vals = [ms_ssim(x, n) for n in noisy]
    assert 1.0 > vals[0] > vals[1] > vals[2] > 0.0


def test_ms_ssim_numpy_uint8_equals_torch_float():
    x, y = _image(64), _image(64, seed=3)
    tx = torch.from_numpy(x).permute(2, 0, 1).double() / 255  # (3, H, W) in [0, 1]
    ty = torch.from_numpy(y).permute(2, 0, 1).double() / 255
    assert ms_ssim(x, y) == pytest.approx(ms_ssim(tx, ty), abs=1e-9)


def test_reduced_scale_loop_matches_pytorch_msssim_at_five_scales():
    import pytorch_msssim

    x, y = _image(176), _image(176, seed=2)
    tx = torch.from_numpy(x).permute(2, 0, 1)[None].double()  # (1, 3, H, W)
    ty = torch.from_numpy(y).permute(2, 0, 1)[None].double()
    ref = float(pytorch_msssim.ms_ssim(tx, ty, data_range=255))
    assert _ms_ssim_scales(tx, ty, 255.0, list(MSSSIM_WEIGHTS)) == pytest.approx(ref, abs=1e-10)


def test_ms_ssim_too_small_fails_clearly():
    with pytest.raises(ValueError, match="at least 11 px"):
        ms_ssim(_image(8), _image(8))


# -- BD-rate / BD-PSNR -----------------------------------------------------------------------------------

ANCHOR_R = [0.12, 0.25, 0.5, 0.9, 1.4]
ANCHOR_P = [27.0, 29.5, 32.5, 35.0, 37.0]


def test_bd_rate_identical_curves_is_zero():
    assert bd_rate(ANCHOR_R, ANCHOR_P, ANCHOR_R, ANCHOR_P) == pytest.approx(0.0, abs=1e-12)
    assert bd_psnr(ANCHOR_R, ANCHOR_P, ANCHOR_R, ANCHOR_P) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("factor", [0.8, 1.25])
def test_bd_rate_constant_rate_factor(factor):
    test_r = [r * factor for r in ANCHOR_R]
    assert bd_rate(test_r, ANCHOR_P, ANCHOR_R, ANCHOR_P) == pytest.approx(100 * (factor - 1), abs=1e-9)
    # reversing the roles inverts the factor
    assert bd_rate(ANCHOR_R, ANCHOR_P, test_r, ANCHOR_P) == pytest.approx(100 * (1 / factor - 1), abs=1e-9)


def test_bd_rate_is_order_independent():
    test_r = [r * 0.8 for r in ANCHOR_R]
    perm = [3, 0, 4, 1, 2]
    val = bd_rate([test_r[i] for i in perm], [ANCHOR_P[i] for i in perm], ANCHOR_R[::-1], ANCHOR_P[::-1])
    assert val == pytest.approx(-20.0, abs=1e-9)


def test_bd_rate_partial_overlap_linear_curves():
    # PCHIP reproduces linear data exactly, so the integral is hand-computable.
    qa = np.array([30.0, 32.0, 34.0, 36.0])  # anchor: log r = 0.2 q - 6
    qt = np.array([31.0, 33.0, 35.0, 37.0])  # test:   log r = 0.15 q - 4.6
    ra, rt = np.exp(0.2 * qa - 6), np.exp(0.15 * qt - 4.6)
    # overlap [31, 36]; difference -0.05 q + 1.4 has mean -0.05 * 33.5 + 1.4 = -0.275
    assert bd_rate(rt, qt, ra, qa) == pytest.approx(100 * math.expm1(-0.275), abs=1e-9)  # -24.04 %


def test_bd_psnr_shifted_curve():
    lra, lrt = np.array([-2.0, -1.0, 0.0, 1.0]), np.array([-1.5, -0.5, 0.5, 1.5])
    pa, pt = 30 + 4 * lra, 31 + 4 * lrt  # test is 1 dB better everywhere
    assert bd_psnr(np.exp(lrt), pt, np.exp(lra), pa) == pytest.approx(1.0, abs=1e-9)


def test_bd_rate_nan_cases_warn():
    with pytest.warns(BDWarning, match="do not overlap"):
        assert math.isnan(bd_rate([0.1, 0.2], [20.0, 22.0], [0.5, 1.0], [30.0, 32.0]))
    with pytest.warns(BDWarning, match="need >= 2"):
        assert math.isnan(bd_rate([0.1], [20.0], [0.5, 1.0], [30.0, 32.0]))
    with pytest.warns(BDWarning, match="need >= 2"):  # two identical points are one point
        assert math.isnan(bd_psnr([0.1, 0.1], [20.0, 20.0], [0.05, 1.0], [10.0, 32.0]))


def test_bd_rate_invalid_input_raises():
    with pytest.raises(ValueError, match="> 0"):
        bd_rate([0.0, 0.2], [20.0, 22.0], ANCHOR_R, ANCHOR_P)
    with pytest.raises(ValueError, match="> 0"):
        bd_rate(ANCHOR_R, ANCHOR_P, [-0.1] + ANCHOR_R[1:], ANCHOR_P)
    with pytest.raises(ValueError, match="same length"):
        bd_rate([0.1, 0.2], [20.0], ANCHOR_R, ANCHOR_P)
    with pytest.raises(ValueError, match="finite"):
        bd_rate([0.1, 0.2], [20.0, math.inf], ANCHOR_R, ANCHOR_P)
    with pytest.raises(ValueError, match="same PSNR"):
        bd_rate([0.1, 0.2, 0.3], [20.0, 20.0, 25.0], ANCHOR_R, ANCHOR_P)


def test_bd_rate_merges_exact_duplicate_points():
    r, p = ANCHOR_R + [ANCHOR_R[2]], ANCHOR_P + [ANCHOR_P[2]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bd_rate([x * 0.8 for x in r], p, ANCHOR_R, ANCHOR_P) == pytest.approx(-20.0, abs=1e-9)


# -- averaging -------------------------------------------------------------------------------------------


def _points():
    return [
        {"image": "a", "quality": 10, "bpp": 0.2, "psnr": 30.0, "ms_ssim": 0.90},
        {"image": "b", "quality": 10, "bpp": 0.4, "psnr": 40.0, "ms_ssim": 0.96},
        {"image": "b", "quality": 50, "bpp": 1.0, "psnr": 44.0, "ms_ssim": 0.99},
        {"image": "a", "quality": 50, "bpp": 0.8, "psnr": 36.0, "ms_ssim": 0.97},
    ]


def test_average_rd_mean_psnr_and_psnr_of_mean_mse():
    rows = average_rd(_points())
    assert [r["quality"] for r in rows] == [10, 50]
    assert rows[0]["bpp"] == pytest.approx(0.3) and rows[0]["psnr"] == pytest.approx(35.0)
    assert rows[0]["ms_ssim"] == pytest.approx(0.93) and rows[0]["n_images"] == 2
    assert rows[1]["bpp"] == pytest.approx(0.9) and rows[1]["psnr"] == pytest.approx(40.0)
    alt = average_rd(_points(), psnr_mode="psnr_of_mean_mse")
    # MSE ratios 1e-3 and 1e-4 -> mean 5.5e-4 -> 32.596 dB, below the mean PSNR (35 dB)
    assert alt[0]["psnr"] == pytest.approx(-10 * math.log10(5.5e-4), abs=1e-9)
    assert all(a["psnr"] <= r["psnr"] for a, r in zip(alt, rows))
    assert alt[0]["psnr_mode"] == "psnr_of_mean_mse"


def test_average_rd_rejects_unmatched_or_bad_input():
    pts = _points()[:3]  # image a is missing at quality 50
    with pytest.raises(ValueError, match="matched images"):
        average_rd(pts)
    with pytest.raises(ValueError, match="choose from"):
        average_rd(_points(), psnr_mode="median")
    with pytest.raises(ValueError, match="appears twice"):
        average_rd(_points() + [_points()[0]])
    with pytest.raises(ValueError, match="lacks"):
        average_rd([{"image": "a", "bpp": 0.1, "psnr": 30.0}])
    rows = average_rd([{**p, "lmbda": p.pop("quality")} for p in _points()], key="lmbda")
    assert [r["lmbda"] for r in rows] == [10, 50]
