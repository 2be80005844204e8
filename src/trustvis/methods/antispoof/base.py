"""Shared pieces of the RGB + depth anti-spoofing methods: config fields, the pair transform, the small
convolutional encoder / decoder every method of the family builds on, and the binary objective.

An anti-spoofing method reads a batch ``{"image": (B,3,S,S) in [0,1], "depth": (B,1,S,S)}`` and returns
``score`` (B,), the probability that the pair is a recapture (spoof, label 1), and ``logits`` (B,).

Depth normalisation (:func:`normalize_depth`, used by every method so that none can read absolute
distance): a phone's ToF map, a stereo ground truth and a Kinect frame are in different units and at
different distances, so each map is divided by the median of its valid pixels and centred::

    d (H,W) metres or sensor units, 0 = hole ──► d / median(d[d>0]) - 1 ──► / depth_range, clipped to [-1, 1]
    holes ──► 0                                    (a flat screen at any distance: a plane through 0)

Shapes::

    rgb uint8 (H,W,3), depth float (H,W) ──► PairTransform ──► image (3,S,S) in [0,1], depth (1,S,S) in [-1,1]
    ConvEncoder:  (B,C,S,S) ──► 4 x [conv3x3 stride 2, BN, ReLU] ──► (B,8w,S/16,S/16) ──► pool 4x4 ──► fc ──► (B,D)
    ConvDecoder:  (B,D) ──► fc ──► (B,4w,4,4) ──► [upsample x2, conv3x3, BN, ReLU]* ──► conv ──► tanh ──► (B,1,S,S)

The same encoder (width ``width``) serves every method of the family, so that a comparison measures the
inputs and the objectives, not the backbones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trustvis.methods.base import Batch, Method
from trustvis.registry import Preset

#: training budget per preset (RecaptureBench quick: 64x64 pairs on 2 CPU cores)
ANTISPOOF_TRAIN = {
    "default": {"lr": 1e-3, "batch_size": 32, "steps": 600},
    "tiny": {"lr": 1e-3, "batch_size": 4, "steps": 2},
}
#: the RecaptureBench size a preset trains on when no data is given (tiny builds in seconds)
ANTISPOOF_DATA = {"tiny": {"size": "tiny"}}


def antispoof_presets(model: dict[str, dict]) -> dict[str, Preset]:
    """One :class:`Preset` per name of ``model`` with the budget of :data:`ANTISPOOF_TRAIN` and the data of
    :data:`ANTISPOOF_DATA`."""
    return {
        name: Preset(model=values, train=ANTISPOOF_TRAIN.get(name, {}), data=ANTISPOOF_DATA.get(name, {}))
        for name, values in model.items()
    }


@dataclass
class AntispoofConfig:
    """Fields every RGB + depth method has."""

    image_size: int = 64  # pairs are resized to image_size x image_size (RGB: area, depth: nearest)
    width: int = 32  # channels of the encoder's first stage (stages: w, 2w, 4w, 8w)
    embed_dim: int = 128  # size of an encoder's feature vector
    depth_range: float = 0.25  # relative depth mapped to [-1, 1]: d / median - 1 = +-depth_range
    hflip: bool = True  # random horizontal flip of the pair while training
    dropout: float = 0.2  # before the classifier


# ----------------------------------------------------------------------------------------------------
# data


def normalize_depth(depth: np.ndarray, depth_range: float = 0.25) -> np.ndarray:
    """Relative depth of one map: ``(d / median(valid) - 1) / depth_range`` clipped to [-1, 1]; holes
    (d <= 0 or not finite) become 0. A map without a valid pixel is all zeros. float32 (H, W)."""
    d = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(d) & (d > 0)
    out = np.zeros(d.shape, np.float32)
    if valid.any():
        med = float(np.median(d[valid]))
        out[valid] = np.clip((d[valid] / med - 1.0) / depth_range, -1.0, 1.0)
    return out


def _resize(arr: np.ndarray, size: int, nearest: bool) -> np.ndarray:
    """``arr`` (H,W[,3]) resized to (size, size): Pillow box filter for images, nearest for depth."""
    from PIL import Image

    if arr.shape[0] == size and arr.shape[1] == size:
        return arr
    if nearest:
        img = Image.fromarray(arr.astype(np.float32), mode="F")
        return np.asarray(img.resize((size, size), Image.Resampling.NEAREST), dtype=np.float32)
    return np.asarray(Image.fromarray(arr).resize((size, size), Image.Resampling.BOX))


class PairTransform:
    """``(rgb uint8 (H,W,3), depth float (H,W)) -> {"image": (3,S,S), "depth": (1,S,S)}``; training adds a
    random horizontal flip of both. Flips draw from torch's RNG (seeded by the trainer). Picklable."""

    def __init__(self, size: int, depth_range: float, train: bool, hflip: bool = True) -> None:
        self.size, self.depth_range, self.train, self.hflip = size, depth_range, train, hflip

    def __call__(self, rgb: np.ndarray, depth: np.ndarray) -> dict[str, torch.Tensor]:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise TypeError(f"expected a uint8 (H, W, 3) RGB image, got {rgb.dtype} {rgb.shape}")
        if depth.ndim != 2:
            raise TypeError(f"expected a (H, W) depth map, got shape {depth.shape}")
        rgb = _resize(rgb, self.size, nearest=False)  # (S,S,3)
        d = normalize_depth(_resize(depth, self.size, nearest=True), self.depth_range)  # (S,S)
        if self.train and self.hflip and bool(torch.rand(()) < 0.5):
            rgb, d = rgb[:, ::-1], d[:, ::-1]
        image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)
        return {"image": image, "depth": torch.from_numpy(np.ascontiguousarray(d))[None]}


