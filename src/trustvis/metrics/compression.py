"""Image-compression metrics: PSNR, MS-SSIM, bits per pixel, BD-rate / BD-PSNR and RD-point averaging.

Used to compare the neural codecs (EQLINR, Zhang et al., IEEE SPL 2023; COOL-CHIC, Ladune et al., ICCV
2023, arXiv 2212.05458) with JPEG, WebP, AVIF and JPEG 2000 (``specs/codec.md`` §5-§7).

Conventions (fixed here so that every table in trustvis uses the same ones):

- **PSNR** is RGB PSNR: one MSE over all pixels *and* the three channels of one image, in float64,
  ``10 log10(max_val^2 / MSE)``. ``max_val`` is 255 for integer (uint8) inputs and 1 for floating inputs
  (which must then be in [0, 1]), unless given. Identical images give ``inf``.
- **MS-SSIM** is ``pytorch_msssim.ms_ssim`` (Wang et al. 2003: 11-px Gaussian window, sigma 1.5, the five
  standard scale weights) computed on RGB, averaged over channels. *Deviation for small images:* that
  function refuses images whose shorter side is <= 160 px, so for those the number of scales is cut to
  the largest ``n`` whose coarsest scale still holds one window (``short_side / 2^(n-1) >= 11``), the
  first ``n`` standard weights are renormalised to sum to 1, and the same per-scale computation is run
  through pytorch_msssim's internal ``_ssim``. Values on images below 161 px are therefore not comparable
  with published MS-SSIM numbers (which use 5 scales).
- **bpp** = ``8 * n_bytes / (height * width)``: the whole file or bitstream, headers included.
- **BD-rate** (Bjontegaard, VCEG-M33, with PCHIP instead of a cubic fit, as ``specs/codec.md`` §7.2):
  ``log(rate)`` is interpolated as a function of PSNR with a monotone piecewise-cubic Hermite
  interpolant (``scipy.interpolate.PchipInterpolator``) for each curve, both are integrated exactly over
  the PSNR interval the two curves share, and ``BD-rate = exp(mean difference) - 1``, in percent.
  Negative means the test codec needs fewer bits than the anchor for the same quality.
- **BD-PSNR**: PSNR as a function of ``log(rate)``, same interpolation, mean difference in dB over the
  shared log-rate interval; positive means the test codec is better.
- **Averaging per-image RD points** (:func:`average_rd`): at each quality setting, the mean bpp and the
  **mean of the per-image PSNRs** over the images (CompressAI's ``eval_model`` and the C3 / Cool-chic
  tables). The alternative, the PSNR of the mean MSE (``psnr_mode="psnr_of_mean_mse"``), is never larger
  and can change BD-rates by several points (COOL-CHIC v1 vs HM: +17.6 % vs +24.3 %, ``specs/codec.md``
  §7.2); always state which one a table uses.

A BD value that cannot be computed (fewer than 2 points on a curve, or curves that do not overlap) is
``nan``, with a :class:`BDWarning` that says why. Invalid input (non-positive or non-finite rates,
non-finite PSNRs, mismatched lengths, two different rates at the same PSNR) raises ``ValueError``.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch

log = logging.getLogger(__name__)

__all__ = [
    "BDWarning",
    "MSSSIM_WEIGHTS",
    "average_rd",
    "bd_psnr",
    "bd_rate",
    "bpp",
    "ms_ssim",
    "mse",
    "psnr",
    "psnr_from_mse",
]

#: The five standard MS-SSIM scale weights (Wang et al. 2003), finest scale first.
MSSSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_WIN_SIZE = 11


class BDWarning(UserWarning):
    """A BD-rate / BD-PSNR could not be computed; the result is NaN."""


# --------------------------------------------------------------------------------------------------
# distortion


def _as_float64(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _is_float(x: Any) -> bool:
    if isinstance(x, torch.Tensor):
        return x.is_floating_point()
    return np.issubdtype(np.asarray(x).dtype, np.floating)


def _check_pair(x: Any, y: Any) -> None:
    if tuple(x.shape) != tuple(y.shape):
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if _is_float(x) != _is_float(y):
        raise ValueError(
            "x and y must both be integer (uint8, range 0..255) or both floating (range [0, 1]); got one "
            "of each -- convert one of them first (a mixed pair usually means a forgotten /255)"
        )
    if int(np.prod(x.shape)) == 0:
        raise ValueError("x and y are empty")


def mse(x: Any, y: Any) -> float:
    """Mean squared error over every element (pixels and channels), in float64.

    Args:
        x: Image(s): numpy array or torch tensor, any shape.
        y: Same shape and the same kind of dtype (integer or floating) as ``x``.
    """
    _check_pair(x, y)
    d = _as_float64(x) - _as_float64(y)
    return float(np.mean(d * d))


def psnr_from_mse(mse_value: float, max_val: float = 255.0) -> float:
    """``10 log10(max_val^2 / mse)``; ``inf`` for an MSE of 0."""
    if mse_value < 0 or not math.isfinite(mse_value):
        raise ValueError(f"mse must be a finite non-negative number, got {mse_value}")
    if mse_value == 0:
        return math.inf
    return 10.0 * math.log10(max_val * max_val / mse_value)


def psnr(x: Any, y: Any, max_val: float | None = None) -> float:
    """RGB PSNR of one image pair, in dB.

    One MSE is taken over all pixels and channels together (not per channel, not per image of a batch:
    call it once per image and average with :func:`average_rd`).

    Args:
        x: Reference image: a ``uint8`` array (e.g. ``(H, W, 3)``, values 0..255) or a floating array /
            tensor with values in [0, 1] (e.g. ``(3, H, W)``).
        y: Reconstruction, same shape and same kind of dtype (both integer or both floating).
        max_val: Peak value; default 255 for integer inputs and 1.0 for floating inputs.

    Returns:
        PSNR in dB (``inf`` if the images are identical).

    Raises:
        ValueError: Different shapes, an integer/floating mix, or empty inputs.
    """
    _check_pair(x, y)
    if max_val is None:
        max_val = 1.0 if _is_float(x) else 255.0
    return psnr_from_mse(mse(x, y), max_val)


def _to_nchw(x: Any) -> tuple[torch.Tensor, float]:
    """``(1|B, C, H, W)`` float64 tensor and its data range (numpy = channels-last, torch = channels-first)."""
    data_range = 1.0 if _is_float(x) else 255.0
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu().to(torch.float64)
        if t.ndim == 2:
            t = t[None, None]  # (1, 1, H, W)
        elif t.ndim == 3:
            t = t[None]  # (1, C, H, W)
        elif t.ndim != 4:
            raise ValueError(f"torch input must be (H, W), (C, H, W) or (B, C, H, W), got {tuple(t.shape)}")
        return t, data_range
    a = np.asarray(x)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3:
        raise ValueError(f"numpy input must be (H, W) or (H, W, C), got shape {a.shape}")
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)).permute(2, 0, 1)[None]  # (1, C, H, W)
    return t, data_range


def _n_scales(short_side: int) -> int:
    n = 1
    while n < len(MSSSIM_WEIGHTS) and short_side / 2**n >= _WIN_SIZE:
        n += 1
    return n


def ms_ssim(x: Any, y: Any, data_range: float | None = None) -> float:
    """MS-SSIM of one image pair (or the mean over a batch), via ``pytorch_msssim``.

    Numpy inputs are channels-last (``(H, W, 3)`` or ``(H, W)``); torch inputs are channels-first
    (``(3, H, W)`` or ``(B, 3, H, W)``). ``uint8`` inputs use a data range of 255, floating inputs 1.0.
    Images with a shorter side of 161 px or more use the standard 5 scales; smaller ones use fewer
    scales with renormalised weights (see the module docstring).

    Args:
        x: Reference image(s).
        y: Reconstruction(s), same shape and kind of dtype.
        data_range: Override the data range (255 for integer, 1.0 for floating inputs).

    Returns:
        MS-SSIM in [0, 1] (1 for identical images).

    Raises:
        ValueError: Different shapes, an integer/floating mix, bad dimensions, or a shorter side below 11 px.
    """
    import pytorch_msssim

    _check_pair(x, y)
    tx, rng = _to_nchw(x)
    ty, _ = _to_nchw(y)
    rng = float(data_range) if data_range is not None else rng
    short = min(tx.shape[-2:])
    if short < _WIN_SIZE:
        raise ValueError(f"MS-SSIM needs images of at least {_WIN_SIZE} px on the shorter side, got {short}")
    if short > (_WIN_SIZE - 1) * 2**4:
        val = pytorch_msssim.ms_ssim(tx, ty, data_range=rng, size_average=True, win_size=_WIN_SIZE)
        return float(val)
    n = _n_scales(short)
    weights = np.asarray(MSSSIM_WEIGHTS[:n]) / sum(MSSSIM_WEIGHTS[:n])
    log.debug("MS-SSIM on a %d-px image: %d scales, weights %s", short, n, weights.round(4).tolist())
    return _ms_ssim_scales(tx, ty, rng, weights.tolist())


def _ms_ssim_scales(x: torch.Tensor, y: torch.Tensor, data_range: float, weights: list[float]) -> float:
    """pytorch_msssim's multi-scale loop without its 5-scale size check (any number of scales)."""
    import torch.nn.functional as F
    from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim

    win = _fspecial_gauss_1d(_WIN_SIZE, 1.5).to(x.dtype)
    win = win.repeat([x.shape[1]] + [1] * (x.ndim - 1))  # (C, 1, 1, win)
    mcs = []
    for i in range(len(weights)):
        ssim_pc, cs = _ssim(x, y, data_range=data_range, win=win, size_average=False, K=(0.01, 0.03))
        if i < len(weights) - 1:
            mcs.append(torch.relu(cs))  # (B, C)
            pad = [s % 2 for s in x.shape[2:]]
            x = F.avg_pool2d(x, kernel_size=2, padding=pad)  # (B, C, ~H/2, ~W/2)
            y = F.avg_pool2d(y, kernel_size=2, padding=pad)
    stack = torch.stack([*mcs, torch.relu(ssim_pc)], dim=0)  # (levels, B, C)
    w = torch.tensor(weights, dtype=stack.dtype).view(-1, 1, 1)
    return float(torch.prod(stack**w, dim=0).mean())


