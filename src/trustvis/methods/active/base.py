"""Active learners: a classifier that also says which unlabelled images to label next.

Every query strategy of the ``active`` task (``random``, ``entropy``, ``margin``, ``coreset``, ``bald`` in
:mod:`~trustvis.methods.active.baselines`, ``vabal`` in :mod:`~trustvis.methods.active.vabal`) is one of these:
the classification recipe of :mod:`trustvis.methods.classify.classifier` (cross-entropy, the same transforms,
optimiser and presets) on a network that shows its stage features, plus one small interface::

    image (B,3,H,W) in [0,1] ──► backbone taps [(B,C_i,H_i,W_i)] ──GAP──► stages [(B,C_i)]
        embedding = the last stage (B,D) ──► dropout(p) ──► linear ──► logits (B,C)     (predict: logits, probs)

    classifier, image set ──► features() ──► Features(logits, embedding, stages, mc_logits)   once per round
    Query(pool Features, labelled Features, labels, seed)
        ──► fit_query   (vabal: its VAE on the pool; the others: nothing)
        ──► score       (N,) higher = label first
        ──► select(k)   k distinct pool positions (default: the top k scores, ties to the lower index)

The loop that trains, queries and labels is the task's (:mod:`trustvis.tasks.active`).

Dropout is the network's only stochastic layer and sits in front of the classification layer, so the MC
dropout samples of BALD (``mc_logits``, T passes) re-run only that layer on features computed once: exact for
this network and T times cheaper than re-running the backbone. The samples use a generator seeded by the
query's seed, so a query is reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trustvis.config import TrainConfig
from trustvis.methods.classify.classifier import CLASSIFIER_TRAIN, Classifier, ClassifierConfig
from trustvis.nn.backbones import build_backbone


@dataclass
class ActiveConfig(ClassifierConfig):
    """The classifier of an active learner (every strategy has these fields)."""

    dropout: float = 0.3  # in front of the classification layer (BALD samples it; off at test time)
    mc_samples: int = 0  # dropout samples of the head per image in features() (BALD sets it)


#: model values per preset; "tiny" keeps the contract tests fast
ACTIVE_MODEL = {"default": {}, "quick": {"backbone": "tiny"}, "tiny": {"backbone": "tiny", "crop_pad": 1}}
#: the loop's defaults per preset (run.data of the active task); quick is the bench's budget
ACTIVE_DATA = {
    "default": {"name": "fashion-mnist"},
    "quick": {"name": "fashion-mnist", "max_per_class": 1000, "test_max_per_class": 500, "initial": 100,
              "budget": 100, "rounds": 5},
    "tiny": {"name": "sklearn-digits", "initial": 20, "budget": 10, "rounds": 1},
}  # fmt: skip
#: training budget of one round (each round trains from scratch by default): the classification recipe's, with
#: fewer steps per round
ACTIVE_TRAIN = {
    k: {
        **v,
        **{"default": {"steps": 1000, "warmup_steps": 50}, "quick": {"steps": 250, "warmup_steps": 25}}.get(
            k, {}
        ),
    }
    for k, v in CLASSIFIER_TRAIN.items()
}


def active_presets(model: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Presets of a strategy: :data:`ACTIVE_MODEL` updated by ``model`` (per preset), the round budget
    :data:`ACTIVE_TRAIN` and the loop settings :data:`ACTIVE_DATA`."""
    from trustvis.registry import Preset

    return {
        k: Preset(model={**v, **(model or {}).get(k, {})}, train=ACTIVE_TRAIN[k], data=ACTIVE_DATA[k])
        for k, v in ACTIVE_MODEL.items()
    }


@dataclass
class Features:
    """What a query strategy reads of a set of images (computed once per round by :meth:`ActiveLearner.features`)."""

    logits: np.ndarray  # (N,C) float32, dropout off
    embedding: np.ndarray  # (N,D) the last stage pooled: the input of the classification layer
    stages: list[np.ndarray] = field(default_factory=list)  # [(N,C_i)] every stage pooled
    mc_logits: np.ndarray | None = None  # (T,N,C) with dropout on, when the strategy asked for samples

    def __len__(self) -> int:
        return len(self.logits)

    @property
    def probs(self) -> np.ndarray:
        """(N,C) softmax of the logits (float64)."""
        from trustvis.metrics.calibration import softmax

        return softmax(self.logits)

    def subset(self, index: Any) -> Features:
        """The rows ``index`` of every array."""
        mc = None if self.mc_logits is None else self.mc_logits[:, index]
        return Features(self.logits[index], self.embedding[index], [s[index] for s in self.stages], mc)


@dataclass
class Query:
    """One round's question: which ``k`` of ``pool`` to label, knowing ``labelled`` and its ``labels``."""

    pool: Features
    labelled: Features
    labels: np.ndarray  # (L,) int64
    num_classes: int
    seed: int = 0  # the round's seed: random choices, the VAE's initialisation and samples


