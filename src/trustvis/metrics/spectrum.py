"""Mean log-magnitude spectra: the "fingerprint picture" of a generator family.

Up-sampling layers (transposed convolution, zero insertion, nearest, bilinear) replicate or shape the
spectrum of what they up-sample, which shows as peaks or a high-frequency drop in the Fourier spectrum
averaged over many images (Zhang et al., "Detecting and Simulating Artifacts in GAN Fake Images"
(AutoGAN), WIFS 2019, arXiv 1907.06515; Wang et al., "CNN-generated images are surprisingly easy to
spot... for now", CVPR 2020, arXiv 1912.11035, Fig. 5; Durall et al., CVPR 2020).

Pipeline, per image::

    image --gray (mean of channels)--> x --[highpass: x - median3x3(x)]--> r
      --minus its mean--> --FFT2 (orthonormal)--> --fftshift--> log(|F| + eps)  ==> averaged over images

Choices:
- ``highpass=True`` (default) follows Wang et al.: the spectrum of the high-pass residual (image minus
  its 3x3 median-filtered copy) suppresses the image content, whose 1/f spectrum would otherwise hide
  the generator's peaks. ``highpass=False`` gives the plain image spectrum (AutoGAN's input).
- The per-image mean is subtracted before the FFT so the DC term does not dominate the colour scale
  (for the residual the mean is already near 0); the DC bin then sits near ``log(eps)``.
- No window is applied; the cross along the axes caused by the periodic boundary is the same for real
  and fake images and cancels in :func:`spectrum_difference`.
- ``uint8`` images are divided by 255 so that uint8 and [0, 1] float inputs give the same spectrum.

:func:`azimuthal_power_spectrum` is the 1-D analysis of mToFNet (Jeong et al., "mToFNet: Object
Anti-Spoofing with Mobile Time-of-Flight Data", WACV 2022, arXiv 2110.04066): the power spectrum averaged
over rings of equal radial frequency, which shows a display's moire and sub-pixel grid as a rise or peaks
at high frequencies, for RGB images and for ToF depth maps alike::

    image --gray--> [depth: holes (0) := median of valid, / std] --minus mean--> --FFT2 (orthonormal)-->
      |F|^2 --fftshift--> mean over rings of radius r --> log10(. + eps)      ==> (N, R) per image
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = ["azimuthal_power_spectrum", "mean_log_spectrum", "spectrum_difference", "to_gray_batch"]


def to_gray_batch(images: Any) -> np.ndarray:
    """Convert a batch of images to float64 grayscale ``(N, H, W)``.

    Accepted layouts: ``(H, W)`` (one gray image), ``(N, H, W)``, ``(N, H, W, C)`` channels-last, and
    ``(N, C, H, W)`` channels-first when ``C`` is 1 or 3 and the last axis is not (torch batches).
    A sequence of equally shaped arrays is stacked. ``uint8`` values are scaled to [0, 1].
    """
    if isinstance(images, Sequence) and not isinstance(images, np.ndarray):
        if len(images) == 0:
            raise ValueError("Empty image list.")
        images = np.stack([np.asarray(im) for im in images])
    if hasattr(images, "detach"):  # torch tensor
        images = images.detach().cpu().numpy()
    a = np.asarray(images)
    if a.size == 0:
        raise ValueError("Empty image array.")
    scale = 255.0 if a.dtype == np.uint8 else 1.0
    a = a.astype(np.float64) / scale
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 4:
        if a.shape[1] in (1, 3) and a.shape[-1] not in (1, 3):
            a = a.mean(axis=1)
        else:
            a = a.mean(axis=-1)
    elif a.ndim != 3:
        raise ValueError(
            f"Expected images of shape (H,W), (N,H,W), (N,H,W,C) or (N,C,H,W); got shape {a.shape}."
        )
    if not np.all(np.isfinite(a)):
        raise ValueError("Images contain NaN or infinite values.")
    return a


def mean_log_spectrum(
    images: Any,
    highpass: bool = True,
    eps: float = 1e-6,
    chunk: int = 64,
) -> np.ndarray:
    """Average centred log-magnitude spectrum of a set of images.

    Args:
        images: uint8 or float images, ``(N, H, W, C)``, ``(N, C, H, W)``, ``(N, H, W)`` or a list of
            equally shaped images (see :func:`to_gray_batch`).
        highpass: compute it on the residual ``x - median3x3(x)`` (Wang et al. 2020) instead of the
            image itself.
        eps: added to ``|F|`` before the log.
        chunk: images transformed at a time (bounds memory).

    Returns:
        ``(H, W)`` float64 array, zero frequency at the centre (``fftshift``), orthonormal FFT scaling
        (independent of image size for white noise).
    """
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}.")
    gray = to_gray_batch(images)
    n, h, w = gray.shape
    total = np.zeros((h, w), dtype=np.float64)
    step = max(1, int(chunk))
    for start in range(0, n, step):
        x = gray[start : start + step]
        if highpass:
            x = x - ndimage.median_filter(x, size=(1, 3, 3), mode="reflect")
        x = x - x.mean(axis=(1, 2), keepdims=True)
        f = np.fft.fft2(x, norm="ortho")
        total += np.log(np.abs(f) + eps).sum(axis=0)
    return np.fft.fftshift(total / n)


def spectrum_difference(fake_spec: np.ndarray, real_spec: np.ndarray) -> np.ndarray:
    """Difference of two mean log spectra, ``fake - real`` (log of the magnitude ratio).

    Positive values are frequencies where the fake family has more energy than real images, e.g. the
    up-sampling replica peaks.
    """
    a, b = np.asarray(fake_spec, dtype=np.float64), np.asarray(real_spec, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"Spectra differ in shape: fake {a.shape} vs real {b.shape}.")
    return a - b


def _fill_holes_and_scale(x: np.ndarray) -> np.ndarray:
    """Depth maps ``(N, H, W)``: holes (0) := the map's median of valid values, then divided by its std."""
    out = x.copy()
    for d in out:  # views: edited in place
        valid = d != 0
        if valid.any() and not valid.all():
            d[~valid] = np.median(d[valid])
        std = d.std()
        if std > 0:
            d /= std
    return out


