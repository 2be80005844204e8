"""Active learning: the query strategies' invariants, VaB-AL's VAE and score, the loop's state and resume, and
the peer check against baal's heuristics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trustvis import registry
from trustvis.config import make_run_config
from trustvis.methods.active.base import Features, Query, top_k
from trustvis.methods.active.baselines import bald_scores, entropy_scores, kcenter_greedy, margin_scores
from trustvis.methods.active.vabal import (
    VabalVAE,
    mislabel_rates,
    released_score,
    smoothed_histogram,
    vabal_score,
)
from trustvis.metrics.active import class_counts, class_metrics, learning_curve_area

STRATEGIES = sorted(s.name for s in registry.list_methods("active"))


def _features(
    n: int, k: int, seed: int, mc: int = 0, channels: tuple[int, ...] = (16, 16, 32, 64)
) -> Features:
    """Random features shaped like the tiny backbone's (stage channels of ``TinyCNN``)."""
    rng = np.random.default_rng(seed)
    stages = [rng.normal(size=(n, c)).astype(np.float32) for c in channels]
    mc_logits = rng.normal(size=(mc, n, k)).astype(np.float32) if mc else None
    return Features(rng.normal(size=(n, k)).astype(np.float32), stages[-1], stages, mc_logits)


def _tiny(name: str, **model):
    return registry.build(name, "tiny", num_classes=3, **model)


def _query(n: int = 30, seed: int = 0) -> Query:
    return Query(
        _features(n, 3, seed, mc=4), _features(6, 3, seed + 1, mc=4), np.array([0, 1, 2, 0, 1, 2]), 3, seed
    )


def test_registry_lists_every_strategy():
    assert set(STRATEGIES) == {"random", "entropy", "margin", "coreset", "bald", "vabal"}
    assert registry.get("vabal").seed_method and not registry.get("entropy").seed_method


@pytest.mark.parametrize("name", STRATEGIES)
def test_select_gives_k_distinct_positions(name):
    method = _tiny(name)
    q = _query()
    method.fit_query(q)
    picks = method.select(q, 7)
    assert picks.shape == (7,) and len(set(picks.tolist())) == 7
    assert picks.min() >= 0 and picks.max() < len(q.pool)
    with pytest.raises(ValueError, match="k=31"):
        method.select(q, 31)
    with pytest.raises(ValueError, match="k=0"):
        method.select(q, 0)


@pytest.mark.parametrize("name", STRATEGIES)
def test_loop_queries_only_unlabelled_images(name):
    from trustvis.data.classification import ImageSet
    from trustvis.tasks.active import query

    rng = np.random.default_rng(0)
    pool = ImageSet(rng.integers(0, 255, (40, 8, 8), dtype=np.uint8), np.arange(40) % 3, ["a", "b", "c"])
    labelled_idx = [0, 1, 2, 3, 4, 5]
    unlabelled = [i for i in range(40) if i not in labelled_idx]
    res = query(_tiny(name), pool, unlabelled, pool.subset(labelled_idx), 10, seed=3)
    assert len(res["queried"]) == 10 and len(set(res["queried"])) == 10
    assert not set(res["queried"]) & set(labelled_idx)


def test_random_is_seeded():
    m = _tiny("random")
    a, b, c = m.select(_query(seed=0), 5), m.select(_query(seed=0), 5), m.select(_query(seed=1), 5)
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()


def test_entropy_and_margin_on_hand_cases():
    p = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.6, 0.3, 0.1]])
    np.testing.assert_allclose(entropy_scores(p), [0.0, np.log(2), np.log(3), -(0.6 * np.log(0.6) + 0.3 * np.log(0.3)
                               + 0.1 * np.log(0.1))])  # fmt: skip
    np.testing.assert_allclose(margin_scores(p), [-1.0, 0.0, 0.0, -0.3])
    assert top_k(entropy_scores(p), 3).tolist() == [2, 3, 1]  # H(0.6, 0.3, 0.1) = 0.90 > log 2
    assert top_k([0.5, np.nan, 0.5, 0.7], 3).tolist() == [3, 0, 2]  # ties to the lower position, NaN last


