"""FrePGAN: robust deepfake detection using frequency-level perturbations.

Paper: Jeong, Kim, Ro, Choi. "FrePGAN: Robust Deepfake Detection Using Frequency-Level Perturbations".
AAAI 2022, 36(1):1060-1068. arXiv 2202.03347. No official code (spec §2.2).

A perturbation generator G works in the frequency domain and learns to make generated images look
real to a perturbation discriminator D; the detector C is trained on perturbed images, so the easy
frequency artifacts of the training generator stop being enough and C has to find features that
transfer. G, D and C are updated alternately in every iteration::

    x (B,3,H,W) in [0,1]
      └─► F(x) = FFT2(x) per channel ──► [Re, Im] (B,6,H,W) ──► signed log1p (the raw FFT is huge)
            └─► H: conv encoder (2× stride-2) ─ res-blocks ─ decoder (2× up) ──► z̃ (B,6,H,W)
            └─► G(x) = bound · tanh(Re IFFT2(z̃_re + i·z̃_im))            (B,3,H,W) perturbation map
      └─► A_G(x) = clip(x + G(x), 0, 1) ──► C (ResNet) ──► logits (B,) ──► sigmoid = score

    per iteration (Method.optimizer_step, one step each):
      D:  L_D = BCE(D(x_real), real) + BCE(D(A_G(x_fake)), fake)
      G:  L_G = BCE(D(A_G(x_fake)), real) + λ_mag · mean|G(x)|
      C:  L_C = BCE(C(clip(x + G(x).detach())), y)  over real and fake

Deviations (the paper's losses, schedule and constants are not published in an accessible source;
all are config fields, following the spec's [inferred] proposals):
  * losses as above (``disc_target="real_vs_perturbed"``); the Korean summary's reading, "D separates
    G(x)-perturbed images from the originals", is ``disc_target="perturbed_vs_original"``;
  * one step of D, then G, then C per batch; Adam 2e-4 (β1 0.5) for G and D, the run's optimiser
    settings (CNNDetection's Adam) for C;
  * H is a small ResNet-style encoder-decoder (2 down, ``gen_blocks`` res-blocks, 2 up, instance
    norm); the spectrum enters as signed ``log1p`` of the orthonormal FFT;
  * the perturbation is bounded by ``bound · tanh`` (0.1 by default) besides the L1 magnitude term, and
    H's last layer starts at zero, so G starts as the identity ("early on G's perturbations are weak");
  * G is applied at test time by default (``perturb_at_test``), following the "ignore artifacts"
    intent; set it false to test C on clean images;
  * budgets are steps, not epochs; the quick preset is a ResNet-18 from random initialisation with a
    narrower G (width 16, one res-block) and D (width 16), so that it trains in about twice CNNDetection's
    time on a 2-core CPU (G at width 32 costs ~3 ResNet-18 forwards at 64 px and runs three times a step).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from trustvis.config import TrainConfig
from trustvis.methods.base import Batch
from trustvis.methods.detect.base import BinaryDetector, DetectorConfig, detector_presets
from trustvis.nn.backbones import build_classifier
from trustvis.registry import Paper, register

DISC_TARGETS = ("real_vs_perturbed", "perturbed_vs_original")


@dataclass
class FrePGANConfig(DetectorConfig):
    """FrePGAN = the shared detector fields + the perturbation GAN."""

    gen_width: int = 32  # channels of H's first stage (doubled at each down-sampling)
    gen_blocks: int = 2  # residual blocks at H's bottleneck
    disc_width: int = 32  # channels of D's first conv
    bound: float = 0.1  # |G(x)| <= bound (tanh), in [0,1] pixel units
    lambda_mag: float = 1.0  # weight of mean|G(x)| in L_G
    gen_lr: float = 2e-4
    disc_lr: float = 2e-4
    gan_betas: tuple[float, float] = (0.5, 0.999)
    disc_target: str = "real_vs_perturbed"  # real_vs_perturbed | perturbed_vs_original
    perturb_at_test: bool = True

    def __post_init__(self) -> None:
        if self.disc_target not in DISC_TARGETS:
            raise ValueError(f"Unknown disc_target {self.disc_target!r}; choose from {list(DISC_TARGETS)}")
        if self.bound <= 0:
            raise ValueError(f"bound must be > 0, got {self.bound}")


class _ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1, padding_mode="reflect"), nn.InstanceNorm2d(ch, affine=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(ch, ch, 3, padding=1, padding_mode="reflect"), nn.InstanceNorm2d(ch, affine=True),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class FrequencyPerturbationGenerator(nn.Module):
    """``G(x) = bound · tanh(Re F⁻¹(H(F(x))))``: (B,C,H,W) images -> (B,C,H,W) perturbation maps.

    H and W must be divisible by 4 (two stride-2 stages).
    """

    def __init__(self, channels: int = 3, width: int = 32, blocks: int = 2, bound: float = 0.1) -> None:
        super().__init__()
        c2, w = 2 * channels, width
        self.bound = bound

        def down(i: int, o: int) -> list[nn.Module]:
            return [nn.Conv2d(i, o, 4, stride=2, padding=1), nn.InstanceNorm2d(o, affine=True), nn.ReLU(True)]

        def up(i: int, o: int) -> list[nn.Module]:
            return [nn.ConvTranspose2d(i, o, 4, stride=2, padding=1), nn.InstanceNorm2d(o, affine=True),
                    nn.ReLU(True)]  # fmt: skip

        self.net = nn.Sequential(
            nn.Conv2d(c2, w, 3, padding=1), nn.ReLU(True),
            *down(w, 2 * w), *down(2 * w, 4 * w),
            *[_ResBlock(4 * w) for _ in range(blocks)],
            *up(4 * w, 2 * w), *up(2 * w, w),
            nn.Conv2d(w, c2, 3, padding=1),
        )  # fmt: skip
        nn.init.zeros_(self.net[-1].weight)  # G starts as "no perturbation"
        nn.init.zeros_(self.net[-1].bias)

    @staticmethod
    def spectrum_channels(x: torch.Tensor) -> torch.Tensor:
        """(B,C,H,W) -> (B,2C,H,W): signed log1p of the real and imaginary parts of FFT2(x)."""
        spec = torch.fft.fft2(x.float(), norm="ortho")
        z = torch.cat([spec.real, spec.imag], dim=1)
        return torch.sign(z) * torch.log1p(z.abs())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % 4 or w % 4:
            raise ValueError(f"FrePGAN's generator needs image sides divisible by 4, got {h}x{w}")
        z = self.net(self.spectrum_channels(x)).float()  # (B,2C,H,W)
        c = x.shape[1]
        pert = torch.fft.ifft2(torch.complex(z[:, :c], z[:, c:]), norm="ortho").real
        return (self.bound * torch.tanh(pert)).to(x.dtype)


class PerturbationDiscriminator(nn.Module):
    """PatchGAN-style discriminator: (B,3,H,W) -> (B,) logits of "real" (mean over patches)."""

    def __init__(self, channels: int = 3, width: int = 32) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(channels, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), nn.InstanceNorm2d(2 * w, affine=True),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * w, 4 * w, 4, stride=2, padding=1), nn.InstanceNorm2d(4 * w, affine=True),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(4 * w, 1, 3, padding=1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1).mean(1)


def _masked_bce(logits: torch.Tensor, value: float, weight: torch.Tensor) -> torch.Tensor:
    """Mean BCE towards the constant ``value`` over the images with weight 1 (0 if there are none)."""
    per = F.binary_cross_entropy_with_logits(
        logits.float(), torch.full_like(logits.float(), value), reduction="none"
    )
    return (per * weight).sum() / weight.sum().clamp_min(1)


PRESETS = {
    "default": {},
    # 2-core CPU budget: G at width 32 costs ~3x a ResNet-18 forward at 64 px and runs 3x per step
    "quick": {"backbone": "resnet18", "weights": "", "gen_width": 16, "gen_blocks": 1, "disc_width": 16},
    "full": {"backbone": "resnet50", "weights": ""},
    "tiny": {"backbone": "tiny", "weights": "", "gen_width": 4, "gen_blocks": 1, "disc_width": 4,
             "blur_prob": 0.1, "jpeg_prob": 0.1},
}  # fmt: skip


@register(
    "frepgan",
    task="detect",
    config=FrePGANConfig,
    presets=detector_presets(PRESETS),
    paper=Paper(
        "FrePGAN: Robust Deepfake Detection Using Frequency-Level Perturbations",
        "Jeong et al., AAAI 2022",
        "https://arxiv.org/abs/2202.03347",
    ),
    summary="detector trained on images perturbed by a frequency-level perturbation GAN (seed method)",
    seed_method=True,
)
class FrePGAN(BinaryDetector):
    """FrePGAN (seed method): G, D and the detector C (``self.model``) trained alternately."""

    manual_optimization = True

    def __init__(self, config: FrePGANConfig) -> None:
        super().__init__(config)
        self.model = build_classifier(config.backbone, 1, config.weights or None)  # the detector C
        self.gen = FrequencyPerturbationGenerator(3, config.gen_width, config.gen_blocks, config.bound)
        self.disc = PerturbationDiscriminator(3, config.disc_width)

    def configure_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        cfg = self.config
        return {
            "disc": torch.optim.Adam(self.disc.parameters(), lr=cfg.disc_lr, betas=tuple(cfg.gan_betas)),
            "gen": torch.optim.Adam(self.gen.parameters(), lr=cfg.gen_lr, betas=tuple(cfg.gan_betas)),
            "detector": self.run_optimizer(self.model.parameters(), train),
        }

    def perturb(self, images: torch.Tensor) -> torch.Tensor:
        """``A_G(x) = clip(x + G(x), 0, 1)``."""
        return (images + self.gen(images)).clamp(0, 1)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        x = self.perturb(images) if self.config.perturb_at_test else images
        return self.model(x).squeeze(-1)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        x, y = batch["image"], batch["label"].float()
        is_fake, is_real = y, 1.0 - y
        cfg = self.config
        # Every process takes all three steps every iteration (gradients are averaged across processes
        # under torchrun), so losses are masked means over the batch instead of sub-batches that could be
        # empty on one process.

        # G(x) once: D's step does not change G, so the same perturbation serves D (detached) and G
        pert = self.gen(x)

        # 1) discriminator: real images (or the originals) vs perturbed fakes
        x_pert = (x + pert.detach()).clamp(0, 1)
        pos_w = is_fake if cfg.disc_target == "perturbed_vs_original" else is_real
        loss_d = _masked_bce(self.disc(x), 1.0, pos_w) + _masked_bce(self.disc(x_pert), 0.0, is_fake)
        self.optimizer_step("disc", loss_d)

        # 2) generator: perturbed fakes should look real to D (after its step), with a small perturbation
        mag = (pert.abs().flatten(1).mean(1) * is_fake).sum() / is_fake.sum().clamp_min(1)
        loss_g = _masked_bce(self.disc((x + pert).clamp(0, 1)), 1.0, is_fake) + cfg.lambda_mag * mag
        self.optimizer_step("gen", loss_g)

        # 3) detector C on A_G(x) of real and fake images, G frozen
        with torch.no_grad():
            x_in = self.perturb(x)
        logits = self.model(x_in).squeeze(-1)
        loss_c = F.binary_cross_entropy_with_logits(logits.float(), y)
        self.optimizer_step("detector", loss_c)
        return {
            "loss": loss_c.detach(),
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "pert_l1": pert.detach().abs().mean(),
            "acc": ((logits.detach() > 0).float() == y).float().mean(),
        }
