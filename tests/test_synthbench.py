"""SynthBench builder and generator zoo: shapes, up-sampling ops, layout, manifest, caching, atomicity."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch

from trustvis.data import generators as G
from trustvis.data import synthbench as sb
from trustvis.data.synthbench import (
    FAMILIES,
    SPLITS,
    TRAIN_FAMILY,
    SynthBenchConfig,
    build_synthbench,
    load_manifest,
    synthbench_path,
    verify_synthbench,
)

MICRO = SynthBenchConfig(
    patch_size=16,
    n_train=8,
    n_val=8,
    n_test=8,
    ae_steps=5,
    gan_steps=5,
    vae_steps=5,
    batch_size=4,
    ae_width=4,
    gan_width=4,
    latent_dim=8,
)


# ------------------------------------------------------------------------------------------------
# Generators
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("up", G.UPSAMPLE_TYPES)
@pytest.mark.parametrize("size", [16, 64])
def test_autoencoder_shape(up: str, size: int) -> None:
    torch.manual_seed(0)
    model = G.UpsamplingAutoencoder(up, depth=2, base_width=8)
    x = torch.rand(2, 3, size, size)
    y = model(x)
    assert y.shape == x.shape
    assert float(y.detach().min()) >= 0.0 and float(y.detach().max()) <= 1.0


def test_autoencoder_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="tconv"):
        G.UpsamplingAutoencoder("cubic")
    with pytest.raises(ValueError, match="divisible"):
        G.UpsamplingAutoencoder("nearest", depth=3)(torch.rand(1, 3, 20, 20))


def test_zero_insertion_puts_zeros_at_odd_positions() -> None:
    x = torch.rand(2, 3, 5, 7) + 0.5  # strictly positive
    y = G.zero_insert(x)
    assert y.shape == (2, 3, 10, 14)
    assert torch.equal(y[..., ::2, ::2], x)
    assert torch.all(y[..., 1::2, :] == 0) and torch.all(y[..., :, 1::2] == 0)
    # The module form inside the zeroins decoder stage is the op applied before its conv3x3.
    stage = G.make_upsample("zeroins", 3, 4)
    assert isinstance(stage[0], G.ZeroInsert) and isinstance(stage[1], torch.nn.Conv2d)
    assert torch.equal(stage[0](x), y)


@pytest.mark.parametrize("size", [16, 64])
def test_dcgan_and_vae_sample_shapes(size: int) -> None:
    torch.manual_seed(0)
    g = G.DCGANGenerator(size, latent_dim=8, base_width=4)
    d = G.DCGANDiscriminator(size, base_width=4)
    imgs = G.sample(g, 3, seed=1)
    assert imgs.shape == (3, size, size, 3) and imgs.dtype == np.uint8
    assert d(torch.rand(2, 3, size, size)).shape == (2,)
    v = G.VAE(size, latent_dim=8, base_width=4)
    assert G.sample(v, 5, seed=1).shape == (5, size, size, 3)
    x_hat, mu, logvar = v(torch.rand(2, 3, size, size))
    assert x_hat.shape == (2, 3, size, size) and mu.shape == logvar.shape == (2, 8)
    assert np.array_equal(G.sample(v, 5, seed=1), G.sample(v, 5, seed=1))


@pytest.mark.parametrize("size", [16, 64])
def test_antialiased_generator_has_no_transposed_conv_and_no_zero_padding(size: int) -> None:
    torch.manual_seed(0)
    g = G.AntialiasedGenerator(size, latent_dim=8, base_width=4)
    convs = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    assert convs and all(type(c) is torch.nn.Conv2d and c.padding_mode == "reflect" for c in convs)
    ups = [m for m in g.modules() if isinstance(m, torch.nn.Upsample)]
    assert len(ups) == int(np.log2(size // 4)) and all(u.mode == "bilinear" for u in ups)
    imgs = G.sample(g, 3, seed=1)
    assert imgs.shape == (3, size, size, 3) and np.array_equal(imgs, G.sample(g, 3, seed=1))
    assert len({im.tobytes() for im in imgs}) == 3  # different latents, different images
    patches = np.random.default_rng(0).integers(0, 256, (6, size, size, 3), dtype=np.uint8)
    d = G.DCGANDiscriminator(size, base_width=4)
    assert np.isfinite(G.train_dcgan(g, d, patches, steps=2, batch_size=2, progress=False)["d_loss_last"])
    assert G.generate(g, n=2).shape == (2, size, size, 3)


def test_training_is_deterministic_and_generate_dispatches() -> None:
    patches = np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = G.UpsamplingAutoencoder("bilinear", base_width=4)
        stats = G.train_autoencoder(model, patches, steps=3, batch_size=2, seed=3, progress=False)
        outs.append(G.generate(model, patches_uint8=patches))
    assert stats["steps"] == 3 and np.isfinite(stats["loss_last"])
    assert outs[0].shape == patches.shape and np.array_equal(outs[0], outs[1])
    torch.manual_seed(0)
    g, d = G.DCGANGenerator(16, latent_dim=8, base_width=4), G.DCGANDiscriminator(16, base_width=4)
    assert np.isfinite(G.train_dcgan(g, d, patches, steps=2, batch_size=2, progress=False)["d_loss_last"])
    v = G.VAE(16, latent_dim=8, base_width=4)
    assert np.isfinite(G.train_vae(v, patches, steps=2, batch_size=2, progress=False)["kl_last"])
    assert G.generate(v, n=4).shape == (4, 16, 16, 3)
    with pytest.raises(ValueError, match="needs n"):
        G.generate(g)


# ------------------------------------------------------------------------------------------------
# Builder
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def micro_home(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("tvhome")
    path = build_synthbench("quick", progress=False, home_dir=home, config=MICRO)
    return home, path


def test_unknown_size_names_valid_sizes(tmp_path) -> None:
    with pytest.raises(ValueError, match="quick"):
        build_synthbench("medium", home_dir=tmp_path)
    with pytest.raises(ValueError, match="full"):
        synthbench_path("huge", home_dir=tmp_path)
    with pytest.raises(ValueError, match="ae_nearest"):
        build_synthbench("quick", home_dir=tmp_path, config=dataclasses.replace(MICRO, train_families=["x"]))


def test_micro_layout_and_counts(micro_home) -> None:
    home, path = micro_home
    assert path == synthbench_path("quick", home_dir=home)
    for split in SPLITS:
        fams = list(FAMILIES) if split == "test" else MICRO.train_families
        present = sorted(p.name for p in (path / split).iterdir())
        assert present == sorted(fams)
        for fam in fams:
            for cls in ("0_real", "1_fake"):
                files = sorted((path / split / fam / cls).glob("*.png"))
                assert len(files) == MICRO.n_real(split), (split, fam, cls)
    assert TRAIN_FAMILY in MICRO.train_families


def test_reals_identical_across_families(micro_home) -> None:
    _, path = micro_home
    ref = path / "test" / TRAIN_FAMILY / "0_real"
    for fam in FAMILIES:
        for f in sorted(ref.glob("*.png")):
            assert (path / "test" / fam / "0_real" / f.name).read_bytes() == f.read_bytes()


def test_fakes_are_images_not_copies(micro_home) -> None:
    from trustvis.data.io import load_image

    _, path = micro_home
    for fam in FAMILIES:
        img = load_image(path / "test" / fam / "1_fake" / "00000.png")
        assert img.shape == (16, 16, 3) and img.dtype == np.uint8
    real = load_image(path / "test" / "ae_tconv" / "0_real" / "00000.png")
    assert not np.array_equal(real, load_image(path / "test" / "ae_tconv" / "1_fake" / "00000.png"))


def test_manifest_verifies(micro_home) -> None:
    _, path = micro_home
    assert verify_synthbench(path, check_hashes=True) == []
    man = load_manifest(path)
    assert man["version"] == "v1" and man["size"] == "quick" and man["patch_size"] == 16
    assert set(man["generator_losses"]) == set(FAMILIES)
    assert all(np.isfinite(v["loss_last"]) for v in man["generator_losses"].values())
    assert man["counts"]["test"]["vae"] == {"0_real": 8, "1_fake": 8}
    assert {"torch", "numpy", "Pillow"} <= set(man["versions"])
    assert man["n_files"] == len(man["files"])
    n_expected = sum(2 * MICRO.n_real(s) * (len(FAMILIES) if s == "test" else 1) for s in SPLITS)
    assert len(man["files"]) == n_expected


def test_no_test_photo_in_train(micro_home) -> None:
    _, path = micro_home
    ids = load_manifest(path)["photo_ids"]
    assert ids["train"] and ids["test"]
    assert not set(ids["train"]) & set(ids["test"])
    assert not set(ids["val"]) & set(ids["test"])


def test_verify_reports_damage(tmp_path) -> None:
    path = build_synthbench("quick", progress=False, home_dir=tmp_path, config=MICRO)
    victim = path / "test" / "dcgan" / "1_fake" / "00003.png"
    victim.write_bytes(b"not a png")
    assert any("hash mismatch" in p for p in verify_synthbench(path, check_hashes=True))
    victim.unlink()
    problems = verify_synthbench(path)
    assert any("missing file" in p for p in problems) and any("7 PNGs" in p for p in problems)
    # A damaged build is rebuilt by the next call (no force needed).
    build_synthbench("quick", progress=False, home_dir=tmp_path, config=MICRO)
    assert verify_synthbench(path, check_hashes=True) == []


def test_second_call_skips_and_force_rebuilds(tmp_path, monkeypatch) -> None:
    calls = {"n": 0}
    real_build = sb._build

    def counting_build(*args, **kwargs):
        calls["n"] += 1
        return real_build(*args, **kwargs)

    monkeypatch.setattr(sb, "_build", counting_build)
    monkeypatch.setenv("TRUSTVIS_HOME", str(tmp_path))
    p1 = build_synthbench("quick", progress=False, config=MICRO)
    assert p1.parent.parent == tmp_path and calls["n"] == 1
    mtime = (p1 / "manifest.json").stat().st_mtime_ns
    first = load_manifest(p1)["files"]
    assert build_synthbench("quick", progress=False, config=MICRO) == p1
    assert calls["n"] == 1 and (p1 / "manifest.json").stat().st_mtime_ns == mtime
    build_synthbench("quick", progress=False, config=MICRO, force=True)
    assert calls["n"] == 2
    assert load_manifest(p1)["files"] == first  # deterministic rebuild: same bytes
    # Another config under the same name is not silently reused.
    build_synthbench("quick", progress=False, config=dataclasses.replace(MICRO, n_test=4))
    assert calls["n"] == 3 and load_manifest(p1)["counts"]["test"]["dcgan"]["1_fake"] == 4


def test_interrupted_build_resumes_per_family(tmp_path, monkeypatch) -> None:
    reference = build_synthbench("quick", progress=False, home_dir=tmp_path / "ref", config=MICRO)
    ref_files = load_manifest(reference)["files"]

    def boom(*args, **kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(sb, "train_dcgan", boom)  # after the five autoencoder families were written
    target = synthbench_path("quick", home_dir=tmp_path)
    with pytest.raises(RuntimeError, match="injected"):
        build_synthbench("quick", progress=False, home_dir=tmp_path, config=MICRO)
    assert not target.exists()  # nothing half-built where readers look
    partial = sb.partial_path(target)
    kept = sorted(p.name[len(".family-") : -len(".json")] for p in partial.glob(".family-*.json"))
    assert kept == sorted(f for f in FAMILIES if f.startswith("ae_"))
    monkeypatch.undo()

    trained: list[str] = []
    real_train_ae = sb.train_autoencoder

    def counting_train_ae(*args, **kwargs):
        trained.append(kwargs["desc"])
        return real_train_ae(*args, **kwargs)

    monkeypatch.setattr(sb, "train_autoencoder", counting_train_ae)
    build_synthbench("quick", progress=False, home_dir=tmp_path, config=MICRO)
    assert trained == []  # the autoencoder families were not trained again
    man = load_manifest(target)
    assert sorted(man["resumed_families"]) == kept
    assert man["files"] == ref_files  # byte-identical to an uninterrupted build
    assert verify_synthbench(target) == [] and not partial.exists()
    assert not [p for p in target.parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_partial_build_of_another_config_is_discarded(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sb, "train_vae", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("injected")))
    with pytest.raises(RuntimeError):
        build_synthbench("quick", progress=False, home_dir=tmp_path, config=MICRO)
    monkeypatch.undo()
    other = dataclasses.replace(MICRO, n_test=4)
    path = build_synthbench("quick", progress=False, home_dir=tmp_path, config=other)
    man = load_manifest(path)
    assert man["resumed_families"] == [] and man["counts"]["test"]["ae_tconv"]["1_fake"] == 4
    assert verify_synthbench(path, check_hashes=True) == []


def test_build_logs_plan_and_estimate(tmp_path, caplog) -> None:
    import logging

    with caplog.at_level(logging.INFO, logger="trustvis.data.synthbench"):
        build_synthbench("quick", progress=False, home_dir=tmp_path, config=MICRO)
    text = caplog.text
    assert "7 generator families" in text and "about" in text and "resumes" in text
    for family in FAMILIES:
        assert f"] {family}: " in text


def test_estimate_scales_with_steps_and_size() -> None:
    quick, demo = sb.SIZES["quick"], sb.SIZES["demo"]
    total = sum(sb.estimate_seconds(quick, f) for f in FAMILIES)
    assert 200 < total < 500  # the measured quick build: ~300 s on 2 cores
    assert sum(sb.estimate_seconds(demo, f) for f in FAMILIES) < total / 2
    assert sb.estimate_seconds(
        dataclasses.replace(quick, ae_steps=600), "ae_tconv"
    ) > 1.5 * sb.estimate_seconds(quick, "ae_tconv")


def test_tiny_size_builds_in_seconds(tmp_path) -> None:
    import time

    t0 = time.perf_counter()
    path = build_synthbench("tiny", progress=False, home_dir=tmp_path)
    assert time.perf_counter() - t0 < 60  # generous: a few seconds on 2 cores
    man = load_manifest(path)
    assert man["patch_size"] == 32 and man["counts"]["train"]["ae_tconv"] == {"0_real": 48, "1_fake": 48}


def test_failure_during_rebuild_keeps_old_build(tmp_path, monkeypatch) -> None:
    path = build_synthbench("quick", progress=False, home_dir=tmp_path, config=MICRO)
    before = load_manifest(path)["files"]
    monkeypatch.setattr(sb, "train_vae", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("injected")))
    with pytest.raises(RuntimeError):
        build_synthbench("quick", progress=False, home_dir=tmp_path, config=MICRO, force=True)
    assert load_manifest(path)["files"] == before and verify_synthbench(path) == []


def test_hardlinked_or_copied_reals(micro_home) -> None:
    _, path = micro_home
    a = path / "test" / "ae_tconv" / "0_real" / "00000.png"
    b = path / "test" / "vae" / "0_real" / "00000.png"
    assert os.path.samefile(a, b) or a.read_bytes() == b.read_bytes()


def test_training_family_spectral_peak(micro_home) -> None:
    """Cheap sanity check: transposed-conv fakes carry more energy at the Nyquist replica than reals."""
    from trustvis.data.io import load_image

    _, path = micro_home

    def nyquist_ratio(folder) -> float:
        imgs = np.stack([load_image(f).mean(-1) for f in sorted(folder.glob("*.png"))])  # (n, 16, 16)
        spec = np.abs(np.fft.fft2(imgs - imgs.mean(axis=(1, 2), keepdims=True))).mean(0)  # (16, 16)
        return float(spec[8, 8] + spec[0, 8] + spec[8, 0]) / float(spec.sum())

    # Untrained-ish (5 steps) transposed-conv decoders leave a strong checkerboard; reals do not.
    fake = nyquist_ratio(path / "test" / "ae_tconv" / "1_fake")
    real = nyquist_ratio(path / "test" / "ae_tconv" / "0_real")
    assert fake > real


def test_match_channel_means_removes_colour_shift_only() -> None:
    from trustvis.data.synthbench import match_channel_means

    rng = np.random.default_rng(0)
    reals = rng.integers(40, 200, (4, 16, 16, 3)).astype(np.uint8)
    fakes = np.clip(reals.astype(int) + np.array([0, -12, 5]), 0, 255).astype(np.uint8)  # a colour cast
    fixed = match_channel_means(fakes, reals)
    np.testing.assert_allclose(fixed.mean(axis=(1, 2)), reals.mean(axis=(1, 2)), atol=0.6)
    np.testing.assert_array_equal(fixed, reals)  # a pure cast is undone exactly


def test_micro_build_fakes_have_the_reals_colour(micro_home) -> None:
    from trustvis.data.io import load_image

    root = micro_home[1] / "test" / "ae_tconv"
    reals = np.stack([load_image(p) for p in sorted((root / "0_real").glob("*.png"))]).astype(float)
    fakes = np.stack([load_image(p) for p in sorted((root / "1_fake").glob("*.png"))]).astype(float)
    assert np.median(np.abs(reals.mean(axis=(1, 2)) - fakes.mean(axis=(1, 2)))) < 1.0


# ------------------------------------------------------------------------------------------------
# SynthBench v2
# ------------------------------------------------------------------------------------------------

MICRO_V2 = sb.SynthBenchV2Config(
    **{**dataclasses.asdict(MICRO), "ddpm_steps": 4, "ddpm_width": 4, "ddpm_levels": 2, "sampling_steps": 2,
       "codec_iterations": 60}
)  # fmt: skip


@pytest.fixture(scope="module")
def micro_v2(tmp_path_factory: pytest.TempPathFactory):
    from trustvis.tasks.detect import build_synthbench_data

    home = tmp_path_factory.mktemp("tvhome2")
    return build_synthbench_data("quick", progress=False, home_dir=home, config=MICRO_V2, version="v2")


def _png(path) -> np.ndarray:
    from trustvis.data.io import load_image

    return load_image(path)


def test_v2_layout_families_and_wild_split(micro_v2) -> None:
    assert micro_v2.name == "v2-quick" and verify_synthbench(micro_v2, check_hashes=True) == []
    man = load_manifest(micro_v2)
    assert man["version"] == "v2" and list(man["families"]) == list(sb.FAMILIES_V2)
    assert {"gan_aa", "ddpm", "inpaint", "inr_codec"} <= set(man["families"]) and set(FAMILIES) < set(
        man["families"]
    )
    assert set(man["counts"]) == {*SPLITS, sb.WILD_SPLIT}
    for split in ("test", sb.WILD_SPLIT):
        assert set(man["counts"][split]) == set(sb.FAMILIES_V2)
    assert set(man["counts"]["train"]) == {TRAIN_FAMILY}
    assert man["launder"]["split"] == sb.WILD_SPLIT and man["launder"]["settings"]["q_max"] == 95


def test_v2_wild_split_launders_reals_and_fakes_alike(micro_v2) -> None:
    from trustvis.data.transforms import Launder

    man, families = load_manifest(micro_v2), list(sb.FAMILIES_V2)
    seed = man["config"]["seed"]
    for k, family in [(0, "ae_tconv"), (families.index("ddpm"), "ddpm")]:
        for cls, stream in (("0_real", 0), ("1_fake", k + 1)):
            clean = _png(micro_v2 / "test" / family / cls / "00003.png")
            wild = _png(micro_v2 / sb.WILD_SPLIT / family / cls / "00003.png")
            again, _ = Launder()(clean, np.random.default_rng([seed, stream, 3]))
            assert (
                wild.shape == clean.shape and np.array_equal(wild, again) and not np.array_equal(wild, clean)
            )
    # the laundered reals are the same bytes in every family, as the clean ones are
    first = (micro_v2 / sb.WILD_SPLIT / "ae_tconv" / "0_real" / "00000.png").read_bytes()
    assert all(
        (micro_v2 / sb.WILD_SPLIT / f / "0_real" / "00000.png").read_bytes() == first for f in families
    )


def test_v2_inpainting_keeps_most_of_its_real_and_diffusion_fakes_are_new_images(micro_v2) -> None:
    for i in range(MICRO_V2.n_test):
        real = _png(micro_v2 / "test" / "inpaint" / "0_real" / f"{i:05d}.png")
        fake = _png(micro_v2 / "test" / "inpaint" / "1_fake" / f"{i:05d}.png")
        kept = (real == fake).all(-1)
        assert 0.4 <= kept.mean() <= 0.8  # 25-50 % of the patch regenerated (a regenerated pixel may match)
    samples = [_png(micro_v2 / "test" / "ddpm" / "1_fake" / f"{i:05d}.png").tobytes() for i in range(8)]
    assert len(set(samples)) == 8


def test_v2_codec_family_codes_each_real_with_the_toolkits_codecs(micro_v2) -> None:
    """inr_codec fake i is real i coded and decoded: close to it (the codec fits that very image), not equal, with
    both codecs and both rate weights used and their rates and PSNR in the manifest."""
    psnrs = []
    for i in range(MICRO_V2.n_test):
        real = _png(micro_v2 / "test" / "inr_codec" / "0_real" / f"{i:05d}.png").astype(float)
        fake = _png(micro_v2 / "test" / "inr_codec" / "1_fake" / f"{i:05d}.png").astype(float)
        other = _png(micro_v2 / "test" / "inr_codec" / "0_real" / f"{(i + 1) % MICRO_V2.n_test:05d}.png")
        mse = ((real - fake) ** 2).mean()
        assert 0 < mse < ((other - fake) ** 2).mean()  # nearer its own real than the next one
        psnrs.append(10 * np.log10(255**2 / mse))
    assert np.median(psnrs) > 15
    stats = load_manifest(micro_v2)["generator_losses"]["inr_codec"]
    assert stats["maker"] == "trustvis.tasks.detect.codec_fakes"
    coded = stats["splits"]["test"]
    assert set(coded) == {
        f"{c} lambda={lm:g}" for c in MICRO_V2.codec_methods for lm in MICRO_V2.codec_lmbdas
    }
    assert sum(v["images"] for v in coded.values()) == MICRO_V2.n_test
    assert all(v["mean_bpp"] > 0 and v["mean_psnr_db"] > 12 for v in coded.values())


def test_v2_build_without_the_codec_maker_is_refused_before_any_work(tmp_path) -> None:
    from trustvis.tasks.detect import build_synthbench_data

    with pytest.raises(ValueError, match=r"\['inr_codec'\].*trustvis data build synthbench --version v2"):
        build_synthbench("quick", home_dir=tmp_path, config=MICRO_V2, version="v2")
    bad = dataclasses.replace(MICRO_V2, codec_methods=["cnndet"])
    with pytest.raises(ValueError, match="'cnndet' is not a codec.*coolchic"):
        build_synthbench_data("quick", home_dir=tmp_path, config=bad, version="v2")
    with pytest.raises(ValueError, match="codec_iterations"):
        dataclasses.replace(MICRO_V2, codec_iterations=0).validate()
    assert not list(tmp_path.rglob("*.png"))


def test_v2_needs_its_own_config_and_a_known_version(tmp_path) -> None:
    with pytest.raises(ValueError, match="SynthBenchV2Config"):
        build_synthbench("tiny", home_dir=tmp_path, config=MICRO, version="v2")
    with pytest.raises(ValueError, match="version 'v9'.*v1.*v2"):
        build_synthbench("tiny", home_dir=tmp_path, version="v9")
    with pytest.raises(ValueError, match="train_families"):
        dataclasses.replace(MICRO_V2, train_families=["nope"]).validate()
    with pytest.raises(ValueError, match="inpaint_min"):
        dataclasses.replace(MICRO_V2, inpaint_min=0.9, inpaint_max=0.5).validate()
    assert synthbench_path("tiny", tmp_path, "v2").name == "v2-tiny"
    assert "launder" not in sb.SIZES["quick"].__dataclass_fields__  # v1's config (and its caches) unchanged


def test_cli_builds_v2_and_refuses_a_version_for_recapturebench(tmp_path, monkeypatch, capsys) -> None:
    from trustvis.cli import main

    seen = {}

    def fake_build(size, force=False, progress=True, version="v1", makers=None):
        seen.update(size=size, version=version)
        assert "inr_codec" in makers  # the CLI builds through the task layer, which brings the codec maker
        return tmp_path / f"{version}-{size}"

    monkeypatch.setattr(sb, "build_synthbench", fake_build)
    assert main(["data", "build", "synthbench", "--version", "v2", "--size", "tiny", "--no-progress"]) == 0
    assert seen == {"size": "tiny", "version": "v2"} and "SynthBench v2 tiny ready" in capsys.readouterr().out
    assert main(["data", "build", "recapturebench", "--version", "v2", "--size", "tiny"]) != 0
    assert "--version applies to synthbench" in capsys.readouterr().err