def test_coreset_picks_the_farthest_point_first():
    labelled = np.zeros((1, 2))
    pool = np.array([[1.0, 0.0], [5.0, 0.0], [3.0, 0.0], [0.0, 4.0], [5.0, 0.5]])
    picks = kcenter_greedy(pool, labelled, 3)
    assert picks[0] == 4  # |(5, 0.5)| = 5.02 is the farthest from the labelled origin
    assert picks[1] == 3  # then (0, 4): 4 from the origin; (5, 0) is now 0.5 from a centre
    assert picks[2] == 2  # (3, 0): 2.06 from (5, 0.5); (1, 0) is 1 from the origin
    m = _tiny("coreset")
    q = Query(Features(np.zeros((5, 3), np.float32), pool.astype(np.float32)),
              Features(np.zeros((1, 3), np.float32), labelled.astype(np.float32)), np.array([0]), 3)  # fmt: skip
    assert m.select(q, 3).tolist() == picks.tolist()
    np.testing.assert_allclose(m.score(q), np.linalg.norm(pool, axis=1))


def test_bald_is_zero_without_dropout_variation():
    from trustvis.data.classification import ClassificationDataset, ImageSet

    rng = np.random.default_rng(0)
    data = ImageSet(rng.integers(0, 255, (12, 8, 8), dtype=np.uint8), np.arange(12) % 3, ["a", "b", "c"])
    still = _tiny("bald", dropout=0.0)
    f = still.features(ClassificationDataset(data, still.make_transform(False)))
    assert f.mc_logits.shape == (4, 12, 3)
    assert np.all(bald_scores(torch.from_numpy(f.mc_logits).softmax(-1).numpy()) == 0.0)
    shaky = _tiny("bald", dropout=0.5)
    g = shaky.features(ClassificationDataset(data, shaky.make_transform(False)))
    assert bald_scores(torch.from_numpy(g.mc_logits).softmax(-1).numpy()).max() > 1e-4
    # hand case: two samples that disagree completely -> log 2 nats
    np.testing.assert_allclose(bald_scores(np.array([[[1.0, 0.0]], [[0.0, 1.0]]])), [np.log(2)])


def test_features_mc_samples_are_seeded_and_match_the_head():
    from trustvis.data.classification import ClassificationDataset, ImageSet

    m = _tiny("bald", dropout=0.5)
    m.eval()
    data = ImageSet(np.random.default_rng(1).integers(0, 255, (5, 8, 8), dtype=np.uint8), np.zeros(5, np.int64),
                    ["a", "b", "c"])  # fmt: skip
    ds = ClassificationDataset(data, m.make_transform(False))
    a, b, c = m.features(ds, seed=0), m.features(ds, seed=0), m.features(ds, seed=1)
    np.testing.assert_array_equal(a.mc_logits, b.mc_logits)
    assert not np.array_equal(a.mc_logits, c.mc_logits)
    x = torch.stack([ds[i]["image"] for i in range(5)])
    np.testing.assert_allclose(a.logits, m.predict({"image": x})["logits"].numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("reduction", ["entropy", "bald"])
def test_baal_heuristics_select_what_ours_select(reduction):
    heuristics = pytest.importorskip("baal.active.heuristics")
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5) * 0.7, size=(200, 8))  # (N, T, C) MC-dropout-like samples
    baal_in = probs.transpose(0, 2, 1)  # baal: (N, C, T)
    if reduction == "entropy":
        ours = entropy_scores(probs.mean(1))
        theirs = heuristics.Entropy().get_ranks(baal_in)[0]
    else:
        ours = bald_scores(probs.transpose(1, 0, 2))
        theirs = heuristics.BALD().get_ranks(baal_in)[0]
    assert top_k(ours, 25).tolist() == list(theirs[:25])


