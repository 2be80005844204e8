"""What every image ↔ speech method shares: the modalities, their inputs, their MLP VAEs and the predict contract.

Modalities and the tensors a VAE sees (the ``multimodal`` task's batches hold the raw ones)::

    image   batch["image"] (B, 3, H, W) in [0, 1] ──channel mean──► (B, 1, S, S), S = image_size   Bernoulli likelihood
    speech  batch["speech"] (B, n_mels, frames) log-mel ──(x − mean_f) / std_f──► standardised     Gaussian, σ = speech_sigma
    label   batch["label"] (B,) digit ──one-hot──► (B, num_classes)                                  Bernoulli (one-hot)

``mean_f``, ``std_f`` (n_mels,) are buffers set from the training clips (:meth:`CrossModalMethod.set_speech_stats`) and
saved with the weights. Every VAE is an MLP: flatten ─► Linear(hidden) ─► SiLU ─► Linear(hidden) ─► SiLU ─► (μ, log σ²),
and back.

The contract the task relies on (``predict`` of a batch holding one modality, the *source*)::

    {"z": (B, d_src)  the source's posterior mean,
     "z_<m>": (B, d_m)  the latent in modality m's space (the source's own, or carried over from it),
     "x_<m>":           the expected x_m decoded from it: image (B, 1, S, S) in [0, 1], speech (B, n_mels, frames) log-mel,
                        label (B, num_classes) probabilities}

and three methods the metrics use: :meth:`encode` (posterior mean), :meth:`translate` (x_a ─► mean of z_b) and
:meth:`decode` (z_m ─► expected x_m). A batch holding several modalities takes the first of ``modalities`` as source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trustvis.config import ConfigError
from trustvis.methods.base import Method
from trustvis.nn.vae import VAE

MODALITIES = ("image", "speech", "label")
#: the batch key each modality is read from
BATCH_KEYS = {"image": "image", "speech": "speech", "label": "label"}


@dataclass
class ModalityConfig:
    """The fields every image ↔ speech method shares (the task sets the sizes from its data)."""

    image_size: int = (
        20  # S: images are averaged to gray and resized to S x S (OpenCV digits: 20; sklearn: 8)
    )
    n_mels: int = 40  # log-mel bands of the speech features
    frames: int = 101  # 10 ms frames of a clip (1 s: 101)
    num_classes: int = 10  # digits (the label modality's size)
    hidden: int = 256  # width of every VAE's two hidden layers
    speech_sigma: float = 0.5  # σ of the Gaussian speech likelihood, in standardised log-mel units
    beta: float = 1.0  # weight of the KL term of every ELBO


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of ``sizes`` with SiLU between them (none after the last)."""
    mods: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            mods.append(nn.SiLU())
    return nn.Sequential(*mods)


