"""FYD: coarse-to-fine non-contrastive alignment of normal images, scored PaDiM-style (seed method).

Paper: Zheng, Wang, Deng, Bao, Zhao, Wu. "Focus Your Distribution: Coarse-to-Fine Non-Contrastive
Learning for Anomaly Detection and Localization". ICME 2022. arXiv 2110.04538. No official code exists;
spec ``shared/specs/anomaly.md`` §1 reconstructs it, with RegAD (ECCV 2022) as the closest public analogue.

    image x (B,3,S,S) ──► ICA: STN_0 warps the image (θ_0) ──► frozen ImageNet backbone, and after each
        tap k an FCA STN_k warps the stage output (θ_k) before the next stage runs
      ──► aligned taps ──► embedding e (B,ΣC,h,w) on the finest tap's grid
    train (normal images only; pairs b = a random permutation of the batch):
        L_FA  = −½ mean_ij cos(q(g(e_a)), sg(g(e_b))) − ½ mean_ij cos(q(g(e_b)), sg(g(e_a)))   (SimSiam, dense)
        L_ICA = mean_ij ‖h(x_a ∘ θ_0a) − h(x_b ∘ θ_0b)‖₂    h = the finest tap of the aligned image
        L = L_FA + λ·L_ICA         (the STNs, projector g and predictor q train; the backbone is frozen)
    score: every aligned tap is warped back to the input frame (inverse of the composed θ's, as RegAD),
        then PaDiM exactly (:class:`~trustvis.methods.anomaly.padim.PadimScorer`): μ, Σ + εI per position,
        Mahalanobis, bilinear up-sampling, Gaussian σ = 4, score = max.

Deviations / documented choices (unpublished in FYD; config fields):
  * backbone MobileNetV2 with the offline ImageNet weights, taps 1-3 (strides 4/8/16), frozen;
  * STNs predict a bounded rigid-plus-scale transform (``stn_mode``: ``rotation_translation`` default,
    ``rotation_translation_scale``, ``translation``, ``rotation`` or a free ``affine``); the last layer is
    zero-initialised so every STN starts at the identity; translation ≤ ``max_shift``, scale within
    [1/max_scale, max_scale]. Bounds keep the warps from collapsing onto a featureless region, which a
    free affine STN can do to maximise similarity;
  * FCA localisation nets are RegAD's (conv3×3-BN-ReLU-maxpool ×2, FC-ReLU-FC) with an adaptive 4×4
    pool and a 128-wide hidden layer so that one net serves any input size (RegAD: 1024, fixed size);
  * fine alignment runs on the concatenated embedding (one projector for all taps); L_ICA's h is the
    finest tap of the ICA-warped image; λ = 1; Adam lr 1e-3 for a few hundred steps (RegAD: SGD 1e-4,
    50 epochs — sized for a GPU); PaDiM's random channel subset (100) is drawn as in ``padim``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from trustvis.methods.anomaly.padim import AnomalyMethod, embed
from trustvis.methods.base import Batch
from trustvis.registry import Paper, Preset, register

STN_MODES = {
    "affine": 6,
    "rotation": 1,
    "translation": 2,
    "rotation_translation": 3,
    "rotation_translation_scale": 4,
}


def params_to_theta(p: torch.Tensor, mode: str, max_shift: float, max_scale: float) -> torch.Tensor:
    """STN outputs (B,n) -> affine matrices θ (B,2,3); all-zero outputs give the identity."""
    b = p.shape[0]
    if mode == "affine":
        eye = torch.tensor([1.0, 0, 0, 0, 1, 0], device=p.device, dtype=p.dtype)
        return (eye + p).view(b, 2, 3)
    angle = p[:, 0] * math.pi if "rotation" in mode else p.new_zeros(b)
    if mode == "rotation":
        t = p.new_zeros(b, 2)
    else:
        t = max_shift * torch.tanh(p[:, -2:] if mode != "rotation_translation_scale" else p[:, 1:3])
    scale = max_scale ** torch.tanh(p[:, 3]) if mode == "rotation_translation_scale" else p.new_ones(b)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    return torch.stack([torch.stack([cos, -sin, t[:, 0]], 1), torch.stack([sin, cos, t[:, 1]], 1)], 1)


def warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Sample ``x`` (B,C,H,W) at θ·p for every output point p (reflection padding), as an STN does."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def compose(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """θ of "warp by a, then warp the result by b" = A·B in homogeneous form: (B,2,3) x2 -> (B,2,3)."""
    row = a.new_tensor([0.0, 0.0, 1.0]).expand(a.shape[0], 1, 3)
    return (torch.cat([a, row], 1) @ torch.cat([b, row], 1))[:, :2]


def invert(theta: torch.Tensor) -> torch.Tensor:
    """Inverse affine map (B,2,3) -> (B,2,3): [A | t]⁻¹ = [A⁻¹ | −A⁻¹t], A⁻¹ by the 2×2 adjugate (closed form,
    so that the ONNX exporter, which has no matrix inverse, can export it)."""
    a, b, c, d = theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1]
    inv_a = (
        torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], 1) / (a * d - b * c)[:, None, None]
    )
    return torch.cat([inv_a, -(inv_a @ theta[:, :, 2:])], 2)


class STN(nn.Module):
    """Localisation net -> bounded transform parameters -> θ; zero-initialised last layer = identity."""

    def __init__(
        self, channels: int, mode: str, max_shift: float, max_scale: float, hidden: int = 128
    ) -> None:
        super().__init__()
        if mode not in STN_MODES:
            raise ValueError(f"Unknown stn_mode {mode!r}; choose from {list(STN_MODES)}")
        self.mode, self.max_shift, self.max_scale = mode, max_shift, max_scale
        self.loc = nn.Sequential(
            nn.Conv2d(channels, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(64, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(16 * 16, hidden), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.fc = nn.Linear(hidden, STN_MODES[mode])
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def theta(self, x: torch.Tensor) -> torch.Tensor:  # (B,C,H,W) -> (B,2,3)
        return params_to_theta(self.fc(self.loc(x)), self.mode, self.max_shift, self.max_scale)


def fine_alignment_loss(
    p_a: torch.Tensor, z_a: torch.Tensor, p_b: torch.Tensor, z_b: torch.Tensor
) -> torch.Tensor:
    """Dense symmetric SimSiam loss over corresponding locations: (B,D,h,w) x4 -> scalar in [−1, 1].

    The targets ``z`` are detached (stop-gradient): no gradient reaches them through this loss.
    """
    cos_ab = F.cosine_similarity(p_a, z_b.detach(), dim=1)  # (B,h,w)
    cos_ba = F.cosine_similarity(p_b, z_a.detach(), dim=1)
    return -0.5 * cos_ab.mean() - 0.5 * cos_ba.mean()


def _projector(c_in: int, dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, dim, 1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(inplace=True),
        nn.Conv2d(dim, dim, 1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(inplace=True),
        nn.Conv2d(dim, dim, 1, bias=False), nn.BatchNorm2d(dim),
    )  # fmt: skip


def _predictor(dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(dim, hidden, 1, bias=False),
        nn.BatchNorm2d(hidden),
        nn.ReLU(inplace=True),
        nn.Conv2d(hidden, dim, 1),
    )


@dataclass
class FYDConfig:
    """FYD's settings; see the module docstring for which are FYD's, RegAD's or ours."""

    backbone: str = "mobilenet_v2"
    weights: str = "imagenet"
    layers: list[int] = field(default_factory=lambda: [1, 2, 3])
    n_features: int = 100  # PaDiM's random channel subset at scoring time; 0 = all
    image_size: int = 128
    eps: float = 0.01
    sigma: float = 4.0
    seed: int = 0
    stn_mode: str = (
        "rotation_translation"  # affine | rotation | translation | rotation_translation | ..._scale
    )
    max_shift: float = 0.25  # |translation| bound, in units of half the image side (affine_grid coordinates)
    max_scale: float = 1.25  # scale within [1/max_scale, max_scale] (rotation_translation_scale)
    image_stn: bool = True  # ICA
    feature_stn: bool = True  # FCA
    proj_dim: int = 128
    pred_dim: int = 64
    lambda_ica: float = 1.0