def test_vae_chunks_and_training_separate_the_classes():
    torch.manual_seed(0)
    vae = VabalVAE([4, 6], num_classes=3, encode_size=8, fc_size=16, class_latent=2)
    z = torch.arange(1, 13, dtype=torch.float32).view(2, 6)
    zz = vae.zero_chunk(z, torch.tensor([1, 2]))
    assert zz[0, 2:4].abs().sum() == 0 and torch.equal(zz[0, [0, 1, 4, 5]], z[0, [0, 1, 4, 5]])
    assert zz[1, 4:6].abs().sum() == 0 and torch.equal(zz[1, :4], z[1, :4])
    torch.testing.assert_close(vae.chunk_norms(z)[0], torch.tensor([1 + 4, 9 + 16, 25 + 36.0]))
    # a vabal fit on three well-separated pseudo-classes: the chunk with the smallest norm names the class
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 60)
    centres = rng.normal(0, 3, (3, 16))
    stages = [(centres[labels] + rng.normal(0, 0.3, (180, 16))).astype(np.float32)]
    logits = np.eye(3, dtype=np.float32)[labels] * 5
    pool = Features(logits, stages[-1], stages)
    m = _tiny("vabal", vae_epochs=30, encode_size=16, fc_size=32, class_latent=4, cls_weight=1.0)
    m.model.stage_channels = [16]  # the VAE reads these synthetic 16-d stages
    q = Query(pool, pool.subset(np.arange(0, 180, 10)), labels[::10], 3, seed=0)
    m.fit_query(q)
    with torch.no_grad():
        mu, _ = m.vae.encode(m.vae.preprocess([torch.from_numpy(stages[0])]))
        agree = (m.vae.chunk_norms(mu).argmin(1).numpy() == labels).mean()
    assert agree > 0.9
    t = m.terms(q)
    assert t["log_likelihood"].shape == (180, 3) and t["prior"].shape == (3,)
    assert (
        t["log_likelihood"].argmax(1) == labels
    ).mean() > 0.5  # zeroing the own chunk costs least (chance 1/3)


def test_vabal_three_term_score_on_a_hand_case():
    ll = np.log(np.array([[0.6, 0.2], [0.1, 0.3]]))
    prior = np.array([0.75, 0.25])
    mislabel = np.array([0.1, 0.5])
    pred = np.array([0, 1])
    q0 = 0.6 * 0.75 / (0.6 * 0.75 + 0.2 * 0.25)  # 0.9
    q1 = 0.3 * 0.25 / (0.1 * 0.75 + 0.3 * 0.25)  # 0.5
    np.testing.assert_allclose(vabal_score(pred, ll, prior, mislabel), [1 - 0.9 * q0, 1 - 0.5 * q1])
    np.testing.assert_allclose(vabal_score(pred, ll, prior, mislabel, use_mislabel=False), [1 - q0, 1 - q1])
    np.testing.assert_allclose(vabal_score(pred, ll, prior, mislabel, use_prior=False),
                               [1 - 0.9 * 0.75, 1 - 0.5 * 0.75])  # fmt: skip
    np.testing.assert_allclose(vabal_score(pred, ll, prior, mislabel, use_likelihood=False),
                               [1 - 0.9 * 0.75, 1 - 0.5 * 0.25])  # fmt: skip
    # the released rule: 1 - sum_c loss_c prior_c
    np.testing.assert_allclose(released_score(np.array([[0.2, 0.4]]), prior), [1 - (0.15 + 0.1)])
    np.testing.assert_allclose(smoothed_histogram(np.array([0, 0, 0]), 2), [4 / 5, 1 / 5])
    np.testing.assert_allclose(
        mislabel_rates(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2), [2 / 4, 1 / 4]
    )


