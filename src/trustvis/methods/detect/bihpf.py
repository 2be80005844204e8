"""BiHPF: Bilateral High-Pass Filters for robust deepfake detection.

Paper: Jeong, Kim, Min, Joe, Gwon, Choi. "BiHPF: Bilateral High-Pass Filters for Robust Deepfake
Detection". WACV 2022, pp. 48-57. arXiv 2109.00911. No official code.

Two fixed filters amplify the artifacts that generators leave, then a CNN classifies (spec §2.1)::

    x (B,3,H,W) in [0,1]
      └─► X = FFT2(x) per channel ──► X' = X · (1 + α·H_f)       frequency-level HPF
            H_f(u,v) = 1 − exp(−D(u,v)² / 2σ_f²), D = distance from DC (in bins)
      └─► x' = Re IFFT2(X') ──► x_bi = x' · (1 + β·H_p)           pixel-level HPF
            H_p(i,j) = 1 − exp(−d(i,j)² / 2σ_p²), d = distance from the image centre (background boost)
      └─► input = x_bi                      (input="image", default)
               or  standardised log|FFT2(x_bi)|  (input="spectrum")
      └─► ResNet ──► logits (B,) ──► sigmoid = score

The artifact compression map (ACM) analysis, which motivated the filters in the paper, is
:func:`artifact_compression_map`: a map M in [0,1] over frequencies that multiplies the spectrum of
fake images, optimised so that a frozen detector calls them real while keeping M close to 1. Where M
must go to 0 is where the detector's evidence lives.

Deviations (the paper's equations and constants are not published in an accessible source; every
item is a config field):
  * filter forms are the spec's Gaussian high-pass choices; α = β = 1, σ_f = σ_p = 0.25·N by default
    (N = image side), i.e. the highest frequencies and the corners get up to twice their weight;
  * classifier and recipe are CNNDetection's (ResNet-50, Blur+JPEG(0.5)), as in the spec;
  * the ACM is one map per data set optimised directly (not a generator that outputs a map per
    image), with a mean(1 − M) sparsity term; it is an analysis tool, not used for training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trustvis.methods.detect.base import BinaryDetector, DetectorConfig, detector_presets
from trustvis.nn.backbones import build_classifier
from trustvis.nn.freq import center_highpass, gaussian_highpass
from trustvis.registry import Paper, register


@dataclass
class BiHPFConfig(DetectorConfig):
    """BiHPF = the shared detector fields + the filter constants."""

    alpha: float = 1.0  # frequency-level gain: X' = X (1 + alpha H_f)
    beta: float = 1.0  # pixel-level gain: x_bi = x' (1 + beta H_p)
    sigma_f: float = 0.25  # frequency high-pass width, as a fraction of the image side
    sigma_p: float = 0.25  # pixel high-pass width, as a fraction of the image side
    input: str = "image"  # image | spectrum


class BilateralHighPass(nn.Module):
    """The two BiHPF filters; no parameters. (B,C,H,W) -> (B,C,H,W)."""

    def __init__(self, alpha: float, beta: float, sigma_f: float, sigma_p: float) -> None:
        super().__init__()
        self.alpha, self.beta, self.sigma_f, self.sigma_p = alpha, beta, sigma_f, sigma_p
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def filters(self, h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(frequency gain (H,W), pixel gain (H,W)) for an image of size h×w."""
        key = (h, w, str(device))
        if key not in self._cache:
            side = min(h, w)
            hf = gaussian_highpass(h, w, self.sigma_f * side, device)
            hp = center_highpass(h, w, self.sigma_p * side, device)
            self._cache[key] = (1.0 + self.alpha * hf, 1.0 + self.beta * hp)
        return self._cache[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        gain_f, gain_p = self.filters(h, w, x.device)
        spec = torch.fft.fft2(x.float())  # (B,C,H,W) complex
        x_f = torch.fft.ifft2(spec * gain_f).real  # frequency-level HPF
        return (x_f * gain_p).to(x.dtype)  # pixel-level HPF


class BiHPFNet(nn.Module):
    """Pure model: filters + classifier; images in [0,1] -> logits (B, 1)."""

    def __init__(self, cfg: BiHPFConfig) -> None:
        super().__init__()
        if cfg.input not in ("image", "spectrum"):
            raise ValueError(f"Unknown BiHPF input {cfg.input!r}; choose from ['image', 'spectrum']")
        self.input = cfg.input
        self.filter = BilateralHighPass(cfg.alpha, cfg.beta, cfg.sigma_f, cfg.sigma_p)
        self.classifier = build_classifier(cfg.backbone, 1, cfg.weights or None)

    def features_in(self, x: torch.Tensor) -> torch.Tensor:
        """What the classifier sees: the filtered image or its standardised log-amplitude spectrum."""
        x_bi = self.filter(x)
        if self.input == "image":
            return x_bi
        amp = torch.log(torch.fft.fft2(x_bi.float(), norm="ortho").abs() + 1e-6)
        amp = torch.fft.fftshift(amp, dim=(-2, -1))
        mean = amp.mean(dim=(-2, -1), keepdim=True)
        std = amp.std(dim=(-2, -1), keepdim=True) + 1e-6
        return 0.5 + 0.25 * (amp - mean) / std  # centred on 0.5 so the ImageNet normalisation is sane

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features_in(x))


