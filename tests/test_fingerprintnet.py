"""FingerprintNet invariants (spec §2.3): real-only training data, the fingerprint bank, the fakes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import make_forensynths
from trustvis import registry
from trustvis.config import make_run_config
from trustvis.data.forensynths import ForenSynthsDataset
from trustvis.engine import Trainer, seed_everything
from trustvis.methods.detect.fingerprintnet import UPSAMPLE_KINDS, FingerprintBank, UpStage
from trustvis.nn.freq import frequency_radius, log_amplitude


def _natural(b: int, size: int, seed: int = 0) -> torch.Tensor:
    """1/f-spectrum colour images in [0,1] (B,3,size,size): a stand-in for photographs."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(b, 3, size, size, generator=g)
    r = frequency_radius(size, size).clamp_min(1.0)
    x = torch.fft.ifft2(torch.fft.fft2(noise) / r**2).real
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    x = x / x.abs().amax(dim=(1, 2, 3), keepdim=True)
    return (0.5 + 0.35 * x + 0.1 * torch.rand(b, 3, 1, 1, generator=g)).clamp(0, 1)


def _default_bank(seed=None) -> FingerprintBank:
    cfg = registry.get("fingerprintnet").make_config("default")
    return FingerprintBank(
        cfg.num_aes,
        cfg.upsample_types,
        cfg.kernel_sizes,
        cfg.activations,
        cfg.bank_width,
        cfg.bank_max_width,
        cfg.bank_seed if seed is None else seed,
    )