def test_class_metrics_and_learning_curve():
    from sklearn.metrics import balanced_accuracy_score, f1_score

    y = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    p = np.array([0, 0, 0, 1, 1, 0, 2, 0])
    m = class_metrics(y, p, 4)
    assert m["acc"] == pytest.approx(5 / 8)
    assert m["balanced_acc"] == pytest.approx(balanced_accuracy_score(y, p))
    assert m["macro_f1"] == pytest.approx(f1_score(y, p, average="macro", labels=range(4), zero_division=0))
    assert m["recall"][:3] == pytest.approx([0.75, 0.5, 0.5]) and np.isnan(m["recall"][3])
    assert learning_curve_area([100, 200, 400], [0.5, 0.7, 0.7]) == pytest.approx((60 + 140) / 300)
    assert learning_curve_area([100], [0.4]) == 0.4
    assert class_counts([2, 2, 0], 3) == [1, 0, 2]
    with pytest.raises(ValueError, match="classes are 0..2"):
        class_counts([3], 3)


def _tiny_run(name: str, **data):
    over = ["train.progress=false", "train.device=cpu", *(f"data.{k}={v}" for k, v in data.items())]
    run = make_run_config(name, "tiny", overrides=over)
    from trustvis.tasks import get_task

    get_task("active").prepare(run, set())
    return run


def test_interrupted_loop_resumes_with_the_same_selections(tmp_path, monkeypatch):
    from trustvis.tasks import TaskError
    from trustvis.tasks import active as A

    run = _tiny_run("vabal", rounds=2)
    A.run_loop(run, tmp_path / "whole")
    whole = json.loads((tmp_path / "whole" / "active.json").read_text())
    assert [len(r.get("queried", [])) for r in whole["rounds"]] == [10, 10, 0]
    assert len(A.labelled_indices(whole)) == 40 == len(set(A.labelled_indices(whole)))
    first = whole["rounds"][0]
    assert len(first["scores"]) == 10 and first["scores"] == sorted(first["scores"], reverse=True)
    saved = np.load(tmp_path / "whole" / "rounds" / "r00" / A.SCORES_FILE)
    assert len(saved["positions"]) == whole["pool_size"] - 20 and not set(saved["positions"]) & set(
        whole["initial"]
    )
    by_pos = dict(zip(saved["positions"].tolist(), saved["scores"].tolist()))
    assert [by_pos[i] for i in first["queried"]] == first["scores"]

    real_query, calls = A.query, []

    def dies_second_time(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_query(*a, **k)

    monkeypatch.setattr(A, "query", dies_second_time)
    with pytest.raises(KeyboardInterrupt):
        A.run_loop(_tiny_run("vabal", rounds=2), tmp_path / "cut")
    monkeypatch.setattr(A, "query", real_query)
    cut = json.loads((tmp_path / "cut" / "active.json").read_text())
    assert len(cut["rounds"]) == 1 and not (tmp_path / "cut" / "model.json").exists()
    with pytest.raises(TaskError, match="--resume"):
        A.run_loop(_tiny_run("vabal", rounds=2), tmp_path / "cut")
    A.run_loop(_tiny_run("vabal", rounds=2), tmp_path / "cut", resume=True)
    again = json.loads((tmp_path / "cut" / "active.json").read_text())
    assert [r.get("queried") for r in again["rounds"]] == [r.get("queried") for r in whole["rounds"]]
    assert again["initial"] == whole["initial"]
    assert (tmp_path / "cut" / "model.json").is_file() and (tmp_path / "cut" / "curves.png").is_file()


def test_initial_labels_are_shared_by_strategies_and_pools_are_imbalanced(tmp_path):
    from trustvis.tasks.active import initial_indices, load_pool

    assert initial_indices(100, 10, 3) == initial_indices(100, 10, 3) != initial_indices(100, 10, 4)
    run = _tiny_run("entropy", pool="dominant", dominant=2)
    counts = load_pool(run.data).class_counts()
    assert counts[2] == counts.max() and counts[2] >= 5 * np.delete(counts, 2).max()
