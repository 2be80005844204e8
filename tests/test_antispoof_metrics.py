"""Anti-spoofing metrics (ISO/IEC 30107-3) against hand-computed cases, the azimuthal power spectrum and
the anti-spoofing figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from trustvis.metrics.antispoof import eer_threshold, pad_metrics, per_medium_metrics
from trustvis.metrics.classification import eer
from trustvis.metrics.spectrum import azimuthal_power_spectrum
from trustvis.report.plots import plot_pair_examples, plot_per_medium, plot_power_spectra

# Ten presentations by hand: 5 bona fide (0), 5 attacks (1).
LABELS = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
SCORES = [0.10, 0.20, 0.30, 0.60, 0.70, 0.40, 0.55, 0.80, 0.90, 0.95]


def test_pad_metrics_hand_computed():
    # Threshold 0.5, attack iff score >= 0.5.
    #   bona fide 0.10 0.20 0.30 -> bona (right); 0.60 0.70 -> attack (wrong): BPCER = 2/5 = 0.4
    #   attacks   0.40 -> bona (missed); 0.55 0.80 0.90 0.95 -> attack (right): APCER = 1/5 = 0.2
    #   ACER = (0.2 + 0.4) / 2 = 0.3
    m = pad_metrics(LABELS, SCORES, 0.5)
    assert m["apcer"] == 0.2
    assert m["bpcer"] == 0.4
    assert m["acer"] == pytest.approx(0.3, abs=1e-15)
    assert (m["n_bona"], m["n_attack"], m["threshold"]) == (5, 5, 0.5)
    # AUC by pairs: of the 25 (bona, attack) pairs the attack is ranked below in
    #   0.40 < 0.60, 0.70 and 0.55 < 0.60, 0.70  -> 4 wrong, AUC = 21/25 = 0.84.
    assert m["auc"] == pytest.approx(0.84)


def test_tie_at_threshold_is_an_attack():
    # score == threshold counts as attack: the bona fide 0.6 is rejected, the attack 0.6 is caught.
    m = pad_metrics([0, 1], [0.6, 0.6], 0.6)
    assert (m["apcer"], m["bpcer"]) == (0.0, 1.0)
    m = pad_metrics([0, 1], [0.6, 0.6], np.nextafter(0.6, 1.0))
    assert (m["apcer"], m["bpcer"]) == (1.0, 0.0)


def test_pad_metrics_one_class_and_bad_input():
    m = pad_metrics([1, 1, 1], [0.2, 0.6, 0.9], 0.5)
    assert m["apcer"] == pytest.approx(1 / 3)
    assert all(math.isnan(m[k]) for k in ("bpcer", "acer", "auc", "eer"))
    m = pad_metrics([0, 0], [0.2, 0.6], 0.5)
    assert m["bpcer"] == 0.5 and math.isnan(m["apcer"]) and math.isnan(m["auc"])
    for labels, scores, t in (([0, 1], [0.1], 0.5), ([0, 2], [0.1, 0.2], 0.5), ([0, 1], [0.1, np.nan], 0.5),
                              ([0, 1], [0.1, 0.2], math.inf)):  # fmt: skip
        with pytest.raises(ValueError):
            pad_metrics(labels, scores, t)


def test_auc_eer_match_sklearn_and_project():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = rng.normal(size=300) + 1.2 * y
    m = pad_metrics(y, s, 0.0)
    assert m["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert m["eer"] == pytest.approx(eer(y, s), abs=1e-12)


def test_eer_threshold_balances_errors():
    # Hand case: at the returned threshold APCER = BPCER.
    #   Thresholds between 0.55 and 0.60: bona fide 0.60 0.70 rejected (BPCER 2/5); attack 0.40, 0.55
    #   missed (APCER 2/5). Between 0.40 and 0.55: APCER 1/5, BPCER 2/5. So t = (0.55 + 0.60) / 2.
    t = eer_threshold(LABELS, SCORES)
    assert t == pytest.approx(0.575)
    m = pad_metrics(LABELS, SCORES, t)
    assert m["apcer"] == m["bpcer"] == 0.4
    # Overlapping random classes: within one sample of each class.
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(137, int), np.ones(91, int)]
    s = rng.normal(size=y.size) + y
    m = pad_metrics(y, s, eer_threshold(y, s))
    assert abs(m["apcer"] - m["bpcer"]) <= 1 / 91 + 1e-12
    assert m["acer"] == pytest.approx(eer(y, s), abs=1.5 / 91)


def test_eer_threshold_tie_goes_to_lower_acer():
    # Attack 0.3, bona fide 0.5, attack 0.9. Between 0.3 and 0.5: APCER 1/2, BPCER 1 (gap 1/2, ACER 3/4);
    # between 0.5 and 0.9: APCER 1/2, BPCER 0 (gap 1/2, ACER 1/4) -> the second region, t = 0.7.
    assert eer_threshold([1, 0, 1], [0.3, 0.5, 0.9]) == pytest.approx(0.7)


def test_eer_threshold_separated_data_and_one_class():
    t = eer_threshold([0, 0, 1, 1], [0.1, 0.3, 0.7, 0.9])
    assert 0.3 < t < 0.7 and t == pytest.approx(0.5)
    assert pad_metrics([0, 0, 1, 1], [0.1, 0.3, 0.7, 0.9], t)["acer"] == 0.0
    t = eer_threshold([0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0])  # saturated probabilities
    assert math.isfinite(t) and 0.0 < t < 1.0
    with pytest.raises(ValueError, match="bona fide and attack"):
        eer_threshold([1, 1], [0.2, 0.3])


def test_per_medium_metrics_hand_case():
    # Bona fide: 0.1 0.2 0.7 (0.7 rejected at t=0.5 -> BPCER 1/3 shared by every medium).
    # Attacks "phone": 0.8 0.9 -> caught, APCER 0. Attacks "tv": 0.3 0.4 -> both missed, APCER 1.
    labels = [0, 0, 0, 1, 1, 1, 1]
    scores = [0.1, 0.2, 0.7, 0.8, 0.9, 0.3, 0.4]
    media = ["object", "object", "object", "phone", "phone", "tv", "tv"]
    r = per_medium_metrics(labels, scores, media, 0.5)
    assert r["media"] == ["phone", "tv"]
    assert r["per_medium"]["tv"]["apcer"] == 1.0 and r["per_medium"]["phone"]["apcer"] == 0.0
    assert r["apcer_max"] == 1.0
    assert r["bpcer"] == pytest.approx(1 / 3)
    assert all(r["per_medium"][k]["bpcer"] == pytest.approx(1 / 3) for k in r["media"])
    assert all(r["per_medium"][k]["n_bona"] == 3 and r["per_medium"][k]["n_attack"] == 2 for k in r["media"])
    # ACER per medium: phone (0 + 1/3)/2 = 1/6, tv (1 + 1/3)/2 = 2/3; mean 5/12. APCER mean 1/2.
    assert r["mean"]["acer"] == pytest.approx(5 / 12)
    assert r["mean"]["apcer"] == pytest.approx(0.5)
    assert r["acer_max"] == pytest.approx(2 / 3)
    # AUC of tv: bona 0.1 0.2 0.7 vs attacks 0.3 0.4 -> 4 of 6 pairs right.
    assert r["per_medium"]["tv"]["auc"] == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="media"):
        per_medium_metrics(labels, scores, media[:-1], 0.5)


def _sinusoid(n: int, k: int) -> np.ndarray:
    x = np.arange(n)
    return 0.5 + 0.4 * np.sin(2 * np.pi * k / n * x)[None, :] * np.ones((n, 1))


def test_spectrum_sinusoid_peaks_at_its_frequency():
    n = 64
    for k, angle in ((8, False), (20, True)):
        img = _sinusoid(n, k)
        img = img.T if angle else img
        radii, p = azimuthal_power_spectrum(img[None])
        assert radii.shape == (n // 2 + 1,) and p.shape == (1, n // 2 + 1)
        assert radii[0] == 0.0 and radii[-1] == 0.5
        assert radii[int(np.argmax(p[0]))] == pytest.approx(k / n)  # f cycles/pixel
    # RGB channels-last, coarser bins: the peak moves to the nearest bin.
    rgb = np.repeat(_sinusoid(n, 8)[..., None], 3, axis=-1)[None]
    radii, p = azimuthal_power_spectrum(rgb, bins=17)
    assert radii.shape == (17,) and radii[int(np.argmax(p[0]))] == pytest.approx(8 / 64)


def test_spectrum_white_noise_flat_smooth_image_falls():
    rng = np.random.default_rng(0)
    noise = rng.random((6, 64, 64))
    radii, p = azimuthal_power_spectrum(noise)
    mean = p.mean(axis=0)[1:]
    slope = np.polyfit(radii[1:], mean, 1)[0]
    assert abs(slope) < 1.0  # log10 power per cycle/pixel: flat
    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    smooth = (np.sin(2 * np.pi * xx) * np.cos(2 * np.pi * yy) + 0.3 * xx)[None] + 0.01 * noise[:1]
    radii, q = azimuthal_power_spectrum(smooth)
    slope = np.polyfit(radii[1:], q[0, 1:], 1)[0]
    assert slope < -5.0
    assert q[0, 1] - q[0, -1] > 2.0


def test_spectrum_uint8_equals_float_and_depth_handling():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (3, 32, 40, 3), dtype=np.uint8)
    r1, a = azimuthal_power_spectrum(img)
    r2, b = azimuthal_power_spectrum(img.astype(np.float64) / 255.0)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    assert a.shape == (3, 17) and r1[-1] == 0.5
    # Depth: scale-free after per-map std normalisation, and holes are filled before the FFT.
    depth = (1.0 + 0.1 * rng.random((2, 32, 32))).astype(np.float32)
    _, d1 = azimuthal_power_spectrum(depth, depth=True)
    _, d2 = azimuthal_power_spectrum(depth * 1000.0, depth=True)
    np.testing.assert_allclose(d1, d2, atol=1e-5)
    assert abs(d1[:, 1:].mean()) < 0.2  # unit variance: mean power ~ 1 per bin
    holed = depth.copy()
    holed[:, ::7, ::5] = 0.0
    _, raw = azimuthal_power_spectrum(holed)
    _, filled = azimuthal_power_spectrum(holed, depth=True)
    _, clean = azimuthal_power_spectrum(depth, depth=True)
    # the lattice of holes puts strong peaks into the raw spectrum; filled, it is close to the clean one
    assert np.abs(filled - clean).max() < 1.0 < np.abs(raw - azimuthal_power_spectrum(depth)[1]).max()
    with pytest.raises(ValueError, match="bins"):
        azimuthal_power_spectrum(depth, bins=100)


def _png_ok(path, min_bytes=8_000):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > min_bytes


def test_plots_write_pngs_and_reject_empty(tmp_path):
    rng = np.random.default_rng(3)
    radii = np.linspace(0, 0.5, 17)
    spectra = {
        m: {"real": rng.normal(size=(5, 17)), "spoof": rng.normal(size=(4, 17)) + 1,
            "spoof/tv-lcd-rgb": rng.normal(size=(2, 17))}
        for m in ("rgb", "depth")
    }  # fmt: skip
    _png_ok(plot_power_spectra(spectra, radii, tmp_path / "spec.png"))
    results = {"mtofnet": {"tv": 0.1, "phone": 0.2}, "rgb-cnn": {"tv": 0.4, "phone": float("nan")}}
    _png_ok(plot_per_medium(results, tmp_path / "bars.png", metric="acer"))
    rows = []
    for i in range(5):
        depth = rng.random((24, 32)).astype(np.float32)
        depth[:4, :4] = 0.0
        rows.append({"rgb": rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), "depth": depth,
                     "label": i % 2, "medium": "tablet-oled-pentile", "score": 0.91})  # fmt: skip
    _png_ok(plot_pair_examples(rows, tmp_path / "pairs.png"))
    with pytest.raises(ValueError):
        plot_power_spectra({}, radii, tmp_path / "x.png")
    with pytest.raises(ValueError):
        plot_power_spectra({"rgb": {"real": rng.normal(size=(3, 9))}}, radii, tmp_path / "x.png")
    with pytest.raises(ValueError):
        plot_per_medium({}, tmp_path / "x.png")
    with pytest.raises(ValueError):
        plot_pair_examples([], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