# ----------------------------------------------------------------------------------------------------
# networks


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ConvEncoder(nn.Module):
    """(B, in_ch, S, S) -> (B, embed_dim): four stride-2 conv stages, a 4x4 pool, a linear layer.

    ``features(x)`` returns the (B, 8w, S/16, S/16) map before pooling (the Fourier head of Silent-Face reads it).
    """

    def __init__(self, in_ch: int, width: int, embed_dim: int) -> None:
        super().__init__()
        w = width
        self.stem = _block(in_ch, w, 1)
        self.stages = nn.Sequential(
            _block(w, w, 2), _block(w, 2 * w, 2), _block(2 * w, 4 * w, 2), _block(4 * w, 8 * w, 2)
        )
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(8 * w * 16, embed_dim)
        self.out_channels = 8 * w

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))  # (B, 8w, S/16, S/16)

    def embed(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(fmap).flatten(1))  # (B, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.features(x))


class ConvDecoder(nn.Module):
    """(B, embed_dim) -> (B, 1, S, S) in [-1, 1]: a generator that reconstructs a (normalised) depth map."""

    def __init__(self, embed_dim: int, width: int, size: int) -> None:
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"image_size must be a power of two >= 8 for the depth generator, got {size}")
        w = 4 * width
        self.fc = nn.Linear(embed_dim, w * 16)
        ups = []
        for _ in range(int(math.log2(size // 4))):
            ups += [nn.Upsample(scale_factor=2, mode="nearest"), _block(w, max(w // 2, 8), 1)]
            w = max(w // 2, 8)
        self.up = nn.Sequential(*ups)
        self.out = nn.Conv2d(w, 1, 3, padding=1)
        self.width = 4 * width

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(len(z), self.width, 4, 4)
        return torch.tanh(self.out(self.up(x)))  # (B,1,S,S)


def mlp_head(in_dim: int, hidden: int, dropout: float) -> nn.Sequential:
    """in_dim -> hidden -> 1 logit (the "several FC layers" of a spoof classifier)."""
    return nn.Sequential(
        nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1)
    )


# ----------------------------------------------------------------------------------------------------
# the method base


class AntispoofMethod(Method):
    """Base of the RGB + depth methods: pair transform, BCE on one logit, ``score``/``logits`` prediction.

    Subclasses implement :meth:`logits` ((image, depth) -> (B,) logits of "spoof") and may extend
    :meth:`training_step` with their own losses (:meth:`bce` gives the shared classification term).
    """

    inputs = ("image", "depth")
    config: AntispoofConfig

    def __init__(self, config: AntispoofConfig) -> None:
        super().__init__(config)
        #: decision threshold on ``score``, chosen on the validation split after training (nan until then)
        self.register_buffer("threshold", torch.tensor(float("nan")))

    def make_transform(self, train: bool) -> Callable[[np.ndarray, np.ndarray], dict[str, torch.Tensor]]:
        cfg = self.config
        return PairTransform(cfg.image_size, cfg.depth_range, train, cfg.hflip)

    def backbone_heads(self) -> dict[str, list[str]]:
        """Each :class:`ConvEncoder` is a backbone whose head is its embedding layer ``fc`` (``--lora`` adapts its
        convolutions; a linear probe trains ``fc``); classifiers and generators outside the encoders keep training."""
        return {name: [f"{name}.fc"] for name, m in self.named_children() if isinstance(m, ConvEncoder)}

    def export_image_size(self) -> int | None:
        return self.config.image_size

    def logits(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def bce(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        target = batch["label"].float()
        loss = F.binary_cross_entropy_with_logits(logits, target)
        acc = ((logits > 0).float() == target).float().mean()
        return {"loss": loss, "loss_cls": loss.detach(), "acc": acc.detach()}

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        return self.bce(self.logits(batch["image"], batch["depth"]), batch)

    @torch.no_grad()
    def predict(self, batch: Batch) -> dict[str, Any]:
        logits = self.logits(batch["image"], batch["depth"]).float()
        return {"score": torch.sigmoid(logits), "logits": logits}
