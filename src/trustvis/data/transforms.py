"""Image degradations, training augmentations and tensor conversion.

All functions take and return ``uint8 (H, W, 3)`` numpy arrays (RGB), except :func:`to_tensor` and
:func:`to_uint8`. Random choices are drawn from torch's global RNG (``torch.rand`` / ``torch.randint``),
so ``torch.manual_seed`` and DataLoader worker seeding make them reproducible.

- Degradations for robustness sweeps: :func:`jpeg`, :func:`gaussian_blur`, :func:`resize`, and the named
  set :data:`DEGRADATIONS` used by the benchmarks (:func:`degrade`).
- Augmentations: :class:`BlurJpeg` (the "Blur+JPEG (p)" augmentation of CNNDetection, Wang et al.,
  CVPR 2020), :func:`random_crop`, :func:`center_crop`, :func:`random_hflip`, :func:`compose`.
- "In the wild" laundering: :class:`Launder` (a resize chain, mild sharpening, JPEG or WebP at a random
  quality), seeded per image by a ``numpy`` generator so that reals and fakes get the same treatment.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

__all__ = [
    "jpeg",
    "webp",
    "unsharp",
    "Launder",
    "gaussian_blur",
    "resize",
    "resize_roundtrip",
    "DEGRADATIONS",
    "degrade",
    "BlurJpeg",
    "random_crop",
    "center_crop",
    "random_hflip",
    "to_tensor",
    "to_uint8",
    "Compose",
    "compose",
]

ImageFn = Callable[[np.ndarray], np.ndarray]


def _check_image(img: np.ndarray) -> np.ndarray:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        desc = f"{type(img).__name__} {getattr(img, 'dtype', '')} {getattr(img, 'shape', '')}"
        raise TypeError(f"Expected a uint8 numpy array of shape (H, W, 3), got {desc}")
    return img


def jpeg(img: np.ndarray, quality: int, subsampling: str | int = "4:2:0") -> np.ndarray:
    """JPEG-compress and decompress in memory (Pillow/libjpeg).

    Args:
        img: ``uint8 (H, W, 3)`` image.
        quality: JPEG quality 1..100.
        subsampling: Chroma subsampling, ``"4:2:0"`` (default, as most cameras and web images),
            ``"4:2:2"`` or ``"4:4:4"``.
    """
    _check_image(img)
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality), subsampling=subsampling)
    buf.seek(0)
    with Image.open(buf) as out:
        return np.array(out.convert("RGB"), dtype=np.uint8)


def webp(img: np.ndarray, quality: int) -> np.ndarray:
    """Lossy WebP-compress and decompress in memory (Pillow/libwebp, default method 4).

    Args:
        img: ``uint8 (H, W, 3)`` image.
        quality: WebP quality 1..100.
    """
    _check_image(img)
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"WebP quality must be in 1..100, got {quality}")
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="WEBP", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as out:
        return np.array(out.convert("RGB"), dtype=np.uint8)


def unsharp(img: np.ndarray, radius: float, amount: float) -> np.ndarray:
    """Unsharp-mask sharpening: ``img + amount · (img − blur(img, radius))``, rounded and clipped (Pillow's
    ``UnsharpMask`` with ``percent = 100·amount`` and threshold 0)."""
    from PIL import ImageFilter

    _check_image(img)
    if radius <= 0 or amount < 0:
        raise ValueError(f"Need radius > 0 and amount >= 0, got radius={radius}, amount={amount}")
    out = Image.fromarray(img).filter(ImageFilter.UnsharpMask(float(radius), round(100 * amount), 0))
    return np.array(out, dtype=np.uint8)


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each channel (``scipy.ndimage.gaussian_filter``, reflect borders).

    ``sigma == 0`` returns the image unchanged.
    """
    _check_image(img)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return img.copy()
    out = gaussian_filter(img.astype(np.float32), sigma=(float(sigma), float(sigma), 0.0), mode="reflect")
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def gaussian_noise(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Add i.i.d. Gaussian noise of std ``sigma`` (in [0,1] intensity units), clip, round; seeded."""
    _check_image(img)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    noise = np.random.default_rng(seed).normal(0.0, 255.0 * float(sigma), img.shape)
    return np.clip(np.rint(img.astype(np.float64) + noise), 0, 255).astype(np.uint8)


def _resize_to(img: np.ndarray, width: int, height: int) -> np.ndarray:
    # Pillow's bilinear filter widens its support when down-scaling, i.e. it antialiases.
    return np.array(Image.fromarray(img).resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)


def resize(img: np.ndarray, scale: float) -> np.ndarray:
    """Rescale by ``scale`` with antialiased bilinear interpolation; output is ``round(H*scale)`` high."""
    _check_image(img)
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    h, w = img.shape[:2]
    return _resize_to(img, max(1, round(w * scale)), max(1, round(h * scale)))


def resize_roundtrip(img: np.ndarray, scale: float) -> np.ndarray:
    """Rescale by ``scale``, then back to the original size (both bilinear), so the shape is unchanged."""
    h, w = _check_image(img).shape[:2]
    return _resize_to(resize(img, scale), w, h)


#: Named degradations for robustness sweeps. ``"resize0.5"`` halves the image and scales it back up to
#: the original size (bilinear both ways), so every degradation keeps the input shape.
DEGRADATIONS: dict[str, ImageFn] = {
    "jpeg95": partial(jpeg, quality=95),
    "jpeg75": partial(jpeg, quality=75),
    "jpeg50": partial(jpeg, quality=50),
    "blur1": partial(gaussian_blur, sigma=1.0),
    "blur2": partial(gaussian_blur, sigma=2.0),
    "resize0.5": partial(resize_roundtrip, scale=0.5),
}


def degrade(img: np.ndarray, name: str) -> np.ndarray:
    """Apply the named degradation from :data:`DEGRADATIONS`.

    Raises:
        KeyError: Unknown name (the message lists the valid ones).
    """
    try:
        fn = DEGRADATIONS[name]
    except KeyError:
        raise KeyError(f"Unknown degradation {name!r}; choose from {sorted(DEGRADATIONS)}") from None
    return fn(img)


def _check_prob(name: str, p: float) -> float:
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
    return float(p)


class BlurJpeg:
    """CNNDetection's "Blur+JPEG (p)" augmentation (Wang et al., CVPR 2020).

    With probability ``p_blur`` the image is blurred with ``sigma ~ U[sigma_min, sigma_max]``; then, with
    probability ``p_jpeg``, JPEG-compressed with quality ``~ U{q_min, ..., q_max}``. The paper's
    "Blur+JPEG (0.5)" is ``BlurJpeg(0.5, 0.5)``, "(0.1)" is ``BlurJpeg(0.1, 0.1)``.

    Args:
        p_blur: Probability of blurring.
        p_jpeg: Probability of JPEG compression.
        sigma_min: Smallest blur sigma.
        sigma_max: Largest blur sigma.
        q_min: Lowest JPEG quality.
        q_max: Highest JPEG quality.
    """

    def __init__(
        self,
        p_blur: float = 0.5,
        p_jpeg: float = 0.5,
        sigma_min: float = 0.0,
        sigma_max: float = 3.0,
        q_min: int = 30,
        q_max: int = 100,
    ) -> None:
        self.p_blur = _check_prob("p_blur", p_blur)
        self.p_jpeg = _check_prob("p_jpeg", p_jpeg)
        if not 0 <= sigma_min <= sigma_max:
            raise ValueError(
                f"Need 0 <= sigma_min <= sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}"
            )
        if not 1 <= q_min <= q_max <= 100:
            raise ValueError(f"Need 1 <= q_min <= q_max <= 100, got q_min={q_min}, q_max={q_max}")
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.q_min, self.q_max = int(q_min), int(q_max)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        _check_image(img)
        # Draw every random number each call so the RNG stream does not depend on which branches run.
        u_blur, u_sigma, u_jpeg = torch.rand(3).tolist()
        quality = int(torch.randint(self.q_min, self.q_max + 1, (1,)).item())
        if u_blur < self.p_blur:
            img = gaussian_blur(img, self.sigma_min + (self.sigma_max - self.sigma_min) * u_sigma)
        if u_jpeg < self.p_jpeg:
            img = jpeg(img, quality)
        return img

    def __repr__(self) -> str:
        return (
            f"BlurJpeg(p_blur={self.p_blur}, p_jpeg={self.p_jpeg}, "
            f"sigma=[{self.sigma_min}, {self.sigma_max}], quality=[{self.q_min}, {self.q_max}])"
        )


#: Resampling filters of :class:`Launder`'s resize chain (Pillow's; every one antialiases when down-scaling).
RESAMPLE_FILTERS: dict[str, Image.Resampling] = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}


@dataclass(frozen=True)
class Launder:
    """ "In the wild" laundering, applied alike to real and generated images (SynthBench v2's second test
    condition), so that neither compression nor resampling tells the classes apart::

        img ──► [p_resize] down-scale by s ~ U[scale_min, scale_max], then back to the input size, each resize
                with a filter drawn from RESAMPLE_FILTERS (a chain of two resamplings, as a re-shared picture)
            ──► [p_sharpen] unsharp mask, radius ~ U[0.5, 1.5], amount ~ U[sharpen_min, sharpen_max]
            ──► JPEG (probability jpeg_share, 4:2:0) or WebP, quality ~ U{q_min..q_max}
            ──► uint8, same shape

    ``launder(img, rng)`` takes a ``numpy.random.Generator``: the caller seeds one per image (e.g. from the
    build seed, the split and the image's index), and a fixed number of numbers is drawn whatever the branches,
    so each image's treatment depends on its seed alone. Returns the image and the steps applied (for a
    manifest or a figure).
    """

    p_resize: float = 0.8
    scale_min: float = 0.5
    scale_max: float = 0.9
    p_sharpen: float = 0.3
    sharpen_min: float = 0.3
    sharpen_max: float = 0.8
    jpeg_share: float = 0.5
    q_min: int = 60
    q_max: int = 95

    def __post_init__(self) -> None:
        for name in ("p_resize", "p_sharpen", "jpeg_share"):
            _check_prob(name, getattr(self, name))
        if not 0 < self.scale_min <= self.scale_max <= 1:
            raise ValueError(f"Need 0 < scale_min <= scale_max <= 1, got {self.scale_min}, {self.scale_max}")
        if not 0 <= self.sharpen_min <= self.sharpen_max:
            raise ValueError(
                f"Need 0 <= sharpen_min <= sharpen_max, got {self.sharpen_min}, {self.sharpen_max}"
            )
        if not 1 <= self.q_min <= self.q_max <= 100:
            raise ValueError(f"Need 1 <= q_min <= q_max <= 100, got q_min={self.q_min}, q_max={self.q_max}")

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        h, w = _check_image(img).shape[:2]
        u = rng.random(9)  # every draw made each call: the stream does not depend on the branches
        filters = list(RESAMPLE_FILTERS)
        steps: dict[str, Any] = {}
        if u[0] < self.p_resize:
            s = self.scale_min + (self.scale_max - self.scale_min) * u[1]
            down, up = filters[int(u[2] * len(filters))], filters[int(u[3] * len(filters))]
            small = Image.fromarray(img).resize(
                (max(1, round(w * s)), max(1, round(h * s))), RESAMPLE_FILTERS[down]
            )
            img = np.array(small.resize((w, h), RESAMPLE_FILTERS[up]), dtype=np.uint8)
            steps["resize"] = {"scale": round(float(s), 4), "down": down, "up": up}
        if u[4] < self.p_sharpen:
            radius = 0.5 + u[5]
            amount = self.sharpen_min + (self.sharpen_max - self.sharpen_min) * u[8]
            img = unsharp(img, radius, amount)
            steps["sharpen"] = {"radius": round(float(radius), 4), "amount": round(float(amount), 4)}
        quality = self.q_min + int(u[6] * (self.q_max - self.q_min + 1))
        codec = "jpeg" if u[7] < self.jpeg_share else "webp"
        img = jpeg(img, quality) if codec == "jpeg" else webp(img, quality)
        steps[codec] = quality
        return img, steps


def _size2(size: int | tuple[int, int]) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if h < 1 or w < 1:
        raise ValueError(f"Crop size must be positive, got {size}")
    return h, w


def _grow_to(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Enlarge (bilinear, keeping the aspect ratio) so that the image is at least ``h x w``."""
    ih, iw = img.shape[:2]
    if ih >= h and iw >= w:
        return img
    s = max(h / ih, w / iw)
    return _resize_to(img, max(w, round(iw * s)), max(h, round(ih * s)))


def random_crop(img: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Crop ``size`` (int or ``(h, w)``) at a uniformly random position.

    An image smaller than ``size`` is first enlarged with bilinear interpolation (aspect kept).
    """
    h, w = _size2(size)
    img = _grow_to(_check_image(img), h, w)
    ih, iw = img.shape[:2]
    y = int(torch.randint(0, ih - h + 1, (1,)).item())
    x = int(torch.randint(0, iw - w + 1, (1,)).item())
    return np.ascontiguousarray(img[y : y + h, x : x + w])


def center_crop(img: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Crop ``size`` (int or ``(h, w)``) from the centre.

    An image smaller than ``size`` is first enlarged with bilinear interpolation (aspect kept), not
    padded: padding would add flat borders that a detector could learn.
    """
    h, w = _size2(size)
    img = _grow_to(_check_image(img), h, w)
    ih, iw = img.shape[:2]
    y, x = (ih - h) // 2, (iw - w) // 2
    return np.ascontiguousarray(img[y : y + h, x : x + w])


def random_translate(img: np.ndarray, pad: int) -> np.ndarray:
    """Shift by up to ``pad`` pixels in each direction, filling with zeros (CIFAR's pad-and-crop)."""
    img = _check_image(img)
    if pad <= 0:
        return img
    h, w = img.shape[:2]
    padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)))
    y = int(torch.randint(0, 2 * pad + 1, (1,)).item())
    x = int(torch.randint(0, 2 * pad + 1, (1,)).item())
    return np.ascontiguousarray(padded[y : y + h, x : x + w])


