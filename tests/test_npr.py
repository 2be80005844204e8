"""NPR invariants (spec §2.5): the residual, odd sizes, the network size, gradients, predict."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trustvis import registry
from trustvis.methods.detect.npr import NPRNet, npr_residual


def _img(b=2, c=3, h=32, w=32, seed=0):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_residual_of_a_nearest_upsampled_image_is_exactly_zero():
    small = _img(h=8, w=12)
    up = small.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)  # every 2x2 block constant
    assert up.shape[-2:] == (16, 24)
    res = npr_residual(up)
    assert res.shape == up.shape
    assert torch.equal(res, torch.zeros_like(res))  # exactly, on every pixel
    # and through the model's normalisation + scale
    net = NPRNet(width=8)
    assert torch.equal(net.residual(up), torch.zeros_like(up))


def test_residual_of_a_random_image_and_the_paper_formula():
    x = _img()
    res = npr_residual(x)
    # the top-left pixel of every 2x2 block is the reference: 0 there, non-zero elsewhere
    assert torch.equal(res[..., ::2, ::2], torch.zeros_like(res[..., ::2, ::2]))
    assert (res[..., 1::2, 1::2].abs() > 0).float().mean() > 0.99
    assert res.abs().mean() > 0.1
    # the formula as written with scale factors: x - up(down(x, 1/2), 2), nearest both ways
    down = F.interpolate(x, scale_factor=0.5, mode="nearest", recompute_scale_factor=True)
    ref = x - F.interpolate(down, scale_factor=2.0, mode="nearest", recompute_scale_factor=True)
    torch.testing.assert_close(res, ref, atol=0, rtol=0)
    # model input: scale * residual of the ImageNet-normalised image (the mean cancels)
    net = NPRNet(width=8)
    std = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
    torch.testing.assert_close(net.residual(x), (2 / 3) * res / std)


@pytest.mark.parametrize("shape", [(31, 32), (32, 31), (33, 17)])
def test_odd_sizes_are_trimmed(shape):
    h, w = shape
    x = _img(h=h, w=w)
    res = npr_residual(x)
    assert res.shape[-2:] == (h - h % 2, w - w % 2)
    torch.testing.assert_close(res, npr_residual(x[..., : h - h % 2, : w - w % 2]))
    net = NPRNet(width=8).eval()
    assert net(x).shape == (2, 1)
    with pytest.raises(ValueError, match="at least 2x2"):
        npr_residual(torch.rand(1, 3, 1, 5))


def test_factor_must_be_one_over_an_integer():
    x = _img(h=12, w=12)
    assert npr_residual(x, 0.25).shape[-2:] == (12, 12)
    assert torch.equal(npr_residual(x, 0.25)[..., ::4, ::4], torch.zeros(2, 3, 3, 3))
    with pytest.raises(ValueError, match="1/k"):
        npr_residual(x, 0.4)
    with pytest.raises(ValueError, match="1/k"):
        registry.build("npr", "tiny", factor=1.0)


def test_default_network_has_the_paper_size():
    n = sum(p.numel() for p in NPRNet().parameters())
    assert n == pytest.approx(1.44e6, rel=0.02)
    tiny = registry.build("npr", "tiny")
    assert tiny.num_parameters() < 30_000 and tiny.model.fc1.in_features == 64
    with pytest.raises(ValueError, match="resnet50"):
        registry.build("npr", "tiny", backbone="resnet18")


def test_logits_are_differentiable_wrt_the_input_and_predict_keys():
    m = registry.build("npr", "tiny").eval()
    x = _img(b=3).requires_grad_(True)
    logits = m.logits(x)
    assert logits.shape == (3,)
    logits.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    out = m.predict({"image": _img(b=3)})
    assert set(out) == {"score", "logits"}
    assert out["score"].shape == (3,) and ((out["score"] >= 0) & (out["score"] <= 1)).all()
    torch.testing.assert_close(out["score"], torch.sigmoid(out["logits"]))


def test_presets_follow_the_npr_recipe():
    spec = registry.get("npr")
    assert spec.seed_method is False and {"default", "quick", "full", "tiny"} <= set(spec.presets)
    for preset in spec.presets:
        cfg = spec.make_config(preset)
        assert cfg.blur_prob == 0 and cfg.jpeg_prob == 0 and cfg.weights == ""
    assert dict(spec.presets["default"].train) == {"lr": 2e-4, "batch_size": 32, "steps": 20000}


def test_weights_file_loads_with_module_prefix(tmp_path):
    src = registry.build("npr", "tiny")
    state = {"module." + k: v for k, v in src.model.state_dict().items()}
    state["module.fc.weight"] = torch.zeros(1, 2048)  # the unused head of the official checkpoint
    torch.save(state, tmp_path / "npr.pth")
    m = registry.build("npr", "tiny", weights=str(tmp_path / "npr.pth"))
    x = _img(b=2)
    torch.testing.assert_close(m.eval().logits(x), src.eval().logits(x))
    with pytest.raises(ValueError, match="do not fit"):
        registry.build("npr", "default", weights=str(tmp_path / "npr.pth"))  # width 64 vs 8
