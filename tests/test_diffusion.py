"""The small diffusion model of SynthBench v2: schedule, noising, the DDIM sampler against an oracle denoiser,
inpainting that keeps the real pixels, training and sampling shapes and determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trustvis.data import diffusion as D


def test_schedule_and_forward_noising():
    ab = D.linear_alpha_bars(1000)
    assert (
        ab.shape == (1000,) and (ab.diff() < 0).all() and 0.9998 < float(ab[0]) < 1 and float(ab[-1]) < 1e-4
    )
    model = D.TinyUNet(16, width=8, levels=2)
    x, noise = torch.rand(2, 3, 16, 16) * 2 - 1, torch.randn(2, 3, 16, 16)
    t = torch.tensor([0, 999])
    xt = D.q_sample(model, x, t, noise)
    a = model.alpha_bars[t][:, None, None, None]
    torch.testing.assert_close(xt, a.sqrt() * x + (1 - a).sqrt() * noise)
    assert D.ddim_steps(1000, 5) == [999, 749, 500, 250, 0] and D.ddim_steps(10, 1) == [0]
    with pytest.raises(ValueError, match="sampling steps"):
        D.ddim_steps(10, 11)


class _Oracle(torch.nn.Module):
    """Predicts the exact noise of x_t for one known clean image: DDIM (η = 0) must land on that image."""

    def __init__(self, x0: torch.Tensor, alpha_bars: torch.Tensor) -> None:
        super().__init__()
        self.x0, self.ab = x0, alpha_bars

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self.ab[t][:, None, None, None]
        return (x - a.sqrt() * self.x0) / (1 - a).sqrt()


def test_ddim_with_an_oracle_denoiser_recovers_the_image_from_any_noise():
    ab = D.linear_alpha_bars(1000).float()
    x0 = torch.rand(3, 3, 8, 8) * 1.6 - 0.8
    for n in (1, 4, 25):
        out = D._ddim(_Oracle(x0, ab), torch.randn(3, 3, 8, 8), D.ddim_steps(1000, n), ab)
        torch.testing.assert_close(out, x0, atol=1e-4, rtol=0)
    wrong = D._ddim(_Oracle(x0 * 0.5, ab), torch.randn(3, 3, 8, 8), D.ddim_steps(1000, 4), ab)
    assert (wrong - x0).abs().max() > 0.1  # the sampler follows its denoiser: a wrong one lands elsewhere


def test_inpainting_keeps_the_real_pixels_and_regenerates_the_mask():
    torch.manual_seed(0)
    model = D.TinyUNet(16, width=8, levels=2)
    reals = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    masks = D.inpaint_masks(4, 16, seed=1)
    assert masks.shape == (4, 1, 16, 16) and set(np.unique(masks)) == {0.0, 1.0}
    assert all(0.15 <= m.mean() <= 0.6 for m in masks)
    out = D.ddim_inpaint(model, reals, masks, sampling_steps=3, seed=2)
    keep = masks[:, 0, :, :, None].repeat(3, -1) == 0
    assert out.shape == reals.shape and np.array_equal(out[keep], reals[keep])
    assert (out[~keep] != reals[~keep]).mean() > 0.5
    assert np.array_equal(out, D.ddim_inpaint(model, reals, masks, sampling_steps=3, seed=2))
    with pytest.raises(ValueError, match="masks"):
        D.ddim_inpaint(model, reals, masks[:2])


def test_training_and_sampling_are_deterministic():
    patches = np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = D.TinyUNet(16, width=8, levels=2)
        stats = D.train_ddpm(model, patches, steps=3, batch_size=2, seed=1, progress=False)
        outs.append(D.ddim_sample(model, 3, sampling_steps=4, seed=5))
    assert stats["steps"] == 3 and np.isfinite(stats["loss_last"])
    assert outs[0].shape == (3, 16, 16, 3) and outs[0].dtype == np.uint8 and np.array_equal(outs[0], outs[1])
    assert len({im.tobytes() for im in outs[0]}) == 3
    with pytest.raises(ValueError, match="px"):
        D.train_ddpm(model, np.zeros((2, 32, 32, 3), np.uint8), steps=1, progress=False)
    with pytest.raises(ValueError, match="divisible"):
        D.TinyUNet(18, levels=3)


def test_a_trained_denoiser_beats_predicting_zero():
    """A few hundred steps on smooth patches: the noise prediction error falls well below that of ε̂ = 0 (= 1)."""
    rng = np.random.default_rng(0)
    ramps = np.linspace(0, 255, 16)[None, :, None, None] * rng.uniform(0.2, 1, (64, 1, 1, 3))
    patches = np.broadcast_to(ramps, (64, 16, 16, 3)).astype(np.uint8)
    torch.manual_seed(0)
    model = D.TinyUNet(16, width=8, levels=2)
    stats = D.train_ddpm(model, patches, steps=150, batch_size=16, lr=2e-3, seed=0, progress=False)
    assert stats["loss_last"] < 0.5 < stats["loss_first"]