def random_hflip(img: np.ndarray, p: float = 0.5) -> np.ndarray:
    """Mirror left-right with probability ``p``."""
    _check_prob("p", p)
    _check_image(img)
    if float(torch.rand(1).item()) < p:
        return np.ascontiguousarray(img[:, ::-1])
    return img


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """``uint8 (H, W, 3)`` -> ``float32 (3, H, W)`` in [0, 1]."""
    _check_image(img)
    arr = np.ascontiguousarray(img)
    if not arr.flags.writeable:  # e.g. np.asarray(PIL image); torch warns on read-only memory
        arr = arr.copy()
    return torch.from_numpy(arr).permute(2, 0, 1).float().div_(255.0)


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """``float (3, H, W)`` in [0, 1] -> ``uint8 (H, W, 3)`` (clipped and rounded)."""
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != 3 or tensor.shape[0] not in (1, 3):
        raise TypeError(f"Expected a (3, H, W) tensor, got {getattr(tensor, 'shape', type(tensor).__name__)}")
    t = tensor.detach().float().cpu()
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    return t.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


class Compose:
    """Apply callables in order: ``Compose([f, g])(x) == g(f(x))``."""

    def __init__(self, fns: list[Callable]) -> None:
        self.fns = list(fns)

    def __call__(self, x):
        for fn in self.fns:
            x = fn(x)
        return x

    def __repr__(self) -> str:
        return f"Compose({self.fns!r})"


def compose(*fns: Callable) -> Compose:
    """``compose(f, g)(x) == g(f(x))``."""
    return Compose(list(fns))
