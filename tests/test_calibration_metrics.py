"""Calibration metrics (ECE, MCE, class-wise ECE, NLL, Brier) and their figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trustvis.metrics.calibration import (
    accuracy,
    as_probs,
    brier,
    calibration_metrics,
    classwise_ece,
    ece,
    mce,
    nll,
    reliability_bins,
    softmax,
)
from trustvis.report.plots import plot_metric_bars, plot_reliability

PNG = b"\x89PNG\r\n\x1a\n"

# Five 3-class samples, 3 bins with edges 0, 1/3, 2/3, 1:
#   probs               label  conf  correct  bin
#   [0.9, 0.05, 0.05]   0      0.9   yes      (2/3, 1]
#   [0.8, 0.1,  0.1 ]   1      0.8   no       (2/3, 1]
#   [0.2, 0.5,  0.3 ]   1      0.5   yes      (1/3, 2/3]
#   [0.3, 0.3,  0.4 ]   0      0.4   no       (1/3, 2/3]
#   [0.6, 0.2,  0.2 ]   0      0.6   yes      (1/3, 2/3]
# bin (0, 1/3]:   empty
# bin (1/3, 2/3]: n=3, conf = (0.5+0.4+0.6)/3 = 0.5, acc = 2/3, |gap| = 1/6
# bin (2/3, 1]:   n=2, conf = (0.9+0.8)/2 = 0.85, acc = 1/2, |gap| = 0.35
# ECE = 3/5 * 1/6 + 2/5 * 0.35 = 0.1 + 0.14 = 0.24;  MCE = max(1/6, 0.35) = 0.35;  accuracy = 3/5
P5 = np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4], [0.6, 0.2, 0.2]])
Y5 = np.array([0, 1, 1, 0, 0])


def _calibrated(n: int = 20000, c: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from their own softmax (perfectly calibrated in expectation)."""
    rng = np.random.default_rng(seed)
    z = 2.0 * rng.normal(size=(n, c))  # (N, C)
    p = softmax(z)
    u = rng.random((n, 1))
    y = np.minimum((u > np.cumsum(p, axis=1)).sum(axis=1), c - 1)  # inverse-CDF sampling, (N,)
    return z, y


def test_hand_computed_ece_mce_accuracy() -> None:
    assert ece(P5, Y5, n_bins=3) == pytest.approx(0.24)
    assert mce(P5, Y5, n_bins=3) == pytest.approx(0.35)
    assert accuracy(P5, Y5) == pytest.approx(0.6)
    rb = reliability_bins(P5, Y5, n_bins=3)
    assert rb["edges"] == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    assert rb["count"] == [0, 3, 2]
    assert math.isnan(rb["accuracy"][0]) and math.isnan(rb["confidence"][0])
    assert rb["accuracy"][1:] == pytest.approx([2 / 3, 0.5])
    assert rb["confidence"][1:] == pytest.approx([0.5, 0.85])


def test_bin_edge_convention_upper_edge_inclusive() -> None:
    # Confidence exactly 0.5 with 2 bins lies in (0, 0.5], not in (0.5, 1].
    rb = reliability_bins(np.array([[0.5, 0.5], [0.9, 0.1]]), [1, 0], n_bins=2)
    assert rb["count"] == [1, 1]
    assert rb["accuracy"] == pytest.approx([0.0, 1.0])  # tie -> argmax picks class 0, label is 1


def test_nll_and_brier_by_hand() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.25, 0.25, 0.5]])
    y = np.array([0, 2, 2])
    # NLL = (-log 0.7 - log 0.1 - log 0.5) / 3 = (0.356675 + 2.302585 + 0.693147) / 3 = 1.117469
    assert nll(p, y) == pytest.approx((-math.log(0.7) - math.log(0.1) - math.log(0.5)) / 3)
    assert nll(p, y) == pytest.approx(1.117469, abs=1e-6)
    # Brier: row 0: 0.3^2 + 0.2^2 + 0.1^2 = 0.09 + 0.04 + 0.01 = 0.14
    #        row 1: 0.1^2 + 0.8^2 + 0.9^2 = 0.01 + 0.64 + 0.81 = 1.46
    #        row 2: 0.25^2 + 0.25^2 + 0.5^2 = 0.0625 + 0.0625 + 0.25 = 0.375
    # mean = 1.975 / 3 = 0.658333
    assert brier(p, y) == pytest.approx(1.975 / 3)


def test_nll_clips_zero_probability() -> None:
    assert nll(np.array([[1.0, 0.0]]), [1]) == pytest.approx(-math.log(1e-12))


def test_perfectly_calibrated_ece_near_zero() -> None:
    z, y = _calibrated()
    m = calibration_metrics(z, y)
    assert m["ece"] < 0.02
    assert m["cw_ece"] < 0.02
    assert m["n"] == 20000


def test_over_confident_ece_large() -> None:
    z, y = _calibrated()
    sharp = calibration_metrics(4.0 * z, y)  # temperature 1/4: same argmax, far too confident
    calm = calibration_metrics(z, y)
    assert sharp["ece"] > 0.1
    assert sharp["acc"] == pytest.approx(calm["acc"])
    assert sharp["nll"] > calm["nll"]


def test_softmax_stable_and_logits_match_probs() -> None:
    s = softmax(np.array([[1000.0, 1000.0], [-1000.0, 0.0]]))
    assert np.allclose(s, [[0.5, 0.5], [0.0, 1.0]])
    z, y = _calibrated(n=500)
    a = calibration_metrics(z, y, from_logits=True, n_bins=10)
    b = calibration_metrics(softmax(z), y, from_logits=False, n_bins=10)
    assert a == pytest.approx(b)
    assert ece(z, y, n_bins=10, from_logits=True) == pytest.approx(a["ece"])


