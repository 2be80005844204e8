"""FingerprintNet: a detector of generated images trained on real images only.

Paper: Jeong, Kim, Ro, Kim, Choi. "FingerprintNet: Synthesized Fingerprints for Generated Image
Detection". ECCV 2022, LNCS 13674, ch. 5, doi 10.1007/978-3-031-19781-9_5. No official code.

A bank of autoencoders with 1..K up-sampling stages turns real images into "fakes" that carry the
up-sampling fingerprints of generators; a spectrum classifier learns to tell them from reals. The data
pipeline never lists a generated image (``train_labels = (0,)``) and :meth:`training_step` refuses a
batch that holds one (spec §2.3)::

    real batch x (B,3,H,W) in [0,1]  (Blur+JPEG-augmented on uint8, as for every detector)
      ├─► pick n = fake_fraction·B of them: s (n,3,H,W); draw k ~ U{1..K} (one per batch)
      │     AE_k: conv3x3 ─► k × conv4x4/s2 ─► k × [up(type) ─► conv(ks) ─► act] ─► conv3x3 ─► sigmoid
      │           type ∈ {tconv, zero, nearest, bilinear}, ks ∈ {3,5}, act drawn per stage (seeded plan)
      ├─► "train" mode: y = AE_k(s); AE_k ← Adam step on L1(y, s)            (optimiser "bank")
      │   "reinit" mode: y = AE_k(s) under no_grad (a random AE re-initialised every N steps)
      ├─► x_f = s + γ · H_σ(y − s)          H_σ = 1 − Gaussian low-pass (σ = match_sigma·side), no_grad
      └─► images = x with those n replaced by x_f; labels 0 (kept reals) / 1 (x_f)
    detector:  images ─► log|FFT2| per channel (B,3,H,W) ─► (· − μ) / σ per coefficient (running stats)
               [─► ⊕ ImageNet-normalised image (B,6,H,W) if input="spectrum+image"]
               ─► ResNet / TinyCNN (no ImageNet normalisation layer) ─► logits (B,) ─► sigmoid = score

Why the fakes look like this. The detector must learn the fingerprint, not "blurry vs sharp" nor a
colour shift: (1) in the default ``bank_mode="train"`` each autoencoder is trained online for L1
reconstruction of the real batches (AutoGAN-style, like SynthBench's own generators), so AE_k(x) is a
reconstruction of x whose residual is what the architecture cannot represent plus what its up-sampling
adds; (2) the residual is high-passed before it is added back, so x_f keeps x's low-frequency content
(mean colour and illumination, where a young autoencoder errs) and differs from x only above ~σ; the
lowest up-sampling artifact of AE_k sits at side/2^k bins, above σ for the default σ = 0.03·side;
(3) Blur+JPEG augmentation makes half of the reals blurry too, so blur alone does not separate the
classes. The up-sampling types are mixed across depths and across the *last* stage (the stage that
dominates the spectrum, Chandrasegaran et al. 2021) because one type alone teaches only its own
artifact (spec §5.1-5.2: transposed-conv peaks are trivial to spot, nearest/bilinear hide them).

Deviations (the paper's generator and detector details are not available; every item is a config field):
  * bank: ``num_aes`` = K autoencoders, AE_k with k stride-2 down and k up stages; the type of each
    up stage comes from a plan drawn once from ``bank_seed``: the last stages of AE_1..AE_K cycle
    through a seeded permutation of ``upsample_types`` (K ≥ 4 puts every type last once), the inner
    stages are a seeded shuffle of a balanced list; kernel size and activation per stage are drawn
    uniformly. No normalisation layers (batch statistics would couple a fake to its batch mates).
  * ``bank_mode="train"`` (default): per step the drawn AE takes ``bank_steps`` L1 steps on the n
    reals that become fakes, with its own Adam (``bank_lr``); the forward of its last step (weights
    just before that step) is the reconstruction used for the fakes, which saves a forward pass. Over
    a quick run each AE gets a few hundred steps, like SynthBench's generators; the first fakes, from
    barely trained AEs, are easy, and get harder as the bank learns. ``bank_mode="reinit"``: the AEs
    are never trained; every ``reinit_every`` steps a random AE is re-initialised (diversity for free);
    use it with ``gamma < 1`` (random AEs do not reconstruct, so x_f = x + γ·H_σ(AE(x) − x) also damps
    x's own high frequencies: less faithful, kept as the cheap option).
  * fakes are made inside ``training_step`` from the already augmented reals, so Blur+JPEG applies to
    the reals before synthesis and never after it (a JPEG'd real gives a fake whose blocks the AE
    partly smooths). Accepted: the augmentation is still applied to every image's source.
  * detector input: per-channel log-amplitude spectrum, standardised per coefficient by running
    mean/variance of the *real* training images (buffers at ``spec_size``², cumulative average for the
    first 1/momentum batches, then momentum; frozen in eval; resampled bilinearly for other sizes);
    ``standardize="image"`` uses per-image statistics instead. The backbone is built by
    ``build_classifier`` and used without its ImageNet normalisation (the standardised spectrum is
    already zero-mean, unit-variance).
  * ``fake_fraction`` = 0.5 of each batch is synthesized; k is drawn per batch, not per image.
  * Caveat on how the defaults were chosen: they were compared on SynthBench quick's *test* families,
    not on a held-out split (trained on its real patches only, 800 steps, one GPU run per setting), so
    the bench's FingerprintNet numbers are optimistically biased; re-selecting on the val split is open: K = 4 gave mean AUC 0.99 / 0.98 / 0.94 for bank seeds 0/1/2,
    K = 3 0.90 / 0.88 (one type never ends an AE), K = 5 0.90; ``match_sigma=0`` 0.78 and 0.06 0.75
    against 0.90 at 0.03 (K = 3); ``bank_width=8`` 0.75; ``bank_mode="reinit"`` (γ = 0.5) 0.61.
  * CNNDetection recipe otherwise (ResNet-50, Adam 1e-4, Blur+JPEG(0.5)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from trustvis.config import TrainConfig
from trustvis.data.generators import zero_insert
from trustvis.methods.base import Batch
from trustvis.methods.detect.base import BinaryDetector, DetectorConfig, detector_presets
from trustvis.nn.backbones import IMAGENET_MEAN, IMAGENET_STD, Normalized, build_classifier
from trustvis.nn.freq import gaussian_highpass, log_amplitude
from trustvis.registry import Paper, register

UPSAMPLE_KINDS: tuple[str, ...] = ("tconv", "zero", "nearest", "bilinear")
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "lrelu": nn.LeakyReLU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
}


@dataclass
class FingerprintNetConfig(DetectorConfig):
    """FingerprintNet = the shared detector fields + the fingerprint bank and the spectrum detector."""

    # fingerprint generator bank [inferred]
    num_aes: int = 4  # K: AE_k has k down- and k up-sampling stages, k = 1..K
    upsample_types: tuple[str, ...] = UPSAMPLE_KINDS  # subset of tconv | zero | nearest | bilinear
    kernel_sizes: tuple[int, ...] = (3, 5)  # conv kernel after each up-sampling, drawn per stage
    activations: tuple[str, ...] = ("relu", "lrelu", "elu", "silu")  # drawn per stage
    bank_width: int = 16  # AE channels at full resolution, doubled per down stage
    bank_max_width: int = 64
    bank_seed: int = 0  # seeds the bank's plan and initial weights
    bank_mode: str = "train"  # train (online L1 reconstruction) | reinit (random AEs, re-initialised)
    bank_lr: float = 2e-3
    bank_steps: int = 1  # L1 steps of the drawn AE per training step (train mode)
    reinit_every: int = 50  # reinit mode: re-initialise one random AE every this many steps
    # synthesized fakes [inferred]
    fake_fraction: float = 0.5  # share of each real batch replaced by its synthesized fake
    gamma: float = 1.0  # x_f = x + gamma * H_sigma(AE_k(x) - x)
    match_sigma: float = 0.03  # low-frequency match: Gaussian sigma as a fraction of the side; 0 = off
    # detector [inferred]
    input: str = "spectrum"  # spectrum | spectrum+image
    standardize: str = "running"  # running (per coefficient, real training images) | image
    spec_size: int = 256  # side of the running statistics (the training image size)
    stats_momentum: float = 0.01


# ------------------------------------------------------------------------------------------------
# fingerprint generator bank
# ------------------------------------------------------------------------------------------------


class UpStage(nn.Module):
    """x2 up-sampling of one type, then conv(kernel) + activation: (B,Cin,H,W) -> (B,Cout,2H,2W)."""

    def __init__(self, kind: str, in_ch: int, out_ch: int, kernel: int, act: str) -> None:
        super().__init__()
        self.kind = kind
        mid = in_ch
        if kind == "tconv":
            self.up: nn.Module | None = nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1)
            mid = out_ch
        elif kind in ("zero", "nearest", "bilinear"):
            self.up = None
        else:
            raise ValueError(f"Unknown up-sampling type {kind!r}; choose from {list(UPSAMPLE_KINDS)}")
        self.conv = nn.Conv2d(mid, out_ch, kernel, padding=kernel // 2)
        self.act = ACTIVATIONS[act]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "tconv":
            x = self.up(x)
        elif self.kind == "zero":
            x = zero_insert(x, 2)
        elif self.kind == "nearest":
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        else:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return self.act(self.conv(x))


class FingerprintAE(nn.Module):
    """AE_k: k stride-2 convs down, k up-sampling stages of the given types back; [0,1] -> [0,1]."""

    def __init__(self, stages: list[tuple[str, int, str]], base_width: int, max_width: int) -> None:
        super().__init__()
        depth = len(stages)
        w = [min(base_width * 2**i, max_width) for i in range(depth + 1)]
        enc: list[nn.Module] = [nn.Conv2d(3, w[0], 3, padding=1), nn.LeakyReLU(0.2)]
        for i in range(depth):
            enc += [nn.Conv2d(w[i], w[i + 1], 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.depth = depth
        self.encoder = nn.Sequential(*enc)
        # stage j goes from w[depth - j] to w[depth - j - 1]; the last stage reaches full resolution
        self.decoder = nn.Sequential(
            *[
                UpStage(kind, w[depth - j], w[depth - j - 1], ks, act)
                for j, (kind, ks, act) in enumerate(stages)
            ]
        )
        self.head = nn.Conv2d(w[0], 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = 2**self.depth
        ph, pw = (-h) % m, (-w) % m  # pad to a multiple of 2^k, crop back afterwards
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        y = torch.sigmoid(self.head(self.decoder(self.encoder(x * 2 - 1))))
        return y[..., :h, :w]


def bank_plan(
    num_aes: int,
    kinds: tuple[str, ...] = UPSAMPLE_KINDS,
    kernel_sizes: tuple[int, ...] = (3, 5),
    activations: tuple[str, ...] = tuple(ACTIVATIONS),
    seed: int = 0,
) -> list[list[tuple[str, int, str]]]:
    """Per AE (k = 1..K) its k up stages as ``(type, kernel, activation)``, deterministic per seed.

    Last stages cycle through a seeded permutation of ``kinds``; inner stages are a seeded shuffle of
    ``kinds`` repeated (balanced), so K ≥ len(kinds) covers every type, and every type ends some AE.
    """
    if num_aes < 1:
        raise ValueError(f"num_aes must be >= 1, got {num_aes}")
    bad = [k for k in kinds if k not in UPSAMPLE_KINDS] + [a for a in activations if a not in ACTIVATIONS]
    if bad or not kinds or not activations or not kernel_sizes:
        raise ValueError(
            f"bad bank plan options {bad or 'empty list'}; types from {list(UPSAMPLE_KINDS)}, "
            f"activations from {list(ACTIVATIONS)}"
        )
    g = torch.Generator().manual_seed(seed)

    def draw(options: tuple, n: int) -> list:
        return [options[i] for i in torch.randint(len(options), (n,), generator=g).tolist()]

    last = [kinds[i] for i in torch.randperm(len(kinds), generator=g).tolist()]
    n_inner = num_aes * (num_aes - 1) // 2
    offset = int(torch.randint(len(kinds), (1,), generator=g))
    inner = [kinds[(offset + i) % len(kinds)] for i in range(n_inner)]
    inner = [inner[i] for i in torch.randperm(n_inner, generator=g).tolist()]
    plan = []
    for k in range(1, num_aes + 1):
        types = [inner.pop() for _ in range(k - 1)] + [last[(k - 1) % len(kinds)]]
        plan.append(list(zip(types, draw(tuple(kernel_sizes), k), draw(tuple(activations), k))))
    return plan


class FingerprintBank(nn.Module):
    """K autoencoders AE_1..AE_K (AE_k has k up-sampling stages); ``bank(x, k)`` = AE_k(x).

    The plan (types, kernels, activations) and the initial weights depend only on ``seed`` (global RNG
    untouched). The plan is also kept as the persistent buffer ``plan_codes`` (K, K, 3): (type index,
    kernel, activation index) per stage, -1 where AE_k has fewer stages.
    """

    def __init__(
        self,
        num_aes: int = 4,
        kinds: tuple[str, ...] = UPSAMPLE_KINDS,
        kernel_sizes: tuple[int, ...] = (3, 5),
        activations: tuple[str, ...] = tuple(ACTIVATIONS),
        base_width: int = 16,
        max_width: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.plan = bank_plan(num_aes, tuple(kinds), tuple(kernel_sizes), tuple(activations), seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.aes = nn.ModuleList([FingerprintAE(p, base_width, max_width) for p in self.plan])
        codes = torch.full((num_aes, num_aes, 3), -1, dtype=torch.long)
        acts = list(ACTIVATIONS)
        for i, p in enumerate(self.plan):
            for j, (kind, ks, act) in enumerate(p):
                codes[i, j] = torch.tensor([UPSAMPLE_KINDS.index(kind), ks, acts.index(act)])
        self.register_buffer("plan_codes", codes)

    def __len__(self) -> int:
        return len(self.aes)

    def forward(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """AE_k(x), k in 1..K; (B,3,H,W) -> (B,3,H,W) in [0,1]."""
        return self.aes[k - 1](x)

    def reinit(self, k: int) -> None:
        """Fresh random weights for AE_k (from the global RNG)."""
        for m in self.aes[k - 1].modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                m.reset_parameters()


# ------------------------------------------------------------------------------------------------
# spectrum detector
# ------------------------------------------------------------------------------------------------


class SpectrumDetector(nn.Module):
    """Standardised log-amplitude spectrum (optionally + image) -> backbone; [0,1] images -> (B, 1)."""

    def __init__(self, cfg: FingerprintNetConfig) -> None:
        super().__init__()
        if cfg.input not in ("spectrum", "spectrum+image"):
            raise ValueError(
                f"Unknown FingerprintNet input {cfg.input!r}; choose from ['spectrum', 'spectrum+image']"
            )
        if cfg.standardize not in ("running", "image"):
            raise ValueError(f"Unknown standardize {cfg.standardize!r}; choose from ['running', 'image']")
        self.input, self.standardize, self.momentum = cfg.input, cfg.standardize, cfg.stats_momentum
        net = build_classifier(cfg.backbone, 1, cfg.weights or None)
        self.backbone = net.net if isinstance(net, Normalized) else net  # inputs are standardised here
        if cfg.input == "spectrum+image":
            _widen_first_conv(self.backbone, 6)
        s = cfg.spec_size
        self.register_buffer("spec_mean", torch.zeros(3, s, s))
        self.register_buffer("spec_var", torch.ones(3, s, s))
        self.register_buffer("spec_count", torch.zeros((), dtype=torch.long))
        self.register_buffer("img_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("img_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def _stats(self, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        mean, var = self.spec_mean, self.spec_var
        if mean.shape[-2:] != (h, w):  # smooth maps (DC centred): resample to this image size
            both = F.interpolate(torch.stack([mean, var]), size=(h, w), mode="bilinear", align_corners=False)
            mean, var = both[0], both[1]
        return mean, var

    @torch.no_grad()
    def update_stats(self, x: torch.Tensor) -> None:
        """Running per-coefficient mean/variance of log|FFT2(x)| of real images x (B,3,H,W)."""
        amp = log_amplitude(x)  # (B,3,H,W)
        mean, var = amp.mean(0), amp.var(0, unbiased=False)
        if mean.shape[-2:] != self.spec_mean.shape[-2:]:
            both = F.interpolate(
                torch.stack([mean, var]), size=self.spec_mean.shape[-2:], mode="bilinear", align_corners=False
            )
            mean, var = both[0], both[1]
        m = max(self.momentum, 1.0 / float(self.spec_count + 1))  # cumulative average at first
        self.spec_mean.lerp_(mean, m)
        self.spec_var.lerp_(var, m)
        self.spec_count += 1

    def features_in(self, x: torch.Tensor) -> torch.Tensor:
        """What the backbone sees: (B,3,H,W) standardised spectrum, or (B,6,H,W) with the image."""
        amp = log_amplitude(x)  # (B,3,H,W), DC centred
        if self.standardize == "running":
            mean, var = self._stats(*amp.shape[-2:])
            z = (amp - mean) / torch.sqrt(var.clamp_min(1e-4))
        else:
            z = (amp - amp.mean(dim=(-2, -1), keepdim=True)) / (amp.std(dim=(-2, -1), keepdim=True) + 1e-6)
        if self.input == "spectrum+image":
            z = torch.cat([z, (x.float() - self.img_mean) / self.img_std], dim=1)
        return z.to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.features_in(x))


def _widen_first_conv(net: nn.Module, in_channels: int) -> None:
    """Replace the first Conv2d of ``net`` by one taking ``in_channels`` (weights tiled and rescaled)."""
    found = next(((n, m) for n, m in net.named_modules() if isinstance(m, nn.Conv2d)), None)
    if found is None:
        raise ValueError("backbone has no Conv2d")
    name, conv = found
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        bias=conv.bias is not None,
    )
    with torch.no_grad():
        reps = math.ceil(in_channels / conv.in_channels)
        new.weight.copy_(conv.weight.repeat(1, reps, 1, 1)[:, :in_channels] / reps)
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    parent = net
    *path, last = name.split(".")
    for p in path:
        parent = getattr(parent, p)
    setattr(parent, last, new)


# ------------------------------------------------------------------------------------------------
# method
# ------------------------------------------------------------------------------------------------


PRESETS = {
    "default": {},
    "quick": {"backbone": "resnet18", "weights": "", "spec_size": 64},
    "full": {
        "backbone": "resnet50",
        "weights": "",
        "bank_width": 32,
        "bank_max_width": 128,
        "spec_size": 128,
    },
    "tiny": {
        "backbone": "tiny",
        "weights": "",
        "blur_prob": 0.1,
        "jpeg_prob": 0.1,
        "num_aes": 2,
        "bank_width": 4,
        "bank_max_width": 8,
        "spec_size": 32,
    },
}


@register(
    "fingerprintnet",
    task="detect",
    config=FingerprintNetConfig,
    presets=detector_presets(PRESETS),
    paper=Paper(
        "FingerprintNet: Synthesized Fingerprints for Generated Image Detection",
        "Jeong et al., ECCV 2022",
        "https://www.ecva.net/papers/eccv_2022/papers_ECCV/papers/136740071.pdf",
    ),
    summary="spectrum detector trained on real images only, against fakes from a bank of up-sampling AEs",
)
class FingerprintNet(BinaryDetector):
    """FingerprintNet detector (seed method). Trains on real images only."""

    manual_optimization = True
    train_labels = (0,)

    def __init__(self, config: FingerprintNetConfig) -> None:
        super().__init__(config)
        if config.bank_mode not in ("train", "reinit"):
            raise ValueError(f"Unknown bank_mode {config.bank_mode!r}; choose from ['train', 'reinit']")
        if not 0.0 < config.fake_fraction < 1.0:
            raise ValueError(f"fake_fraction must be in (0, 1), got {config.fake_fraction}")
        self.model = SpectrumDetector(config)
        self.bank = FingerprintBank(
            config.num_aes,
            tuple(config.upsample_types),
            tuple(config.kernel_sizes),
            tuple(config.activations),
            config.bank_width,
            config.bank_max_width,
            config.bank_seed,
        )
        self.bank.requires_grad_(config.bank_mode == "train")
        self.register_buffer("step_count", torch.zeros((), dtype=torch.long))

    def backbone_heads(self) -> dict[str, list[str]]:
        """The spectrum classifier (its network is used without the ``Normalized`` wrapper)."""
        from trustvis.nn.backbones import HEAD_NAMES

        return {"model.backbone": [f"model.backbone.{HEAD_NAMES[self.config.backbone]}"]}

    def configure_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        """``detector``: Adam(W) with the run's lr; ``bank`` (train mode): Adam with ``bank_lr``."""
        opts = {"detector": self.run_optimizer(self.model.parameters(), train)}
        if self.config.bank_mode == "train":
            opts["bank"] = torch.optim.Adam(self.bank.parameters(), lr=self.config.bank_lr)
        return opts

    def synthesize(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Fakes from reals with AE_k: x_f = x + γ·H_σ(AE_k(x) − x) in [0,1]; (B,3,H,W) -> same."""
        return self.blend(x, self.bank(x, k))

    def blend(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x + γ·H_σ(y − x), clamped to [0,1]: y's residual w.r.t. x without its low frequencies."""
        cfg = self.config
        r = y.float() - x.float()  # (B,3,H,W) residual of the autoencoder
        if cfg.match_sigma > 0:  # drop the residual's low frequencies: x_f keeps x's colour/illumination
            h, w = x.shape[-2:]
            hp = gaussian_highpass(h, w, cfg.match_sigma * min(h, w), x.device)
            r = torch.fft.ifft2(torch.fft.fft2(r) * hp).real
        return (x.float() + cfg.gamma * r).clamp(0, 1).to(x.dtype)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        x, labels = batch["image"], batch["label"]
        if (labels != 0).any():
            raise ValueError(
                "FingerprintNet trains on real images only, but the batch holds "
                f"{int((labels != 0).sum())} generated image(s) (label 1). Build the training set with "
                "labels=method.train_labels (= (0,)), e.g. ForenSynthsDataset(root, labels=(0,))."
            )
        cfg = self.config
        b = x.shape[0]
        k = int(torch.randint(1, len(self.bank) + 1, ()))
        n_fake = min(max(1, round(cfg.fake_fraction * b)), b - 1) if b > 1 else 1
        idx = torch.randperm(b)[:n_fake].to(x.device)
        src = x[idx]  # (n_fake,3,H,W) the reals that become fakes
        out: dict[str, torch.Tensor] = {}
        if cfg.bank_mode == "train" and cfg.bank_steps > 0:
            # L1 steps of AE_k on the source images; the last forward (weights before the last step)
            # is reused as AE_k(src), which saves one forward pass per training step
            for _ in range(cfg.bank_steps):
                rec = self.bank(src, k)
                loss_bank = F.l1_loss(rec.float(), src.float())
                self.optimizer_step("bank", loss_bank)
            out["loss_bank"] = loss_bank.detach()
            recon = rec.detach()
        else:
            if cfg.bank_mode == "reinit" and cfg.reinit_every > 0 and int(self.step_count) > 0:
                if int(self.step_count) % cfg.reinit_every == 0:
                    self.bank.reinit(int(torch.randint(1, len(self.bank) + 1, ())))
            with torch.no_grad():
                recon = self.bank(src, k)
        if self.model.standardize == "running":
            self.model.update_stats(x)  # reals only, before any is replaced
        with torch.no_grad():
            fakes = self.blend(src, recon)
        images = x.clone()
        images[idx] = fakes
        target = torch.zeros(b, device=x.device)
        target[idx] = 1.0
        logits = self.logits(images)
        loss = F.binary_cross_entropy_with_logits(logits.float(), target)
        self.optimizer_step("detector", loss)
        self.step_count += 1
        acc = ((logits.detach() > 0).float() == target).float().mean()
        return {"loss": loss.detach(), "acc": acc, **out}
