"""The query strategies people use today, on the same classifier, features and loop as VaB-AL.

random   a uniformly random subset (seeded by the round's seed)
entropy  the predictive entropy  H(p) = -sum_c p_c log p_c                      (uncertainty sampling)
margin   the smallest gap between the two most probable classes: score = -(p_(1) - p_(2))
bald     the mutual information between the label and the weights under MC dropout (Houlsby et al. 2011,
         Gal et al. 2017):  H(mean_t p_t) - mean_t H(p_t),  T = model.mc_samples dropout samples of the head
coreset  k-center greedy on the classifier's embedding (Sener & Savarese 2018): repeatedly the pool image
         farthest (Euclidean) from every labelled or already chosen image

The scores are pure functions of arrays (:func:`entropy_scores`, :func:`margin_scores`, :func:`bald_scores`,
:func:`kcenter_greedy`), so that they are tested against hand-made cases and against baal's heuristics.

Shapes: probs (N,C); MC probabilities (T,N,C); embeddings (N,D) and (L,D). Scores (N,), higher = label first.

Deviations:
  * ``bald`` samples dropout in front of the classification layer only (the network's only dropout; see
    :mod:`trustvis.methods.active.base`), with T = 20 samples by default, as baal's examples use.
  * ``coreset`` is the greedy 2-approximation of the paper, without its robust mixed-integer refinement;
    distances are Euclidean on the raw (not normalised) embedding, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trustvis.methods.active.base import ActiveConfig, ActiveLearner, Query, active_presets, check_k
from trustvis.metrics.calibration import softmax
from trustvis.registry import Paper, register

_SURVEY = Paper("Active Learning Literature Survey", "Settles, University of Wisconsin-Madison TR 1648, 2009",
                "https://burrsettles.com/pub/settles.activelearning.pdf")  # fmt: skip


def entropy_scores(probs: np.ndarray) -> np.ndarray:
    """(N,C) probabilities -> (N,) predictive entropy in nats (0 log 0 = 0)."""
    p = np.asarray(probs, dtype=np.float64)
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(1)


def margin_scores(probs: np.ndarray) -> np.ndarray:
    """(N,C) -> (N,) minus the gap between the two largest probabilities (a small gap scores high)."""
    p = np.sort(np.asarray(probs, dtype=np.float64), axis=1)
    return -(p[:, -1] - p[:, -2])


def bald_scores(mc_probs: np.ndarray) -> np.ndarray:
    """(T,N,C) probabilities of T dropout samples -> (N,) mutual information H(mean_t p_t) - mean_t H(p_t),
    clipped at 0 (it is >= 0 up to rounding); zero when the samples agree."""
    p = np.asarray(mc_probs, dtype=np.float64)
    if p.ndim != 3 or p.shape[0] < 1:
        raise ValueError(f"BALD needs (T,N,C) dropout samples with T >= 1, got shape {p.shape}")
    mi = entropy_scores(p.mean(0)) - np.mean([entropy_scores(s) for s in p], axis=0)
    return np.maximum(mi, 0.0)


def min_distances(points: np.ndarray, centres: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """(N,D), (L,D) -> (N,) Euclidean distance of each point to its nearest centre (inf when L = 0)."""
    x = torch.as_tensor(np.asarray(points, dtype=np.float64))
    c = torch.as_tensor(np.asarray(centres, dtype=np.float64))
    if len(c) == 0:
        return np.full(len(x), np.inf)
    out = [torch.cdist(part, c).min(1).values for part in x.split(chunk)] if len(x) else [torch.zeros(0)]
    return torch.cat(out).numpy()


def kcenter_greedy(pool: np.ndarray, labelled: np.ndarray, k: int) -> np.ndarray:
    """``k`` positions of ``pool`` (N,D) chosen by k-center greedy against the ``labelled`` centres (L,D): each
    pick is the point farthest from its nearest centre (ties to the lower position), which then becomes a centre.
    With no labelled centre every distance starts infinite and the first pick is position 0."""
    k = check_k(k, len(pool))
    d = min_distances(pool, labelled)
    x = np.asarray(pool, dtype=np.float64)
    picks: list[int] = []
    for _ in range(k):
        d[picks] = -np.inf  # chosen: never again
        i = int(np.argmax(d))
        picks.append(i)
        d = np.minimum(d, np.sqrt(((x - x[i]) ** 2).sum(1)))
    return np.asarray(picks, dtype=np.int64)


@register("random", task="active", config=ActiveConfig, presets=active_presets(), paper=_SURVEY,
          summary="random sampling: a uniformly random subset of the pool each round (baseline)",
          seed_method=False)  # fmt: skip
class RandomQuery(ActiveLearner):
    """Random sampling (baseline)."""

    def score(self, query: Query) -> np.ndarray:
        return np.random.default_rng(query.seed).random(len(query.pool))


@register("entropy", task="active", config=ActiveConfig, presets=active_presets(), paper=_SURVEY,
          summary="uncertainty sampling by predictive entropy (baseline)", seed_method=False)  # fmt: skip
class EntropyQuery(ActiveLearner):
    """Maximum predictive entropy (baseline)."""

    def score(self, query: Query) -> np.ndarray:
        return entropy_scores(query.pool.probs)


@register("margin", task="active", config=ActiveConfig, presets=active_presets(),
          paper=Paper("Active Hidden Markov Models for Information Extraction", "Scheffer et al., IDA 2001",
                      "https://link.springer.com/chapter/10.1007/3-540-44816-0_31"),
          summary="margin sampling: the smallest gap between the two most probable classes (baseline)",
          seed_method=False)  # fmt: skip
class MarginQuery(ActiveLearner):
    """Smallest top-2 margin (baseline)."""

    def score(self, query: Query) -> np.ndarray:
        return margin_scores(query.pool.probs)


@dataclass
class BaldConfig(ActiveConfig):
    """BALD reads ``mc_samples`` dropout samples of the head per pool image."""

    mc_samples: int = 20


@register("bald", task="active", config=BaldConfig, presets=active_presets({"tiny": {"mc_samples": 4}}),
          paper=Paper("Deep Bayesian Active Learning with Image Data", "Gal, Islam & Ghahramani, ICML 2017",
                      "https://arxiv.org/abs/1703.02910"),
          summary="BALD: mutual information between label and weights under MC dropout (baseline)",
          seed_method=False)  # fmt: skip
class BaldQuery(ActiveLearner):
    """Bayesian active learning by disagreement with MC dropout (baseline)."""

    needs = ("mc",)

    def __init__(self, config: BaldConfig) -> None:
        if config.mc_samples < 1:
            raise ValueError(f"bald needs model.mc_samples >= 1 dropout samples, got {config.mc_samples}")
        super().__init__(config)

    def score(self, query: Query) -> np.ndarray:
        if query.pool.mc_logits is None:
            raise ValueError("bald needs the pool's dropout samples (Features.mc_logits); compute the "
                             "features with this method's features()")  # fmt: skip
        return bald_scores(softmax(query.pool.mc_logits))


@register("coreset", task="active", config=ActiveConfig, presets=active_presets(),
          paper=Paper("Active Learning for Convolutional Neural Networks: A Core-Set Approach",
                      "Sener & Savarese, ICLR 2018", "https://arxiv.org/abs/1708.00489"),
          summary="core-set: k-center greedy on the classifier's embedding (baseline)", seed_method=False)  # fmt: skip
class CoresetQuery(ActiveLearner):
    """k-center greedy core-set (baseline)."""

    def score(self, query: Query) -> np.ndarray:
        """Distance of each pool image to its nearest labelled image (the first pick is the largest)."""
        return min_distances(query.pool.embedding, query.labelled.embedding)

    def select(self, query: Query, k: int) -> np.ndarray:
        self.last_scores = self.score(query)
        return kcenter_greedy(query.pool.embedding, query.labelled.embedding, k)
