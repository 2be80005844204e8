"""FrePGAN invariants: G is a frequency-domain perturbation, each loss moves only its own module."""

from __future__ import annotations

import pytest
import torch

from trustvis import registry
from trustvis.config import TrainConfig
from trustvis.methods.detect.frepgan import FrequencyPerturbationGenerator


def _batch(b: int = 4, size: int = 16) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"image": torch.rand(b, 3, size, size, generator=g), "label": torch.tensor([0, 1] * (b // 2))}


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> set[str]:
    return {k for k, v in module.named_parameters() if not torch.equal(v, before[k])}


def test_each_loss_moves_only_its_own_module(monkeypatch):
    torch.manual_seed(0)
    method = registry.build("frepgan", "tiny")
    method.optimizers = method.configure_optimizers(TrainConfig(lr=1e-2))
    owner = {"disc": "disc", "gen": "gen", "detector": "model"}
    parts = {name: getattr(method, attr) for name, attr in owner.items()}
    # G's last layer starts at zero; give it weights so its gradient reaches every layer
    torch.nn.init.normal_(method.gen.net[-1].weight, std=0.1)
    calls: list[str] = []
    original = type(method).optimizer_step

    def spy(self, name, loss):
        before = {n: _snapshot(m) for n, m in parts.items()}
        original(self, name, loss)
        calls.append(name)
        for other, module in parts.items():
            moved = _changed(before[other], module)
            if other == name:
                assert moved, f"the {name} step did not move its own module"
            else:
                assert not moved, f"the {name} step moved {other}: {sorted(moved)[:3]}"

    monkeypatch.setattr(type(method), "optimizer_step", spy)
    out = method.training_step(_batch())
    assert calls == ["disc", "gen", "detector"]  # alternating, one step each
    assert {"loss", "loss_d", "loss_g", "pert_l1"} <= set(out)


def test_generator_starts_as_identity_and_is_bounded():
    torch.manual_seed(0)
    gen = FrequencyPerturbationGenerator(width=4, blocks=1, bound=0.05)
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(gen(x), torch.zeros_like(x))  # zero-initialised last layer
    torch.nn.init.normal_(gen.net[-1].weight, std=10.0)
    p = gen(x)
    assert p.shape == x.shape and p.abs().max() <= 0.05 + 1e-6 and p.abs().max() > 0


def test_generator_sees_the_spectrum_not_the_pixels():
    x = torch.rand(1, 3, 8, 8)
    z = FrequencyPerturbationGenerator.spectrum_channels(x)
    assert z.shape == (1, 6, 8, 8)
    # channel 0 at DC is the (signed log1p of the) orthonormal FFT's DC term = sum / sqrt(N)
    dc = x[0, 0].sum() / 8
    torch.testing.assert_close(z[0, 0, 0, 0], torch.log1p(dc))
    with pytest.raises(ValueError, match="divisible by 4"):
        FrequencyPerturbationGenerator(width=4, blocks=1)(torch.rand(1, 3, 10, 10))


def test_perturb_at_test_flag_changes_what_the_detector_sees():
    torch.manual_seed(0)
    on = registry.build("frepgan", "tiny").eval()
    off = registry.build("frepgan", "tiny", perturb_at_test=False).eval()
    off.load_state_dict(on.state_dict())
    torch.nn.init.normal_(on.gen.net[-1].weight, std=1.0)
    torch.nn.init.normal_(off.gen.net[-1].weight, std=1.0)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(on.logits(x), on.model(on.perturb(x)).squeeze(-1))
        torch.testing.assert_close(off.logits(x), off.model(x).squeeze(-1))
        assert not torch.allclose(on.logits(x), off.logits(x))


def test_bad_config_names_valid_choices():
    with pytest.raises(ValueError, match="real_vs_perturbed"):
        registry.build("frepgan", "tiny", disc_target="nope")


def test_logits_are_differentiable_wrt_images():
    method = registry.build("frepgan", "tiny").eval()
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    method.logits(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
