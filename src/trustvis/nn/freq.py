"""Frequency-domain helpers written with ``torch.fft`` (run on CPU and GPU, differentiable).

Frequencies are laid out as ``torch.fft.fft2`` returns them (DC at index 0, no fftshift); radii are
computed from ``fftfreq`` so every filter built here is symmetric under (u, v) -> (-u, -v) and a real
image stays real after filtering.
"""

from __future__ import annotations

import torch


def frequency_radius(h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """Distance of every FFT bin from DC, in bins, shape (h, w), unshifted layout."""
    fu = torch.fft.fftfreq(h, device=device) * h  # (h,) integer bin index, signed
    fv = torch.fft.fftfreq(w, device=device) * w  # (w,)
    return torch.sqrt(fu[:, None] ** 2 + fv[None, :] ** 2)  # (h, w)


def gaussian_highpass(h: int, w: int, sigma: float, device: torch.device | None = None) -> torch.Tensor:
    """``H(u,v) = 1 - exp(-D(u,v)^2 / (2 sigma^2))``, 0 at DC and -> 1 at high frequency; (h, w)."""
    d = frequency_radius(h, w, device)
    return 1.0 - torch.exp(-(d**2) / (2.0 * sigma**2))


def center_highpass(h: int, w: int, sigma: float, device: torch.device | None = None) -> torch.Tensor:
    """Pixel-space weight ``1 - exp(-d^2/(2 sigma^2))``, d = distance from the image centre; (h, w)."""
    y = torch.arange(h, device=device, dtype=torch.float32) - (h - 1) / 2.0
    x = torch.arange(w, device=device, dtype=torch.float32) - (w - 1) / 2.0
    d2 = y[:, None] ** 2 + x[None, :] ** 2
    return 1.0 - torch.exp(-d2 / (2.0 * sigma**2))


def log_amplitude(x: torch.Tensor, eps: float = 1e-6, shift: bool = True) -> torch.Tensor:
    """Per-channel ``log(|FFT2(x)| + eps)`` of (B, C, H, W) images, DC centred when ``shift``."""
    spec = torch.fft.fft2(x.float(), norm="ortho")
    amp = torch.log(spec.abs() + eps)
    return torch.fft.fftshift(amp, dim=(-2, -1)) if shift else amp
