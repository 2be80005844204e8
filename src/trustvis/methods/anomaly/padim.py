"""PaDiM: a per-position Gaussian of pretrained features, scored by Mahalanobis distance (baseline).

Paper: Defard, Setkov, Loesch, Audigier. "PaDiM: a Patch Distribution Modeling Framework for Anomaly
Detection and Localization". ICPR 2020 workshops. arXiv 2011.08785. Spec: ``shared/specs/anomaly.md`` §2
(anomalib's and RegAD's implementations are the reference for the constants).

    image (B,3,S,S) in [0,1] ──► ImageNet backbone, taps (default 3) ──► maps resized (nearest) to the
        first tap's grid and concatenated ──► random channel subset (d) ──► f (B,d,h,w)
    fit:      μ_ij = mean_n f_nij,   Σ_ij = cov_n(f_nij) + ε·I,   P_ij = Σ_ij⁻¹          (one pass, float64)
    predict:  M_ij = sqrt((f_ij − μ_ij)ᵀ P_ij (f_ij − μ_ij)) ──► bilinear to S×S ──► Gaussian σ=4
              anomaly_map (B,S,S), score (B,) = max of the map

Choices / deviations: the backbone is MobileNetV2 with the ImageNet weights that ship in pip (anomalib's
default ResNet-18 has no offline weights; ``backbone=resnet18, weights=/path`` works), taps 1-3 (strides
4, 8, 16, the analogue of ResNet layer1-3), 100 random channels as anomalib for ResNet-18, ε = 0.01,
σ = 4 px at the input size (RegAD); the statistics are fitted at ``image_size`` (buffers shaped by it).
:class:`PadimScorer` is the pure statistics part that FYD reuses on its aligned features.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trustvis.data import transforms as T
from trustvis.methods.base import Batch, Method, NotExportable
from trustvis.nn.backbones import BACKBONES, build_backbone
from trustvis.registry import Paper, Preset, register


def embed(maps: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate feature maps on the first (finest) map's grid: [(B,C_i,h_i,w_i)] -> (B,ΣC_i,h,w)."""
    h, w = maps[0].shape[-2:]
    return torch.cat(
        [m if m.shape[-2:] == (h, w) else F.interpolate(m, size=(h, w), mode="nearest") for m in maps], 1
    )


def gaussian_smooth(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B,H,W) -> (B,H,W) smoothed with a Gaussian of ``sigma`` px (kernel ±4σ, reflect padding)."""
    if sigma <= 0:
        return maps
    radius = int(4 * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=maps.dtype, device=maps.device)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = k / k.sum()
    out = maps[:, None]
    pad = min(radius, maps.shape[-1] - 1, maps.shape[-2] - 1)
    k = k[radius - pad : radius + pad + 1]
    out = F.conv2d(F.pad(out, (pad, pad, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    out = F.conv2d(F.pad(out, (0, 0, pad, pad), mode="reflect"), k.view(1, 1, -1, 1))
    return out[:, 0]


class PadimScorer(nn.Module):
    """Per-position Gaussian statistics of (B,d,h,w) embeddings and their Mahalanobis anomaly maps."""

    def __init__(self, dim: int, height: int, width: int, eps: float = 0.01) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(height * width, dim))  # (hw, d)
        self.register_buffer("precision", torch.zeros(height * width, dim, dim))  # (hw, d, d)
        self.register_buffer("n_fit", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def fit(self, embeddings: Iterable[torch.Tensor]) -> int:
        """One pass over (B,d,h,w) batches: running sums in float64, then μ and (Σ + εI)⁻¹; returns N."""
        n, s1, s2 = 0, None, None
        for e in embeddings:
            f = e.flatten(2).permute(2, 0, 1).double()  # (hw, B, d)
            s1 = f.sum(1) if s1 is None else s1 + f.sum(1)
            outer = torch.einsum("pbi,pbj->pij", f, f)
            s2 = outer if s2 is None else s2 + outer
            n += e.shape[0]
        if n < 2:
            raise ValueError(f"PaDiM needs at least 2 training images, got {n}")
        mu = s1 / n  # (hw, d)
        cov = (s2 - n * torch.einsum("pi,pj->pij", mu, mu)) / (n - 1)
        cov += self.eps * torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
        self.mean.copy_(mu.float())
        self.precision.copy_(torch.linalg.inv(cov).float())
        self.n_fit.fill_(n)
        return n

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        """(B,d,h,w) -> Mahalanobis distance (B,h,w)."""
        if int(self.n_fit) == 0:
            raise RuntimeError("the Gaussian statistics are not fitted yet (train the method first)")
        return self.distance(emb)

    def distance(self, emb: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` without the check that the statistics are fitted (an exported graph's)."""
        b, d, h, w = emb.shape
        diff = emb.flatten(2).permute(2, 0, 1).float() - self.mean[:, None]  # (hw, B, d)
        m = torch.einsum("pbi,pij,pbj->pb", diff, self.precision, diff).clamp_min(0).sqrt()  # (hw, B)
        return m.T.reshape(b, h, w)


@dataclass
class PadimConfig:
    """PaDiM's settings (anomalib's defaults where they exist)."""

    backbone: str = "mobilenet_v2"
    weights: str = "imagenet"  # offline (pip); "" = random init
    layers: list[int] = field(default_factory=lambda: [1, 2, 3])  # backbone taps (see nn/backbones.py)
    n_features: int = 100  # random channel subset; 0 = all channels
    image_size: int = 128  # images are resized to this square size; the statistics are fitted at it
    eps: float = 0.01  # Σ + εI
    sigma: float = 4.0  # Gaussian smoothing of the map, px at image_size
    seed: int = 0  # the random channel subset