def bpp(n_bytes: int | float, height: int, width: int) -> float:
    """Bits per pixel: ``8 * n_bytes / (height * width)``.

    Raises:
        ValueError: Non-positive image size or a negative byte count.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive, got {height}x{width}")
    if n_bytes < 0:
        raise ValueError(f"n_bytes must be >= 0, got {n_bytes}")
    return 8.0 * n_bytes / (height * width)


# --------------------------------------------------------------------------------------------------
# Bjontegaard deltas


def _curve(rate: Sequence[float], quality: Sequence[float], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(log_rate, quality)`` arrays of one RD curve, exact duplicate points merged."""
    r = np.asarray(rate, dtype=np.float64).ravel()
    q = np.asarray(quality, dtype=np.float64).ravel()
    if r.shape != q.shape:
        raise ValueError(f"{name}: rate and PSNR must have the same length, got {r.size} and {q.size}")
    if not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise ValueError(f"{name}: rates must be finite and > 0 (log-rate is interpolated), got {r.tolist()}")
    if not np.all(np.isfinite(q)):
        raise ValueError(f"{name}: PSNR values must be finite (drop lossless points), got {q.tolist()}")
    pts = sorted(set(zip(r.tolist(), q.tolist(), strict=True)))  # identical (rate, psnr) pairs merged
    return np.log(np.array([p[0] for p in pts])), np.array([p[1] for p in pts])


