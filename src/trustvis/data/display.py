"""Display + phone camera + Time-of-Flight simulator: the spoof pairs of RecaptureBench.

mToFNet ("mToFNet: Object Anti-Spoofing with Mobile Time-of-Flight Data", Jeong et al., WACV 2022,
arXiv 2110.04066) detects a product photo that was re-photographed from a screen, from the RGB image and
the phone's ToF depth map. Its mToF dataset (16 real displays) is not published, so RecaptureBench shows real
photos on *simulated* displays and re-photographs them with a simulated phone. This module is that
simulator, in numpy/scipy/Pillow only. Every random choice comes from the ``numpy.random.Generator``
passed in, in a fixed order, so a seed fixes a capture.

What is simulated::

    content uint8 (h, w, 3) ─► crop to the screen's aspect, resize to the display's native pixel grid
        │                      (n_rows, n_cols), display EOTF v**gamma, white-point gains, brightness,
        │                      matte (anti-glare) diffusion blur            = linear emission per pixel
        ▼
    camera rays (S*k)**2 ─► intersect the screen (plane, or cylinder when curvature != 0) at a random pose
        │                   ─► screen coordinates (m) ─► display pixel (u, v) = screen / pixel size
        │     on screen: emission[v, u] x subpixel_tile(layout)[frac(v), frac(u)] (tile pre-filtered by
        │                the ray's footprint and the matte blur)
        │     on bezel : dark frame in the same plane; beyond it: a textured wall 0.3-1.5 m behind
        ▼
    pixel integration (mean of k x k rays) + glare (smooth specular blobs, veil) ─► optical blur
        ─► shot + read noise ─► sRGB encode ─► JPEG (Pillow)                    = Capture.rgb (S, S, 3)
    ray hit depth Z (mean of k x k) ─► tof_sensor: median block-reduce (tof_scale), noise ~ Z**2,
        random + blob holes, nearest up-sampling                              = Capture.depth (S, S)

:func:`capture_real` runs a real RGB-D crop through the same camera (mild perspective jitter, the same
k x k pixel integration, blur, noise, JPEG ranges, the same :func:`tof_sensor`), so that only the display
differs between a real and a spoof sample.

Parameter choices:

- ``DisplayType.pitch`` is the display pixel pitch *in camera pixels* at the screen centre. Our camera
  renders S = 64 px (a phone photo already down-scaled to the mToF 180 px resolution would be similar),
  so a physical pixel size would be meaningless; the implied size ``pitch * distance / focal`` is recorded
  in ``meta["pixel_size_m"]``. Pitches near or below 1-2 px alias on the camera grid into moire (beat
  frequency ``|1/pitch - round(1/pitch)|`` cycles per pixel); coarse pitches (TV, CRT) resolve the sub-pixel
  grid ("screen door").
- Sub-pixel layouts (:data:`SUBPIXEL_LAYOUTS`) are drawn as rectangles, disks and diamonds with black
  matrix gaps, rasterised with 8 x 8 area sampling per tile sample, each channel normalised to unit mean.
- Pixel integration: each of the k x k rays of a camera pixel reads the sub-pixel tile pre-filtered by a
  Gaussian of sigma = half the ray spacing (at the screen centre), so the k x k mean approximates the box
  integral of a 100 % fill-factor pixel without aliasing the sub-pixel harmonics on the ray grid. Moire
  thus comes from the camera's sampling, not from a painted pattern.
- Display gamma 1.8-2.8, white-point gains (bluish phones, warm TVs, +-2 % unit jitter), brightness
  relative to the camera's auto-exposure 0.65-1.1 (a bright screen may clip). LCD black level is 0.
- Glare: one or two Gaussian specular blobs (glare x U(0.15, 1), widened by the matte blur) plus a
  uniform veil (glare x U(0, 0.12)), in linear light, on the part of the pixel covered by screen or bezel.
- Camera: horizontal FOV 60 deg, blur sigma 0.3-0.8 px applied after integration (it stands for the lens,
  demosaicking and the down-scaling of a phone photo, hence after sampling: moire survives it as on real
  phones), read noise 0.005-0.02 plus shot noise of variance ``read_noise / 20 * signal``, JPEG 75-95
  with 4:2:0 chroma. The real path also draws an exposure gain U(0.85, 1.1).
- ToF: 4x coarser than RGB, noise ``0.004 m * Z**2`` per ToF pixel, exactly ``round(tof_holes * n)``
  extra holes (half as 3 x 3 blobs, half single pixels); depth is the Z of the ray hit, averaged over the
  k x k rays, so pixels across the bezel edge mix screen and wall depth (ToF "flying pixels").
- Pose: distance 0.15-0.6 m, tilt +-25 deg about x and y, roll +-10 deg; the screen covers the view
  (margin 3-15 %), except with probability ``bezel_prob`` where one side (or a corner) of the screen
  shows its bezel and the wall behind.

What it cannot show (honest limits):

- No real optics: no lens distortion, vignetting, chromatic aberration, defocus by depth, or the lens PSF
  before the pixel (blur is applied after integration); no Bayer mosaic / demosaicking artefacts, no ISP
  sharpening or denoising; noise is i.i.d. per pixel and channel.
- No rolling shutter, no display refresh/PWM flicker banding, no polariser effects (LCD polarisation vs the
  phone's lens), no viewing-angle colour/contrast shift of LCDs, no LCD black-level leak or backlight
  bleed, no local dimming, no screen-door diffraction, no CRT scanlines or phosphor persistence.
- Glare is a smooth blob, not a reflection of a real room; the "wall" behind the bezel is a smooth
  fronto-parallel texture; the bezel is a flat dark band with no device body or hand around it.
- ToF: no multipath (a glossy screen's specular return), no intensity-dependent noise or dark/saturated
  dropouts, no phase wrapping, no on-device refinement; holes are uniformly placed, not at edges or on
  dark or specular surfaces. Curvature is cylindrical only (a CRT's spherical bulge is approximated by a
  convex cylinder; at strong tilt its silhouette can leave a view corner to the wall, ~6 % of captures).
- Pitch in camera pixels and distances in metres are independent knobs, so screen size and distance are
  not physically tied (a phone screen "fills" the view at 0.6 m). The spoof distances (0.15-0.6 m) are
  set here; the real scenes' depth ranges come from their sensors, so a benchmark must not let the depth
  range alone decide.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

__all__ = [
    "SUBPIXEL_LAYOUTS",
    "layout_period",
    "subpixel_tile",
    "DisplayType",
    "DISPLAY_TYPES",
    "CameraConfig",
    "Capture",
    "capture_spoof",
    "capture_real",
    "tof_sensor",
    "display_radiance",
    "SPOOF_OVERRIDES",
    "REAL_OVERRIDES",
]

# ---------------------------------------------------------------------------------------------------------
# Sub-pixel layouts
# ---------------------------------------------------------------------------------------------------------

# A shape is (channel, kind, cx, cy, a, b) in display-pixel units inside one period of the layout:
# "rect" with half-width a and half-height b, "disk" of radius a, "diamond" with |dx| + |dy| <= a.
# Shapes wrap around the period, so a layout is exactly periodic.
_Shape = tuple[int, str, float, float, float, float]


def _stripes(order: tuple[int, int, int], vertical: bool) -> tuple[tuple[int, int], list[_Shape]]:
    # Three sub-pixels of 0.27 px across (81 % aperture) and 0.90 px along the stripe.
    shapes = []
    for i, ch in enumerate(order):
        c = (i + 0.5) / 3.0
        shapes.append((ch, "rect", 0.5, c, 0.45, 0.135) if vertical else (ch, "rect", c, 0.5, 0.135, 0.45))
    return (1, 1), shapes


def _pentile_rgbg() -> tuple[tuple[int, int], list[_Shape]]:
    # Each pixel: a large red or blue sub-pixel (checkerboard) and a narrow green one.
    shapes: list[_Shape] = []
    for r in range(2):
        for c in range(2):
            rb = 0 if (r + c) % 2 == 0 else 2
            shapes.append((rb, "rect", c + 0.30, r + 0.5, 0.24, 0.42))
            shapes.append((1, "rect", c + 0.80, r + 0.5, 0.12, 0.36))
    return (2, 2), shapes


def _pentile_diamond() -> tuple[tuple[int, int], list[_Shape]]:
    # Samsung "diamond pixel": red and blue diamonds on a checkerboard, small round greens between them.
    shapes: list[_Shape] = []
    for r in range(2):
        for c in range(2):
            rb = 0 if (r + c) % 2 == 0 else 2
            shapes.append((rb, "diamond", c + 0.30, r + 0.5, 0.30 if rb == 2 else 0.26, 0.0))
            shapes.append((1, "disk", c + 0.78, r + (0.28 if c % 2 == 0 else 0.72), 0.15, 0.0))
    return (2, 2), shapes


def _delta() -> tuple[tuple[int, int], list[_Shape]]:
    # Shadow-mask triads: R, G on top, B below, every other row shifted by half a pixel.
    shapes: list[_Shape] = []
    for r in range(2):
        s = 0.5 * r
        shapes += [
            (0, "disk", s + 0.25, r + 0.28, 0.21, 0.0),
            (1, "disk", s + 0.75, r + 0.28, 0.21, 0.0),
            (2, "disk", s + 0.50, r + 0.74, 0.21, 0.0),
        ]
    return (2, 1), shapes


_LAYOUTS: dict[str, tuple[tuple[int, int], list[_Shape]]] = {
    "rgb-stripe": _stripes((0, 1, 2), vertical=False),
    "bgr-stripe": _stripes((2, 1, 0), vertical=False),
    "hstripe": _stripes((0, 1, 2), vertical=True),
    "pentile-rgbg": _pentile_rgbg(),
    "pentile-diamond": _pentile_diamond(),
    "delta": _delta(),
}
SUBPIXEL_LAYOUTS: tuple[str, ...] = tuple(_LAYOUTS)


def _check_layout(layout: str) -> None:
    if layout not in _LAYOUTS:
        raise ValueError(f"Unknown subpixel layout {layout!r}; choose from {list(SUBPIXEL_LAYOUTS)}")


def layout_period(layout: str) -> tuple[int, int]:
    """(rows, cols) of display pixels in one period of ``layout`` (1 x 1 for stripes, 2 x 2 for PenTile)."""
    _check_layout(layout)
    return _LAYOUTS[layout][0]


@lru_cache(maxsize=64)
def _tile_cached(layout: str, samples: int) -> np.ndarray:
    (rows, cols), shapes = _LAYOUTS[layout]
    over = 8  # area samples per tile sample side
    ys = (np.arange(rows * samples * over) + 0.5) / (samples * over)  # (R*s*o,) display px
    xs = (np.arange(cols * samples * over) + 0.5) / (samples * over)  # (C*s*o,)
    tile = np.zeros((rows * samples, cols * samples, 3), np.float64)
    for ch, kind, cx, cy, a, b in shapes:
        dx = np.abs((xs - cx + cols / 2) % cols - cols / 2)[None, :]  # (1, C*s*o) wrapped distance
        dy = np.abs((ys - cy + rows / 2) % rows - rows / 2)[:, None]  # (R*s*o, 1)
        if kind == "rect":
            inside = (dx <= a) & (dy <= b)
        elif kind == "disk":
            inside = dx**2 + dy**2 <= a**2
        else:  # diamond
            inside = dx + dy <= a
        cover = inside.reshape(rows * samples, over, cols * samples, over).mean(axis=(1, 3))  # (R*s, C*s)
        tile[..., ch] += cover
    tile /= tile.mean(axis=(0, 1), keepdims=True)  # unit mean per channel: a white screen keeps its level
    tile.setflags(write=False)
    return tile.astype(np.float32)


def subpixel_tile(layout: str, samples: int) -> np.ndarray:
    """Emission of each colour over one period of ``layout``.

    Args:
        layout: One of :data:`SUBPIXEL_LAYOUTS`.
        samples: Sub-samples per display pixel side (area-averaged, so any value works).

    Returns:
        ``float32 (rows*samples, cols*samples, 3)``; each channel's mean over the tile is 1, so a white image
        keeps unit mean luminance per channel and the tile only redistributes light.
    """
    _check_layout(layout)
    if int(samples) < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    return _tile_cached(layout, int(samples)).copy()


# ---------------------------------------------------------------------------------------------------------
# Display types and camera
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DisplayType:
    """A family of displays; ranges are sampled uniformly per capture.

    Attributes:
        name: Registry name.
        layout: Sub-pixel layout, one of :data:`SUBPIXEL_LAYOUTS`.
        pitch: Display pixel pitch in camera pixels at the screen centre (near/below 1-2 px: moire).
        gamma: Display EOTF exponent range.
        white: RGB gains of the white point (bluish phones > 1 in blue, warm TVs < 1).
        brightness: Screen white relative to the camera's exposure (> 1 clips).
        glare: Strength of specular reflections of room lights (glossy high, matte low).
        matte: Anti-glare diffusion blur sigma, in display pixels.
        curvature: 1/m; > 0 concave (curved TV, edges toward the viewer), < 0 convex (CRT), cylindrical.
        bezel: Bezel width range in metres.
        description: What real display it is modelled on.
    """

    name: str
    layout: str
    pitch: tuple[float, float]
    gamma: tuple[float, float]
    white: tuple[float, float, float]
    brightness: tuple[float, float]
    glare: float
    matte: float
    curvature: float = 0.0
    bezel: tuple[float, float] = (0.003, 0.012)
    description: str = ""


def _types(*types: DisplayType) -> dict[str, DisplayType]:
    return {t.name: t for t in types}


DISPLAY_TYPES: dict[str, DisplayType] = _types(
    DisplayType(
        name="phone-oled-diamond", layout="pentile-diamond", pitch=(0.7, 1.5), gamma=(2.1, 2.3),
        white=(0.92, 1.0, 1.12), brightness=(0.8, 1.1), glare=0.35, matte=0.0, bezel=(0.001, 0.004),
        description="flagship OLED phone: diamond PenTile, glossy, cool white (Galaxy S20U, iPhone 11 Pro)",
    ),
    DisplayType(
        name="phone-oled-pentile", layout="pentile-rgbg", pitch=(0.8, 1.8), gamma=(2.0, 2.2),
        white=(0.95, 1.0, 1.08), brightness=(0.75, 1.05), glare=0.3, matte=0.0, bezel=(0.002, 0.005),
        description="OLED phone with RGBG PenTile stripes (older and mid-range AMOLED phones)",
    ),
    DisplayType(
        name="phone-lcd-stripe", layout="rgb-stripe", pitch=(0.8, 1.8), gamma=(2.2, 2.4),
        white=(0.96, 1.0, 1.06), brightness=(0.7, 1.0), glare=0.3, matte=0.0, bezel=(0.003, 0.008),
        description="LCD phone, RGB stripe, glossy",
    ),
    DisplayType(
        name="tablet-lcd-stripe", layout="rgb-stripe", pitch=(1.0, 2.2), gamma=(2.1, 2.3),
        white=(0.97, 1.0, 1.04), brightness=(0.7, 1.0), glare=0.3, matte=0.05, bezel=(0.006, 0.015),
        description="LCD tablet, RGB stripe, glossy (iPad 6th gen)",
    ),
    DisplayType(
        name="tablet-oled-pentile", layout="pentile-rgbg", pitch=(1.0, 2.0), gamma=(1.9, 2.1),
        white=(0.90, 1.0, 1.12), brightness=(0.8, 1.1), glare=0.3, matte=0.0, bezel=(0.005, 0.010),
        description="OLED tablet, RGBG PenTile, saturated and bluish (Galaxy Tab S)",
    ),
    DisplayType(
        name="laptop-matte-lcd", layout="rgb-stripe", pitch=(1.4, 2.8), gamma=(2.2, 2.5),
        white=(1.0, 1.0, 0.97), brightness=(0.65, 0.9), glare=0.08, matte=0.35, bezel=(0.004, 0.010),
        description="matte anti-glare laptop LCD, RGB stripe, dimmer (Lenovo Legion 5)",
    ),
    DisplayType(
        name="imac-glossy-stripe", layout="rgb-stripe", pitch=(0.9, 2.0), gamma=(2.1, 2.3),
        white=(0.98, 1.0, 1.03), brightness=(0.75, 1.05), glare=0.4, matte=0.0, bezel=(0.008, 0.020),
        description="glossy all-in-one desktop LCD, RGB stripe (iMac)",
    ),
    DisplayType(
        name="monitor-bgr-stripe", layout="bgr-stripe", pitch=(1.4, 2.8), gamma=(2.2, 2.4),
        white=(1.0, 1.0, 1.0), brightness=(0.7, 1.0), glare=0.15, matte=0.25, bezel=(0.008, 0.020),
        description="semi-matte desktop monitor with BGR sub-pixel order (LG LCD)",
    ),
    DisplayType(
        name="monitor-hstripe", layout="hstripe", pitch=(1.5, 3.0), gamma=(2.2, 2.4),
        white=(1.0, 1.0, 0.98), brightness=(0.7, 1.0), glare=0.12, matte=0.25, bezel=(0.008, 0.020),
        description="monitor rotated to portrait: RGB stripes stacked vertically",
    ),
    DisplayType(
        name="curved-led-tv", layout="rgb-stripe", pitch=(1.5, 3.0), gamma=(2.3, 2.6),
        white=(1.06, 1.0, 0.88), brightness=(0.8, 1.1), glare=0.2, matte=0.15, curvature=1 / 1.8,
        bezel=(0.005, 0.015),
        description="curved 1800R LED TV, warm white, coarse pitch (Samsung curved LED)",
    ),
    DisplayType(
        name="crt-delta", layout="delta", pitch=(1.8, 3.2), gamma=(2.4, 2.8),
        white=(1.0, 0.97, 0.90), brightness=(0.65, 0.95), glare=0.45, matte=0.3, curvature=-0.5,
        bezel=(0.015, 0.030),
        description="shadow-mask CRT: delta triads, glowing phosphor (matte blur), convex glass (R = 2 m)",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class CameraConfig:
    """The phone camera and its ToF sensor; ranges are sampled uniformly per capture."""

    size: int = 64
    supersample: int = 3
    fov_deg: float = 60.0
    blur: tuple[float, float] = (0.3, 0.8)
    noise: tuple[float, float] = (0.005, 0.02)
    jpeg: tuple[int, int] = (75, 95)
    tof_scale: int = 4
    tof_noise: float = 0.004
    tof_holes: float = 0.02
    distance: tuple[float, float] = (0.15, 0.6)
    tilt_deg: float = 25.0
    roll_deg: float = 10.0
    bezel_prob: float = 0.3


@dataclass
class Capture:
    """One simulated photo: ``rgb uint8 (S, S, 3)``, ``depth float32 (S, S)`` metres (0 = hole), ``meta``."""

    rgb: np.ndarray
    depth: np.ndarray
    meta: dict = field(default_factory=dict)


# Keys ``capture_spoof(..., overrides=)`` / ``capture_real(..., overrides=)`` accept: they pin a value that
# is otherwise drawn (the draw still happens, so the other values stay those of the seed).
SPOOF_OVERRIDES = (
    "distance", "tilt_x", "tilt_y", "roll", "pitch", "gamma", "brightness", "bezel", "bezel_width",
    "background_distance", "glare", "veil", "blur", "noise", "jpeg",
)  # fmt: skip
REAL_OVERRIDES = ("roll", "jitter", "blur", "noise", "jpeg", "exposure")
_BEZEL_SIDES = ("left", "right", "top", "bottom")
_CORNERS = (("left", "top"), ("right", "top"), ("left", "bottom"), ("right", "bottom"))
_TILE_SAMPLES = 12  # tile samples per display pixel side in the capture path
_EXPOSURE = (0.85, 1.1)  # camera exposure gain of real captures
_JITTER = 0.04  # max corner displacement of the real path's homography, fraction of the side


def _check_range(name: str, r: tuple[float, ...], lo: float = 0.0, hi: float = math.inf) -> None:
    if len(r) != 2 or not (lo <= r[0] <= r[1] <= hi):
        raise ValueError(f"{name} must be an ordered (low, high) range within [{lo}, {hi}], got {r}")


def _check_display(d: DisplayType) -> None:
    _check_layout(d.layout)
    _check_range(f"{d.name}.pitch", d.pitch, 1e-3)
    _check_range(f"{d.name}.gamma", d.gamma, 0.5, 4.0)
    _check_range(f"{d.name}.brightness", d.brightness, 1e-3)
    _check_range(f"{d.name}.bezel", d.bezel, 0.0)
    if len(d.white) != 3 or min(d.white) <= 0:
        raise ValueError(f"{d.name}.white must be three positive gains, got {d.white}")
    if d.glare < 0 or d.matte < 0:
        raise ValueError(f"{d.name}: glare and matte must be >= 0, got {d.glare}, {d.matte}")


def _check_camera(cam: CameraConfig) -> None:
    if cam.size < 4 or cam.supersample < 1 or cam.tof_scale < 1 or cam.size % cam.tof_scale:
        raise ValueError(
            f"CameraConfig: size ({cam.size}) must be >= 4 and a multiple of tof_scale ({cam.tof_scale}); "
            f"supersample ({cam.supersample}) >= 1"
        )
    if not 0 < cam.fov_deg < 170:
        raise ValueError(f"CameraConfig.fov_deg must be in (0, 170), got {cam.fov_deg}")
    _check_range("CameraConfig.blur", cam.blur, 0.0)
    _check_range("CameraConfig.noise", cam.noise, 0.0)
    _check_range("CameraConfig.jpeg", cam.jpeg, 1, 100)
    _check_range("CameraConfig.distance", cam.distance, 1e-3)
    if not (0 <= cam.tof_holes < 1 and cam.tof_noise >= 0 and 0 <= cam.bezel_prob <= 1):
        raise ValueError("CameraConfig: tof_holes in [0, 1), tof_noise >= 0, bezel_prob in [0, 1]")


def _check_overrides(overrides: Mapping[str, Any] | None, valid: tuple[str, ...]) -> dict[str, Any]:
    out = dict(overrides or {})
    bad = sorted(set(out) - set(valid))
    if bad:
        raise ValueError(f"Unknown override(s) {bad}; choose from {list(valid)}")
    return out


def _check_rgb(img: np.ndarray, name: str) -> np.ndarray:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        desc = f"{type(img).__name__} {getattr(img, 'dtype', '')} {getattr(img, 'shape', '')}"
        raise TypeError(f"{name} must be a uint8 numpy array of shape (H, W, 3), got {desc}")
    if min(img.shape[:2]) < 2:
        raise ValueError(f"{name} must be at least 2 x 2 pixels, got {img.shape}")
    return img


# ---------------------------------------------------------------------------------------------------------
# Colour
# ---------------------------------------------------------------------------------------------------------


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def _emission(content: np.ndarray, gamma: float, white: np.ndarray, brightness: float) -> np.ndarray:
    """uint8 (h, w, 3) frame -> float32 (h, w, 3) linear light the display emits per pixel."""
    lut = (np.arange(256) / 255.0) ** gamma  # (256,) the display's EOTF on 8-bit input
    return (lut[content] * (white * brightness)).astype(np.float32)  # (h, w, 3)


def display_radiance(
    content: np.ndarray,
    display: DisplayType,
    samples: int = 8,
    gamma: float | None = None,
    white: tuple[float, float, float] | None = None,
    brightness: float | None = None,
) -> np.ndarray:
    """The emitted linear-light image of the screen showing ``content`` at its native resolution.

    Each content pixel is one display pixel; its emission (display gamma, white point, brightness) is
    multiplied by the sub-pixel tile and blurred by the matte diffusion (``display.matte`` display px).

    Args:
        content: ``uint8 (h, w, 3)`` frame, one value per display pixel.
        display: The display type.
        samples: Sub-samples per display pixel side.
        gamma, white, brightness: Default to the middle of the display's ranges / its white point.

    Returns:
        ``float32 (h*samples, w*samples, 3)``.
    """
    _check_rgb(content, "content")
    _check_display(display)
    s = int(samples)
    g = float(np.mean(display.gamma)) if gamma is None else float(gamma)
    w = np.asarray(display.white if white is None else white, np.float64)
    b = float(np.mean(display.brightness)) if brightness is None else float(brightness)
    h, wd = content.shape[:2]
    lin = _emission(content, g, w, b)  # (h, w, 3)
    tile = subpixel_tile(display.layout, s)  # (rows*s, cols*s, 3)
    reps = (-(-h * s // tile.shape[0]), -(-wd * s // tile.shape[1]), 1)
    pattern = np.tile(tile, reps)[: h * s, : wd * s]  # (h*s, w*s, 3)
    out = np.repeat(np.repeat(lin, s, axis=0), s, axis=1) * pattern  # (h*s, w*s, 3)
    if display.matte > 0:
        out = gaussian_filter(out, sigma=(display.matte * s, display.matte * s, 0), mode="nearest")
    return out.astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# Camera geometry
# ---------------------------------------------------------------------------------------------------------


def _focal(cam: CameraConfig) -> float:
    return cam.size / 2 / math.tan(math.radians(cam.fov_deg) / 2)


@lru_cache(maxsize=16)
def _ray_grid(size: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Sub-sample positions in pixels from the image centre: x, y float64 (size*k, size*k)."""
    c = (np.arange(size * k) + 0.5) / k - size / 2  # (S*k,)
    y, x = np.meshgrid(c, c, indexing="ij")  # (S*k, S*k)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _rotation(tilt_x: float, tilt_y: float, roll: float) -> np.ndarray:
    """Screen axes in camera coordinates (columns: screen x, screen y, normal): Rx(tilt_x) Ry(tilt_y) Rz(roll)."""
    a, b, c = (math.radians(v) for v in (tilt_x, tilt_y, roll))
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rx @ ry @ rz