def test_torch_inputs_equal_numpy() -> None:
    z, y = _calibrated(n=300)
    t = calibration_metrics(torch.tensor(z, dtype=torch.float32), torch.tensor(y))
    n = calibration_metrics(z.astype(np.float32), y)
    assert t == pytest.approx(n)


def test_binary_vector_equals_two_columns() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(size=200)
    y = (rng.uniform(size=200) < p).astype(int)
    two = np.stack([1 - p, p], axis=1)
    assert calibration_metrics(p, y, from_logits=False) == pytest.approx(
        calibration_metrics(two, y, from_logits=False)
    )
    logit = np.log(p / (1 - p))
    assert as_probs(logit, from_logits=True)[:, 1] == pytest.approx(p)
    assert calibration_metrics(logit, y) == pytest.approx(calibration_metrics(two, y, from_logits=False))
    # Multi-class Brier on the two columns is twice the binary Brier.
    assert brier(p, y) == pytest.approx(2 * np.mean((p - y) ** 2))


def test_classwise_ece_one_class() -> None:
    # Every sample is class 0 with p = [0.5, 0.3, 0.2]; with 10 bins each class has one non-empty bin:
    # class 0: |0.5 - 1| = 0.5, class 1: |0.3 - 0| = 0.3, class 2: |0.2 - 0| = 0.2 -> mean 1/3.
    p = np.array([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]])
    assert classwise_ece(p, [0, 0], n_bins=10) == pytest.approx(1 / 3)
    assert ece(p, [0, 0], n_bins=10) == pytest.approx(0.5)  # top-1: conf 0.5, acc 1


def test_reliability_counts_sum_to_n_and_recover_ece() -> None:
    z, y = _calibrated(n=1000, seed=3)
    rb = reliability_bins(3.0 * z, y, n_bins=15, from_logits=True)
    assert len(rb["edges"]) == 16 and len(rb["count"]) == 15
    assert sum(rb["count"]) == 1000
    cnt, acc, conf = (np.array(rb[k], dtype=float) for k in ("count", "accuracy", "confidence"))
    nz = cnt > 0
    recovered = float(np.sum(cnt[nz] / 1000 * np.abs(acc[nz] - conf[nz])))
    assert recovered == pytest.approx(ece(3.0 * z, y, from_logits=True))


@pytest.mark.parametrize(
    ("probs", "labels", "match"),
    [
        (np.zeros((0, 3)), [], "Empty"),
        (P5, [0, 1, 1], "differ in length"),
        (P5, [0, 1, 1, 0, 3], r"\[0, 3\)"),
        (P5, [0, 1, 1, 0, -1], r"\[0, 3\)"),
        (P5, [0, 1, 1, 0, 0.5], "integer"),
        (np.where(P5 == 0.9, np.nan, P5), Y5, "NaN or infinite"),
        (np.array([[2.0, -1.0, 0.5]]), [0], "from_logits=True"),
        (np.array([[0.5, 0.3, 0.3]]), [0], "from_logits=True"),
        (np.array([[0.5], [0.5]]), [0, 0], r"\(N,\)"),
        (P5, np.eye(3)[Y5], "one-hot"),
    ],
)
def test_validation_errors(probs: np.ndarray, labels: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        calibration_metrics(probs, labels, from_logits=False)


def test_validation_logits_and_bins() -> None:
    with pytest.raises(ValueError, match="NaN or infinite"):
        calibration_metrics(np.array([[np.inf, 0.0]]), [0], from_logits=True)
    with pytest.raises(ValueError, match="n_bins"):
        ece(P5, Y5, n_bins=0)
    with pytest.raises(ValueError, match="from_logits=True"):
        ece(np.array([[3.0, 1.0], [0.2, 4.0]]), [0, 1])  # logits passed as probabilities
    # rows summing to 1 within 1e-3 are accepted
    assert ece(np.array([[0.6, 0.4005]]), [0]) == pytest.approx(0.4)


def test_plot_reliability_and_metric_bars(tmp_path) -> None:
    z, y = _calibrated(n=800, seed=2)
    diagrams = {
        "uncalibrated": {**reliability_bins(4.0 * z, y, from_logits=True), "ece": 0.2},
        "TS": reliability_bins(z, y, from_logits=True),  # ECE recomputed from the bins
        "tiny": reliability_bins(P5, Y5, n_bins=3),  # empty bin
    }
    out = plot_reliability(diagrams, tmp_path / "rel.png", title="reliability")
    assert out.read_bytes().startswith(PNG) and out.stat().st_size > 1000

    table = {
        "cifar10": {"TS": (0.012, 0.002), "TS+SCTL": (0.009, 0.001)},
        "cifar100-lt": {"TS": 0.085, "TS+SCTL": float("nan"), "CTS": (0.03, 0.004)},
    }
    out2 = plot_metric_bars(table, "ece", tmp_path / "bars.png")
    assert out2.read_bytes().startswith(PNG) and out2.stat().st_size > 1000


def test_plot_input_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match="lacks"):
        plot_reliability({"x": {"edges": [0, 1]}}, tmp_path / "a.png")
    with pytest.raises(ValueError, match="Nothing to plot"):
        plot_reliability({}, tmp_path / "a.png")
    with pytest.raises(ValueError, match="mean, std"):
        plot_metric_bars({"d": {"m": (1, 2, 3)}}, "ece", tmp_path / "b.png")
