"""Re-identification retrieval metrics (Market-1501 rules: CMC, mAP) and the re-ID figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

import trustvis.metrics.retrieval as retrieval
from trustvis.metrics.retrieval import cosine_distance, evaluate_retrieval, ranked_gallery
from trustvis.report.plots import plot_cmc, plot_gradient_norms, plot_retrieval_examples

PNG = b"\x89PNG\r\n\x1a\n"

# A hand-made ranking. Gallery (index: pid, cam):
#   g0: 1, c1   g1: 1, c2   g2: -1 (junk), c2   g3: 0 (distractor), c3
#   g4: 2, c1   g5: 1, c3   g6: 2, c2           g7: 4, c3
# Queries: A = (pid 1, cam 1), B = (pid 2, cam 2), C = (pid 4, cam 3).
#
# A: sorted g0 .05 (same id + same cam: junk) | g2 .10 (junk) | g3 .20 distractor | g1 .30 correct |
#    g4 .40 | g5 .50 correct | g6 .60 | g7 .70
#    after junk removal: g3 g1 g4 g5 g6 g7 -> correct at 0-based ranks r = 1, 3 (n = 2); first hit rank 2
#    hit 1: precision 1/2, old precision 0/1 = 0 -> interpolated (0 + 1/2)/2 = 1/4
#    hit 2: precision 2/4 = 1/2, old precision 1/3 -> interpolated (1/3 + 1/2)/2 = 5/12
#    AP interpolated = (1/4 + 5/12)/2 = 1/3;  AP step-wise = (1/2 + 1/2)/2 = 1/2
# B: sorted g6 .10 (same id + same cam: junk) | g4 .20 correct | g1 | g3 | g0 | g5 | g2 .70 junk | g7
#    correct at r = 0: precision 1, old precision 1 (first place) -> AP 1 both ways; first hit rank 1
# C: its only same-id image g7 is seen by its own camera (junk) -> no correct match: skipped
#
# Over the 2 valid queries: CMC = [1/2, 1, 1, 1, 1] (A hits at rank 2, B at rank 1),
# rank1 = 1/2, rank5 = rank10 = 1; mAP interpolated = (1/3 + 1)/2 = 2/3; step-wise = (1/2 + 1)/2 = 3/4.
G_PIDS = np.array([1, 1, -1, 0, 2, 1, 2, 4])
G_CAMS = np.array([1, 2, 2, 3, 1, 3, 2, 3])
Q_PIDS = np.array([1, 2, 4])
Q_CAMS = np.array([1, 2, 3])
#               g0    g1    g2    g3    g4    g5    g6    g7
D = np.array([[0.05, 0.30, 0.10, 0.20, 0.40, 0.50, 0.60, 0.70],  # A
              [0.50, 0.30, 0.70, 0.40, 0.20, 0.60, 0.10, 0.80],  # B
              [0.60, 0.50, 0.40, 0.30, 0.20, 0.10, 0.70, 0.05]])  # C  # fmt: skip


def ev(d: np.ndarray, **kw) -> dict:
    return evaluate_retrieval(d, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, **kw)


def test_hand_made_ranking_interpolated_and_stepwise():
    r = ev(D, max_rank=5)
    assert r["cmc"] == pytest.approx([0.5, 1.0, 1.0, 1.0, 1.0])
    assert (r["rank1"], r["rank5"], r["rank10"]) == pytest.approx((0.5, 1.0, 1.0))
    assert r["map"] == pytest.approx(2 / 3)
    assert (r["n_query"], r["n_valid_query"], r["n_skipped"]) == (3, 2, 1)
    s = ev(D, max_rank=5, interpolated=False)
    assert s["map"] == pytest.approx(3 / 4)
    assert s["cmc"] == r["cmc"]
    # per query: A alone
    a = evaluate_retrieval(D[:1], Q_PIDS[:1], G_PIDS, Q_CAMS[:1], G_CAMS)
    assert a["map"] == pytest.approx(1 / 3)
    assert a["rank1"] == 0.0 and a["rank5"] == 1.0
    assert len(a["cmc"]) == 10
    a2 = evaluate_retrieval(D[:1], Q_PIDS[:1], G_PIDS, Q_CAMS[:1], G_CAMS, interpolated=False)
    assert a2["map"] == pytest.approx(1 / 2)


@pytest.mark.parametrize("value", [0.0, 0.35, 0.99])
def test_same_camera_same_id_and_junk_never_count(value):
    base, base_step = ev(D), ev(D, interpolated=False)
    for col in (0, 2):  # g0: A's own id seen by A's camera; g2: junk (pid -1)
        d = D.copy()
        d[0, col] = value
        assert ev(d) == base
        assert ev(d, interpolated=False) == base_step
    d = D.copy()
    d[1, 6] = 0.99  # g6: B's own id by B's camera, moved from first to last place
    assert ev(d) == base


def test_distractor_placed_first_is_a_wrong_match():
    d = D.copy()
    d[1, 3] = 0.0  # distractor g3 now ranks before B's only correct match
    r = ev(d)
    assert r["rank1"] == 0.0  # was 1/2
    # B: correct at r = 1: precision 1/2, old precision 0 -> AP 1/4; mAP = (1/3 + 1/4)/2
    assert r["map"] == pytest.approx((1 / 3 + 1 / 4) / 2)
    assert ev(d, interpolated=False)["map"] == pytest.approx((1 / 2 + 1 / 2) / 2)


def test_query_without_valid_match_is_skipped_and_counted(caplog):
    only_c = evaluate_retrieval(D[2:], Q_PIDS[2:], G_PIDS, Q_CAMS[2:], G_CAMS, max_rank=3)
    assert (only_c["n_query"], only_c["n_valid_query"], only_c["n_skipped"]) == (1, 0, 1)
    assert math.isnan(only_c["map"]) and math.isnan(only_c["rank1"])
    assert len(only_c["cmc"]) == 3 and all(math.isnan(v) for v in only_c["cmc"])
    # junk and distractor queries match nothing by definition
    r = evaluate_retrieval(D[:2], [-1, 0], G_PIDS, [1, 1], G_CAMS)
    assert r["n_skipped"] == 2
    # skipping C does not change the averages over A and B
    ab = evaluate_retrieval(D[:2], Q_PIDS[:2], G_PIDS, Q_CAMS[:2], G_CAMS)
    assert ab["map"] == ev(D)["map"] and ab["cmc"] == ev(D)["cmc"] and ab["n_skipped"] == 0


def test_perfect_ranking():
    rng = np.random.default_rng(1)
    n_id = 20
    g_pids, g_cams = np.repeat(np.arange(1, n_id + 1), 3), np.tile([1, 2, 3], n_id)
    q_pids, q_cams = np.arange(1, n_id + 1), np.full(n_id, 4)
    # distance 0.1 + noise to the own id, 1 + noise to the others
    d = np.where(q_pids[:, None] == g_pids[None], 0.1, 1.0) + 0.01 * rng.random((n_id, 3 * n_id))
    for interp in (True, False):
        r = evaluate_retrieval(d, q_pids, g_pids, q_cams, g_cams, interpolated=interp)
        assert r["map"] == pytest.approx(1.0) and r["rank1"] == 1.0 and r["cmc"] == [1.0] * 10


def _chance_ap(n: int, n_gallery: int, interpolated: bool) -> float:
    """Exact expected AP of a uniformly random ranking of n correct among n_gallery valid images: the i-th
    hit lands at 0-based rank r with probability C(r, i-1) C(N-1-r, n-i) / C(N, n)."""
    total = 0.0
    for i in range(1, n + 1):
        for r in range(i - 1, n_gallery - n + i):
            p = math.comb(r, i - 1) * math.comb(n_gallery - 1 - r, n - i) / math.comb(n_gallery, n)
            prec, old = i / (r + 1), ((i - 1) / r if r else 1.0)
            total += p * ((old + prec) / 2 if interpolated else prec)
    return total / n


def test_random_features_give_chance_map():
    rng = np.random.default_rng(0)
    n_id = 300
    g_pids, g_cams = np.repeat(np.arange(1, n_id + 1), 4), np.tile([1, 2, 3, 4], n_id)
    q_pids, q_cams = np.arange(1, n_id + 1), np.ones(n_id, dtype=int)
    d = cosine_distance(rng.normal(size=(n_id, 16)), rng.normal(size=(4 * n_id, 16)))
    for interp in (True, False):
        r = evaluate_retrieval(d, q_pids, g_pids, q_cams, g_cams, interpolated=interp)
        # 3 correct (other cameras) among 4 n_id - 1 valid images (the same-camera one is junk)
        chance = _chance_ap(3, 4 * n_id - 1, interp)
        assert r["map"] == pytest.approx(chance, rel=0.35)
        assert r["rank1"] < 0.03  # chance 3 / 1199


def test_stepwise_ap_matches_sklearn_without_exclusions():
    rng = np.random.default_rng(2)
    n_q, n_g = 15, 40
    g_pids, q_pids = rng.integers(1, 6, n_g), rng.integers(1, 6, n_q)
    g_cams, q_cams = np.ones(n_g, dtype=int), np.zeros(n_q, dtype=int)  # no same-camera junk
    d = rng.random((n_q, n_g))  # continuous: no ties
    valid = [i for i in range(n_q) if (g_pids == q_pids[i]).any()]
    expected = np.mean([average_precision_score(g_pids == q_pids[i], -d[i]) for i in valid])
    r = evaluate_retrieval(d, q_pids, g_pids, q_cams, g_cams, interpolated=False)
    assert r["map"] == pytest.approx(expected, abs=1e-12)
    assert r["n_valid_query"] == len(valid)
    # the trapezoid AP is never above the step-wise one, and below it here
    assert evaluate_retrieval(d, q_pids, g_pids, q_cams, g_cams)["map"] < r["map"]


def test_chunked_evaluation_equals_whole(monkeypatch):
    rng = np.random.default_rng(3)
    d = rng.random((23, 30))
    g_pids, q_pids = rng.integers(-1, 6, 30), rng.integers(1, 6, 23)
    g_cams, q_cams = rng.integers(1, 4, 30), rng.integers(1, 4, 23)
    whole = evaluate_retrieval(d, q_pids, g_pids, q_cams, g_cams)
    monkeypatch.setattr(retrieval, "_CHUNK_ELEMENTS", 70)  # 2 rows at a time
    assert evaluate_retrieval(d, q_pids, g_pids, q_cams, g_cams) == whole


def test_ties_break_by_gallery_index():
    d = np.zeros((1, 4))
    pids, cams = np.array([2, 1, 1, 3]), np.array([1, 2, 3, 1])
    assert ranked_gallery(d, 0, pids, cams, q_pid=1, q_camid=1, k=4) == [
        (0, False),
        (1, True),
        (2, True),
        (3, False),
    ]
    r = evaluate_retrieval(d, [1], pids, [1], cams)
    assert r["rank1"] == 0.0 and r["cmc"][1] == 1.0
    # hits at r = 1, 2: interpolated ((0 + 1/2)/2 + (1/2 + 2/3)/2)/2 = (1/4 + 7/12)/2 = 5/12
    assert r["map"] == pytest.approx(5 / 12)


def test_cosine_distance_scale_invariant_and_torch_agrees():
    rng = np.random.default_rng(4)
    q, g = rng.normal(size=(5, 8)), rng.normal(size=(7, 8))
    d = cosine_distance(q, g)
    assert d.shape == (5, 7) and np.all((d >= 0) & (d <= 2))
    scaled = cosine_distance(q * rng.uniform(0.01, 100, (5, 1)), g * 1e3)
    np.testing.assert_allclose(scaled, d, atol=1e-12)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    gn = g / np.linalg.norm(g, axis=1, keepdims=True)
    np.testing.assert_allclose(d, 1 - qn @ gn.T, atol=1e-12)
    np.testing.assert_allclose(cosine_distance(torch.from_numpy(q), torch.from_numpy(g)), d, atol=1e-12)
    assert cosine_distance(q.astype(np.float32), g.astype(np.float32)).dtype == np.float32
    assert cosine_distance(np.zeros((1, 8)), g) == pytest.approx(np.ones((1, 7)))
    assert cosine_distance([[1.0, 0.0]], [[2.0, 0.0], [0.0, 3.0]]) == pytest.approx(np.array([[0.0, 1.0]]))


def test_ranked_gallery_skips_excluded_images():
    top = ranked_gallery(D, 0, G_PIDS, G_CAMS, q_pid=1, q_camid=1, k=5)
    assert top == [(3, False), (1, True), (4, False), (5, True), (6, False)]  # no g0 (same cam), no g2 (junk)
    assert ranked_gallery(D, 1, G_PIDS, G_CAMS, 2, 2, k=1) == [(4, True)]  # g6 (same cam) skipped
    assert len(ranked_gallery(D, 0, G_PIDS, G_CAMS, 1, 1, k=100)) == 6  # fewer than k valid images
    assert all(type(i) is int and type(c) is bool for i, c in top)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: evaluate_retrieval(D[0], Q_PIDS, G_PIDS, Q_CAMS, G_CAMS), "distmat must have shape"),
        (lambda: evaluate_retrieval(D, Q_PIDS[:2], G_PIDS, Q_CAMS, G_CAMS), "q_pids has 2 entries"),
        (lambda: evaluate_retrieval(D, Q_PIDS, G_PIDS[:5], Q_CAMS, G_CAMS), "g_pids has 5 entries"),
        (lambda: evaluate_retrieval(D, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS[1:]), "g_camids has 7 entries"),
        (lambda: evaluate_retrieval(D, Q_PIDS + 0.5, G_PIDS, Q_CAMS, G_CAMS), "q_pids must be integers"),
        (lambda: evaluate_retrieval(D * np.nan, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS), "NaN or infinite"),
        (lambda: evaluate_retrieval(D, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=0), "max_rank"),
        (lambda: ranked_gallery(D, 3, G_PIDS, G_CAMS, 1, 1), "q must be a row"),
        (lambda: ranked_gallery(D, 0, G_PIDS, G_CAMS, 1, 1, k=0), "k must be"),
        (lambda: cosine_distance(np.ones((2, 3)), np.ones((2, 4))), "Feature sizes differ"),
        (lambda: cosine_distance(np.ones(3), np.ones((2, 3))), "query_feats must have shape"),
        (lambda: cosine_distance(np.full((1, 3), np.inf), np.ones((2, 3))), "NaN or infinite"),
    ],
)
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- figures -------------------------------------------------------------------------------------------


def _img(h: int, w: int, value: int) -> np.ndarray:
    return np.full((h, w, 3), value, dtype=np.uint8)


def test_plot_retrieval_examples(tmp_path):
    rows = [
        {"query": _img(64, 32, 200), "gallery": [_img(64, 32, v) for v in (10, 60, 120)],
         "correct": [True, False, True], "caption": "pid 1 · cam 1 · AP 0.83", "labels": ["d 0.1", "d 0.2", "d 0.3"]},
        {"query": _img(80, 40, 90), "gallery": [_img(72, 36, 30)], "correct": [False]},
    ]  # fmt: skip
    out = plot_retrieval_examples(rows, tmp_path / "examples.png", title="top-3")
    assert out.read_bytes().startswith(PNG) and out.stat().st_size > 1000
    with pytest.raises(ValueError, match="Nothing to plot"):
        plot_retrieval_examples([], tmp_path / "empty.png")
    with pytest.raises(ValueError, match="'correct' flags"):
        plot_retrieval_examples([{**rows[1], "correct": [True, False]}], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="lacks"):
        plot_retrieval_examples([{"query": rows[0]["query"]}], tmp_path / "bad.png")


def test_plot_gradient_norms(tmp_path):
    long = [(s, 1e-4 * (1 + 0.5 * math.sin(s))) for s in range(120)]
    curves = {
        "finetune": {"layer1": [(0, 1e-3), (10, 5e-4), (20, 2e-4)], "layer4": [(0, 1e-2), (10, 8e-3), (20, 5e-3)]},
        "rollback": {"layer1": long, "layer4": [(0, 0.0), (10, float("nan"))], "head": [(0, 1e-1), (20, 1e-2)]},
    }  # fmt: skip
    out = plot_gradient_norms(curves, tmp_path / "grad.png", events={"rollback": [40, 80]})
    assert out.read_bytes().startswith(PNG) and out.stat().st_size > 1000
    with pytest.raises(ValueError, match="Nothing to plot"):
        plot_gradient_norms({}, tmp_path / "empty.png")
    with pytest.raises(ValueError, match="Nothing to plot for method"):
        plot_gradient_norms({"finetune": {}}, tmp_path / "empty.png")
    with pytest.raises(ValueError, match="positive"):
        plot_gradient_norms({"finetune": {"layer1": [(0, 0.0)]}}, tmp_path / "zero.png")


def test_plot_cmc(tmp_path):
    out = plot_cmc({"finetune": [0.5, 0.7, 0.8, 0.9], "rollback": [0.6, 0.8, 0.9, 1.0], "fixbase": [math.nan] * 4},
                   tmp_path / "cmc.png")  # fmt: skip
    assert out.read_bytes().startswith(PNG) and out.stat().st_size > 1000
    bars = plot_cmc({"finetune": [0.5], "rollback": [0.6]}, tmp_path / "bars.png")
    assert bars.read_bytes().startswith(PNG)
    with pytest.raises(ValueError, match="Nothing to plot"):
        plot_cmc({}, tmp_path / "empty.png")
    with pytest.raises(ValueError, match="empty"):
        plot_cmc({"finetune": []}, tmp_path / "empty.png")
    with pytest.raises(ValueError, match="outside"):
        plot_cmc({"finetune": [50.0, 70.0]}, tmp_path / "pct.png")
