"""SynthBench: the built-in synthetic-image benchmark (real photo patches vs. a zoo of small generators).

Two editions (``build_synthbench(size, version=...)``, folder ``<version>-<size>``): **v1**, described below, and
**v2** (:data:`FAMILIES_V2`, :class:`SynthBenchV2Config`, :data:`SIZES_V2`): v1's families plus three without
the cues v1's generators share — ``gan_aa`` (bilinear up-sampling, reflect padding: no transposed-convolution
peaks, no zero-padding border), ``ddpm`` (a small diffusion model, :mod:`trustvis.data.diffusion`, DDIM samples),
``inpaint`` (the same model regenerating a rectangle of a real patch: paired, mostly real) and ``inr_codec`` (each
real coded and decoded by the toolkit's overfitted codecs COOL-CHIC / EQLINR; made through a maker the task layer
passes in, :data:`EXTERNAL_FAMILIES`, since ``data`` imports no method) — and a second
test condition, :data:`WILD_SPLIT`: every test image, real and fake alike, through ``transforms.Launder`` (a
resize chain, mild sharpening, JPEG or WebP at a random quality), so that compression is not a cue. v1 builds
are unchanged (same files, same config, same caches).

Builds, offline and on a CPU, the "train on one family, test on every family" protocol of the
generalisation papers (Wang et al., CVPR 2020; Chandrasegaran et al., CVPR 2021) from the real-photo
corpus of :mod:`trustvis.data.photos` and the generators of :mod:`trustvis.data.generators`:

- five AutoGAN-style autoencoders (Zhang et al., WIFS 2019) that differ only in their decoder's
  up-sampling (transposed conv, nearest, bilinear, pixel-shuffle, zero-insertion; the last three
  follow Chandrasegaran et al.'s N/B/Z variants);
- a small DCGAN (Radford et al., ICLR 2016) and a VAE (Kingma & Welling, ICLR 2014), both *sampled*.

Dataflow::

    photo_patches(split)  (photos split by source photo, never by patch)
      |  train / val / test  uint8 (n, S, S, 3)
      v
    reals[split] ---- save_png once ---> <split>/<first family>/0_real/<i>.png
      |                                   hard-linked into every other family's 0_real/
      | reals["train"] only
      v
    for family in FAMILIES:
      build generator (seeded) -> train on train reals (L1 AE / BCE GAN / ELBO VAE)
        -> fakes[split]: AE = reconstruct reals[split] (fake i is made from real i)
                         GAN/VAE = sample len(reals[split]) images
        -> save_png ---> <split>/<family>/1_fake/<i>.png
      |
      v
    manifest.json (config, seeds, versions, photo ids, losses, counts, sha256 per file)
      |
      v
    the build folder .v1-<size>.partial/ becomes home()/synthbench/v1-<size>/ only when complete

Resuming: the build happens in ``.v1-<size>.partial/`` beside the target, and each family leaves a marker
there once its files are written. An interrupted build (Ctrl-C, a crash, a full disk) keeps that folder;
the next call with the same version and config skips the families already written and trains the rest
(every family is seeded on its own, so a resumed build is byte-identical to an uninterrupted one). Each
family's line in the log says what it is and a time estimate for 2 CPU cores, corrected by the time the
families before it took.

Layout (the ForenSynths/CNNDetection convention, so outside detectors can read it directly)::

    home()/synthbench/v1-<size>/<split>/<family>/{0_real,1_fake}/<index>.png    split in train|val|test

The test split holds every family; train and val hold ``config.train_families`` only. The reals of a
split are the same patches (same bytes, hard links where the file system allows) for every family.

Deviations/choices:
    - Autoencoder fakes are *paired* with reals: fake ``i`` is the reconstruction of real ``i`` of the
      same split (as in AutoGAN and the dataset-alignment line of work). GAN/VAE fakes are unpaired.
      A detector sees both reals and fakes of a split, so paired families are the harder, content-
      matched case.
    - All generators are trained on the real *train* patches only (never val or test), so test reals
      come from photos that no generator and no detector has seen.
    - Reals and fakes are written by the same :func:`trustvis.data.io.save_png` call (PNG, same
      compression, no metadata), so the file format carries no label.
    - ``match_color`` (default on): each autoencoder fake gets its paired real's per-channel mean.
      Short-trained transposed-conv and zero-insertion autoencoders undershoot green by ~10/255, a
      global colour cue a detector could learn instead of up-sampling traces; only the DC term moves.
    - Index file names are zero-padded (``00012.png``) so that lexical order equals index order.
    - The cache is reused only when its manifest holds the same version and the same config and all
      files are present (hashes are checked by :func:`verify_synthbench` on request); otherwise it is
      rebuilt. A lock file serialises concurrent builders of the same cache.
    - Changing generator code without changing the config does not invalidate a cache: bump
      :data:`VERSION` (and the folder name with it) when the generators change.
    - ``quick`` trains each generator for a few hundred steps: reconstructions are recognisable but
      blurry and GAN/VAE samples are texture-like blobs; the up-sampling fingerprints, which the
      detectors are after, are present from the first steps.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from trustvis.atomic import atomic_write_json, move_dir
from trustvis.data.cache import (
    build_lock,
    hash_tree,
    home,
    library_versions,
    read_manifest,
    reusable_build,
    verify_manifest,
)
from trustvis.data.diffusion import TinyUNet, ddim_inpaint, ddim_sample, inpaint_masks, train_ddpm
from trustvis.data.generators import (
    VAE,
    AntialiasedGenerator,
    DCGANDiscriminator,
    DCGANGenerator,
    UpsamplingAutoencoder,
    reconstruct,
    sample,
    train_autoencoder,
    train_dcgan,
    train_vae,
)
from trustvis.data.io import save_png
from trustvis.data.photos import photo_patches
from trustvis.data.transforms import Launder

logger = logging.getLogger(__name__)

__all__ = [
    "EDITIONS",
    "EXTERNAL_FAMILIES",
    "FamilyMaker",
    "FAMILIES",
    "FAMILIES_V2",
    "WILD_SPLIT",
    "SIZES_V2",
    "SynthBenchV2Config",
    "TRAIN_FAMILY",
    "SPLITS",
    "VERSION",
    "SIZES",
    "SynthBenchConfig",
    "build_synthbench",
    "synthbench_path",
    "load_manifest",
    "verify_synthbench",
]

VERSION = "v1"
SPLITS: tuple[str, ...] = ("train", "val", "test")
CLASSES: tuple[str, str] = ("0_real", "1_fake")

#: Family name -> one-line description. Order is the build order.
FAMILIES: dict[str, str] = {
    "ae_tconv": "autoencoder, decoder up-samples by 4x4/stride-2 transposed conv (ProGAN/DCGAN-like)",
    "ae_nearest": "autoencoder, decoder up-samples by nearest x2 + conv3x3 (Chandrasegaran N)",
    "ae_bilinear": "autoencoder, decoder up-samples by bilinear x2 + conv3x3 (Chandrasegaran B)",
    "ae_pixelshuffle": "autoencoder, decoder up-samples by conv to 4C + PixelShuffle(2) (sub-pixel conv)",
    "ae_zeroins": "autoencoder, decoder up-samples by zero-insertion x2 + conv3x3 (Chandrasegaran Z)",
    "dcgan": "DCGAN generator (transposed convs from a 64-d latent), samples",
    "vae": "convolutional VAE (nearest x2 + conv3x3 decoder), samples from the prior",
}

#: The family detectors train on (train/val splits); the ProGAN-like transposed-conv family.
TRAIN_FAMILY = "ae_tconv"

_AE_UPSAMPLE = {
    "ae_tconv": "tconv",
    "ae_nearest": "nearest",
    "ae_bilinear": "bilinear",
    "ae_pixelshuffle": "pixelshuffle",
    "ae_zeroins": "zeroins",
}

#: SynthBench v2: v1's families and three without the up-sampling cues v1's generators share. Order is the
#: build order (the diffusion model is trained once for ``ddpm`` and ``inpaint``).
FAMILIES_V2: dict[str, str] = {
    **FAMILIES,
    "gan_aa": "GAN generator with bilinear up-sampling and reflect padding only (no transposed-conv, no "
    "zero-padding border cue), trained against a DCGAN discriminator, samples",
    "ddpm": "small denoising diffusion model (U-Net, epsilon prediction), DDIM samples in a few steps",
    "inpaint": "the same diffusion model regenerating a rectangle of 25-50 % of a real patch (RePaint-style)",
    "inr_codec": "the toolkit's overfitted neural codecs (COOL-CHIC and EQLINR: latent grids and a per-pixel MLP "
    "fitted to one image, an implicit neural representation): each real patch coded to a .tvc file and decoded",
}

#: Families whose fakes a layer above ``data`` makes (the toolkit's codecs are methods): ``build_synthbench(...,
#: makers={name: fn})`` supplies them, ``fn(reals uint8 (n,S,S,3), cfg, seed, progress) -> (fakes uint8 (n,S,S,3),
#: stats dict)`` with fake i made from real i; ``trustvis.tasks.detect.build_synthbench_data`` passes the codec's.
EXTERNAL_FAMILIES: tuple[str, ...] = ("inr_codec",)

#: What makes an external family's fakes (see :data:`EXTERNAL_FAMILIES`).
FamilyMaker = Callable[[np.ndarray, "SynthBenchConfig", int, bool], tuple[np.ndarray, dict]]

#: The splits of a v2 build: v1's, and the test split laundered "in the wild" (``transforms.Launder``: a
#: resize chain, mild sharpening, JPEG or WebP), reals and fakes alike.
WILD_SPLIT = "test_wild"


@dataclass
class SynthBenchConfig:
    """What a SynthBench build contains and how its generators are trained.

    Attributes:
        patch_size: side of every patch, a power of two >= 16 (16, 32, 64, 128).
        n_train: real patches of the train split (also the generators' training set).
        n_val: real patches of the val split.
        n_test: real patches of the test split.
        train_families: families whose train and val splits are written (the test split always holds
            every family of :data:`FAMILIES`).
        seed: master seed (patch sampling, weight init, batches, latents; per-family seeds derive from it).
        max_side: photos are downscaled to this longer side before cropping (see ``photo_patches``).
        ae_depth: autoencoder down/up stages.
        ae_width: autoencoder (and VAE) channels at full resolution (doubled per stage, capped at 64).
        ae_steps: autoencoder training steps.
        ae_lr: autoencoder Adam learning rate.
        gan_steps: DCGAN iterations (one D and one G step each).
        gan_lr: DCGAN Adam learning rate (beta1 0.5).
        gan_width: DCGAN base width.
        vae_steps: VAE training steps.
        vae_lr: VAE Adam learning rate.
        vae_beta: VAE KL weight.
        latent_dim: DCGAN and VAE latent dimension.
        batch_size: training batch size of every generator.
        device: ``"cpu"`` (default; byte-identical rebuilds), ``"cuda"`` or ``"auto"`` (CUDA if present;
            GPU kernels are not bit-reproducible, so GPU rebuilds may differ in the last bits).
    """

    patch_size: int = 64
    n_train: int = 1500
    n_val: int = 300
    n_test: int = 400
    train_families: list[str] = field(default_factory=lambda: [TRAIN_FAMILY])
    seed: int = 0
    max_side: int = 768
    ae_depth: int = 2
    ae_width: int = 16
    ae_steps: int = 300
    ae_lr: float = 2e-3
    gan_steps: int = 1000
    gan_lr: float = 2e-4
    gan_width: int = 16
    vae_steps: int = 400
    vae_lr: float = 1e-3
    vae_beta: float = 1.0
    latent_dim: int = 64
    batch_size: int = 32
    match_color: bool = True  # shift AE fakes' channel means to their real's (removes a colour shortcut)
    device: str = "cpu"

    def families(self) -> dict[str, str]:
        """The generator families of this edition (v1: :data:`FAMILIES`)."""
        return FAMILIES

    def laundered(self) -> bool:
        """Whether the build also writes the laundered test split :data:`WILD_SPLIT` (v2)."""
        return False

    def n_real(self, split: str) -> int:
        """Number of real patches of ``split``."""
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test, WILD_SPLIT: self.n_test}[split]

    def splits_of(self, family: str) -> list[str]:
        """The splits written for ``family``."""
        splits = list(SPLITS) if family in self.train_families else ["test"]
        return splits + [WILD_SPLIT] if self.laundered() else splits

    def validate(self) -> None:
        """Raise ``ValueError`` on an invalid configuration."""
        families = self.families()
        unknown = [f for f in self.train_families if f not in families]
        if unknown:
            raise ValueError(f"Unknown train_families {unknown}; choose from {list(families)}")
        s = self.patch_size
        if s < 16 or s & (s - 1):
            raise ValueError(f"patch_size must be a power of two >= 16 (e.g. 16, 32, 64, 128), got {s}")
        if s % 2**self.ae_depth:
            raise ValueError(f"patch_size {s} must be divisible by 2**ae_depth = {2**self.ae_depth}")
        for name in ("n_train", "n_val", "n_test", "batch_size", "ae_width", "gan_width", "latent_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("ae_steps", "gan_steps", "vae_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.device not in ("cpu", "cuda", "auto") and not self.device.startswith("cuda:"):
            raise ValueError(
                f"Unknown device {self.device!r}; choose from ['cpu', 'cuda', 'cuda:<i>', 'auto']"
            )


#: Presets. ``quick``: 64x64, 1500/300/400 reals, only the training family in train/val; measured
#: 296 s wall on 2 CPU cores (~280 s of it generator training, ~30-35 s per autoencoder, ~65 s each
#: for the DCGAN and the VAE), 9,200 PNGs, 53 MB. ``full``: 128x128, every family in every split;
#: about 2 h of generator training on 2 CPU cores, about 3 min on one H100 (``device="auto"``).
#: ``demo``: the quick protocol at 64x64 with fewer patches and generator steps, for ``trustvis demo``
#: (about 1.5 min on 2 CPU cores). ``tiny``: 32x32, a few dozen patches, a few generator steps: builds in
#: seconds, for the ``tiny`` presets, the examples and the tests (its fakes are barely trained).
SIZES: dict[str, SynthBenchConfig] = {
    "quick": SynthBenchConfig(),
    "full": SynthBenchConfig(
        patch_size=128,
        n_train=4000,
        n_val=500,
        n_test=1000,
        train_families=list(FAMILIES),
        ae_depth=3,
        ae_steps=1500,
        gan_steps=4000,
        vae_steps=2000,
        gan_width=16,
        device="auto",
    ),
    "demo": SynthBenchConfig(n_train=600, n_val=150, n_test=200, ae_steps=120, gan_steps=400, vae_steps=160),
    "tiny": SynthBenchConfig(
        patch_size=32,
        n_train=48,
        n_val=16,
        n_test=16,
        max_side=256,
        ae_width=8,
        ae_steps=10,
        gan_steps=10,
        vae_steps=10,
        gan_width=8,
        latent_dim=16,
        batch_size=16,
    ),
}


@dataclass
class SynthBenchV2Config(SynthBenchConfig):
    """SynthBench v2: :class:`SynthBenchConfig` plus the diffusion families and the laundered test split.

    Attributes (beyond v1's):
        ddpm_steps: training steps of the diffusion model (shared by ``ddpm`` and ``inpaint``).
        ddpm_width: its U-Net's channels at full resolution (doubled per level, capped at 128).
        ddpm_levels: its U-Net's resolutions.
        ddpm_lr: its Adam learning rate.
        sampling_steps: DDIM steps per sample (and per inpainting).
        inpaint_min, inpaint_max: share of a patch's area an ``inpaint`` fake regenerates.
        launder: write :data:`WILD_SPLIT` (every test image, real and fake, through ``transforms.Launder()``).
        codec_methods: the codecs of ``inr_codec`` (registered ``codec`` methods); real i is coded by
            ``codec_methods[i % len(codec_methods)]``.
        codec_lmbdas: their rate weights λ; real i uses ``codec_lmbdas[(i // len(codec_methods)) % len(codec_lmbdas)]``.
        codec_iterations: the per-image fitting budget (encoding is training; about 1 s per 64x64 patch at 200).
        codec_preset: the codecs' architecture preset (``quick``, the default: the papers' architectures).
    """

    ddpm_steps: int = 600
    ddpm_width: int = 16
    ddpm_levels: int = 3
    ddpm_lr: float = 1e-3
    sampling_steps: int = 20
    inpaint_min: float = 0.25
    inpaint_max: float = 0.5
    launder: bool = True
    codec_methods: list[str] = field(default_factory=lambda: ["coolchic", "eqlinr"])
    codec_lmbdas: list[float] = field(default_factory=lambda: [1e-3, 4e-3])
    codec_iterations: int = 150
    codec_preset: str = "quick"

    def families(self) -> dict[str, str]:
        return FAMILIES_V2

    def laundered(self) -> bool:
        return self.launder

    def validate(self) -> None:
        super().validate()
        if self.ddpm_steps < 0 or self.ddpm_width < 1 or self.ddpm_levels < 1:
            raise ValueError(
                f"need ddpm_steps >= 0, ddpm_width >= 1, ddpm_levels >= 1; got {self.ddpm_steps}, "
                f"{self.ddpm_width}, {self.ddpm_levels}"
            )
        if self.patch_size % 2 ** (self.ddpm_levels - 1):
            raise ValueError(f"patch_size {self.patch_size} must be divisible by 2**(ddpm_levels-1)")
        if not 1 <= self.sampling_steps <= 1000:
            raise ValueError(f"sampling_steps must be in 1..1000, got {self.sampling_steps}")
        if not 0 < self.inpaint_min <= self.inpaint_max <= 1:
            raise ValueError(
                f"need 0 < inpaint_min <= inpaint_max <= 1, got {self.inpaint_min}, {self.inpaint_max}"
            )
        if not self.codec_methods or not self.codec_lmbdas or min(self.codec_lmbdas) <= 0:
            raise ValueError(f"need at least one codec and positive rate weights; got codec_methods="
                             f"{self.codec_methods}, codec_lmbdas={self.codec_lmbdas}")  # fmt: skip
        if self.codec_iterations < 1:
            raise ValueError(f"codec_iterations must be >= 1, got {self.codec_iterations}")


#: v2 presets: v1's sizes with the diffusion settings. ``quick`` keeps 64x64 patches so that the build and the
#: detectors fit the quick budget; ``full`` is 128x128 with every family but ``inr_codec`` in every split (the codec
#: fits each image on its own, about 3 s per 128x128 patch: a 4,500-patch train split would take hours; its
#: test split is written in every size).
SIZES_V2: dict[str, SynthBenchV2Config] = {
    "quick": SynthBenchV2Config(),
    "full": SynthBenchV2Config(
        **{
            **asdict(SIZES["full"]),
            "ddpm_steps": 4000,
            "ddpm_width": 32,
            "train_families": [f for f in FAMILIES_V2 if f not in EXTERNAL_FAMILIES],
        }
    ),  # fmt: skip
    "tiny": SynthBenchV2Config(
        **{
            **asdict(SIZES["tiny"]),
            "ddpm_steps": 10,
            "ddpm_width": 8,
            "ddpm_levels": 2,
            "sampling_steps": 3,
            "codec_iterations": 40,
        }
    ),  # fmt: skip
}

#: SynthBench editions: version -> (families, presets).
EDITIONS: dict[str, tuple[dict[str, str], dict[str, SynthBenchConfig]]] = {
    "v1": (FAMILIES, SIZES),
    "v2": (FAMILIES_V2, SIZES_V2),
}


def _edition(version: str) -> tuple[dict[str, str], dict[str, SynthBenchConfig]]:
    if version not in EDITIONS:
        raise ValueError(f"Unknown SynthBench version {version!r}; choose from {list(EDITIONS)}")
    return EDITIONS[version]


#: seconds per generator training step and image pixel (batch x patch_size^2) on 2 CPU cores at the
#: default widths (16), measured on the quick builds (v2's gan_aa: 134 s for 1,000 steps; ddpm: 0.24 s per step
#: of 32 64x64 patches, width 16, 3 levels); scaled by (width / 16)^2 for other widths
_SECONDS_PER_STEP_PIXEL = {"ae": 8.1e-7, "dcgan": 5.0e-7, "vae": 1.25e-6, "gan_aa": 1.0e-6, "ddpm": 1.9e-6}
_SECONDS_PER_PNG = 2.5e-3  # writing one 64x64 PNG (scaled by area for other sizes), with its hash


def estimate_seconds(cfg: SynthBenchConfig, family: str) -> float:
    """Rough CPU time (2 cores) to train ``family`` and write its fakes; for the build's progress lines."""
    pixels = cfg.batch_size * cfg.patch_size**2
    if family in _AE_UPSAMPLE:
        train = cfg.ae_steps * pixels * _SECONDS_PER_STEP_PIXEL["ae"] * (cfg.ae_width / 16) ** 2
    elif family in ("dcgan", "gan_aa"):
        train = cfg.gan_steps * pixels * _SECONDS_PER_STEP_PIXEL[family] * (cfg.gan_width / 16) ** 2
    elif family in EXTERNAL_FAMILIES:
        # the codec fits each image: ~5.5 ms per iteration at 64 px on 2 cores (measured on the v2 quick build)
        n_fit = sum(cfg.n_real(s) for s in cfg.splits_of(family) if s != WILD_SPLIT)
        per_iteration = 5.5e-3 * max(1.0, (cfg.patch_size / 64) ** 2 / 2)
        train = n_fit * getattr(cfg, "codec_iterations", 0) * per_iteration
    elif family in ("ddpm", "inpaint"):  # training (inpaint reuses ddpm's model in one process) + sampling
        # a DDIM step of one image costs about half a training step of one image (measured at 64 px, width 16)
        train_steps = cfg.ddpm_steps if family == "ddpm" else 0
        steps = train_steps + cfg.sampling_steps * cfg.n_test / (2 * cfg.batch_size)
        train = steps * pixels * _SECONDS_PER_STEP_PIXEL["ddpm"] * (cfg.ddpm_width / 16) ** 2
    else:
        train = cfg.vae_steps * pixels * _SECONDS_PER_STEP_PIXEL["vae"] * (cfg.ae_width / 16) ** 2
    n_images = sum(2 * cfg.n_real(s) for s in cfg.splits_of(family))
    return train + n_images * _SECONDS_PER_PNG * (cfg.patch_size / 64) ** 2


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _check_size(size: str, version: str = VERSION) -> None:
    sizes = _edition(version)[1]
    if size not in sizes:
        raise ValueError(f"Unknown SynthBench {version} size {size!r}; choose from {list(sizes)}")


def synthbench_path(size: str = "quick", home_dir: str | Path | None = None, version: str = VERSION) -> Path:
    """Folder of a SynthBench build: ``<home>/synthbench/<version>-<size>`` (not necessarily built).

    Args:
        size: one of the edition's presets (:data:`SIZES`, :data:`SIZES_V2`).
        home_dir: cache root; default :func:`trustvis.data.cache.home`.
        version: ``v1`` (default) or ``v2`` (:data:`EDITIONS`).
    """
    _check_size(size, version)
    root = Path(home_dir).expanduser() if home_dir is not None else home()
    return root / "synthbench" / f"{version}-{size}"


def load_manifest(path: str | Path) -> dict:
    """Read ``manifest.json`` of a build folder (or the file itself).

    Raises:
        FileNotFoundError: no manifest there.
        ValueError: the manifest is not valid JSON.
    """
    return read_manifest(path, "SynthBench")


def verify_synthbench(path: str | Path, check_hashes: bool = False) -> list[str]:
    """Check a build folder against its manifest.

    Args:
        path: a build folder (``synthbench_path(...)``).
        check_hashes: also re-hash every file (slower) instead of checking presence and counts.

    Returns:
        Problems found, one line each; empty when the build is complete.
    """
    root = Path(path)
    try:
        version = str(load_manifest(root).get("version", VERSION))
    except (FileNotFoundError, ValueError):
        version = VERSION  # verify_manifest says what is wrong with the manifest
    problems = verify_manifest(root, version if version in EDITIONS else VERSION, "SynthBench", check_hashes,
                               progress=True)  # fmt: skip
    if problems and problems[0].startswith("manifest:"):
        return problems
    man = load_manifest(root)
    for split, fams in man.get("counts", {}).items():
        for fam, per_class in fams.items():
            for cls, n in per_class.items():
                d = root / split / fam / cls
                found = sum(1 for _ in d.glob("*.png")) if d.is_dir() else 0
                if found != n:
                    problems.append(f"{split}/{fam}/{cls}: {found} PNGs, manifest says {n}")
    listed = set(man.get("files", {})) | {"manifest.json"}
    extra = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).as_posix() not in listed
    )
    problems += [f"unexpected file {e}" for e in extra[:20]]
    if len(extra) > 20:
        problems.append(f"... and {len(extra) - 20} more unexpected files")
    return problems


def _config_json(cfg: SynthBenchConfig) -> dict:
    return json.loads(json.dumps(asdict(cfg)))


def _reusable(target: Path, cfg: SynthBenchConfig, version: str = VERSION) -> bool:
    return reusable_build(
        target, version, "SynthBench", {"config": _config_json(cfg)}, verify=verify_synthbench
    )


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    return torch.device(device)


def _family_seed(cfg: SynthBenchConfig, family: str) -> int:
    return cfg.seed * 1000 + 10 * (list(cfg.families()).index(family) + 1)


def _write_images(images: np.ndarray, folder: Path, names: list[str], bar: tqdm) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for img, name in zip(images, names):
        save_png(folder / name, img)  # img: uint8 (S, S, 3)
        bar.update(1)


def match_channel_means(fakes: np.ndarray, reals: np.ndarray) -> np.ndarray:
    """Shift each fake's per-channel mean to that of its paired real; uint8 (n,S,S,3) in and out.

    Removes the global colour drift of short-trained autoencoders (e.g. ``ae_tconv`` undershoots green
    by ~10/255), a shortcut a detector could learn instead of up-sampling traces. Only the DC term of
    each channel moves; every other frequency, where the fingerprints are, is untouched (up to clipping).
    """
    f = fakes.astype(np.float32)
    shift = reals.astype(np.float32).mean(axis=(1, 2), keepdims=True) - f.mean(axis=(1, 2), keepdims=True)
    return np.clip(np.rint(f + shift), 0, 255).astype(np.uint8)


def _make_family(
    family: str,
    cfg: SynthBenchConfig,
    reals: dict[str, np.ndarray],
    device: torch.device,
    progress: bool,
    makers: dict[str, FamilyMaker] | None = None,
) -> tuple[dict[str, np.ndarray], dict]:
    """Train one family on the train reals and make its fakes for every split it appears in (an
    :data:`EXTERNAL_FAMILIES` one with its maker of ``makers``)."""
    seed = _family_seed(cfg, family)
    splits = [s for s in cfg.splits_of(family) if s != WILD_SPLIT]  # the wild split launders the test fakes
    fakes: dict[str, np.ndarray] = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # weight init
        if family in _AE_UPSAMPLE:
            model = UpsamplingAutoencoder(_AE_UPSAMPLE[family], depth=cfg.ae_depth, base_width=cfg.ae_width)
            stats = train_autoencoder(
                model.to(device),
                reals["train"],
                steps=cfg.ae_steps,
                batch_size=cfg.batch_size,
                lr=cfg.ae_lr,
                seed=seed,
                progress=progress,
                desc=f"train {family}",
            )
            for split in splits:
                fakes[split] = reconstruct(model, reals[split])  # (n, S, S, 3), fake i <- real i
                if cfg.match_color:
                    fakes[split] = match_channel_means(fakes[split], reals[split])
        elif family in ("dcgan", "gan_aa"):  # the same adversarial training; only the generator differs
            generator = DCGANGenerator if family == "dcgan" else AntialiasedGenerator
            g = generator(cfg.patch_size, latent_dim=cfg.latent_dim, base_width=cfg.gan_width).to(device)
            d = DCGANDiscriminator(cfg.patch_size, base_width=cfg.gan_width).to(device)
            stats = train_dcgan(g, d, reals["train"], steps=cfg.gan_steps, batch_size=cfg.batch_size,
                                lr=cfg.gan_lr, seed=seed, progress=progress, desc=f"train {family}")  # fmt: skip
            for k, split in enumerate(splits):
                fakes[split] = sample(g, len(reals[split]), seed=seed + 1 + k)  # (n, S, S, 3)
        elif family in ("ddpm", "inpaint"):
            model, stats = _diffusion_model(cfg, reals["train"], device, progress)
            stats = dict(stats)  # the shared model's training summary, copied for this family's seed
            for k, split in enumerate(splits):
                if family == "ddpm":
                    fakes[split] = ddim_sample(
                        model, len(reals[split]), cfg.sampling_steps, seed=seed + 1 + k
                    )
                else:  # fake i regenerates a rectangle of real i
                    masks = inpaint_masks(len(reals[split]), cfg.patch_size, seed + 1 + k, cfg.inpaint_min,
                                          cfg.inpaint_max)  # fmt: skip
                    fakes[split] = ddim_inpaint(
                        model, reals[split], masks, cfg.sampling_steps, seed=seed + 2 + k
                    )
        elif family in EXTERNAL_FAMILIES:
            stats = {"maker": f"{makers[family].__module__}.{makers[family].__qualname__}", "splits": {}}
            for k, split in enumerate(splits):  # fake i is made from real i
                fakes[split], stats["splits"][split] = makers[family](
                    reals[split], cfg, seed + 1 + k, progress
                )
        elif family == "vae":
            model = VAE(cfg.patch_size, latent_dim=cfg.latent_dim, base_width=cfg.ae_width).to(device)
            stats = train_vae(
                model,
                reals["train"],
                steps=cfg.vae_steps,
                batch_size=cfg.batch_size,
                lr=cfg.vae_lr,
                beta=cfg.vae_beta,
                seed=seed,
                progress=progress,
                desc=f"train {family}",
            )
            for k, split in enumerate(splits):
                fakes[split] = sample(model, len(reals[split]), seed=seed + 1 + k)  # (n, S, S, 3)
        else:  # pragma: no cover - FAMILIES and this dispatch are kept in sync
            raise ValueError(f"Unknown family {family!r}; choose from {list(cfg.families())}")
    stats["seed"] = seed
    return fakes, stats


_DIFFUSION_CACHE: dict[
    str, tuple[Any, dict]
] = {}  # the diffusion model of a build, shared by ddpm and inpaint


def _diffusion_model(
    cfg: SynthBenchConfig, train: np.ndarray, device: torch.device, progress: bool
) -> tuple[TinyUNet, dict]:
    """The diffusion model of ``cfg``, trained on the train reals with the ``ddpm`` family's seed: trained once per
    process for both diffusion families (a resumed build retrains it: the same seed gives the same model)."""
    key = json.dumps(_config_json(cfg), sort_keys=True)
    if key not in _DIFFUSION_CACHE:
        _DIFFUSION_CACHE.clear()
        seed = _family_seed(cfg, "ddpm")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = TinyUNet(cfg.patch_size, width=cfg.ddpm_width, levels=cfg.ddpm_levels).to(device)
            stats = train_ddpm(model, train, steps=cfg.ddpm_steps, batch_size=cfg.batch_size, lr=cfg.ddpm_lr,
                               seed=seed, progress=progress, desc="train ddpm")  # fmt: skip
        _DIFFUSION_CACHE[key] = (model, stats)
    return _DIFFUSION_CACHE[key]


def build_synthbench(
    size: str = "quick",
    force: bool = False,
    progress: bool = True,
    home_dir: str | Path | None = None,
    config: SynthBenchConfig | None = None,
    version: str = VERSION,
    makers: dict[str, FamilyMaker] | None = None,
) -> Path:
    """Build SynthBench (or return the existing build) and return its folder.

    Args:
        size: preset name of the edition (v1: :data:`SIZES`, v2: :data:`SIZES_V2`); also names the folder
            ``<version>-<size>``.
        force: rebuild even if a valid build exists.
        progress: show tqdm progress bars.
        home_dir: cache root; default :func:`trustvis.data.cache.home` (``$TRUSTVIS_HOME``).
        config: overrides the preset (e.g. a micro build for tests; a :class:`SynthBenchV2Config` for v2); the
            folder is still ``<version>-<size>`` and a build made with another config is rebuilt.
        version: ``v1`` (default; :data:`FAMILIES`) or ``v2`` (:data:`FAMILIES_V2` and the laundered test split
            :data:`WILD_SPLIT`).
        makers: the makers of the edition's :data:`EXTERNAL_FAMILIES` (needed only to build, not to reuse a
            build; ``trustvis.tasks.detect.build_synthbench_data`` passes them).

    Returns:
        ``<home>/synthbench/<version>-<size>``.

    Raises:
        ValueError: unknown version or size, invalid config, a config of the other edition, or a build that
            needs a maker it was not given.
    """
    _check_size(size, version)
    preset = _edition(version)[1][size]
    if config is not None and type(config) is not type(preset):
        raise ValueError(
            f"SynthBench {version} needs a {type(preset).__name__}, got a {type(config).__name__}"
        )
    cfg = dataclasses.replace(preset if config is None else config)
    cfg.train_families = list(cfg.train_families)
    cfg.validate()
    target = synthbench_path(size, home_dir, version)
    if not force and _reusable(target, cfg, version):
        logger.info("SynthBench %s %s already built at %s", version, size, target)
        return target
    missing = [f for f in cfg.families() if f in EXTERNAL_FAMILIES and f not in (makers or {})]
    if missing:
        raise ValueError(
            f"SynthBench {version} {size} is not built at {target} and its families {missing} are made by the "
            "toolkit's codecs: build it with `trustvis data build synthbench --version v2` or "
            "trustvis.tasks.detect.build_synthbench_data()"
        )
    with build_lock(target):
        if not force and _reusable(target, cfg, version):  # another process built it while we waited
            return target
        _build(target, size, cfg, progress, fresh=force, version=version, makers=makers)
    return target


def partial_path(target: Path) -> Path:
    """Where an unfinished build of ``target`` lives (``.<name>.partial``, a sibling): kept on failure so
    that the next call resumes it, family by family."""
    return target.parent / f".{target.name}.partial"


def _open_partial(
    target: Path, cfg: SynthBenchConfig, fresh: bool, version: str = VERSION
) -> tuple[Path, dict[str, dict]]:
    """The partial build folder of ``target`` for ``cfg`` and the families it finished (name -> stats).

    A partial folder of another version or config, or any when ``fresh``, is discarded."""
    work = partial_path(target)
    state = {"version": version, "config": _config_json(cfg)}
    if work.exists():
        try:
            same = json.loads((work / ".build.json").read_text(encoding="utf-8")) == state
        except (OSError, ValueError):
            same = False
        if fresh or not same:
            shutil.rmtree(work)
    if not work.exists():
        work.mkdir(parents=True)
        work.chmod(0o755)
        atomic_write_json(work / ".build.json", state)
    done: dict[str, dict] = {}
    for family in cfg.families():
        marker = work / f".family-{family}.json"
        if marker.is_file():
            try:
                done[family] = json.loads(marker.read_text(encoding="utf-8"))
            except ValueError:
                marker.unlink()  # a torn marker: build the family again
    return work, done


def _launder(images: np.ndarray, seed: int, stream: int) -> np.ndarray:
    """Every image of uint8 ``(n, S, S, 3)`` through ``Launder()``, image i seeded by ``(seed, stream, i)``."""
    launder, out = Launder(), np.empty_like(images)
    for i, img in enumerate(images):
        out[i], _ = launder(img, np.random.default_rng([seed, stream, i]))
    return out


def _build(
    target: Path,
    size: str,
    cfg: SynthBenchConfig,
    progress: bool,
    fresh: bool = False,
    version: str = VERSION,
    makers: dict[str, FamilyMaker] | None = None,
) -> None:
    t0 = time.perf_counter()
    device = _resolve_device(cfg.device)
    families = list(cfg.families())
    label = size if version == VERSION else f"{version} {size}"  # for the log lines
    used_splits = [s for s in (*SPLITS, WILD_SPLIT) if any(s in cfg.splits_of(f) for f in families)]
    n_images = sum(2 * cfg.n_real(s) for f in families for s in cfg.splits_of(f))
    work, done = _open_partial(target, cfg, fresh, version)
    estimates = {f: estimate_seconds(cfg, f) for f in families}
    logger.info(
        "Building SynthBench %s (%d generator families, %dx%d patches, %d images) at %s on %s: about %s on "
        "2 CPU cores; an interrupted build resumes from the last family written",
        label, len(families), cfg.patch_size, cfg.patch_size, n_images, target, device,
        _duration(sum(estimates[f] for f in families if f not in done)),
    )  # fmt: skip
    if done:
        logger.info(
            "Resuming: %d of %d families already written (%s)", len(done), len(families), ", ".join(done)
        )
    reals: dict[str, np.ndarray] = {}
    photo_ids: dict[str, list[str]] = {}
    for split in SPLITS:  # train is always drawn: it trains the generators
        if split == "train" or split in used_splits:
            reals[split], photo_ids[split] = photo_patches(
                split, cfg.patch_size, cfg.n_real(split), seed=cfg.seed, max_side=cfg.max_side
            )  # (n, S, S, 3) uint8
    for a, b in (("train", "test"), ("train", "val"), ("val", "test")):
        leaked = set(photo_ids.get(a, [])) & set(photo_ids.get(b, []))
        if leaked:
            raise RuntimeError(f"photo_patches leaked photos between {a} and {b}: {sorted(leaked)[:5]}")
    if (
        WILD_SPLIT in used_splits
    ):  # the test reals laundered (stream 0; the fakes of family k use stream k + 1)
        reals[WILD_SPLIT], photo_ids[WILD_SPLIT] = _launder(reals["test"], cfg.seed, 0), photo_ids["test"]
    names = {
        s: [f"{i:0{max(5, len(str(len(r) - 1)))}d}.png" for i in range(len(r))] for s, r in reals.items()
    }

    # Reals: written once per split (into the first family that has the split), then hard-linked.
    real_src: dict[str, Path] = {}
    for split in used_splits:
        first = next(f for f in families if split in cfg.splits_of(f))
        real_src[split] = work / split / first / "0_real"
    if not (work / ".reals.done").is_file():
        n_real_files = sum(len(reals[s]) for s in used_splits)
        with tqdm(total=n_real_files, desc="write reals", disable=not progress, leave=False) as bar:
            for split in used_splits:
                shutil.rmtree(real_src[split], ignore_errors=True)
                _write_images(reals[split], real_src[split], names[split], bar)
        (work / ".reals.done").touch()

    losses: dict[str, dict] = dict(done)
    counts: dict[str, dict[str, dict[str, int]]] = {s: {} for s in used_splits}
    spent = estimated = 0.0  # this call's measured and estimated seconds, to correct the estimate
    for k, family in enumerate(families):
        splits = cfg.splits_of(family)
        for split in splits:
            counts[split][family] = {"0_real": len(reals[split]), "1_fake": len(reals[split])}
        if family in done:
            continue
        scale = spent / estimated if estimated else 1.0
        logger.info("SynthBench %s [%d/%d] %s: %s (about %s)", label, k + 1, len(families), family,
                    cfg.families()[family], _duration(estimates[family] * scale))  # fmt: skip
        t_family = time.perf_counter()
        for split in splits:  # what an interrupted attempt at this family left
            shutil.rmtree(work / split / family / "1_fake", ignore_errors=True)
            if work / split / family / "0_real" != real_src[split]:
                shutil.rmtree(work / split / family / "0_real", ignore_errors=True)
        fakes, losses[family] = _make_family(family, cfg, reals, device, progress, makers)
        if WILD_SPLIT in splits:
            fakes[WILD_SPLIT] = _launder(fakes["test"], cfg.seed, k + 1)
        total = sum(len(reals[s]) for s in splits)
        with tqdm(total=total, desc=f"write {family}", disable=not progress, leave=False) as bar:
            for split in splits:
                real_dir = work / split / family / "0_real"
                if real_dir != real_src[split]:
                    real_dir.mkdir(parents=True, exist_ok=True)
                    for name in names[split]:
                        _link_or_copy(real_src[split] / name, real_dir / name)
                _write_images(fakes[split], work / split / family / "1_fake", names[split], bar)
        atomic_write_json(work / f".family-{family}.json", losses[family])  # this family survives a crash
        spent += time.perf_counter() - t_family
        estimated += estimates[family]
        left = sum(estimates[f] for f in families[k + 1 :] if f not in done) * spent / estimated
        if left:
            logger.info("SynthBench %s: %s written; about %s left", label, family, _duration(left))

    files = hash_tree(work, progress)
    manifest: dict[str, Any] = {
        "version": version,
        "size": size,
        "patch_size": cfg.patch_size,
        "config": _config_json(cfg),
        "families": cfg.families(),
        "train_family": TRAIN_FAMILY,
        "seeds": {
            "master": cfg.seed,
            "photo_patches": {s: cfg.seed for s in reals},
            "families": {f: _family_seed(cfg, f) for f in families},
        },
        "versions": library_versions(),
        "device": str(device),
        "photo_ids": {s: sorted(set(ids)) for s, ids in photo_ids.items()},
        "patch_photo_ids": {s: ids for s, ids in photo_ids.items() if s in used_splits},
        "generator_losses": {f: losses[f] for f in families},
        "counts": counts,
        "n_files": len(files),
        "files": files,
        "resumed_families": list(done),
        "build_seconds": round(time.perf_counter() - t0, 2),
    }
    if cfg.laundered():
        manifest["launder"] = {"split": WILD_SPLIT, "settings": asdict(Launder()),
                               "seeds": "image i of the reals: (master, 0, i); of family k (0-based): (master, k + 1, i)"}  # fmt: skip
    atomic_write_json(work / "manifest.json", manifest)
    for marker in work.glob(".*"):  # the build's own state: not part of the data set
        marker.unlink()
    move_dir(work, target)
    logger.info(
        "SynthBench %s built at %s: %d files in %.1fs", label, target, len(files), time.perf_counter() - t0
    )
