"""Orthonormal discrete cosine transform (DCT-II) and its inverse (DCT-III), written with torch.

Matrix form: for a length-``n`` signal, ``X = D x`` with the orthonormal DCT-II basis ::

    D[k, i] = s_k · cos(π (2i + 1) k / (2n)),   s_0 = sqrt(1/n),  s_k = sqrt(2/n) for k > 0

``D`` is orthogonal (``D Dᵀ = I``), so the inverse is ``x = Dᵀ X`` and Parseval holds
(``‖X‖₂ = ‖x‖₂``). This equals ``scipy.fft.dct(x, type=2, norm="ortho")`` and the ``norm="ortho"``
mode of the ``torch-dct`` package. The 2-D transform applies ``D`` along H and W of (…, H, W) tensors
(per channel, per image): ``X = D_H x D_Wᵀ``.

A dense matmul costs O(n) per output element, which for the image sizes used here (≤ 256 px) is as
fast as an FFT-based DCT and simpler; it runs on any device, in any floating dtype, and autograd
differentiates through it (the basis is a constant). Bases are cached per (n, device, dtype).
"""

from __future__ import annotations

import math

import torch

_BASIS: dict[tuple[int, str, torch.dtype], torch.Tensor] = {}


def dct_matrix(
    n: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The orthonormal DCT-II matrix ``D`` (n, n): ``X = D @ x`` for a column signal ``x``.

    Built in float64 and cast, so float32 transforms stay accurate to ~1e-6 relative.
    """
    if n < 1:
        raise ValueError(f"DCT length must be >= 1, got {n}")
    device = torch.device(device) if device is not None else torch.device("cpu")
    key = (n, str(device), dtype)
    basis = _BASIS.get(key)
    if basis is None:
        with torch.inference_mode(False), torch.no_grad():  # a plain tensor even if first built in inference
            k = torch.arange(n, dtype=torch.float64)[:, None]  # (n, 1) frequency
            i = torch.arange(n, dtype=torch.float64)[None, :]  # (1, n) sample
            d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
            d[0] /= math.sqrt(2.0)
            basis = d.to(device=device, dtype=dtype)
        _BASIS[key] = basis
    return basis


def _basis_for(x: torch.Tensor, n: int) -> torch.Tensor:
    if not x.is_floating_point():
        raise TypeError(f"DCT needs a floating-point tensor, got {x.dtype}")
    return dct_matrix(n, x.device, x.dtype)


def dct(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal DCT-II along the last dimension; same shape as ``x``."""
    d = _basis_for(x, x.shape[-1])
    return x @ d.T  # (..., n) @ (n, n): X_k = Σ_i D[k, i] x_i


def idct(X: torch.Tensor) -> torch.Tensor:  # noqa: N803  (X is the customary name of a spectrum)
    """Inverse of :func:`dct` (orthonormal DCT-III) along the last dimension."""
    d = _basis_for(X, X.shape[-1])
    return X @ d  # x_i = Σ_k D[k, i] X_k


def dct_2d(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D DCT-II over the last two dimensions of a (…, H, W) tensor."""
    if x.dim() < 2:
        raise ValueError(f"dct_2d needs a (..., H, W) tensor, got shape {tuple(x.shape)}")
    dh = _basis_for(x, x.shape[-2])
    dw = _basis_for(x, x.shape[-1])
    return dh @ x @ dw.T  # (H,H) @ (..., H, W) @ (W,W)


def idct_2d(X: torch.Tensor) -> torch.Tensor:  # noqa: N803
    """Inverse of :func:`dct_2d` over the last two dimensions of a (…, H, W) tensor."""
    if X.dim() < 2:
        raise ValueError(f"idct_2d needs a (..., H, W) tensor, got shape {tuple(X.shape)}")
    dh = _basis_for(X, X.shape[-2])
    dw = _basis_for(X, X.shape[-1])
    return dh.T @ X @ dw
