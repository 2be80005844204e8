"""VaB-AL: active learning that weighs class imbalance and difficulty with variational Bayes.

Paper: Choi, Yi, Kim, Choo, Kim, Chang, Gwon, Chang. "VaB-AL: Incorporating Class Imbalance and Difficulty
with Variational Bayes for Active Learning". CVPR 2021. arXiv 2003.11249. Official code:
github.com/jongwon20000/vabal (CIFAR-10, ResNet-18). Spec: ``specs/active_learning.md``.

The score is the probability that the classifier is wrong on an unlabelled image, split by Bayes' rule into
three terms, each of which can be switched off (``use_mislabel``, ``use_likelihood``, ``use_prior``)::

    stages [(N,C_i)] ──per stage: FC(encode_size) + ReLU + BN──► concat x (N,S·E)
        ──encoder: 3 x (FC(fc_size) + ReLU + BN)──► mu, logvar (N, K·L)     one latent chunk of L per class
    training (on the pool, labels = the classifier's predictions y^):
        z = mu + eps·sigma;  zero chunk y^;  decode ──► x'
        loss = MSE(x', x) + mean KL + cls_weight · CE(-||z_c||^2, y^)     (the chunk of y^ has the smallest norm)
    scoring, score_samples draws of z per image, for every class c: zero chunk c, decode:
        log p(x|c)   = log mean_s exp(-D · MSE_c,s / (2 decoder_variance))    the likelihood under class c
        p(c)         = histogram over the pool of argmin_c ||z_c||^2          the class prior (imbalance)
        m_c          = p(y != c | VAE says c) on the labelled images          the class's mislabel rate (difficulty)
        q(c|x)       = softmax_c(log p(x|c) + log p(c))
        score        = 1 - (1 - m_y^) · q(y^|x),   y^ = the classifier's prediction       (score_rule=paper)
        score        = 1 - sum_c l_c(x) p(c),  l_c = mean_s (MSE_c,s + KL)                   (score_rule=released)

A rare predicted class (small prior), a class the model often gets wrong (large m) and features that the VAE
does not explain with the predicted class (small likelihood) all raise the score.

Deviations (the exact equation is unpublished; the released scorer differs from the one behind its logs):
  * ``score_rule=paper`` is our reading of the paper's three factors: the probability that the label is not
    the prediction, 1 - p(y = y^ | x), with p(y = y^ | x) = (1 - m_y^) q(y^|x); the VAE's negative ELBO becomes
    a likelihood through a Gaussian decoder of variance ``decoder_variance`` (the KL term is the same for every
    class and cancels). ``score_rule=released`` is the released code's formula, which drops the mislabel term
    and sums a loss where a likelihood belongs; both are offered.
  * The prior and the mislabel rates are Laplace-smoothed (+1 per class) so that a class the VAE never
    predicts keeps a finite score.
  * The released code trains the classifier 200 epochs from scratch per round; here each round trains
    ``train.steps`` steps of the shared recipe (see :mod:`trustvis.tasks.active`). Its VAE schedule is kept
    (Adam lr 0.01, x0.1 at epoch 16 of 20, batch 128) but the first, gradient-free epoch is dropped, and
    the VAE is re-initialised (seeded by the round) each round.
  * ``score_samples`` defaults to 100 as released; the ``quick`` preset uses 20.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trustvis.methods.active.base import ActiveConfig, ActiveLearner, Query, active_presets
from trustvis.registry import Paper, register

SCORE_RULES = ("paper", "released")


@dataclass
class VabalConfig(ActiveConfig):
    """VaB-AL's VAE and score (defaults: the released code's)."""

    encode_size: int = 128  # per-stage FC width of the pre-processor
    fc_size: int = 128  # encoder / decoder width
    class_latent: int = 10  # latent dimensions per class chunk
    cls_weight: float = 0.005  # lambda of CE(-||z_c||^2, y^)
    vae_epochs: int = 20
    vae_lr: float = 0.01
    vae_lr_drop: int = 16  # epoch from which the VAE's rate is vae_lr / 10
    vae_batch: int = 128
    score_samples: int = 100  # draws of z per image when scoring
    score_rule: str = "paper"  # paper | released
    use_mislabel: bool = True
    use_likelihood: bool = True
    use_prior: bool = True
    decoder_variance: float = 1.0  # sigma^2 of the Gaussian decoder (paper rule)


def _block(n_in: int, n_out: int) -> list[nn.Module]:
    return [nn.Linear(n_in, n_out), nn.ReLU(), nn.BatchNorm1d(n_out)]


class VabalVAE(nn.Module):
    """The VAE on a classifier's pooled stage features, with one latent chunk of ``class_latent`` per class."""

    def __init__(self, stage_channels: list[int], num_classes: int, encode_size: int = 128, fc_size: int = 128,
                 class_latent: int = 10) -> None:  # fmt: skip
        super().__init__()
        self.num_classes, self.class_latent = num_classes, class_latent
        self.pre = nn.ModuleList([nn.Sequential(*_block(c, encode_size)) for c in stage_channels])
        d, kl = encode_size * len(stage_channels), num_classes * class_latent
        self.encoder = nn.Sequential(
            *_block(d, fc_size), *_block(fc_size, fc_size), *_block(fc_size, fc_size)
        )
        self.mu, self.logvar = nn.Linear(fc_size, kl), nn.Linear(fc_size, kl)
        self.decoder = nn.Sequential(
            *_block(kl, fc_size), *_block(fc_size, fc_size), *_block(fc_size, fc_size), nn.Linear(fc_size, d)
        )

    def preprocess(self, stages: list[torch.Tensor]) -> torch.Tensor:
        """[(B,C_i)] -> x (B, S·E): the VAE's input and reconstruction target."""
        return torch.cat([f(s) for f, s in zip(self.pre, stages)], 1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,D) -> mu, logvar (B, K·L)."""
        h = self.encoder(x)
        return self.mu(h), self.logvar(h)

    def chunk_norms(self, z: torch.Tensor) -> torch.Tensor:
        """(..., K·L) -> (..., K): ||z_c||^2 per class chunk (the smallest is the VAE's class)."""
        return z.unflatten(-1, (self.num_classes, self.class_latent)).pow(2).sum(-1)

    def zero_chunk(self, z: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        """(B, K·L), (B,) -> z with the chunk of class ``cls[i]`` set to zero in row i."""
        keep = 1.0 - F.one_hot(cls, self.num_classes).to(z.dtype)  # (B,K)
        return (z.unflatten(-1, (self.num_classes, self.class_latent)) * keep[..., None]).flatten(-2)

    def loss(self, stages: list[torch.Tensor], labels: torch.Tensor, cls_weight: float,
             generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
        """The training loss on a batch whose (pseudo) labels are ``labels`` (B,)."""
        x = self.preprocess(stages)
        mu, logvar = self.encode(x)
        z = mu + torch.randn(mu.shape, generator=generator).to(mu) * (0.5 * logvar).exp()
        recon = F.mse_loss(self.decoder(self.zero_chunk(z, labels)), x.detach())
        kld = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).mean()
        cls = F.cross_entropy(-self.chunk_norms(z), labels)
        return {"loss": recon + kld + cls_weight * cls, "recon": recon, "kld": kld, "cls": cls}

    @torch.no_grad()
    def class_errors(self, stages: list[torch.Tensor], samples: int, generator: torch.Generator | None = None
                     ) -> dict[str, torch.Tensor]:  # fmt: skip
        """Per image and class, over ``samples`` draws of z: ``mse`` (S,B,K) of the reconstruction with chunk c
        zeroed, ``kld`` (S,B) and the VAE's class ``vae_class`` (S,B) = argmin_c ||z_c||^2."""
        x = self.preprocess(stages)
        mu, logvar = self.encode(x)
        b, k = x.shape[0], self.num_classes
        kld = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).mean(1)  # (B,)
        eye = torch.arange(k, device=x.device).repeat(b)  # chunk zeroed per row of the (B·K) batch
        mse, vae_class = [], []
        for _ in range(samples):
            z = mu + torch.randn(mu.shape, generator=generator).to(mu) * (0.5 * logvar).exp()
            vae_class.append(self.chunk_norms(z).argmin(1))
            out = self.decoder(self.zero_chunk(z.repeat_interleave(k, 0), eye)).view(b, k, -1)
            mse.append((out - x[:, None]).pow(2).mean(-1))
        return {"mse": torch.stack(mse), "kld": kld.expand(samples, b), "vae_class": torch.stack(vae_class)}


def vabal_score(
    predicted: np.ndarray,
    log_likelihood: np.ndarray,
    prior: np.ndarray,
    mislabel: np.ndarray,
    use_likelihood: bool = True,
    use_prior: bool = True,
    use_mislabel: bool = True,
) -> np.ndarray:
    """The paper rule: ``1 - (1 - m_y^) q(y^|x)``, ``q(c|x) = softmax_c(log p(x|c) + log p(c))``.

    Args:
        predicted: (N,) the classifier's class of each pool image.
        log_likelihood: (N,K) log p(x|c).
        prior: (K,) p(c), positive.
        mislabel: (K,) m_c = p(y != c | predicted c), in [0, 1].
        use_likelihood, use_prior, use_mislabel: a term switched off is uniform (likelihood, prior) or zero
            (mislabel).
    """
    ll = np.asarray(log_likelihood, dtype=np.float64)
    n, k = ll.shape
    logit = ll if use_likelihood else np.zeros((n, k))
    if use_prior:
        logit = logit + np.log(np.asarray(prior, dtype=np.float64))[None]
    logit = logit - logit.max(1, keepdims=True)
    q = np.exp(logit)
    q /= q.sum(1, keepdims=True)
    pred = np.asarray(predicted, dtype=np.int64)
    m = np.asarray(mislabel, dtype=np.float64)[pred] if use_mislabel else np.zeros(n)
    return 1.0 - (1.0 - m) * q[np.arange(n), pred]


def released_score(class_loss: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """The released code's rule: ``1 - sum_c l_c(x) p(c)`` with ``l_c`` (N,K) the mean loss per class chunk."""
    return 1.0 - (np.asarray(class_loss, dtype=np.float64) * np.asarray(prior, dtype=np.float64)[None]).sum(1)


def smoothed_histogram(classes: np.ndarray, k: int) -> np.ndarray:
    """(K,) frequency of each class among ``classes``, with one extra count per class (Laplace)."""
    counts = np.bincount(np.asarray(classes, dtype=np.int64).ravel(), minlength=k)[:k].astype(np.float64)
    return (counts + 1.0) / (counts.sum() + k)


def mislabel_rates(vae_class: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """(K,) m_c = 1 - precision of the VAE's class c on labelled images, Laplace-smoothed: (wrong + 1) / (n + 2).
    ``vae_class`` (S,L) or (L,) predictions, ``labels`` (L,)."""
    pred = np.asarray(vae_class, dtype=np.int64)
    y = np.broadcast_to(np.asarray(labels, dtype=np.int64), pred.shape)
    n = np.bincount(pred.ravel(), minlength=k)[:k].astype(np.float64)
    wrong = np.bincount(pred[pred != y].ravel(), minlength=k)[:k].astype(np.float64)
    return (wrong + 1.0) / (n + 2.0)


@register(
    "vabal",
    task="active",
    config=VabalConfig,
    presets=active_presets(
        {
            "quick": {"score_samples": 20},
            "tiny": {
                "encode_size": 16,
                "fc_size": 16,
                "class_latent": 2,
                "vae_epochs": 1,
                "score_samples": 2,
            },
        }
    ),  # fmt: skip
    paper=Paper(
        "VaB-AL: Incorporating Class Imbalance and Difficulty with Variational Bayes for Active Learning",
        "Choi et al., CVPR 2021",
        "https://arxiv.org/abs/2003.11249",
    ),
    summary="VaB-AL: p(classifier wrong) from a class-chunked VAE on deep features, class prior and difficulty",
)
class Vabal(ActiveLearner):
    """VaB-AL query strategy (seed method)."""

    config: VabalConfig
    needs = ("stages",)

    def __init__(self, config: VabalConfig) -> None:
        if config.score_rule not in SCORE_RULES:
            raise ValueError(
                f"model.score_rule={config.score_rule!r} is invalid; choose from {list(SCORE_RULES)}"
            )
        for key in ("encode_size", "fc_size", "class_latent", "vae_batch", "score_samples"):
            if getattr(config, key) < 1:
                raise ValueError(f"model.{key} must be >= 1, got {getattr(config, key)}")
        if config.vae_epochs < 0 or not config.decoder_variance > 0 or not config.vae_lr > 0:
            raise ValueError("model.vae_epochs must be >= 0, model.vae_lr and model.decoder_variance > 0")
        super().__init__(config)
        self.vae = self._new_vae()
        #: the last query's terms (prior, mislabel rates, VAE agreement), for the loop's record
        self.last_terms: dict[str, Any] = {}

    def _new_vae(self) -> VabalVAE:
        c = self.config
        return VabalVAE(self.model.stage_channels, c.num_classes, c.encode_size, c.fc_size, c.class_latent)

    def fit_query(self, query: Query) -> dict[str, float]:
        """A fresh VAE (seeded by the round) trained on the pool's stage features, labelled by the classifier."""
        c = self.config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(query.seed)
            self.vae = self._new_vae().to(self.device)
        gen = torch.Generator().manual_seed(query.seed)
        stages = [torch.as_tensor(s, device=self.device) for s in query.pool.stages]
        labels = torch.as_tensor(query.pool.logits.argmax(1), device=self.device)
        n = len(labels)
        opt = torch.optim.Adam(self.vae.parameters(), lr=c.vae_lr)
        self.vae.train()
        logs: list[dict[str, float]] = []
        for epoch in range(c.vae_epochs):
            for g in opt.param_groups:
                g["lr"] = c.vae_lr * (0.1 if epoch >= c.vae_lr_drop else 1.0)
            order = torch.randperm(n, generator=gen).to(self.device)
            for idx in order.split(c.vae_batch):
                if len(idx) < 2:  # BatchNorm needs two rows
                    continue
                out = self.vae.loss([s[idx] for s in stages], labels[idx], c.cls_weight, gen)
                opt.zero_grad(set_to_none=True)
                out["loss"].backward()
                opt.step()
                logs.append({k: float(v.detach()) for k, v in out.items()})
        self.vae.eval()
        last = logs[-max(1, len(logs) // max(1, c.vae_epochs)) :] if logs else []
        return {f"vae_{k}": float(np.mean([r[k] for r in last])) for k in (last[0] if last else {})}

    def _errors(self, stages: list[np.ndarray], seed: int, batch: int = 512) -> dict[str, np.ndarray]:
        gen = torch.Generator().manual_seed(seed)
        parts: list[dict[str, torch.Tensor]] = []
        n = len(stages[0]) if stages else 0
        self.vae.eval()
        for a in range(0, n, batch):
            chunk = [torch.as_tensor(s[a : a + batch], device=self.device) for s in stages]
            parts.append(self.vae.class_errors(chunk, self.config.score_samples, gen))
        if not parts:
            k, s = self.config.num_classes, self.config.score_samples
            return {
                "mse": np.zeros((s, 0, k)),
                "kld": np.zeros((s, 0)),
                "vae_class": np.zeros((s, 0), np.int64),
            }
        return {k: torch.cat([p[k] for p in parts], 1).cpu().numpy() for k in parts[0]}

    def terms(self, query: Query) -> dict[str, np.ndarray]:
        """The score's terms on ``query``: ``log_likelihood`` (N,K), ``prior`` (K,), ``mislabel`` (K,),
        ``predicted`` (N,), and the released rule's ``class_loss`` (N,K)."""
        c = self.config
        pool = self._errors(query.pool.stages, query.seed + 1)
        lab = self._errors(query.labelled.stages, query.seed + 2)
        k = c.num_classes
        d = c.encode_size * len(self.model.stage_channels)  # the VAE's input dimension
        logp = -d * pool["mse"] / (2.0 * c.decoder_variance)  # (S,N,K)
        top = logp.max(0)
        log_likelihood = top + np.log(np.exp(logp - top).mean(0))
        return {
            "log_likelihood": log_likelihood,
            "prior": smoothed_histogram(pool["vae_class"], k),
            "mislabel": mislabel_rates(lab["vae_class"], query.labels, k),
            "predicted": query.pool.logits.argmax(1),
            "class_loss": (pool["mse"] + pool["kld"][..., None]).mean(0),
        }

    def score(self, query: Query) -> np.ndarray:
        c = self.config
        t = self.terms(query)
        self.last_terms = {"prior": t["prior"].tolist(), "mislabel": t["mislabel"].tolist()}
        if c.score_rule == "released":
            return released_score(t["class_loss"], t["prior"])
        return vabal_score(t["predicted"], t["log_likelihood"], t["prior"], t["mislabel"], c.use_likelihood,
                           c.use_prior, c.use_mislabel)  # fmt: skip