def _delta(x_a: np.ndarray, y_a: np.ndarray, x_b: np.ndarray, y_b: np.ndarray, what: str, axis: str) -> float:
    """Mean of ``f_a - f_b`` over the shared x interval, each ``f`` a PCHIP through its points."""
    from scipy.interpolate import PchipInterpolator

    for x, label in ((x_a, "test"), (x_b, "anchor")):
        if x.size < 2:
            warnings.warn(
                f"{what}: the {label} curve has {x.size} distinct point(s); need >= 2", BDWarning, 3
            )
            return math.nan
        if np.any(np.diff(np.sort(x)) == 0):
            raise ValueError(
                f"{what}: the {label} curve has two different points at the same {axis} "
                f"({np.sort(x).tolist()}); drop the dominated one"
            )
    lo, hi = max(x_a.min(), x_b.min()), min(x_a.max(), x_b.max())
    if not hi > lo:
        warnings.warn(
            f"{what}: the curves do not overlap in {axis} (test [{x_a.min():.4g}, {x_a.max():.4g}], "
            f"anchor [{x_b.min():.4g}, {x_b.max():.4g}])",
            BDWarning,
            3,
        )
        return math.nan
    ia, ib = np.argsort(x_a), np.argsort(x_b)
    fa = PchipInterpolator(x_a[ia], y_a[ia])
    fb = PchipInterpolator(x_b[ib], y_b[ib])
    return float((fa.integrate(lo, hi) - fb.integrate(lo, hi)) / (hi - lo))


def bd_rate(
    rate_a: Sequence[float],
    psnr_a: Sequence[float],
    rate_anchor: Sequence[float],
    psnr_anchor: Sequence[float],
) -> float:
    """Bjontegaard delta rate of a test curve against an anchor curve, in percent.

    ``log(rate)`` is a PCHIP function of PSNR for each curve; the mean difference over the shared PSNR
    interval ``d`` gives ``100 * (exp(d) - 1)``. Points may be given in any order.

    Args:
        rate_a: Rates of the test codec (bpp or bytes; any positive unit, the same for both curves).
        psnr_a: Its PSNRs (dB), one per rate.
        rate_anchor: Rates of the anchor codec.
        psnr_anchor: Its PSNRs.

    Returns:
        BD-rate in percent; negative = the test codec needs fewer bits. NaN (with a :class:`BDWarning`)
        if a curve has fewer than 2 distinct points or the PSNR ranges do not overlap.

    Raises:
        ValueError: Non-positive or non-finite rates, non-finite PSNRs, mismatched lengths, or two
            different rates at the same PSNR on one curve.
    """
    lr_a, q_a = _curve(rate_a, psnr_a, "test curve")
    lr_b, q_b = _curve(rate_anchor, psnr_anchor, "anchor curve")
    d = _delta(q_a, lr_a, q_b, lr_b, "BD-rate", "PSNR")
    return d if math.isnan(d) else 100.0 * math.expm1(d)


