"""The synthetic-defect synthesiser of the texture sets: scratch, blob and cut-paste, with exact masks.

Each function takes one ``uint8 (S, S, 3)`` crop and a seeded generator and returns the defective crop
and its ``uint8 {0, 1} (S, S)`` mask, which is 1 exactly where the defect was drawn and 0 elsewhere.
:func:`~trustvis.data.anomaly.texture_crops.textures` gives one defect to each chosen test crop, the
three kinds in equal shares: *scratch* (a thin random polyline of 1-3 px, darker or brighter), *blob*
(smooth noise under a random elliptic envelope, thresholded to 1-5 % of the crop, intensity and colour
changed) and *cutpaste* (a rectangle from the test region of the same texture or of another scikit-image
texture, rotated by a multiple of 90 degrees and brightness-jittered, pasted at a random place).

Defects are drawn with numpy (and Pillow for the bicubic upsampling of the noise); no OpenCV, which is
not a trustvis dependency.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["DEFECT_KINDS"]

#: Synthetic defect kinds of :func:`~trustvis.data.anomaly.texture_crops.textures`.
DEFECT_KINDS: tuple[str, ...] = ("scratch", "blob", "cutpaste")


def _smooth_noise(rng: np.random.Generator, s: int, grid: int) -> np.ndarray:
    """``float32 (s, s)`` smooth noise: a ``grid x grid`` uniform field, bicubically upsampled."""
    low = rng.random((grid, grid)).astype(np.float32)
    return np.asarray(Image.fromarray(low, mode="F").resize((s, s), Image.Resampling.BICUBIC), np.float32)


def _scratch(crop: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A thin random polyline, darker on bright textures and brighter on dark ones."""
    s = crop.shape[0]
    n_pts = int(rng.integers(3, 7))
    pts = [rng.uniform(0.15 * s, 0.85 * s, 2)]
    heading = rng.uniform(0, 2 * np.pi)
    for _ in range(n_pts - 1):
        heading += rng.uniform(-0.7, 0.7)
        step = rng.uniform(0.08, 0.2) * s
        nxt = np.clip(pts[-1] + step * np.array([np.sin(heading), np.cos(heading)]), 1, s - 2)
        pts.append(nxt)
    p = np.asarray(pts)  # (K, 2) as (y, x)
    half = rng.uniform(0.5, 1.5) * max(1.0, s / 128)  # 1 to 3 px wide at 128
    # distance of every pixel of the polyline's bounding box to its nearest segment
    y0, x0 = np.maximum(np.floor(p.min(0) - half - 1), 0).astype(int)
    y1, x1 = np.minimum(np.ceil(p.max(0) + half + 2), s).astype(int)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    q = np.stack([yy, xx], axis=-1)[:, :, None, :]  # (h, w, 1, 2)
    a, b = p[:-1][None, None], p[1:][None, None]  # (1, 1, K-1, 2)
    ab = b - a
    t = np.clip(((q - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0.0, 1.0)  # (h, w, K-1)
    dist = np.linalg.norm(q - (a + t[..., None] * ab), axis=-1).min(axis=2)  # (h, w)
    mask = np.zeros((s, s), np.uint8)
    mask[y0:y1, x0:x1] = dist <= half
    lum = float(crop.mean())
    value = rng.uniform(0, 40) if lum > 110 else rng.uniform(200, 255)
    out = crop.astype(np.float32)
    m = mask.astype(bool)
    out[m] = 0.15 * out[m] + 0.85 * value
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), mask


def _blob(crop: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Smooth noise under a random elliptic envelope, thresholded; intensity and colour changed."""
    s = crop.shape[0]
    noise = 0.6 * _smooth_noise(rng, s, 4) + 0.4 * _smooth_noise(rng, s, 8)  # (S, S)
    cy, cx = rng.uniform(0.2 * s, 0.8 * s, 2)
    sy, sx = rng.uniform(0.06, 0.16, 2) * s
    ang = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[:s, :s].astype(np.float32)
    u = (yy - cy) * np.cos(ang) + (xx - cx) * np.sin(ang)
    v = -(yy - cy) * np.sin(ang) + (xx - cx) * np.cos(ang)
    field = np.exp(-0.5 * ((u / sy) ** 2 + (v / sx) ** 2)) * (0.4 + noise)  # (S, S)
    area = max(4, int(rng.uniform(0.01, 0.05) * s * s))
    thr = np.partition(field.ravel(), -area)[-area]
    mask = (field >= thr).astype(np.uint8)
    gain = rng.uniform(0.45, 0.75) if rng.random() < 0.5 else rng.uniform(1.3, 1.6)
    shift = rng.choice([-1.0, 1.0], 3) * rng.uniform(25, 70, 3)  # per-channel colour cast
    out = crop.astype(np.float32)
    m = mask.astype(bool)
    out[m] = out[m] * gain + shift
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), mask


def _cutpaste(
    crop: np.ndarray, rng: np.random.Generator, donor: np.ndarray, region: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """A brightness-jittered, 90-degree-rotated rectangle of ``donor[region]`` pasted at a random place."""
    s = crop.shape[0]
    y0, y1, x0, x1 = region
    out = crop.copy()
    ph, pw = (int(v) for v in rng.integers(max(4, int(0.12 * s)), max(5, int(0.3 * s)) + 1, 2))
    for _ in range(8):  # redraw the patch if it happens to match the background
        sy = int(rng.integers(y0, y1 - ph + 1))
        sx = int(rng.integers(x0, x1 - pw + 1))
        patch = np.rot90(donor[sy : sy + ph, sx : sx + pw], k=int(rng.integers(0, 4)))  # (h, w, 3)
        patch = patch.astype(np.float32) * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)
        patch = np.clip(np.rint(patch), 0, 255).astype(np.uint8)
        h, w = patch.shape[:2]
        ty = int(rng.integers(0, s - h + 1))
        tx = int(rng.integers(0, s - w + 1))
        diff = np.abs(patch.astype(np.int16) - crop[ty : ty + h, tx : tx + w].astype(np.int16)).mean()
        if diff >= 12.0:
            break
    out[ty : ty + h, tx : tx + w] = patch
    mask = np.zeros((s, s), np.uint8)
    mask[ty : ty + h, tx : tx + w] = 1
    return out, mask
