"""BiHPF filter invariants (spec §2.1) and the artifact compression map tool."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trustvis import registry
from trustvis.methods.detect.bihpf import BilateralHighPass, artifact_compression_map


def _img(b=2, c=3, h=32, w=32, seed=0):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_zero_gains_are_identity():
    f = BilateralHighPass(alpha=0.0, beta=0.0, sigma_f=0.25, sigma_p=0.25)
    x = _img()
    torch.testing.assert_close(f(x), x, atol=1e-6, rtol=0)


@pytest.mark.parametrize("shape", [(32, 32), (31, 48)])
def test_frequency_filter_keeps_dc_and_stays_real(shape):
    h, w = shape
    f = BilateralHighPass(alpha=3.0, beta=0.0, sigma_f=0.25, sigma_p=0.25)
    x = _img(h=h, w=w)
    y = f(x)
    # DC gain is exactly 1 (H_f(0,0) = 0): the mean of every channel is unchanged
    torch.testing.assert_close(y.mean(dim=(-2, -1)), x.mean(dim=(-2, -1)), atol=1e-5, rtol=0)
    # the gain is symmetric under (u,v) -> (-u,-v), so nothing leaks into the imaginary part
    spec = torch.fft.fft2(x) * f.filters(h, w, x.device)[0]
    assert torch.fft.ifft2(spec).imag.abs().max() < 1e-5


def test_frequency_gain_matches_the_formula_on_a_sinusoid():
    n, k, alpha, sigma_frac = 32, 8, 1.5, 0.25
    f = BilateralHighPass(alpha=alpha, beta=0.0, sigma_f=sigma_frac, sigma_p=0.25)
    xs = torch.arange(n, dtype=torch.float32)
    wave = torch.cos(2 * math.pi * k * xs / n)[None, :].expand(n, n)  # frequency (0, k)
    y = f(wave[None, None])[0, 0]
    expected_gain = 1 + alpha * (1 - math.exp(-(k**2) / (2 * (sigma_frac * n) ** 2)))
    torch.testing.assert_close(y, wave * expected_gain, atol=1e-4, rtol=0)


def test_pixel_filter_boosts_background_not_centre():
    h = w = 33  # odd: one exact centre pixel
    f = BilateralHighPass(alpha=0.0, beta=2.0, sigma_f=0.25, sigma_p=0.25)
    x = torch.ones(1, 1, h, w)
    y = f(x)[0, 0]
    assert y[16, 16].item() == pytest.approx(1.0, abs=1e-6)  # H_p = 0 at the centre
    assert y[0, 0] > y[8, 8] > y[16, 16]  # grows with the distance from the centre
    assert y[0, 0].item() <= 3.0  # bounded by 1 + beta


def test_spectrum_input_mode_and_bad_mode():
    m = registry.build("bihpf", "tiny", input="spectrum")
    x = _img(b=2, h=16, w=16)
    assert m.predict({"image": x})["score"].shape == (2,)
    with pytest.raises(ValueError, match="choose from"):
        registry.build("bihpf", "tiny", input="wavelet")


def test_acm_is_a_symmetric_map_in_unit_range_and_finds_what_the_detector_uses():
    # a "detector" that only looks at the energy of one frequency pair: the ACM must suppress exactly it
    n = 16
    xs = torch.arange(n, dtype=torch.float32)
    wave = torch.cos(2 * math.pi * 4 * xs / n)[None, :].expand(n, n)

    def detector(x):
        return 20 * (x[:, 0] * wave).mean(dim=(-2, -1))  # large logit while the wave is present

    fakes = (0.5 + 0.25 * wave).expand(8, 3, n, n).clone()
    m = artifact_compression_map(detector, fakes, steps=150, lr=0.2, sparsity=0.5, batch_size=4)
    assert m.shape == (n, n) and (m >= 0).all() and (m <= 1).all()
    np.testing.assert_allclose(m[1:, 1:], m[1:, 1:][::-1, ::-1], atol=1e-6)  # Hermitian symmetry
    c = n // 2  # DC after fftshift
    assert m[c, c + 4] < 0.5 and m[c, c - 4] < 0.5  # the detector's frequency is suppressed
    others = np.delete(m.ravel(), [c * n + c + 4, c * n + c - 4])
    assert np.median(others) > 0.9  # the rest is kept