def azimuthal_power_spectrum(
    images: Any,
    bins: int | None = None,
    *,
    depth: bool = False,
    eps: float = 1e-12,
    chunk: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Azimuthally averaged log power spectrum of each image (mToFNet's frequency analysis).

    Per image: gray (mean of the channels; uint8 / 255), minus its mean, 2-D FFT (orthonormal, so the
    powers sum to the image's energy, Parseval), power ``|F|^2``, ``fftshift``, mean power over each ring
    of equal radial frequency, ``log10(power + eps)``. The radial frequency of bin ``(ky, kx)`` is
    ``sqrt((ky/H)^2 + (kx/W)^2)`` cycles/pixel; with ``bins=None`` the rings are those of integer radius
    ``r = 0 .. min(H, W) // 2`` in units of ``1 / min(H, W)`` cycles/pixel (each bin goes to the nearest
    ring; the corners beyond the last ring are left out). Ring 0 holds only the zero-frequency term,
    which is 0 once the mean is removed, so its value is ``log10(eps)`` (plots skip it).

    Depth maps (``depth=True``; float32 in any unit, or 8/16-bit integers): holes, pixels equal to 0,
    are first set to the median of the map's valid pixels (otherwise their edges would add spurious
    high-frequency power), then each map is divided by its own standard deviation, so that maps of any
    depth scale and range are comparable and their mean power per frequency bin is 1 (a flat spectrum at
    ``log10 = 0`` for white noise). A constant map is left at zero. RGB/gray images are not rescaled.

    Args:
        images: ``(H, W)``, ``(N, H, W)``, ``(N, H, W, C)``, ``(N, C, H, W)`` or a list of equally shaped
            images (see :func:`to_gray_batch`); uint8 or float.
        bins: number of radial bins, evenly spaced from 0 to 0.5 cycles/pixel (2 .. ``min(H, W)//2 + 1``);
            ``None`` gives one bin per integer radius.
        depth: treat the inputs as depth maps (hole filling and per-map scaling, above).
        eps: added to the power before the log.
        chunk: images transformed at a time (bounds memory).

    Returns:
        ``(radii, log_power)``: ``radii (R,)`` in cycles/pixel, from 0 to at most 0.5 (exactly 0.5 for an
        even short side or when ``bins`` is given), and ``log_power (N, R)`` float64.
    """
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}.")
    gray = to_gray_batch(images)
    n, h, w = gray.shape
    side = min(h, w)
    rings = side // 2 + 1
    if side < 2:
        raise ValueError(f"Images must be at least 2x2 pixels; got {h}x{w}.")
    if bins is None:
        nbins, step = rings, 1.0 / side
        radii = np.arange(nbins) * step
    else:
        nbins = int(bins)
        if not 2 <= nbins <= rings:
            raise ValueError(f"bins must be between 2 and {rings} for {h}x{w} images, got {bins}.")
        step = 0.5 / (nbins - 1)
        radii = np.linspace(0.0, 0.5, nbins)
    fy = np.fft.fftshift(np.fft.fftfreq(h))[:, None]  # cycles/pixel
    fx = np.fft.fftshift(np.fft.fftfreq(w))[None, :]
    ring = np.rint(np.hypot(fy, fx) / step).astype(np.int64).ravel()  # (H*W,) nearest radial bin
    keep = ring < nbins
    ring = ring[keep]
    count = np.bincount(ring, minlength=nbins).astype(np.float64)  # > 0 for every bin (see above)
    out = np.empty((n, nbins), dtype=np.float64)
    size = max(1, int(chunk))
    for start in range(0, n, size):
        x = gray[start : start + size]  # (c, H, W)
        if depth:
            x = _fill_holes_and_scale(x)
        x = x - x.mean(axis=(1, 2), keepdims=True)
        power = np.abs(np.fft.fftshift(np.fft.fft2(x, norm="ortho"), axes=(1, 2))) ** 2
        power = power.reshape(x.shape[0], -1)[:, keep]  # (c, K)
        c = x.shape[0]
        idx = (ring[None, :] + nbins * np.arange(c)[:, None]).ravel()
        sums = np.bincount(idx, weights=power.ravel(), minlength=c * nbins).reshape(c, nbins)
        out[start : start + c] = np.log10(sums / count + eps)
    return radii, out