@register(
    "fyd",
    task="anomaly",
    config=FYDConfig,
    presets={
        "default": Preset(
            train={"steps": 600, "batch_size": 16, "lr": 1e-3, "schedule": "cosine"},
            data={"name": "elpv-mono"},
        ),
        "quick": Preset(
            train={"steps": 200, "batch_size": 16, "lr": 1e-3, "schedule": "cosine"},
            data={"name": "elpv-mono"},
        ),
        "tiny": Preset(
            model={
                "backbone": "tiny",
                "weights": "",
                "layers": [0, 1, 2],
                "n_features": 16,
                "image_size": 32,
                "proj_dim": 16,
                "pred_dim": 8,
            },
            train={"steps": 2, "batch_size": 4, "lr": 1e-3},
        ),
    },  # fmt: skip
    paper=Paper(
        "Focus Your Distribution: Coarse-to-Fine Non-Contrastive Learning for Anomaly Detection and Localization",
        "Zheng et al., ICME 2022",
        "https://arxiv.org/abs/2110.04538",
    ),
    summary="Image- and feature-level STN alignment trained by dense non-contrastive learning; PaDiM scoring",
)
class FYD(AnomalyMethod):
    """Trains the STNs and the SimSiam heads on normal images, then fits PaDiM statistics on aligned features."""

    fits_statistics: ClassVar[bool] = True
    config: FYDConfig

    def __init__(self, config: FYDConfig) -> None:
        if config.stn_mode not in STN_MODES:
            raise ValueError(f"Unknown stn_mode {config.stn_mode!r}; choose from {list(STN_MODES)}")
        super().__init__(config)  # backbone, channel subset, scorer, threshold
        cfg = config
        stn = lambda c: STN(c, cfg.stn_mode, cfg.max_shift, cfg.max_scale)  # noqa: E731
        self.image_stn = stn(3) if cfg.image_stn else None
        self.feature_stns = nn.ModuleDict(
            {str(i): stn(c) for i, c in zip(self.backbone.out_indices, self.backbone.channels)}
            if cfg.feature_stn
            else {}
        )
        total = sum(self.backbone.channels)
        self.projector = _projector(total, cfg.proj_dim)
        self.predictor = _predictor(cfg.proj_dim, cfg.pred_dim)

    def aligned(self, images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """Aligned taps [(B,C_k,h_k,w_k)], their cumulative θ's [(B,2,3)] and the ICA-warped image."""
        x = self._resize(images)
        b = x.shape[0]
        cum = torch.eye(2, 3, device=x.device, dtype=x.dtype).expand(b, 2, 3)
        if self.image_stn is not None:
            cum = self.image_stn.theta(x)
            x = warp(x, cum)
        thetas: dict[int, torch.Tensor] = {}

        def fca(i: int):
            def hook(f: torch.Tensor) -> torch.Tensor:
                nonlocal cum
                t = self.feature_stns[str(i)].theta(f)
                cum = compose(cum, t)
                thetas[i] = cum
                return warp(f, t)

            return hook

        hooks = {i: fca(i) for i in self.backbone.out_indices} if len(self.feature_stns) else None
        taps = self.backbone(x, after=hooks)
        cums = [thetas.get(i, cum) for i in self.backbone.out_indices]
        return taps, cums, x

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        taps, _, x = self.aligned(batch["image"])
        e = embed(taps)  # (B,ΣC,h,w)
        perm = torch.randperm(e.shape[0], device=e.device)
        z = self.projector(e)
        p = self.predictor(z)
        loss_fa = fine_alignment_loss(p, z, p[perm], z[perm])
        loss = loss_fa
        out = {"loss_fa": loss_fa.detach()}
        if self.image_stn is not None and self.config.lambda_ica > 0:
            h = taps[0]  # the finest tap of the ICA-warped image
            loss_ica = (h - h[perm]).norm(dim=1).mean()
            loss = loss + self.config.lambda_ica * loss_ica
            out["loss_ica"] = loss_ica.detach()
        return {"loss": loss, **out}

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Aligned taps warped back to the input frame, embedded: (B,3,H,W) -> (B,d,h,w)."""
        taps, cums, _ = self.aligned(images)
        back = [
            warp(t, invert(c)) if self.image_stn is not None or len(self.feature_stns) else t
            for t, c in zip(taps, cums)
        ]
        return embed(back)[:, self.channels]
