"""Invariants of the RGB + depth anti-spoofing methods (mtofnet and its baselines)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trustvis import registry
from trustvis.methods.antispoof.base import PairTransform, normalize_depth
from trustvis.methods.antispoof.baselines import fourier_target

NAMES = [s.name for s in registry.list_methods("antispoof")]


def _batch(labels, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = len(labels)
    return {
        "image": torch.rand(n, 3, size, size, generator=g),
        "depth": torch.rand(n, 1, size, size, generator=g) * 2 - 1,
        "label": torch.tensor(labels),
    }


def _nan_spoof_rgb(batch):
    """The batch with every spoof's RGB replaced by NaN: any use of it poisons the loss or a gradient."""
    image = batch["image"].clone()
    image[batch["label"] == 1] = float("nan")
    return {**batch, "image": image}


def _finite_step(method, batch) -> bool:
    method.train()
    method.zero_grad()
    out = method.training_step(batch)
    out["loss"].backward()
    grads = [p.grad for p in method.parameters() if p.grad is not None]
    return bool(torch.isfinite(out["loss"]) and all(torch.isfinite(g).all() for g in grads))


@pytest.mark.parametrize("spoof_rgb", ["real", "gray"])
def test_mtofnet_never_uses_the_rgb_of_a_spoof_in_training(spoof_rgb):
    """A spoof's RGB set to NaN leaves mToFNet's loss and every gradient finite: not one value of it enters
    the computation (not even multiplied by 0). The same batch makes an RGB-D baseline's loss NaN, so the
    check can fail."""
    batch = _nan_spoof_rgb(_batch([0, 1, 0, 1, 1, 0]))
    torch.manual_seed(0)
    assert _finite_step(registry.build("mtofnet", "tiny", spoof_rgb=spoof_rgb), batch)
    assert not _finite_step(registry.build("rgbdcnn", "tiny"), batch)
    assert not _finite_step(registry.build("rgbcnn", "tiny"), batch)


def test_mtofnet_multimodal_encoder_sees_real_rgb_for_spoofs_and_the_own_rgb_at_test():
    """Training: a spoof row of the multi-modal encoder's input is some real row's RGB (spoof_rgb=real) or
    gray; prediction: each pair's own RGB."""
    m = registry.build("mtofnet", "tiny")
    seen = []
    m.enc_mm.register_forward_pre_hook(lambda mod, args: seen.append(args[0][:, :3].detach().clone()))
    batch = _batch([0, 1, 1, 0])
    torch.manual_seed(0)
    m.train()
    m.training_step(batch)
    rgb = seen[-1]
    img = batch["image"]
    assert torch.equal(rgb[0], img[0]) and torch.equal(rgb[3], img[3])
    for i in (1, 2):
        assert any(torch.equal(rgb[i], img[j]) for j in (0, 3))
        assert not torch.equal(rgb[i], img[i])
    m.eval()
    m.predict(batch)
    assert torch.equal(seen[-1], img)
    # a batch without a real pair: gray
    m.train()
    m.training_step(_batch([1, 1]))
    assert torch.all(seen[-1] == 0.5)


def test_mtofnet_losses_follow_the_labels():
    """The multi-modal reconstruction and the feature agreement are computed on real pairs only."""
    m = registry.build("mtofnet", "tiny")
    m.train()
    all_spoof = m.training_step(_batch([1, 1, 1]))
    assert float(all_spoof["loss_rec_mm"]) == 0.0 and float(all_spoof["loss_sim"]) == 0.0
    mixed = m.training_step(_batch([0, 1, 0]))
    assert float(mixed["loss_rec_mm"]) > 0 and float(mixed["loss_sim"]) > 0
    with pytest.raises(ValueError, match="spoof_rgb"):
        registry.build("mtofnet", "tiny", spoof_rgb="noise")


def test_normalize_depth_removes_scale_and_keeps_holes():
    rng = np.random.default_rng(0)
    d = (0.5 + 0.05 * rng.random((16, 16))).astype(np.float32)
    d[3, 4] = 0.0
    a, b = normalize_depth(d), normalize_depth(7.0 * d)
    np.testing.assert_allclose(a, b, atol=1e-6)  # same map at any distance / unit
    assert a[3, 4] == 0.0 and np.abs(a).max() <= 1.0
    flat = normalize_depth(np.full((8, 8), 2.0, np.float32))
    assert np.all(flat == 0.0)
    assert np.all(normalize_depth(np.zeros((4, 4), np.float32)) == 0.0)  # no valid pixel


def test_pair_transform_resizes_and_flips_rgb_and_depth_together():
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:, :15] = 255  # left half bright
    depth = np.ones((10, 15), np.float32)
    depth[:, :7] = 2.0  # left part far
    t = PairTransform(16, 0.25, train=True)
    flips = set()
    for seed in range(12):
        torch.manual_seed(seed)
        x = t(rgb, depth)
        assert x["image"].shape == (3, 16, 16) and x["depth"].shape == (1, 16, 16)
        left_bright = bool(x["image"][0, :, 0].mean() > 0.5)
        left_far = bool(x["depth"][0, :, 0].mean() > 0)
        assert left_bright == left_far  # flipped together or not at all
        flips.add(left_bright)
    assert flips == {True, False}
    with pytest.raises(TypeError, match="uint8"):
        t(rgb.astype(np.float32), depth)


def test_fourier_target_shows_periodic_structure():
    """The Silent-Face target: a striped image's spectrum has off-centre peaks a flat image lacks."""
    img = torch.full((1, 3, 32, 32), 0.5)
    striped = img.clone()
    striped[..., ::4] = 1.0
    t_flat, t_str = fourier_target(img, 16), fourier_target(striped, 16)
    assert t_str.shape == (1, 1, 16, 16) and float(t_str.min()) >= 0 and float(t_str.max()) <= 1
    row = t_str[0, 0, 8]
    assert float(row[12]) > 0.5 and float(row[4]) > 0.5  # +-1/4 cycles per pixel along x
    assert float(t_flat[0, 0, 8, 12]) < float(row[12])


@pytest.mark.parametrize("name", NAMES)
def test_every_method_reads_both_inputs_and_learns_a_separable_toy(name):
    """A few steps on pairs that differ in RGB stripes and in depth: the training loss falls."""
    torch.manual_seed(0)
    m = registry.build(name, "tiny")
    assert m.inputs == ("image", "depth")
    batch = _batch([0, 1] * 4)
    batch["image"][1::2, :, :, ::3] = 1.0
    batch["depth"][1::2] = 0.0
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    m.train()
    losses = []
    for _ in range(30):
        out = m.training_step(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss_cls"]))
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