class Unflatten(nn.Module):
    """(B, prod(shape)) ─► (B, *shape)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


def check_modalities(modalities: tuple[str, ...], *, at_least: int = 2) -> None:
    """Refuse unknown, repeated or too few modalities (the error names the config field and the choices)."""
    bad = [m for m in modalities if m not in MODALITIES]
    if bad or len(set(modalities)) != len(modalities) or len(modalities) < at_least:
        raise ConfigError(f"model.modalities={list(modalities)}: give at least {at_least} different ones of "
                          f"{list(MODALITIES)}")  # fmt: skip


class CrossModalMethod(Method):
    """Base class: input preparation per modality, the MLP VAEs, speech statistics, predict.

    A subclass builds ``self.vaes`` (an ``nn.ModuleDict`` of :class:`~trustvis.nn.vae.VAE` by modality) through
    :meth:`make_vae` and defines :meth:`translate`.
    """

    not_exportable = "its predict reads speech clips or images and returns several modalities' outputs"
    #: the modalities this method carries (a subclass sets it from its config)
    modalities: tuple[str, ...] = ("image", "speech")

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        if config.image_size < 4 or config.n_mels < 1 or config.frames < 1 or config.num_classes < 2:
            raise ConfigError(f"model.image_size={config.image_size}, n_mels={config.n_mels}, frames={config.frames}, "
                              f"num_classes={config.num_classes}: sizes must be >= 4, 1, 1 and 2")  # fmt: skip
        if config.speech_sigma <= 0 or config.hidden < 1:
            raise ConfigError(f"model.speech_sigma={config.speech_sigma} must be > 0 and model.hidden="
                              f"{config.hidden} >= 1")  # fmt: skip
        self.register_buffer("speech_mean", torch.zeros(config.n_mels))
        self.register_buffer("speech_std", torch.ones(config.n_mels))

    # --- modalities -----------------------------------------------------------------------------------
    def data_shape(self, modality: str) -> tuple[int, ...]:
        """The shape of one modality's VAE input (without the batch dimension)."""
        c = self.config
        return {"image": (1, c.image_size, c.image_size), "speech": (c.n_mels, c.frames),
                "label": (c.num_classes,)}[modality]  # fmt: skip

    def make_vae(self, modality: str, latent: int) -> VAE:
        """An MLP VAE for ``modality`` with a ``latent``-dimensional space."""
        c = self.config
        shape = self.data_shape(modality)
        n = math.prod(shape)
        hidden = min(c.hidden, max(32, 4 * n)) if modality == "label" else c.hidden
        encoder = nn.Sequential(nn.Flatten(), mlp([n, hidden, hidden, 2 * latent]))
        decoder = nn.Sequential(mlp([latent, hidden, hidden, n]), Unflatten(shape))
        if modality == "speech":
            return VAE(encoder, decoder, latent, "gaussian", c.speech_sigma)
        return VAE(encoder, decoder, latent, "bernoulli")

    def set_speech_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-band mean and standard deviation (n_mels,) of the training log-mels, used to standardise speech."""
        with torch.no_grad():
            self.speech_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
            self.speech_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-3))

    def prepare(self, modality: str, raw: torch.Tensor) -> torch.Tensor:
        """A batch's raw tensor of ``modality`` ─► the VAE's input (see the module docstring)."""
        c = self.config
        if modality == "image":
            x = raw.float()
            if x.ndim == 4 and x.shape[1] == 3:
                x = x.mean(1, keepdim=True)
            if tuple(x.shape[-2:]) != (c.image_size, c.image_size):
                x = F.interpolate(x, size=(c.image_size, c.image_size), mode="bilinear", align_corners=False,
                                  antialias=True).clamp(0, 1)  # fmt: skip
            return x
        if modality == "speech":
            return (raw.float() - self.speech_mean[:, None]) / self.speech_std[:, None]
        return F.one_hot(raw.long(), c.num_classes).float()

    def unprepare(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        """A VAE's expected x ─► the modality's units (speech back to log-mel; images and labels as they are)."""
        if modality == "speech":
            return x * self.speech_std[:, None] + self.speech_mean[:, None]
        return x

    def present(self, batch: dict[str, Any]) -> list[str]:
        """The modalities of this method that ``batch`` holds, in ``modalities`` order."""
        return [m for m in self.modalities if BATCH_KEYS[m] in batch]

    # --- inference ------------------------------------------------------------------------------------
    def encode(self, modality: str, raw: torch.Tensor) -> torch.Tensor:
        """The posterior mean of ``modality``'s latent for raw inputs (B, d_m)."""
        return self.vaes[modality].encode(self.prepare(modality, raw))[0]

    def translate(self, source: str, target: str, raw: torch.Tensor) -> torch.Tensor:
        """The mean of the target modality's latent given raw source inputs (B, d_target)."""
        raise NotImplementedError

    def decode(self, modality: str, z: torch.Tensor) -> torch.Tensor:
        """The expected x of ``modality`` given its latent ``z``, in the modality's units."""
        return self.unprepare(modality, self.vaes[modality].mean(self.vaes[modality].decode(z)))

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        found = self.present(batch)
        if not found:
            raise ValueError(f"{self.method_name}: the batch holds none of {list(self.modalities)} "
                             f"(keys {sorted(batch)})")  # fmt: skip
        src = found[0]
        raw = batch[BATCH_KEYS[src]].to(self.device)
        out = {"z": self.encode(src, raw)}
        for m in self.modalities:
            z = out["z"] if m == src else self.translate(src, m, raw)
            out[f"z_{m}"] = z
            out[f"x_{m}"] = self.decode(m, z)
        return out

    def negative_elbo(self, modality: str, raw: torch.Tensor) -> torch.Tensor:
        """−ELBO per sample of one modality's VAE (β = ``config.beta``)."""
        return -self.vaes[modality].elbo(self.prepare(modality, raw), beta=self.config.beta)["elbo"]