def _intersect(
    dx: np.ndarray, dy: np.ndarray, rot: np.ndarray, distance: float, curvature: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rays (dx, dy, 1) from the camera centre against the screen centred at (0, 0, distance).

    Returns Z (metres along the optical axis, inf on a miss) and screen coordinates su (arc length along
    screen x), sv (along screen y), in metres from the screen centre; all shaped like ``dx``.
    """
    centre = np.array([0.0, 0.0, distance])
    # local frame: o + t * d, with o = R^T (0 - C), d = R^T (dx, dy, 1)
    o = -rot.T @ centre  # (3,)
    d0 = rot[0, 0] * dx + rot[1, 0] * dy + rot[2, 0]  # local x component of the direction
    d1 = rot[0, 1] * dx + rot[1, 1] * dy + rot[2, 1]
    d2 = rot[0, 2] * dx + rot[1, 2] * dy + rot[2, 2]
    if curvature == 0:
        with np.errstate(divide="ignore"):
            t = np.where(d2 > 1e-9, -o[2] / np.where(d2 > 1e-9, d2, 1.0), np.inf)
        return t, o[0] + t * d0, o[1] + t * d1
    # cylinder with axis along local y through (x=0, z=zc), radius rc; surface passes through the centre
    rc, zc = 1.0 / abs(curvature), -1.0 / curvature
    a = d0**2 + d2**2
    b = 2 * (o[0] * d0 + (o[2] - zc) * d2)
    c = o[0] ** 2 + (o[2] - zc) ** 2 - rc**2
    disc = b**2 - 4 * a * c
    sq = np.sqrt(np.maximum(disc, 0.0))
    best_t = np.full(dx.shape, np.inf)
    best_z = np.full(dx.shape, np.inf)
    for t in ((-b - sq) / (2 * a), (-b + sq) / (2 * a)):
        z = np.abs(o[2] + t * d2)  # the front sheet has local z near 0, the back sheet near 2 zc
        take = (disc >= 0) & (t > 0) & (z < best_z)
        best_t = np.where(take, t, best_t)
        best_z = np.where(take, z, best_z)
    xl = o[0] + best_t * d0
    su = np.arcsin(np.clip(xl * abs(curvature), -1, 1)) / abs(curvature)
    return best_t, su, o[1] + best_t * d1


# ---------------------------------------------------------------------------------------------------------
# Camera pipeline shared by real and spoof captures
# ---------------------------------------------------------------------------------------------------------


def _integrate(img: np.ndarray, size: int, k: int) -> np.ndarray:
    """(S*k, S*k, ...) sub-samples -> (S, S, ...) pixel means."""
    return img.reshape(size, k, size, k, *img.shape[2:]).mean(axis=(1, 3))


def _draw_camera(rng: np.random.Generator, cam: CameraConfig, ov: dict[str, Any]) -> dict[str, Any]:
    blur = float(rng.uniform(*cam.blur))
    noise = float(rng.uniform(*cam.noise))
    q = int(rng.integers(cam.jpeg[0], cam.jpeg[1] + 1))
    out = {"blur": blur, "noise": noise, "jpeg": q}
    for key in out:
        if key in ov:
            out[key] = ov[key]
    return out


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality), subsampling="4:2:0")
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _camera(lin: np.ndarray, rng: np.random.Generator, p: dict[str, Any]) -> np.ndarray:
    """Linear radiance (S, S, 3) at the sensor -> uint8 (S, S, 3) photo: blur, noise, sRGB, JPEG."""
    if p["blur"] > 0:
        lin = gaussian_filter(lin, sigma=(p["blur"], p["blur"], 0), mode="nearest")
    n = rng.standard_normal(lin.shape, dtype=np.float32)  # (S, S, 3)
    shot_gain = p["noise"] / 20.0  # shot-noise variance per unit signal
    std = np.sqrt(p["noise"] ** 2 + shot_gain * np.clip(lin, 0, None))  # (S, S, 3)
    u8 = np.rint(_linear_to_srgb(lin + std * n) * 255).astype(np.uint8)  # (S, S, 3)
    return u8 if p["jpeg"] is None else _jpeg(u8, p["jpeg"])


# ---------------------------------------------------------------------------------------------------------
# ToF sensor
# ---------------------------------------------------------------------------------------------------------


def _block_median(depth: np.ndarray, f: int) -> np.ndarray:
    """Median of the valid (> 0) values of each f x f block; 0 where a block has none."""
    h, w = depth.shape
    blocks = depth.reshape(h // f, f, w // f, f).transpose(0, 2, 1, 3).reshape(h // f, w // f, f * f)
    valid = blocks > 0  # (h/f, w/f, f*f)
    srt = np.sort(np.where(valid, blocks, np.inf), axis=-1)
    n = valid.sum(-1)  # (h/f, w/f)
    lo = np.take_along_axis(srt, np.maximum((n - 1) // 2, 0)[..., None], -1)[..., 0]
    hi = np.take_along_axis(srt, np.minimum(n // 2, f * f - 1)[..., None], -1)[..., 0]
    return np.where(n > 0, (lo + hi) / 2, 0.0)


def tof_sensor(depth: np.ndarray, rng: np.random.Generator, cam: CameraConfig = CameraConfig()) -> np.ndarray:
    """A phone ToF sensor looking at ``depth``: coarse, noisy, with holes.

    ``depth`` float (H, W) metres, 0 (or non-finite, or negative) = no return; H and W multiples of
    ``cam.tof_scale``. Each ``tof_scale`` block becomes the median of its valid values, gets Gaussian noise
    of std ``tof_noise * Z**2``, exactly ``round(tof_holes * n_blocks)`` further blocks are dropped (half as
    small 3 x 3 blobs, the rest single blocks), and the result is up-sampled back by nearest neighbour.

    Returns:
        ``float32 (H, W)`` metres, 0 = hole.
    """
    depth = np.asarray(depth, dtype=np.float64)
    f = int(cam.tof_scale)
    if depth.ndim != 2 or depth.shape[0] % f or depth.shape[1] % f or min(depth.shape) < f:
        raise ValueError(
            f"depth must be 2-D with sides that are multiples of tof_scale={f}, got {depth.shape}"
        )
    depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0.0)
    z = _block_median(depth, f)  # (H/f, W/f)
    h, w = z.shape
    n = rng.standard_normal(z.shape)  # (H/f, W/f)
    z = np.where(z > 0, np.maximum(z + cam.tof_noise * z**2 * n, 1e-3), 0.0)
    # holes: blobs until half the budget, then single blocks up to it
    target = round(cam.tof_holes * h * w)
    nb = int(target // 2 // 5)  # a blob drops ~5 blocks on average
    cy, cx = rng.integers(0, h, nb), rng.integers(0, w, nb)  # (nb,) blob centres
    keep = rng.random((nb, 3, 3)) < 0.45  # (nb, 3, 3) which neighbours a blob covers
    keep[:, 1, 1] = True
    holes = np.zeros((h, w), bool)
    oy, ox = np.mgrid[-1:2, -1:2]  # (3, 3)
    yy, xx = cy[:, None, None] + oy, cx[:, None, None] + ox  # (nb, 3, 3)
    inb = keep & (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    holes[yy[inb], xx[inb]] = True
    free = np.flatnonzero(~holes)
    rest = max(target - int(holes.sum()), 0)
    holes.flat[free[rng.permutation(free.size)[:rest]]] = True
    z = np.where(holes, 0.0, z)
    return np.repeat(np.repeat(z, f, axis=0), f, axis=1).astype(np.float32)  # (H, W)


# ---------------------------------------------------------------------------------------------------------
# Spoof captures
# ---------------------------------------------------------------------------------------------------------


def _draw_spoof(
    display: DisplayType, rng: np.random.Generator, cam: CameraConfig, ov: dict[str, Any]
) -> dict[str, Any]:
    """Every random value of a spoof capture, drawn in a fixed order; overrides replace draws."""
    p: dict[str, Any] = {
        "distance": float(rng.uniform(*cam.distance)),
        "tilt_x": float(rng.uniform(-cam.tilt_deg, cam.tilt_deg)),
        "tilt_y": float(rng.uniform(-cam.tilt_deg, cam.tilt_deg)),
        "roll": float(rng.uniform(-cam.roll_deg, cam.roll_deg)),
        "pitch": float(rng.uniform(*display.pitch)),
        "gamma": float(rng.uniform(*display.gamma)),
        "brightness": float(rng.uniform(*display.brightness)),
    }
    white = np.asarray(display.white) * rng.uniform(0.98, 1.02, 3)  # unit-to-unit white-point spread
    p["white"] = [float(v) for v in white]
    p["margin"] = float(rng.uniform(1.03, 1.15))
    bezel_on = rng.random() < cam.bezel_prob
    corner = rng.random() < 0.3
    side = _BEZEL_SIDES[int(rng.integers(4))]
    pick = _CORNERS[int(rng.integers(4))]
    p["bezel"] = (list(pick) if corner else [side]) if bezel_on else []
    p["bezel_cut"] = [float(v) for v in rng.uniform(0.55, 0.9, 4)]  # per side: edge position / view border
    p["bezel_width"] = float(rng.uniform(*display.bezel))
    p["bezel_level"] = float(rng.uniform(0.01, 0.05))
    p["background_distance"] = float(rng.uniform(0.3, 1.5))
    p["background"] = [float(v) for v in rng.uniform(0.05, 0.35) * rng.uniform(0.7, 1.3, 3)]
    p["background_texture"] = rng.uniform(0.6, 1.4, (6, 6, 3))
    p["glare"] = float(display.glare * rng.uniform(0.15, 1.0))
    p["glare_blobs"] = 1 + int(rng.random() < 0.4)
    p["glare_geom"] = rng.uniform(0, 1, (2, 4))  # per blob: cx, cy, sigma_x, sigma_y (unit ranges)
    p["glare_tint"] = rng.uniform(0.93, 1.07, 3)
    p["veil"] = float(display.glare * rng.uniform(0.0, 0.12))
    p.update(_draw_camera(rng, cam, ov))
    for key in SPOOF_OVERRIDES:
        if key in ov:
            p[key] = list(ov[key]) if key == "bezel" else ov[key]
    bad = sorted(set(p["bezel"]) - set(_BEZEL_SIDES))
    if bad:
        raise ValueError(f"Unknown bezel side(s) {bad}; choose from {list(_BEZEL_SIDES)}")
    return p


def _glare(p: dict[str, Any], size: int, matte: float) -> np.ndarray:
    """Specular reflections of room lights, linear light (S, S, 3)."""
    c = np.arange(size) + 0.5
    out = np.zeros((size, size), np.float64)
    for i in range(p["glare_blobs"]):
        gx, gy, sx, sy = p["glare_geom"][i]
        cx, cy = (-0.1 + 1.2 * gx) * size, (-0.1 + 1.2 * gy) * size
        sx, sy = (size * (0.08 + 0.22 * v) * (1 + 2 * matte) for v in (sx, sy))
        out += np.exp(-0.5 * ((c[None, :] - cx) / sx) ** 2 - 0.5 * ((c[:, None] - cy) / sy) ** 2) / (1 + i)
    return (p["glare"] * out + p["veil"])[..., None] * p["glare_tint"]  # (S, S, 3)


def capture_spoof(
    content: np.ndarray,
    display: DisplayType,
    rng: np.random.Generator,
    cam: CameraConfig = CameraConfig(),
    *,
    overrides: Mapping[str, Any] | None = None,
) -> Capture:
    """Show ``content`` full-screen on ``display`` and photograph it with the phone camera + ToF.

    Args:
        content: ``uint8 (h, w, 3)`` real photo crop; centre-cropped to the screen's aspect ratio and
            resampled to the display's native pixel grid.
        display: The display type (pose, pitch, gamma, ... are drawn from its and ``cam``'s ranges).
        rng: The only source of randomness.
        cam: Camera and ToF settings.
        overrides: Pin drawn values, keys from :data:`SPOOF_OVERRIDES` (e.g. a frontal pose for tests):
            ``distance`` m, ``tilt_x``/``tilt_y``/``roll`` degrees, ``pitch`` camera px, ``bezel`` list of
            sides in view, ``jpeg`` quality or None for no JPEG, ``noise`` read-noise std, ...

    Returns:
        :class:`Capture` with ``meta`` holding every drawn value (JSON-able).
    """
    _check_rgb(content, "content")
    _check_display(display)
    _check_camera(cam)
    ov = _check_overrides(overrides, SPOOF_OVERRIDES)
    p = _draw_spoof(display, rng, cam, ov)
    size, k, f = cam.size, cam.supersample, _focal(cam)
    x, y = _ray_grid(size, k)  # (S*k, S*k) pixels from the centre
    rot = _rotation(p["tilt_x"], p["tilt_y"], p["roll"])
    d, curv = p["distance"], display.curvature

    # screen extent: cover the view's footprint (from its border rays) with a margin, bezel sides cut short
    b = np.linspace(-size / 2, size / 2, 33)
    bx = np.concatenate([b, b, np.full(33, -size / 2), np.full(33, size / 2)]) / f
    by = np.concatenate([np.full(33, -size / 2), np.full(33, size / 2), b, b]) / f
    bt, bu, bv = _intersect(bx, by, rot, d, curv)
    bu, bv = bu[np.isfinite(bt)], bv[np.isfinite(bt)]  # a convex screen may not fill the view's corners
    need = np.array([-bu.min(), bu.max(), -bv.min(), bv.max()])  # left, right, top, bottom (m)
    ext = need * p["margin"]
    for i, s in enumerate(_BEZEL_SIDES):
        if s in p["bezel"]:
            ext[i] = need[i] * p["bezel_cut"][i]
    pix = p["pitch"] * d / f  # physical pixel size (m) that gives `pitch` camera px at the centre
    n_cols = max(2, math.ceil((ext[0] + ext[1]) / pix))
    n_rows = max(2, math.ceil((ext[2] + ext[3]) / pix))

    # the frame on the display: crop to the screen's aspect, resample to its native grid, emit
    h, w = content.shape[:2]
    if w * n_rows > h * n_cols:
        cw = max(1, round(h * n_cols / n_rows))
        frame = content[:, (w - cw) // 2 : (w - cw) // 2 + cw]
    else:
        ch = max(1, round(w * n_rows / n_cols))
        frame = content[(h - ch) // 2 : (h - ch) // 2 + ch]
    frame = np.asarray(Image.fromarray(frame).resize((n_cols, n_rows), Image.Resampling.BICUBIC))
    emit = _emission(frame, p["gamma"], np.asarray(p["white"]), p["brightness"])  # (n_rows, n_cols, 3)
    if display.matte > 0:
        emit = gaussian_filter(emit, sigma=(display.matte, display.matte, 0), mode="nearest")
    # sub-pixel tile seen through one ray's footprint (sigma = half the ray spacing) and the matte blur
    T = _TILE_SAMPLES
    sig = math.hypot(0.5 / (k * p["pitch"]), display.matte) * T  # tile samples
    tile = gaussian_filter(_tile_cached(display.layout, T), sigma=(sig, sig, 0), mode="wrap")  # (R*T, C*T, 3)

    # trace every sub-sample ray
    zt, su, sv = _intersect(x / f, y / f, rot, d, curv)  # (S*k, S*k) each
    u = (su + ext[0]) / pix  # display px from the screen's left edge
    v = (sv + ext[2]) / pix
    on_screen = (u >= 0) & (u < n_cols) & (v >= 0) & (v < n_rows) & np.isfinite(zt)
    bw = p["bezel_width"] / pix
    on_bezel = ~on_screen & (u >= -bw) & (u < n_cols + bw) & (v >= -bw) & (v < n_rows + bw) & np.isfinite(zt)
    ui = np.clip(u, 0, n_cols - 1).astype(np.int64)
    vi = np.clip(v, 0, n_rows - 1).astype(np.int64)
    tu = np.floor(np.where(on_screen, u, 0) * T).astype(np.int64) % tile.shape[1]
    tv = np.floor(np.where(on_screen, v, 0) * T).astype(np.int64) % tile.shape[0]
    rad = emit[vi, ui] * tile[tv, tu]  # (S*k, S*k, 3) linear light
    wall = np.repeat(np.repeat(_background(p, size), k, axis=0), k, axis=1)  # (S*k, S*k, 3)
    rad = np.where(on_screen[..., None], rad, np.where(on_bezel[..., None], p["bezel_level"], wall))
    z_wall = d + p["background_distance"]
    z = np.where(on_screen | on_bezel, zt, z_wall)  # (S*k, S*k) metres

    lin = _integrate(rad, size, k)  # (S, S, 3)
    cover = _integrate((on_screen | on_bezel).astype(np.float32), size, k)  # (S, S)
    lin = lin + _glare(p, size, display.matte) * cover[..., None]
    rgb = _camera(lin.astype(np.float32), rng, p)
    depth = tof_sensor(_integrate(z, size, k), rng, cam)

    # effective pitch at the centre along the image axes (foreshortening by the tilt)
    e = 0.5
    _, cu, cv = _intersect(np.array([-e, e, 0, 0]) / f, np.array([0, 0, -e, e]) / f, rot, d, curv)
    pitch_x = 2 * e / (math.hypot(cu[1] - cu[0], cv[1] - cv[0]) / pix)
    pitch_y = 2 * e / (math.hypot(cu[3] - cu[2], cv[3] - cv[2]) / pix)
    meta = {
        "kind": "spoof",
        "display": display.name,
        "layout": display.layout,
        "curvature": display.curvature,
        "matte": display.matte,
        "pixel_size_m": pix,
        "native_size": [n_rows, n_cols],
        "pitch_x": pitch_x,
        "pitch_y": pitch_y,
        "bezel_in_view": bool(p["bezel"]),
        "screen_fraction": float(cover.mean()),
        "depth_range": [float(z.min()), float(z.max())],
    }
    for key, val in p.items():
        if key in ("margin", "bezel_cut", "background_texture", "glare_geom", "glare_tint"):
            continue
        meta[key] = val
    return Capture(rgb=rgb, depth=depth, meta=meta)


def _background(p: dict[str, Any], size: int) -> np.ndarray:
    """The wall behind the display: a smooth colour texture, linear light (S, S, 3)."""
    tex = p["background_texture"]  # (6, 6, 3)
    c = np.linspace(0, tex.shape[0] - 1, size)
    i0 = np.minimum(c.astype(np.int64), tex.shape[0] - 2)
    fr = (c - i0)[:, None]
    rows = tex[i0] * (1 - fr[..., None]) + tex[i0 + 1] * fr[..., None]  # (S, 6, 3)
    cols = rows[:, i0] * (1 - fr.T[..., None]) + rows[:, i0 + 1] * fr.T[..., None]  # (S, S, 3)
    return (cols * np.asarray(p["background"])).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# Real captures
# ---------------------------------------------------------------------------------------------------------


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3 x 3 H with dst ~ H src for four (x, y) point pairs."""
    a = []
    for (x, y), (u, v) in zip(src, dst):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    h = np.linalg.solve(np.asarray(a, float), dst.reshape(-1))
    return np.append(h, 1.0).reshape(3, 3)


def _warp_coords(hmg: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = hmg[2, 0] * xs + hmg[2, 1] * ys + hmg[2, 2]
    return (hmg[0, 0] * xs + hmg[0, 1] * ys + hmg[0, 2]) / w, (
        hmg[1, 0] * xs + hmg[1, 1] * ys + hmg[1, 2]
    ) / w


def _bilinear(img: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Sample img (H, W, C) at continuous pixel coordinates (pixel i covers [i, i + 1))."""
    h, w = img.shape[:2]
    x = np.clip(xs - 0.5, 0, w - 1)
    y = np.clip(ys - 0.5, 0, h - 1)
    x0 = np.minimum(x.astype(np.int64), w - 2)
    y0 = np.minimum(y.astype(np.int64), h - 2)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    top = img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx
    bot = img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bot * fy


def capture_real(
    rgb: np.ndarray,
    depth: np.ndarray,
    rng: np.random.Generator,
    cam: CameraConfig = CameraConfig(),
    *,
    overrides: Mapping[str, Any] | None = None,
) -> Capture:
    """Photograph a real RGB-D crop with the same camera and ToF sensor as :func:`capture_spoof`.

    The square centre of the crop is mapped to the S x S image by a mild random homography (roll up to
    0.3 x ``cam.roll_deg``, corners moved by up to 4 % of the side, always inside the crop), sampled with
    the same k x k pixel integration, then blur, noise, JPEG from the same ranges. Depth is sampled
    nearest at the pixel centres (holes stay holes) and goes through :func:`tof_sensor`.

    Args:
        rgb: ``uint8 (H, W, 3)``.
        depth: ``float (H, W)`` metres registered to ``rgb``; 0 = unknown.
        rng: The only source of randomness.
        cam: Camera and ToF settings.
        overrides: Keys from :data:`REAL_OVERRIDES`: ``roll`` degrees, ``jitter`` (max corner shift,
            fraction of the side), ``blur``, ``noise``, ``jpeg`` (None: no JPEG), ``exposure``.
    """
    _check_rgb(rgb, "rgb")
    depth = np.asarray(depth, dtype=np.float32)
    if depth.shape != rgb.shape[:2]:
        raise ValueError(f"depth {depth.shape} must match rgb {rgb.shape[:2]}")
    _check_camera(cam)
    ov = _check_overrides(overrides, REAL_OVERRIDES)
    p: dict[str, Any] = {"kind": "real"}
    p["roll"] = float(rng.uniform(-0.3, 0.3) * cam.roll_deg)
    p["jitter"] = _JITTER
    corners = rng.uniform(-1, 1, (4, 2))
    p["exposure"] = float(rng.uniform(*_EXPOSURE))
    p.update(_draw_camera(rng, cam, ov))
    for key in REAL_OVERRIDES:
        if key in ov:
            p[key] = ov[key]
    size, k = cam.size, cam.supersample

    # square centre crop; homography from the unit output square to normalised crop coordinates
    h, w = rgb.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    img, dep = rgb[y0 : y0 + side, x0 : x0 + side], depth[y0 : y0 + side, x0 : x0 + side]
    th = math.radians(p["roll"])
    zoom = (1 - 2 * p["jitter"]) / (abs(math.cos(th)) + abs(math.sin(th)))
    unit = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    dst = 0.5 + (unit - 0.5) @ rot.T * zoom + p["jitter"] * corners  # (4, 2) inside [0, 1]
    hmg = _homography(unit, dst)

    # colour: pre-reduce a large crop to ~1 input px per sub-sample (Pillow antialiases), then sample
    if side > size * k:
        img = np.asarray(Image.fromarray(img).resize((size * k, size * k), Image.Resampling.BILINEAR))
    lin = _srgb_to_linear(img.astype(np.float32) / 255.0) * p["exposure"]  # (L, L, 3)
    gx, gy = _ray_grid(size, k)
    xs, ys = _warp_coords(hmg, gx / size + 0.5, gy / size + 0.5)  # (S*k, S*k) normalised
    n = img.shape[0]
    rad = _bilinear(lin, xs * n, ys * n)  # (S*k, S*k, 3)
    out_rgb = _camera(_integrate(rad, size, k).astype(np.float32), rng, p)

    # depth: nearest sample at the pixel centres
    c = (np.arange(size) + 0.5) / size
    cyy, cxx = np.meshgrid(c, c, indexing="ij")  # (S, S)
    dx_, dy_ = _warp_coords(hmg, cxx, cyy)
    di = np.clip((dy_ * side).astype(np.int64), 0, side - 1)
    dj = np.clip((dx_ * side).astype(np.int64), 0, side - 1)
    out_depth = tof_sensor(dep[di, dj], rng, cam)  # (S, S)
    p["source_size"] = [int(h), int(w)]
    return Capture(rgb=out_rgb, depth=out_depth, meta=p)
