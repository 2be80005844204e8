"""Variational auto-encoders and Gaussian latent associators — the pieces of the cross-modal VAE (``xmodal``).

Paper of the VAE: Kingma & Welling. "Auto-Encoding Variational Bayes". ICLR 2014. arXiv 1312.6114. The
associator (a Gaussian map between two latent spaces) follows the reconstruction of Jo et al., "Cross-modal
Variational Auto-encoder with Distributed Latent Spaces and Associators", arXiv 1905.12867 (see
``../shared/specs/crossmodal.md``)::

    VAE:        x ──encoder──► (μ, log σ²) (B, 2·d) ──z = μ + σ·ε──► decoder ──► x̂ parameters
                ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) ‖ N(0, I))          (one sample of ε per image)
    Associator: z_a (B, d_a) ──MLP──► (μ_ab, log σ²_ab) (B, 2·d_b) = q(z_b | z_a)
                loss = KL(q_b(z_b|x_b) ‖ q(z_b|z_a)), averaged over pairs     (the VAEs frozen)

Likelihoods: ``bernoulli`` (x in [0,1], decoder logits; images) and ``gaussian`` (fixed σ, decoder means; log-mel
features, standardised). Every per-sample quantity is summed over the data and latent dimensions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LIKELIHOODS = ("bernoulli", "gaussian")


def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor | None = None,
                logvar_p: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """KL(N(μ_q, σ_q²) ‖ N(μ_p, σ_p²)) per sample (B,), summed over the latent dimensions; p = N(0, I) by
    default."""
    if mu_p is None:
        mu_p = torch.zeros_like(mu_q)
    if logvar_p is None:
        logvar_p = torch.zeros_like(logvar_q)
    kl = 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1.0)
    return kl.flatten(1).sum(1)


def log_likelihood(
    x: torch.Tensor, out: torch.Tensor, likelihood: str = "bernoulli", sigma: float = 1.0
) -> torch.Tensor:
    """log p(x | decoder output) per sample (B,): Bernoulli with ``out`` as logits, or Gaussian with ``out`` as
    means and a fixed ``sigma``."""
    if likelihood == "bernoulli":
        return -F.binary_cross_entropy_with_logits(out, x, reduction="none").flatten(1).sum(1)
    if likelihood == "gaussian":
        n = x[0].numel()
        return -0.5 * ((x - out) / sigma).pow(2).flatten(1).sum(1) - n * (
            math.log(sigma) + 0.5 * math.log(2 * math.pi)
        )
    raise ValueError(f"Unknown likelihood {likelihood!r}; choose from {list(LIKELIHOODS)}")


class VAE(nn.Module):
    """A VAE over one modality: ``encoder`` maps x to (B, 2·latent) (μ then log σ²), ``decoder`` maps z (B, latent)
    to the likelihood's parameters in x's shape.

    Args:
        encoder, decoder: the networks.
        latent: latent size d.
        likelihood: ``bernoulli`` or ``gaussian``.
        sigma: the Gaussian likelihood's fixed standard deviation.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent: int, likelihood: str = "bernoulli",
                 sigma: float = 1.0) -> None:  # fmt: skip
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"Unknown likelihood {likelihood!r}; choose from {list(LIKELIHOODS)}")
        self.encoder, self.decoder = encoder, decoder
        self.latent, self.likelihood, self.sigma = latent, likelihood, float(sigma)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x): μ, log σ² (B, d) each."""
        h = self.encoder(x)
        mu, logvar = h[:, : self.latent], h[:, self.latent :]
        return mu, logvar.clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The likelihood's parameters (logits or means) in x's shape."""
        return self.decoder(z)

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        """The expected x of decoder output ``out`` (sigmoid of Bernoulli logits; Gaussian means as they are)."""
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def elbo(
        self, x: torch.Tensor, beta: float = 1.0, eps: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """``{"elbo", "rec", "kl"}`` per sample (B,): ELBO = rec − β·KL with one reparameterised sample
        (``eps`` (B, d) fixes it; default standard normal), plus ``"mu"``, ``"logvar"``, ``"out"``."""
        mu, logvar = self.encode(x)
        eps = torch.randn_like(mu) if eps is None else eps
        z = mu + (0.5 * logvar).exp() * eps
        out = self.decode(z)
        rec = log_likelihood(x, out, self.likelihood, self.sigma)
        kl = gaussian_kl(mu, logvar)
        return {"elbo": rec - beta * kl, "rec": rec, "kl": kl, "mu": mu, "logvar": logvar, "out": out}


class Associator(nn.Module):
    """q(z_b | z_a) = N(μ(z_a), diag σ²(z_a)): an MLP from one latent space to a Gaussian over another.

    Args:
        latent_in, latent_out: d_a and d_b.
        hidden: hidden width (0: a linear map).
        layers: hidden layers (ignored when ``hidden`` is 0).
    """

    def __init__(self, latent_in: int, latent_out: int, hidden: int = 64, layers: int = 2) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        width = latent_in
        for _ in range(layers if hidden else 0):
            mods += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        mods.append(nn.Linear(width, 2 * latent_out))
        self.net = nn.Sequential(*mods)
        self.latent_out = latent_out

    def forward(self, z_a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """μ, log σ² (B, d_b) of q(z_b | z_a)."""
        h = self.net(z_a)
        return h[:, : self.latent_out], h[:, self.latent_out :].clamp(-12.0, 8.0)

    def loss(self, z_a: torch.Tensor, mu_b: torch.Tensor, logvar_b: torch.Tensor) -> torch.Tensor:
        """KL(q_b(z_b|x_b) ‖ q(z_b|z_a)) averaged over the pairs: ``z_a`` (B, d_a) from the source VAE, ``mu_b``,
        ``logvar_b`` (B, d_b) the target VAE's posterior of the paired x_b."""
        mu, logvar = self(z_a)
        return gaussian_kl(mu_b, logvar_b, mu, logvar).mean()
