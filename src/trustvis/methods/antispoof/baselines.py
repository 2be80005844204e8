"""Anti-spoofing baselines people train today, next to mToFNet, on the same encoder and data.

rgbcnn      RGB-only CNN: the detector one trains on recaptured photos (it can learn the moiré of the
            training screens, and nothing tells it about screens it has not seen)
silentface  RGB CNN + Fourier-spectrum auxiliary supervision: the recipe of Silent-Face-Anti-Spoofing
            (minivision-ai; MiniFASNet + "FTGenerator"): a second head regresses the log-magnitude
            spectrum of the input from the backbone's feature map; loss = 0.5 * BCE + 0.5 * MSE
depthcnn    depth-only CNN: how much the ToF map alone explains ("the depth is flat")
rgbdcnn     early-fusion RGB-D CNN: RGB and depth stacked as 4 input channels

Shapes (S = image_size, w = width)::

    rgbcnn     image (B,3,S,S)            ──► ConvEncoder ──► (B,D) ──► MLP ──► logits (B,)
    depthcnn   depth (B,1,S,S)            ──► ConvEncoder ──► (B,D) ──► MLP ──► logits (B,)
    rgbdcnn    [image; depth] (B,4,S,S)   ──► ConvEncoder ──► (B,D) ──► MLP ──► logits (B,)
    silentface image ──► ConvEncoder.features (B,8w,S/16,S/16) ─┬─► embed ──► MLP ──► logits (B,)
                                                               └─► FT head ──► (B,1,F,F) vs spectrum(image)

Deviations:
  * Silent-Face uses MiniFASNet on 80x80 faces with a 10x10 spectrum target; here every baseline shares the
    family's small encoder (:class:`~trustvis.methods.antispoof.base.ConvEncoder`) so that the comparison
    measures inputs and objectives, and the spectrum target is ``ft_size`` x ``ft_size`` (default 16):
    ``log(1 + |FFT(gray)|)``, shifted, area-resized, min-max normalised per image — the official recipe's
    target without its OpenCV resize. Its FT head: two conv3x3 + BN + ReLU layers on the feature map,
    bilinearly up-sampled to ``ft_size`` (the official head is 3 convs at 5x5).
  * The loss weights follow the official train script (0.5 / 0.5), exposed as ``cls_weight`` / ``ft_weight``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from trustvis.methods.antispoof.base import (
    AntispoofConfig,
    AntispoofMethod,
    ConvEncoder,
    antispoof_presets,
    mlp_head,
)
from trustvis.methods.base import Batch
from trustvis.registry import Paper, register

PRESETS = {"default": {}, "tiny": {"image_size": 32, "width": 8, "embed_dim": 16}}


class _SingleEncoder(AntispoofMethod):
    """An encoder on one input (RGB, depth or both stacked) and an MLP head."""

    in_channels = 3

    def __init__(self, config: AntispoofConfig) -> None:
        super().__init__(config)
        self.encoder = ConvEncoder(self.in_channels, config.width, config.embed_dim)
        self.head = mlp_head(config.embed_dim, config.embed_dim, config.dropout)

    def inputs_of(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return image

    def logits(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.inputs_of(image, depth))).squeeze(-1)


@register(
    "rgbcnn",
    task="antispoof",
    config=AntispoofConfig,
    presets=antispoof_presets(PRESETS),
    paper=Paper(
        "RGB-only CNN, the baseline mToFNet is measured against",
        "Jeong et al., WACV 2022 (baseline)",
        "https://arxiv.org/abs/2110.04066",
    ),  # fmt: skip
    summary="RGB-only CNN recapture detector (baseline)",
    seed_method=False,
)
class RGBCNN(_SingleEncoder):
    """RGB only: what people train on recaptured photos."""


@register(
    "depthcnn",
    task="antispoof",
    config=AntispoofConfig,
    presets=antispoof_presets(PRESETS),
    paper=Paper(
        "Depth-only CNN: how much 'the depth is flat' explains",
        "Jeong et al., WACV 2022 (baseline)",
        "https://arxiv.org/abs/2110.04066",
    ),  # fmt: skip
    summary="depth-only CNN (baseline)",
    seed_method=False,
)
class DepthCNN(_SingleEncoder):
    """The ToF map only."""

    in_channels = 1

    def inputs_of(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return depth


@register(
    "rgbdcnn",
    task="antispoof",
    config=AntispoofConfig,
    presets=antispoof_presets(PRESETS),
    paper=Paper(
        "Early-fusion RGB-D CNN", "Jeong et al., WACV 2022 (baseline)", "https://arxiv.org/abs/2110.04066"
    ),
    summary="early-fusion RGB-D CNN: RGB and depth as 4 input channels (baseline)",
    seed_method=False,
)
class RGBDCNN(_SingleEncoder):
    """RGB and depth stacked at the input."""

    in_channels = 4

    def inputs_of(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return torch.cat([image, depth], dim=1)  # (B,4,S,S)


@dataclass
class SilentFaceConfig(AntispoofConfig):
    """RGB CNN with the Fourier-spectrum auxiliary head of Silent-Face-Anti-Spoofing."""

    ft_size: int = 16  # side of the spectrum target
    cls_weight: float = 0.5
    ft_weight: float = 0.5


def fourier_target(image: torch.Tensor, size: int) -> torch.Tensor:
    """(B,3,H,W) in [0,1] -> (B,1,size,size): log(1 + |FFT(gray)|), DC at the centre, area-resized and
    min-max normalised per image (Silent-Face's spectrum target)."""
    gray = image.float().mean(dim=1)  # (B,H,W)
    mag = torch.fft.fftshift(torch.fft.fft2(gray).abs(), dim=(-2, -1))
    spec = torch.log1p(mag)[:, None]  # (B,1,H,W)
    spec = F.adaptive_avg_pool2d(spec, size)
    lo = spec.amin(dim=(-2, -1), keepdim=True)
    hi = spec.amax(dim=(-2, -1), keepdim=True)
    return (spec - lo) / (hi - lo).clamp_min(1e-6)


@register(
    "silentface",
    task="antispoof",
    config=SilentFaceConfig,
    presets=antispoof_presets(PRESETS),
    paper=Paper(
        "Silent-Face-Anti-Spoofing: MiniFASNet with Fourier-spectrum supervision",
        "minivision-ai, 2020",
        "https://github.com/minivision-ai/Silent-Face-Anti-Spoofing",
    ),  # fmt: skip
    summary="RGB CNN + Fourier-spectrum auxiliary loss, the Silent-Face recipe (baseline)",
    seed_method=False,
)
class SilentFace(AntispoofMethod):
    """RGB classifier whose features must also predict the input's spectrum."""

    config: SilentFaceConfig

    def __init__(self, config: SilentFaceConfig) -> None:
        super().__init__(config)
        self.encoder = ConvEncoder(3, config.width, config.embed_dim)
        self.head = mlp_head(config.embed_dim, config.embed_dim, config.dropout)
        c = self.encoder.out_channels
        self.ft_head = nn.Sequential(
            nn.Conv2d(c, c // 2, 3, padding=1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(inplace=True),
            nn.Conv2d(c // 2, 1, 3, padding=1),
        )  # fmt: skip

    def logits(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(image)).squeeze(-1)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        cfg = self.config
        image = batch["image"]
        fmap = self.encoder.features(image)  # (B,8w,S/16,S/16)
        out = self.bce(self.head(self.encoder.embed(fmap)).squeeze(-1), batch)
        ft = F.interpolate(self.ft_head(fmap), size=cfg.ft_size, mode="bilinear", align_corners=False)
        loss_ft = F.mse_loss(ft, fourier_target(image, cfg.ft_size))
        out["loss"] = cfg.cls_weight * out["loss"] + cfg.ft_weight * loss_ft
        out["loss_ft"] = loss_ft.detach()
        return out