class AnomalyMethod(Method):
    """What PaDiM and FYD share: a frozen ImageNet backbone, the random channel subset, the Gaussian scorer,
    the resize to ``image_size``, ``fit`` (statistics of the normal training images) and ``predict``.
    A subclass defines :meth:`features` (B,3,H,W) -> (B,d,h,w)."""

    config: Any

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        if config.backbone not in BACKBONES:
            raise ValueError(f"Unknown backbone {config.backbone!r}; choose from {list(BACKBONES)}")
        self.backbone = build_backbone(
            config.backbone, config.weights or None, config.layers, config.image_size
        )
        self.backbone.requires_grad_(False)
        total = sum(self.backbone.channels)
        d = config.n_features or total
        if not 0 < d <= total:
            raise ValueError(f"n_features must be in 1..{total} (the taps' channels) or 0 for all, got {d}")
        g = torch.Generator().manual_seed(config.seed)
        self.register_buffer("channels", torch.randperm(total, generator=g)[:d].sort().values)
        grid = config.image_size // self.backbone.reductions[0]
        self.scorer = PadimScorer(d, grid, grid, config.eps)
        #: image-score threshold set from normal validation images after training (nan until then)
        self.register_buffer("threshold", torch.tensor(float("nan")))

    def train(self, mode: bool = True) -> AnomalyMethod:
        super().train(mode)
        self.backbone.eval()  # frozen: BatchNorm statistics are ImageNet's
        return self

    def make_transform(self, train: bool) -> Callable[[np.ndarray], torch.Tensor]:
        return T.to_tensor

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) in [0,1] -> embeddings (B,d,h,w) that the Gaussian scorer models."""
        raise NotImplementedError

    def fit(self, loader: Iterable[Batch]) -> dict[str, Any]:
        """Gaussian statistics of the training set (normal images only; labels are ignored)."""
        dev = self.device
        return {"n_images": self.scorer.fit(self.features(b["image"].to(dev)) for b in loader)}

    @torch.no_grad()
    def predict(self, batch: Batch) -> dict[str, torch.Tensor]:
        images = batch["image"]
        return self._finish(self.scorer(self.features(images)), tuple(images.shape[-2:]))

    def export_module(self) -> nn.Module:
        """:meth:`predict` as a graph (``trustvis export``): whether the statistics are fitted is checked here,
        once, because ``torch.export`` cannot branch on the value of the ``n_fit`` buffer."""
        if int(self.scorer.n_fit) == 0:
            raise NotExportable(
                f"{self.method_name} cannot be exported: its Gaussian statistics are not fitted (train the run first)"
            )
        return _AnomalyGraph(self)

    def _resize(self, images: torch.Tensor) -> torch.Tensor:  # (B,3,H,W) -> (B,3,S,S)
        s = self.config.image_size
        if images.shape[-2:] != (s, s):
            images = F.interpolate(images, size=(s, s), mode="bilinear", align_corners=False)
        return images

    def _finish(self, dist: torch.Tensor, size: tuple[int, int]) -> dict[str, torch.Tensor]:
        """Mahalanobis grid (B,h,w) -> smoothed map at the input size (B,H,W) and image score (B,)."""
        s = self.config.image_size
        amap = F.interpolate(dist[:, None], size=(s, s), mode="bilinear", align_corners=False)[:, 0]
        amap = gaussian_smooth(amap, self.config.sigma)
        score = amap.flatten(1).amax(1)
        if amap.shape[-2:] != size:
            amap = F.interpolate(amap[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
        return {"score": score, "anomaly_map": amap}


class _AnomalyGraph(nn.Module):
    """An anomaly method's ``predict`` for export: image (N,3,H,W) in [0,1] -> (score (N,), anomaly_map (N,H,W))."""

    def __init__(self, method: AnomalyMethod) -> None:
        super().__init__()
        self.method = method

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.method
        out = m._finish(m.scorer.distance(m.features(image)), tuple(image.shape[-2:]))
        return out["score"].float(), out["anomaly_map"].float()


@register(
    "padim",
    task="anomaly",
    config=PadimConfig,
    presets={
        "default": Preset(train={"steps": 0, "batch_size": 32}, data={"name": "elpv-mono"}),
        "quick": Preset(train={"steps": 0, "batch_size": 32}, data={"name": "elpv-mono"}),
        "tiny": Preset(
            model={
                "backbone": "tiny",
                "weights": "",
                "layers": [0, 1, 2],
                "n_features": 16,
                "image_size": 32,
            },
            train={"steps": 0, "batch_size": 4},
        ),
    },  # fmt: skip
    paper=Paper(
        "PaDiM: a Patch Distribution Modeling Framework for Anomaly Detection and Localization",
        "Defard et al., ICPR Workshops 2020",
        "https://arxiv.org/abs/2011.08785",
    ),
    summary="Per-position Gaussian of pretrained features, Mahalanobis anomaly map (baseline of FYD)",
    seed_method=False,
)
class Padim(AnomalyMethod):
    """Fit-only: one pass over normal training images; predict gives ``score`` and ``anomaly_map``."""

    trainable: ClassVar[bool] = False
    fits_statistics: ClassVar[bool] = True
    config: PadimConfig

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) in [0,1] -> embeddings (B,d,h,w)."""
        return embed(self.backbone(self._resize(images)))[:, self.channels]