PRESETS = {
    "default": {},
    "quick": {"backbone": "resnet18", "weights": ""},
    "full": {"backbone": "resnet50", "weights": ""},
    "tiny": {"backbone": "tiny", "weights": "", "blur_prob": 0.1, "jpeg_prob": 0.1},
}


@register(
    "bihpf",
    task="detect",
    config=BiHPFConfig,
    presets=detector_presets(PRESETS),
    paper=Paper(
        "BiHPF: Bilateral High-Pass Filters for Robust Deepfake Detection",
        "Jeong et al., WACV 2022",
        "https://arxiv.org/abs/2109.00911",
    ),
    summary="frequency- and pixel-level high-pass filters in front of a ResNet",
)
class BiHPF(BinaryDetector):
    """BiHPF detector (seed method)."""

    def __init__(self, config: BiHPFConfig) -> None:
        super().__init__(config)
        self.model = BiHPFNet(config)


def artifact_compression_map(
    logits_fn,
    fakes: torch.Tensor,
    steps: int = 200,
    lr: float = 0.1,
    sparsity: float = 1.0,
    batch_size: int = 32,
    seed: int = 0,
) -> np.ndarray:
    """Learn the artifact compression map (ACM) of a frozen detector on fake images.

    Args:
        logits_fn: frozen detector, images (B,3,H,W) in [0,1] -> logits of 'fake' (B,).
        fakes: fake images (N,3,H,W) in [0,1].
        steps: optimisation steps (Adam).
        sparsity: weight of ``mean(1 - M)``, which keeps M near 1 (compress as little as possible).

    Returns:
        M (H, W) in [0,1], DC at the centre (fftshifted) for display. Low values mark the frequencies
        the detector relies on.
    """
    g = torch.Generator().manual_seed(seed)
    n, _, h, w = fakes.shape
    theta = torch.full((h, w), 4.0, requires_grad=True)  # M = sigmoid(4) ≈ 0.98 at start
    opt = torch.optim.Adam([theta], lr=lr)
    flip = (-torch.arange(h)) % h, (-torch.arange(w)) % w
    for _ in range(steps):
        idx = torch.randint(0, n, (min(batch_size, n),), generator=g)
        x = fakes[idx]
        sym = 0.5 * (theta + theta[flip[0]][:, flip[1]])  # Hermitian-symmetric mask keeps images real
        m = torch.sigmoid(sym)
        x_c = torch.fft.ifft2(torch.fft.fft2(x) * m).real.clamp(0, 1)
        logits = logits_fn(x_c)
        loss = (
            F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits)) + sparsity * (1 - m).mean()
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        sym = 0.5 * (theta + theta[flip[0]][:, flip[1]])
        return torch.fft.fftshift(torch.sigmoid(sym)).numpy()
