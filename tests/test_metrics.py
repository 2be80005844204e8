"""Detection metrics against hand-computed values, and the mean log spectrum."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from trustvis.metrics.classification import accuracy, binary_metrics, eer, mean_metrics, roc_points
from trustvis.metrics.spectrum import mean_log_spectrum, spectrum_difference

LABELS = [0, 0, 1, 1]
SCORES = [0.1, 0.6, 0.4, 0.9]


def test_hand_computed_metrics():
    m = binary_metrics(LABELS, SCORES)
    # Predictions at 0.5: [0, 1, 0, 1] -> one real right (0.1), one fake right (0.9).
    assert m["acc"] == pytest.approx(0.5)
    assert m["acc_real"] == pytest.approx(0.5)
    assert m["acc_fake"] == pytest.approx(0.5)
    # AUC: real-fake pairs ranked right: (0.1<0.4), (0.1<0.9), (0.6<0.9); wrong: (0.6>0.4) -> 3/4.
    assert m["auc"] == pytest.approx(0.75)
    # AP: sorted by score 0.9(F) 0.6(R) 0.4(F) 0.1(R). Recall steps 0.5 at precision 1/1 and 0.5 at
    # precision 2/3: AP = 0.5 * 1 + 0.5 * 2/3 = 5/6.
    assert m["ap"] == pytest.approx(5 / 6)
    # ROC (FPR, TPR): (0,0) (0,.5) (.5,.5) (.5,1) (1,1); FPR = FNR = 0.5 at (.5,.5).
    assert m["eer"] == pytest.approx(0.5)
    assert (m["n_real"], m["n_fake"]) == (2, 2)
    assert accuracy(LABELS, SCORES) == pytest.approx(0.5)
    assert accuracy(LABELS, SCORES, threshold=0.35) == pytest.approx(0.75)


def test_eer_interpolated():
    # Scores sorted: 0.7 F, 0.6 F, 0.5 R, 0.4 F, 0.2 R. ROC (FPR, TPR): (0,0) (0,1/3) (0,2/3) (1/2,2/3)
    # (1/2,1) (1,1). On the segment (0,2/3) -> (1/2,2/3) FNR stays 1/3 while FPR grows from 0 to 1/2,
    # so FPR = FNR at FPR = 1/3 (linear interpolation).
    labels = [0, 0, 1, 1, 1]
    scores = [0.2, 0.5, 0.4, 0.6, 0.7]
    assert eer(labels, scores) == pytest.approx(1 / 3)
    # All scores tied: ROC (0,0) -> (1,1) in one step; the crossing is its midpoint, EER = 0.5.
    assert eer([0, 1], [0.3, 0.3]) == pytest.approx(0.5)


def test_perfect_and_inverted():
    good = binary_metrics(LABELS, [0.1, 0.2, 0.8, 0.9])
    assert good["auc"] == 1.0 and good["ap"] == 1.0 and good["eer"] == 0.0 and good["acc"] == 1.0
    bad = binary_metrics(LABELS, [0.9, 0.8, 0.2, 0.1])
    assert bad["auc"] == 0.0 and bad["eer"] == 1.0 and bad["acc"] == 0.0
    # AP of the inverted ranking: F at ranks 3 and 4 -> 0.5 * 1/3 + 0.5 * 2/4 = 5/12.
    assert bad["ap"] == pytest.approx(5 / 12)


@pytest.mark.parametrize("labels, absent", [([0, 0, 0], "acc_fake"), ([1, 1], "acc_real")])
def test_single_class_is_nan_without_warnings(labels, absent):
    scores = np.linspace(0.2, 0.8, len(labels))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = binary_metrics(labels, scores)
        fpr, tpr = roc_points(labels, scores)
    for k in ("ap", "auc", "eer", absent):
        assert math.isnan(m[k]), k
    present = "acc_real" if absent == "acc_fake" else "acc_fake"
    assert math.isfinite(m[present]) and math.isfinite(m["acc"])
    assert fpr == [] and tpr == []


def test_invalid_inputs():
    with pytest.raises(ValueError, match="Empty"):
        binary_metrics([], [])
    with pytest.raises(ValueError, match="2 of 4 scores"):
        binary_metrics(LABELS, [0.1, float("nan"), float("inf"), 0.3])
    with pytest.raises(ValueError, match="differ in length"):
        binary_metrics([0, 1], [0.5])
    with pytest.raises(ValueError, match="0 \\(real\\) or 1 \\(fake\\)"):
        binary_metrics([0, 2], [0.5, 0.5])


def test_roc_points_downsampled():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 3000)
    s = rng.random(3000) + 0.5 * y
    fpr, tpr = roc_points(y, s, max_points=50)
    assert 2 < len(fpr) <= 50 and len(fpr) == len(tpr)
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert all(isinstance(v, float) for v in fpr + tpr)


def test_mean_metrics_nan_aware():
    rows = [
        {"acc": 1.0, "ap": float("nan"), "auc": 0.5},
        {"acc": 0.5, "ap": 0.8, "auc": None},
        {"acc": 0.0, "ap": 0.6},
    ]
    m = mean_metrics(rows)
    assert m["acc"] == pytest.approx(0.5)
    assert m["ap"] == pytest.approx(0.7)
    assert m["auc"] == pytest.approx(0.5)
    assert math.isnan(mean_metrics(rows, keys=("eer",))["eer"])
    assert math.isnan(mean_metrics([])["acc"])


def test_spectrum_nearest_upsampling_loses_high_frequencies():
    rng = np.random.default_rng(0)
    small = rng.random((24, 32, 32, 3))
    up = small.repeat(2, axis=1).repeat(2, axis=2)  # nearest 2x: (24, 64, 64, 3)
    noise = rng.random((24, 64, 64, 3))
    f = np.fft.fftshift(np.fft.fftfreq(64))
    radius = np.maximum(np.abs(f)[:, None], np.abs(f)[None, :])  # cycles/pixel, Chebyshev
    high = radius >= 0.375
    for highpass in (False, True):
        s_up = mean_log_spectrum(up, highpass=highpass)
        s_noise = mean_log_spectrum(noise, highpass=highpass)
        assert s_up.shape == (64, 64) and np.all(np.isfinite(s_up))
        # Nearest up-sampling multiplies the spectrum by |cos(pi f)|: far less energy near Nyquist.
        assert s_up[high].mean() < s_noise[high].mean() - 0.5, highpass
    # Without the high-pass filter the Nyquist row is exactly zero (log(eps)) for the up-sampled set.
    s_up = mean_log_spectrum(up, highpass=False, eps=1e-6)
    assert s_up[0].max() < np.log(1e-6) + 1.0
    diff = spectrum_difference(s_up, mean_log_spectrum(noise, highpass=False))
    assert diff.shape == (64, 64) and diff[high].mean() < 0


def test_spectrum_input_layouts():
    rng = np.random.default_rng(1)
    u8 = rng.integers(0, 256, (3, 16, 20, 3), dtype=np.uint8)
    ref = mean_log_spectrum(u8)
    assert ref.shape == (16, 20)
    np.testing.assert_allclose(mean_log_spectrum(u8.astype(np.float64) / 255), ref)
    np.testing.assert_allclose(mean_log_spectrum(np.transpose(u8, (0, 3, 1, 2))), ref)
    np.testing.assert_allclose(mean_log_spectrum(list(u8)), ref)
    with pytest.raises(ValueError, match="shape"):
        mean_log_spectrum(np.zeros((2, 3, 4, 5, 6)))
    with pytest.raises(ValueError, match="differ in shape"):
        spectrum_difference(np.zeros((4, 4)), np.zeros((4, 5)))
