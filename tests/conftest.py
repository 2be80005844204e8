"""Shared fixtures: every test gets its own TRUSTVIS_HOME; tiny ForenSynths-layout folders on demand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's ~/.cache/trustvis."""
    monkeypatch.setenv("TRUSTVIS_HOME", str(tmp_path_factory.mktemp("trustvis_home")))


def make_forensynths(
    root: Path, generators=("gen_a", "gen_b"), n: int = 8, size: int = 16, seed: int = 0
) -> Path:
    """root/<gen>/{0_real,1_fake}/*.png: reals are smooth noise, fakes carry a checkerboard (learnable)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    checker = ((yy + xx) % 2 * 2 - 1)[..., None] * 40.0
    for g in generators:
        for label, sub in ((0, "0_real"), (1, "1_fake")):
            d = root / g / sub
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                base = rng.normal(128, 30, (size // 4, size // 4, 3))
                img = np.kron(base, np.ones((4, 4, 1)))
                if label:
                    img = img + checker
                Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(d / f"{i:03d}.png")
    return root


@pytest.fixture
def tiny_forensynths(tmp_path) -> Path:
    """A ForenSynths tree with train/ (one generator) and val/, test/ (two generators)."""
    root = tmp_path / "tiny_fs"
    make_forensynths(root / "train", ("gen_a",), n=8)
    make_forensynths(root / "val", ("gen_a",), n=4, seed=1)
    make_forensynths(root / "test", ("gen_a", "gen_b"), n=4, seed=2)
    return root


@pytest.fixture
def micro_synthbench(monkeypatch):
    """SynthBench "quick" replaced by a 16-px, 8-test-patch version that builds in seconds."""
    from trustvis.data import synthbench

    micro = synthbench.SynthBenchConfig(
        patch_size=16,
        n_train=16,
        n_val=8,
        n_test=8,
        ae_steps=2,
        gan_steps=2,
        vae_steps=2,
        ae_width=4,
        gan_width=4,
        latent_dim=8,
        batch_size=8,
    )
    monkeypatch.setitem(synthbench.SIZES, "quick", micro)
    return micro


@pytest.fixture
def micro_synthbench_v2(monkeypatch, micro_synthbench):
    """SynthBench v2 "quick" replaced by a 16-px, 8-test-patch version (v1's micro plus tiny diffusion and codec
    budgets) that builds in seconds."""
    import dataclasses

    from trustvis.data import synthbench

    micro = synthbench.SynthBenchV2Config(
        **{**dataclasses.asdict(micro_synthbench), "ddpm_steps": 2, "ddpm_width": 4, "ddpm_levels": 2,
           "sampling_steps": 2, "codec_iterations": 5}
    )  # fmt: skip
    monkeypatch.setitem(synthbench.SIZES_V2, "quick", micro)
    return micro


@pytest.fixture
def cli(capsys):
    """``cli(argv) -> CliResult``: the command line in-process (helpers in ``tests/bad_inputs/badcli.py``)."""
    from badcli import run_cli  # tests/bad_inputs/ is on sys.path for the tests there

    return lambda argv: run_cli(argv, capsys)