class ActiveNet(nn.Module):
    """Backbone at every tap, global average pooling per stage, dropout and a linear classification layer."""

    def __init__(self, config: ActiveConfig) -> None:
        super().__init__()
        self.backbone = build_backbone(config.backbone, config.weights or None, out_indices="all")
        self.stage_channels = list(self.backbone.channels)
        self.input_size = config.input_size
        self.p = config.dropout
        self.head = nn.Linear(self.stage_channels[-1], config.num_classes)

    def stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        """[(B,C_i)]: every tap's map, averaged over space."""
        if self.input_size and tuple(images.shape[-2:]) != (self.input_size, self.input_size):
            images = F.interpolate(images, size=(self.input_size,) * 2, mode="bilinear", align_corners=False)
        return [m.mean((2, 3)) for m in self.backbone(images)]

    def classify(self, embedding: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B,D) -> (B,C); ``mask`` (B,D) of kept units replaces the training-mode dropout (MC samples)."""
        if mask is not None:
            embedding = embedding * mask / (1.0 - self.p)
        else:
            embedding = F.dropout(embedding, self.p, self.training)
        return self.head(embedding)

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # (B,3,H,W) -> (B,C)
        return self.classify(self.stages(images)[-1])


class ActiveLearner(Classifier):
    """A classifier with a query strategy; subclasses implement :meth:`score` (and may override
    :meth:`fit_query` and :meth:`select`)."""

    config: ActiveConfig
    #: what the strategy reads: "stages" (all pooled stages), "mc" (dropout samples); logits and embedding always
    needs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: ActiveConfig) -> None:
        if not 0.0 <= config.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {config.dropout}")
        if config.mc_samples < 0:
            raise ValueError(f"model.mc_samples must be >= 0, got {config.mc_samples}")
        super().__init__(config)

    def build_network(self) -> nn.Module:
        return ActiveNet(self.config)

    def configure_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        """The classifier's parameters only (a strategy's own networks, the VAE of vabal, fit in fit_query)."""
        return {"main": self.run_optimizer(self.model.parameters(), train)}

    def backbone_heads(self) -> dict[str, list[str]]:
        return {"model.backbone.net": ["model.head"]}

    # --- features -----------------------------------------------------------------------------------
    @torch.no_grad()
    def features(
        self,
        dataset: Any,
        batch_size: int = 256,
        seed: int = 0,
        progress: bool = False,
        desc: str = "features",
    ) -> Features:
        """:class:`Features` of every item of ``dataset`` (``{"image": ...}`` items), in order; dropout
        samples of the head (``config.mc_samples`` of them, seeded by ``seed``) when the strategy needs them."""
        from torch.utils.data import DataLoader
        from tqdm.auto import tqdm

        was_training = self.training
        self.eval()
        net: ActiveNet = self.model  # type: ignore[assignment]
        t = self.config.mc_samples if "mc" in self.needs else 0
        gen = torch.Generator().manual_seed(int(seed))
        logits, stages, mc = [], [], []
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
        for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
            s = net.stages(batch["image"].to(self.device))
            emb = s[-1]
            logits.append(net.head(emb).float().cpu())
            stages.append([x.float().cpu() for x in s])
            if t:
                keep = (torch.rand((t, *emb.shape), generator=gen) >= net.p).to(emb.device, emb.dtype)
                mc.append(torch.stack([net.classify(emb, keep[i]) for i in range(t)]).float().cpu())
        self.train(was_training)
        n_stages = len(net.stage_channels)
        if not logits:
            empty = [np.zeros((0, c), np.float32) for c in net.stage_channels]
            return Features(np.zeros((0, self.config.num_classes), np.float32), empty[-1], empty,
                            np.zeros((t, 0, self.config.num_classes), np.float32) if t else None)  # fmt: skip
        cat = [torch.cat([b[i] for b in stages]).numpy() for i in range(n_stages)]
        return Features(
            torch.cat(logits).numpy(),
            cat[-1],
            cat if "stages" in self.needs else [],
            torch.cat(mc, 1).numpy() if t else None,
        )

    # --- the query interface --------------------------------------------------------------------------
    def fit_query(self, query: Query) -> dict[str, float]:
        """Fit what the strategy learns on the pool before scoring it (default: nothing); returns scalars to log."""
        return {}

    def score(self, query: Query) -> np.ndarray:
        """(N,) informativeness of each pool item: the higher, the sooner it is labelled."""
        raise NotImplementedError

    def select(self, query: Query, k: int) -> np.ndarray:
        """``k`` distinct positions in ``query.pool``: the top ``k`` scores (ties go to the lower position). The
        scores stay in ``self.last_scores`` (the loop records them)."""
        k = check_k(k, len(query.pool))
        self.last_scores = np.asarray(self.score(query), dtype=np.float64)
        return top_k(self.last_scores, k)


def check_k(k: int, n: int) -> int:
    """``k`` if 1 <= k <= n; a clear error otherwise."""
    if isinstance(k, bool) or int(k) != k or not 1 <= k <= n:
        raise ValueError(f"cannot select k={k} of a pool of {n} unlabelled images; choose 1..{n}")
    return int(k)


def top_k(scores: Sequence[float] | np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest ``scores`` (NaN last; ties to the lower position), highest first."""
    s = np.asarray(scores, dtype=np.float64)
    s = np.where(np.isnan(s), -np.inf, s)
    return np.argsort(-s, kind="stable")[:k].astype(np.int64)
