"""D4 invariants (spec §2.4): DCT, round-robin disjoint masks, saliency, TRADES, ensemble scoring."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
import torch
import torch.nn.functional as F

from trustvis import registry
from trustvis.attacks.projected import rms_to_l2
from trustvis.attacks.trades import trades_loss
from trustvis.config import TrainConfig
from trustvis.methods.detect.d4 import (
    log_dct_spectrum,
    round_robin_masks,
    saliency_map,
)
from trustvis.nn.dct import dct, dct_2d, idct, idct_2d


def _rand(*shape, seed=0, dtype=torch.float32):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _tiny(size=16, **kw):
    torch.manual_seed(0)
    method = registry.build("d4", "tiny", image_size=size, **kw)
    method.optimizers = method.configure_optimizers(TrainConfig(lr=1e-3))
    return method


def _batch(size=16, n=4, seed=0):
    return {"image": _rand(n, 3, size, size, seed=seed), "label": torch.tensor([0, 1] * (n // 2))}


def _check_partition(masks, k, shape):
    assert masks.shape == (k, *shape)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(masks.sum(0), torch.ones(shape))  # disjoint and covering every coefficient


# --- DCT ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (1, 2, 12, 20), (5, 7)])
def test_dct_matches_scipy_and_round_trips(shape):
    x = _rand(*shape)
    ref = scipy.fft.dctn(x.numpy().astype(np.float64), type=2, axes=(-2, -1), norm="ortho")
    np.testing.assert_allclose(dct_2d(x).numpy(), ref, atol=2e-5, rtol=0)
    torch.testing.assert_close(idct_2d(dct_2d(x)), x, atol=1e-5, rtol=0)
    ref1 = scipy.fft.dct(x.numpy().astype(np.float64), type=2, axis=-1, norm="ortho")
    np.testing.assert_allclose(dct(x).numpy(), ref1, atol=2e-5, rtol=0)
    torch.testing.assert_close(idct(dct(x)), x, atol=1e-5, rtol=0)


def test_dct_is_orthonormal_and_differentiable():
    x = _rand(3, 3, 16, 16, dtype=torch.float64)
    X = dct_2d(x)
    torch.testing.assert_close(X.flatten(1).norm(dim=1), x.flatten(1).norm(dim=1))  # Parseval
    assert X[..., 0, 0].allclose(x.mean(dim=(-2, -1)) * 16)  # DC = sum / sqrt(H·W)
    xg = x.clone().requires_grad_(True)
    (dct_2d(xg) * X).sum().backward()  # d<DCT(x), X>/dx = IDCT(X) = x
    torch.testing.assert_close(xg.grad, x)


# --- masks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 4])
def test_round_robin_masks_deal_by_descending_saliency(k):
    shape = (3, 5, 7)  # 105 coefficients: not a multiple of 4
    sal = _rand(*shape)
    masks = round_robin_masks(sal, k)
    _check_partition(masks, k, shape)
    counts = masks.flatten(1).sum(1)
    n = sal.numel()
    assert set(counts.tolist()) <= {n // k, math.ceil(n / k)}
    owner = masks.flatten(1).argmax(0)  # (n,) mask of each coefficient
    order = sal.flatten().argsort(descending=True)
    assert torch.equal(owner[order], torch.arange(n) % k)  # rank l -> mask l mod k
    assert len(set(owner[order[:k]].tolist())) == k  # the k most salient go to k different masks
    with pytest.raises(ValueError, match="num_members"):
        round_robin_masks(sal, n + 1)


@pytest.mark.parametrize(
    "kw",
    [
        {"saliency": "dct"},
        {"saliency": "pixel"},
        {"saliency": "random"},
        {"saliency": "dct", "saliency_attack": "cw", "saliency_attack_steps": 3},
    ],
)
def test_masks_of_every_saliency_mode_are_disjoint_and_cover(kw):
    method = _tiny(num_members=3, **kw)
    batch = _batch()
    method.training_step(batch)  # phase 1 (saliency_steps = 1): keeps the batch's fakes
    assert not bool(method.model.masks_ready)
    assert len(method._fakes) == 1 and len(method._fakes[0]) == 2
    out = method.training_step(_batch(seed=1))  # builds the masks, then trains the members
    assert bool(method.model.masks_ready) and out["phase"].item() == 2.0
    _check_partition(method.model.masks, 3, (3, 16, 16))
    if kw["saliency"] != "random":
        assert method.model.saliency.sum() > 0
    assert all(torch.isfinite(v).all() for v in out.values())


def test_dct_saliency_finds_the_coefficient_the_model_uses():
    # a detector that reads one DCT coefficient: its gradient w.r.t. c is zero everywhere else
    k = (1, 2, 3)

    def logits_fn(x):
        c = dct_2d(x)[:, k[0], k[1], k[2]]
        return torch.stack([torch.zeros_like(c), 5 * c], dim=1)

    x = _rand(6, 3, 8, 8)
    y = torch.ones(6, dtype=torch.long)
    eps = rms_to_l2(0.05, (3, 8, 8))
    sal = saliency_map(logits_fn, x, y, eps, space="dct", steps=3)
    assert sal[k] > 0
    assert sal.flatten().argmax().item() == np.ravel_multi_index(k, sal.shape)
    rest = sal.clone()
    rest[k] = 0
    assert rest.abs().max() < 1e-5 * sal[k]
    pix = saliency_map(logits_fn, x, y, eps, space="pixel", steps=3)  # released-code space: spread out
    assert (pix[k[0]] > 0).float().mean() > 0.5 and pix[[0, 2]].abs().max() == 0


# --- TRADES, stats, ensemble ----------------------------------------------------------------------


def test_trades_loss_is_finite_and_its_adversarial_point_is_in_the_ball():
    method = _tiny()
    net = method.model
    x, y = _batch()["image"], _batch()["label"]
    net.update_stats(x, 4)
    eps = rms_to_l2(0.03, (3, 16, 16))
    loss, parts = trades_loss(net.full_logits, x, y, eps, steps=3, beta=1.0, module=net.full)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert parts["loss_rob"] >= -1e-6
    delta = (parts["x_adv"] - x).flatten(1).norm(dim=1)
    assert (delta <= eps * (1 + 1e-5)).all() and (delta > 0).any()
    assert parts["x_adv"].min() >= 0 and parts["x_adv"].max() <= 1
    assert net.full.training  # mode restored after the eval-mode attack
    loss.backward()
    assert all(p.grad is not None for p in net.full.parameters())


def test_stats_merge_equals_the_direct_per_coefficient_mean_and_variance():
    method = _tiny()
    x = _rand(10, 3, 16, 16, seed=3)
    for chunk in x.split(3):  # 3 + 3 + 3 + 1 images, capped at 7
        method.model.update_stats(chunk, limit=7)
    s = log_dct_spectrum(x[:7]).double()
    assert int(method.model.stats_count) == 7
    torch.testing.assert_close(method.model.coef_mean.double(), s.mean(0), atol=1e-4, rtol=0)
    torch.testing.assert_close(method.model.coef_var.double(), s.var(0, unbiased=False), atol=1e-3, rtol=1e-4)


def test_ensemble_score_is_the_mean_member_softmax_and_logits_are_differentiable():
    method = _tiny(num_members=3)
    method.model.set_masks(_rand(3, 16, 16))
    method.eval()
    x = _batch()["image"]
    probs = torch.stack([F.softmax(method.model.member_logits(x, i), dim=1)[:, 1] for i in range(3)])
    out = method.predict({"image": x})
    torch.testing.assert_close(out["score"], probs.mean(0), atol=1e-6, rtol=0)
    p = probs.mean(0)
    torch.testing.assert_close(out["logits"], torch.log(p / (1 - p)), atol=1e-4, rtol=0)
    xg = x.clone().requires_grad_(True)
    method.logits(xg).sum().backward()
    assert torch.isfinite(xg.grad).all() and xg.grad.abs().sum() > 0
    full = method.predict_full({"image": x})
    assert full["score"].shape == (4,) and torch.isfinite(full["logits"]).all()


def test_members_see_only_their_coefficients():
    method = _tiny(num_members=2)
    method.model.set_masks(_rand(3, 16, 16))
    method.eval()
    x = _batch()["image"]
    z = method.model.spectrum(x)
    noise = torch.randn_like(z) * (1 - method.model.masks[0])  # change only member 1's coefficients
    a = method.model.members[0](z * method.model.masks[0])
    b = method.model.members[0]((z + noise) * method.model.masks[0])
    torch.testing.assert_close(a, b)


def test_buffers_are_shaped_from_image_size_and_bad_inputs_are_refused():
    method = registry.build("d4", "quick")
    assert method.model.masks.shape == (4, 3, 64, 64)
    assert method.model.coef_mean.shape == (3, 64, 64)
    with pytest.raises(ValueError, match="image_size"):
        method.logits(_rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="choose from"):
        registry.build("d4", "tiny", saliency="gradcam")
    with pytest.raises(ValueError, match="crop_size"):
        registry.build("d4", "tiny", crop_size=24)


def test_transform_crops_to_image_size():
    method = registry.build("d4", "tiny")  # image_size 32
    img = (np.arange(48 * 40 * 3) % 255).astype(np.uint8).reshape(48, 40, 3)
    for train in (True, False):
        assert method.make_transform(train)(img).shape == (3, 32, 32)