def bd_psnr(
    rate_a: Sequence[float],
    psnr_a: Sequence[float],
    rate_anchor: Sequence[float],
    psnr_anchor: Sequence[float],
) -> float:
    """Bjontegaard delta PSNR (dB) of a test curve against an anchor: positive = the test codec is better.

    PSNR is a PCHIP function of ``log(rate)`` for each curve; the result is the mean difference over the
    shared log-rate interval. Arguments, NaN cases and errors as in :func:`bd_rate`.
    """
    lr_a, q_a = _curve(rate_a, psnr_a, "test curve")
    lr_b, q_b = _curve(rate_anchor, psnr_anchor, "anchor curve")
    return _delta(lr_a, q_a, lr_b, q_b, "BD-PSNR", "log-rate")


# --------------------------------------------------------------------------------------------------
# averaging over images

PsnrMode = Literal["mean_psnr", "psnr_of_mean_mse"]
PSNR_MODES: tuple[str, ...] = ("mean_psnr", "psnr_of_mean_mse")


def average_rd(
    points: Sequence[Mapping[str, Any]],
    key: str = "quality",
    psnr_mode: PsnrMode = "mean_psnr",
) -> list[dict[str, Any]]:
    """Average per-image RD points at matched settings into one dataset curve.

    Each point is a mapping with ``"image"`` (name), ``key`` (the setting: a quality, lambda, ...),
    ``"bpp"`` and ``"psnr"``; an optional ``"ms_ssim"`` is averaged too (arithmetic mean) when every
    point has it. Every setting must cover the same set of images, each once.

    Args:
        points: Per-image points, in any order.
        key: Name of the field that identifies the setting.
        psnr_mode: ``"mean_psnr"`` (default; the mean of per-image PSNRs, as CompressAI and the C3 /
            Cool-chic tables) or ``"psnr_of_mean_mse"`` (PSNR of the mean per-image MSE, computed as
            ``-10 log10(mean(10^(-psnr_i / 10)))``, which does not depend on the peak value).

    Returns:
        One dict per setting, sorted by mean bpp: ``{key, "bpp", "psnr", "n_images"[, "ms_ssim"],
        "psnr_mode"}``.

    Raises:
        ValueError: Unknown ``psnr_mode``, missing fields, duplicate (image, setting) pairs, settings that
            do not cover the same images, or infinite PSNRs with ``psnr_of_mean_mse``.
    """
    if psnr_mode not in PSNR_MODES:
        raise ValueError(f"Unknown psnr_mode {psnr_mode!r}; choose from {list(PSNR_MODES)}")
    if not points:
        raise ValueError("average_rd: no points given")
    groups: dict[Any, dict[str, Mapping[str, Any]]] = {}
    for p in points:
        missing = [k for k in ("image", key, "bpp", "psnr") if k not in p]
        if missing:
            raise ValueError(f"average_rd: point {dict(p)} lacks the field(s) {missing}")
        g = groups.setdefault(p[key], {})
        if p["image"] in g:
            raise ValueError(f"average_rd: image {p['image']!r} appears twice at {key}={p[key]!r}")
        g[p["image"]] = p
    images = None
    for setting, g in groups.items():
        if images is None:
            images, first = set(g), setting
        elif set(g) != images:
            raise ValueError(
                f"average_rd: {key}={setting!r} covers images {sorted(map(str, g))} but {key}={first!r} covers "
                f"{sorted(map(str, images))}; average only over matched images"
            )
    with_ssim = all("ms_ssim" in p for p in points)
    out = []
    for setting, g in groups.items():
        ps = np.array([float(p["psnr"]) for p in g.values()])
        row: dict[str, Any] = {key: setting, "bpp": float(np.mean([float(p["bpp"]) for p in g.values()]))}
        if psnr_mode == "mean_psnr":
            row["psnr"] = float(np.mean(ps))
        else:
            if not np.all(np.isfinite(ps)):
                raise ValueError(f"average_rd: psnr_of_mean_mse needs finite PSNRs, got {ps.tolist()}")
            row["psnr"] = float(-10.0 * np.log10(np.mean(10.0 ** (-ps / 10.0))))
        if with_ssim:
            row["ms_ssim"] = float(np.mean([float(p["ms_ssim"]) for p in g.values()]))
        row["n_images"] = len(g)
        row["psnr_mode"] = psnr_mode
        out.append(row)
    return sorted(out, key=lambda r: r["bpp"])
