"""Joint multimodal VAE, JMVAE-kl (``jmvae``, baseline): one latent space for image and speech, learned from pairs.

Paper: Suzuki, Nakayama, Matsuo. "Joint Multimodal Learning with Deep Generative Models". ICLR 2017 workshop,
arXiv 1611.01891. Written here (MultiVae's ``JMVAE`` is the packaged one; ``multivae`` installs offline but pulls
pythae, pandas, nltk and torchmetrics in for one loss, and trains on paired datasets only)::

    pairs (x_i, x_s):   z ~ q(z | x_i, x_s)                               joint encoder on [flatten x_i, flatten x_s]
        L_pair = log p_i(x_i|z) + log p_s(x_s|z) − β·KL(q(z|x_i,x_s) ‖ N(0,I))
                 − α·[KL(q(z|x_i,x_s) ‖ q_i(z|x_i)) + KL(q(z|x_i,x_s) ‖ q_s(z|x_s))]
    unpaired x_i, x_s:  L_i = ELBO of (q_i, p_i),  L_s = ELBO of (q_s, p_s)          the surrogate encoders, shared decoders
    loss = −mean L_pair − unpaired_weight · (mean L_i + mean L_s)
    inference:  x_a ─► μ of q_a(z|x_a) ─► decoder_b ─► x̂_b            (z_image and z_speech live in one space)

Shapes: image (B, 1, 20, 20), speech (B, 40, 101), z (B, latent); the joint encoder reads (B, 400 + 4040).

Deviations:
  * JMVAE trains on pairs; "plus the unpaired data it can use" is done here by the unimodal ELBOs of the surrogate
    encoders with the shared decoders (``unpaired_weight``; 0 = the paper's pairs-only objective).
  * Two modalities (image, speech); MLP networks of the same size as ``xmodal``'s VAEs; one sample per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trustvis.config import ConfigError
from trustvis.methods.multimodal.base import BATCH_KEYS, CrossModalMethod, ModalityConfig, mlp
from trustvis.nn.vae import gaussian_kl, log_likelihood
from trustvis.registry import Paper, Preset, register


@dataclass
class JMVAEConfig(ModalityConfig):
    """One shared latent space, a joint encoder and one surrogate encoder per modality."""

    latent: int = 16
    alpha: float = 1.0  # weight of the KL terms that pull the unimodal encoders to the joint one
    unpaired_weight: float = 1.0  # weight of the unimodal ELBOs on the unpaired pools (0: pairs only)


def jmvae_presets() -> dict[str, Preset]:
    """Budgets matched to ``xmodal``'s by compute: its VAE steps plus a quarter of its associator steps (an associator
    step runs the frozen encoders forward and a small MLP, a fraction of a VAE step)."""
    train = {"batch_size": 64, "lr": 1e-3, "eval_every": 0, "log_every": 100, "ckpt_every": 0}
    return {
        "default": Preset(train={**train, "steps": 4000}),
        "quick": Preset(train={**train, "steps": 2000}),
        "tiny": Preset(model={"hidden": 16, "latent": 4}, train={"steps": 2, "batch_size": 4, "lr": 1e-3}),
    }


@register(
    "jmvae",
    task="multimodal",
    config=JMVAEConfig,
    presets=jmvae_presets(),
    paper=Paper(
        "Joint Multimodal Learning with Deep Generative Models",
        "Suzuki et al., ICLR workshop 2017",
        "https://arxiv.org/abs/1611.01891",
    ),  # fmt: skip
    summary="joint multimodal VAE (JMVAE-kl): a shared latent space learned from the pairs, unimodal ELBOs on the rest",
    seed_method=False,
)
class JMVAE(CrossModalMethod):
    """JMVAE-kl over image and speech."""

    modalities = ("image", "speech")

    def __init__(self, config: JMVAEConfig) -> None:
        if config.latent < 1 or config.alpha < 0 or config.unpaired_weight < 0:
            raise ConfigError(f"model.latent={config.latent} must be >= 1, alpha={config.alpha} and unpaired_weight="
                              f"{config.unpaired_weight} >= 0")  # fmt: skip
        super().__init__(config)
        self.vaes = nn.ModuleDict({m: self.make_vae(m, config.latent) for m in self.modalities})
        n = sum(math.prod(self.data_shape(m)) for m in self.modalities)
        self.joint = mlp([n, config.hidden, config.hidden, 2 * config.latent])

    def joint_posterior(self, x: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x_image, x_speech): μ, log σ² (B, latent)."""
        h = self.joint(torch.cat([x[m].flatten(1) for m in self.modalities], 1))
        d = self.config.latent
        return h[:, :d], h[:, d:].clamp(-12.0, 8.0)

    def training_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        c = self.config
        unpaired = sum(self.negative_elbo(m, batch[BATCH_KEYS[m]]).mean() for m in self.modalities)
        loss, out = c.unpaired_weight * unpaired, {"nelbo_unpaired": unpaired.detach()}
        keep = batch["paired"].bool()
        if bool(keep.any()):
            x = {m: self.prepare(m, batch[f"pair_{BATCH_KEYS[m]}"][keep]) for m in self.modalities}
            mu, logvar = self.joint_posterior(x)
            z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
            rec = sum(log_likelihood(x[m], self.vaes[m].decode(z), self.vaes[m].likelihood, self.vaes[m].sigma)
                      for m in self.modalities)  # fmt: skip
            kl_uni = sum(gaussian_kl(mu, logvar, *self.vaes[m].encode(x[m])) for m in self.modalities)
            pair = -(rec - c.beta * gaussian_kl(mu, logvar)) + c.alpha * kl_uni
            loss = loss + pair.mean()
            out.update(nelbo_pair=pair.mean().detach(), kl_unimodal=kl_uni.mean().detach())
        return {"loss": loss, **out}

    def translate(self, source: str, target: str, raw: torch.Tensor) -> torch.Tensor:
        return self.encode(source, raw)  # one shared latent space
