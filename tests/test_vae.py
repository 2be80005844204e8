"""The VAE and associator pieces of the cross-modal VAE (issue 25): the ELBO against a hand computation, the
KL against its closed form and against sampling, and an associator between identical latent spaces learning the
identity."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trustvis.nn.vae import VAE, Associator, gaussian_kl, log_likelihood


class _Fixed(nn.Module):
    def __init__(self, out: torch.Tensor) -> None:
        super().__init__()
        self.out = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out.expand(len(x), -1)


class _Linear1(nn.Module):  # z (B,1) -> logits (B,2) = [2z, -z]
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([2 * z, -z], 1)


def test_elbo_matches_a_hand_computation():
    mu, logvar = 0.5, math.log(0.25)  # σ = 0.5
    vae = VAE(_Fixed(torch.tensor([[mu, logvar]])), _Linear1(), latent=1)
    x = torch.tensor([[1.0, 0.0]])
    eps = torch.tensor([[0.4]])
    out = vae.elbo(x, eps=eps)
    z = mu + 0.5 * 0.4  # 0.7
    p1, p2 = 1 / (1 + math.exp(-2 * z)), 1 / (1 + math.exp(z))  # sigmoid(2z), sigmoid(-z)
    rec = math.log(p1) + math.log(1 - p2)
    kl = 0.5 * (mu**2 + 0.25 - 1 - math.log(0.25))
    assert out["rec"].item() == pytest.approx(rec, rel=1e-6)
    assert out["kl"].item() == pytest.approx(kl, rel=1e-6)
    assert out["elbo"].item() == pytest.approx(rec - kl, rel=1e-6)
    assert vae.elbo(x, beta=2.0, eps=eps)["elbo"].item() == pytest.approx(rec - 2 * kl, rel=1e-6)


def test_gaussian_likelihood_matches_the_density():
    x, m = torch.tensor([[0.3, -1.0]]), torch.tensor([[0.0, -0.5]])
    want = sum(torch.distributions.Normal(m[0, i], 0.7).log_prob(x[0, i]).item() for i in range(2))
    assert log_likelihood(x, m, "gaussian", sigma=0.7).item() == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match="bernoulli"):
        log_likelihood(x, m, "laplace")


def test_gaussian_kl_closed_form():
    g = torch.Generator().manual_seed(0)
    mq, lq, mp, lp = (torch.randn(3, 4, generator=g) for _ in range(4))
    q = torch.distributions.Normal(mq, (0.5 * lq).exp())
    p = torch.distributions.Normal(mp, (0.5 * lp).exp())
    want = torch.distributions.kl_divergence(q, p).sum(1)
    torch.testing.assert_close(gaussian_kl(mq, lq, mp, lp), want)
    assert torch.all(gaussian_kl(mq, lq, mq, lq).abs() < 1e-6)
    torch.testing.assert_close(gaussian_kl(mq, lq), torch.distributions.kl_divergence(
        q, torch.distributions.Normal(torch.zeros(3, 4), torch.ones(3, 4))).sum(1))  # fmt: skip


def test_an_associator_between_identical_spaces_learns_the_identity():
    torch.manual_seed(0)
    d = 4
    z = torch.randn(512, d)
    logvar = torch.full_like(z, math.log(0.01))  # a confident target posterior centred on the same code
    assoc = Associator(d, d, hidden=32, layers=1)
    opt = torch.optim.Adam(assoc.parameters(), lr=1e-2)
    for _ in range(600):
        opt.zero_grad()
        assoc.loss(z, z, logvar).backward()
        opt.step()
    test = torch.randn(256, d)
    with torch.no_grad():
        mu, lv = assoc(test)
    err = (mu - test).pow(2).mean() / test.var()
    assert err < 0.05, f"relative error {err:.3f}"  # an untrained MLP is ~1
    assert (lv.exp().mean() - 0.01).abs() < 0.01  # and the target's spread