def test_training_data_and_everything_read_during_fit_are_real(tmp_path, monkeypatch):
    root = make_forensynths(tmp_path / "fs", ("gen_a", "gen_b"), n=6, size=32)
    seed_everything(0)
    method = registry.build("fingerprintnet", "tiny")
    assert method.train_labels == (0,)

    import trustvis.data.forensynths as fs_mod
    import trustvis.data.io as io_mod

    read: list[Path] = []
    original = fs_mod.load_image

    def recording_load(path, *args, **kwargs):
        read.append(Path(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(fs_mod, "load_image", recording_load)
    monkeypatch.setattr(io_mod, "load_image", recording_load)

    ds = ForenSynthsDataset(root, transform=method.make_transform(True), labels=method.train_labels)
    assert len(ds) == 12 and not ds.labels.any()
    for batch in torch.utils.data.DataLoader(ds, batch_size=5):
        assert (batch["label"] == 0).all()
        assert not any("1_fake" in Path(p).parts for p in batch["path"])

    run = make_run_config(
        "fingerprintnet",
        "tiny",
        overrides=["train.steps=3", "train.batch_size=4", "train.progress=false", "train.device=cpu"],
    )
    method = registry.get("fingerprintnet").cls(run.model)
    read.clear()
    Trainer(method, run, tmp_path / "run").fit(ds)
    assert len(read) >= 12  # the loader really went through the patched reader
    assert all("0_real" in p.parts for p in read)
    assert not any("1_fake" in p.parts for p in read)


def test_training_step_refuses_generated_images():
    method = registry.build("fingerprintnet", "tiny")
    method.optimizers = method.configure_optimizers(make_run_config("fingerprintnet", "tiny").train)
    batch = {"image": _natural(4, 32), "label": torch.tensor([0, 0, 1, 0])}
    with pytest.raises(ValueError, match="real images only"):
        method.training_step(batch)


def test_bank_mixes_all_upsampling_types_and_ae_k_has_k_stages():
    bank = _default_bank()
    kinds = {kind for plan in bank.plan for kind, _, _ in plan}
    assert kinds == set(UPSAMPLE_KINDS)
    assert {plan[-1][0] for plan in bank.plan} == set(UPSAMPLE_KINDS)  # every type ends some AE
    x = _natural(2, 32)
    for k, ae in enumerate(bank.aes, start=1):
        ups = [m for m in ae.modules() if isinstance(m, UpStage)]
        assert len(ups) == k and [u.kind for u in ups] == [t for t, _, _ in bank.plan[k - 1]]
        downs = [m for m in ae.encoder if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)]
        assert len(downs) == k
        assert (bank.plan_codes[k - 1, :k] >= 0).all() and (bank.plan_codes[k - 1, k:] == -1).all()
        with torch.no_grad():
            assert bank(x, k).shape == x.shape
            odd = torch.rand(1, 3, 30, 36)  # not a multiple of 2^k: padded and cropped back
            assert bank(odd, k).shape == odd.shape


def test_bank_is_deterministic_per_seed_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b, c = _default_bank(), _default_bank(), _default_bank(seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert a.plan == b.plan
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    x = _natural(2, 32)
    with torch.no_grad():
        assert torch.equal(a(x, 3), b(x, 3))
        differs = a.plan != c.plan or not torch.equal(a(x, 3), c(x, 3))
    assert differs


def test_fakes_stay_near_the_input_but_differ_at_high_frequency():
    seed_everything(0)
    method = registry.build("fingerprintnet", "tiny", blur_prob=0.0, jpeg_prob=0.0)
    run = make_run_config("fingerprintnet", "tiny", overrides=["train.lr=1e-3"])
    method.optimizers = method.configure_optimizers(run.train)
    method.train()
    losses = []
    for step in range(120):  # the AEs learn to reconstruct real images (train mode)
        batch = {"image": _natural(8, 32, seed=step), "label": torch.zeros(8, dtype=torch.long)}
        losses.append(float(method.training_step(batch)["loss_bank"]))
    assert sum(losses[-10:]) < 0.85 * sum(losses[:10])

    x = _natural(16, 32, seed=1000)
    r = torch.fft.fftshift(frequency_radius(32, 32))  # log_amplitude is DC-centred
    high, low = r >= 8, r <= 1
    with torch.no_grad():
        for k in range(1, len(method.bank) + 1):
            fake = method.synthesize(x, k)
            assert fake.shape == x.shape
            own, other = (fake - x).abs().mean(), (fake - x.roll(1, dims=0)).abs().mean()
            assert own < 0.07 and own < 0.6 * other  # a reconstruction of its source, not another image
            torch.testing.assert_close(fake.mean(dim=(-2, -1)), x.mean(dim=(-2, -1)), atol=0.02, rtol=0)
            d = (log_amplitude(fake) - log_amplitude(x)).abs().mean(dim=(0, 1))  # (H, W)
            assert d[high].mean() > 0.5  # the fingerprint lives at high frequency ...
            assert d[high].mean() > 3 * d[low].mean()  # ... not in the content


def test_detector_stats_are_frozen_in_eval_and_logits_are_differentiable():
    method = registry.build("fingerprintnet", "tiny", input="spectrum+image")
    method.optimizers = method.configure_optimizers(make_run_config("fingerprintnet", "tiny").train)
    method.train()
    method.training_step({"image": _natural(4, 32), "label": torch.zeros(4, dtype=torch.long)})
    assert int(method.model.spec_count) == 1
    method.eval()
    before = method.model.spec_mean.clone()
    x = _natural(2, 16).requires_grad_(True)  # another size: statistics are resampled
    method.logits(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert method.predict({"image": _natural(2, 32)})["score"].shape == (2,)
    assert torch.equal(method.model.spec_mean, before) and int(method.model.spec_count) == 1


def test_reinit_mode_trains_only_the_detector_and_bad_options_fail():
    seed_everything(0)
    method = registry.build("fingerprintnet", "tiny", bank_mode="reinit", reinit_every=2, gamma=0.5)
    opts = method.configure_optimizers(make_run_config("fingerprintnet", "tiny").train)
    assert set(opts) == {"detector"}
    method.optimizers = opts
    method.train()
    bank0 = {k: v.clone() for k, v in method.bank.state_dict().items()}
    for _ in range(3):
        out = method.training_step({"image": _natural(4, 32), "label": torch.zeros(4, dtype=torch.long)})
        assert torch.isfinite(out["loss"])
    changed = [k for k, v in method.bank.state_dict().items() if not torch.equal(v, bank0[k])]
    assert changed  # one AE was re-initialised at step 2
    with pytest.raises(ValueError, match="bank_mode"):
        registry.build("fingerprintnet", "tiny", bank_mode="frozen")
    with pytest.raises(ValueError, match="input"):
        registry.build("fingerprintnet", "tiny", input="wavelet")
