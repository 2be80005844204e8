"""Shared pieces of the binary real/fake detectors: config fields, augmentation, loss, prediction.

A detector method owns a pure ``nn.Module`` (``self.model``: images in [0,1] (B,3,H,W) -> logits (B,))
and trains it with binary cross-entropy (label 1 = fake). ``predict`` returns ``score`` (B,), the
probability of fake, and ``logits`` (B,). Training images get CNNDetection's Blur+JPEG augmentation
(Wang et al. 2020, §1.4 of the detection spec) on uint8 images before they become tensors, so every
detector in a comparison sees the same augmentation unless its config says otherwise.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from trustvis.data import transforms as T
from trustvis.methods.base import Batch, Method
from trustvis.registry import Preset

#: training budget of a detector per preset (SynthBench quick: 800 steps on 2 CPU cores); a detector whose
#: recipe differs passes its own to :func:`detector_presets`
DETECTOR_TRAIN = {
    "default": {"lr": 1e-4, "batch_size": 64, "steps": 20000},
    "quick": {"lr": 1e-3, "batch_size": 32, "steps": 800},
    "full": {"lr": 5e-4, "batch_size": 64, "steps": 5000, "num_workers": 4},
    "tiny": {"lr": 1e-3, "batch_size": 4, "steps": 2},
}


#: the SynthBench size a preset trains on when no data is given (tiny: builds in seconds, see
#: :data:`trustvis.data.synthbench.SIZES`); the others use the data config's default (quick)
DETECTOR_DATA = {"tiny": {"size": "tiny"}}


def detector_presets(model: dict[str, dict], train: dict[str, dict] | None = None) -> dict[str, Preset]:
    """One :class:`Preset` per name of ``model`` (model values), with the training budget of the same name
    (``train``, default :data:`DETECTOR_TRAIN`) and the data of :data:`DETECTOR_DATA`."""
    train = DETECTOR_TRAIN if train is None else train
    return {
        name: Preset(model=values, train=train.get(name, {}), data=DETECTOR_DATA.get(name, {}))
        for name, values in model.items()
    }


@dataclass
class DetectorConfig:
    """Fields every binary detector has."""

    backbone: str = "resnet50"  # tiny | resnet18 | resnet34 | resnet50
    weights: str = "imagenet"  # "" = random init; "imagenet" = torchvision cache; or a file path
    blur_prob: float = 0.5  # CNNDetection Blur+JPEG(0.5)
    blur_sigma: tuple[float, float] = (0.0, 3.0)
    jpeg_prob: float = 0.5
    jpeg_quality: tuple[int, int] = (30, 100)
    crop_size: int = 0  # random crop (train) / centre crop (eval) to this size; 0 = use images as they are
    hflip: bool = True


class BinaryDetector(Method):
    """Base of detectors whose whole objective is BCE on one logit (CNNDetection, BiHPF, ...)."""

    config: DetectorConfig

    def make_transform(self, train: bool) -> Callable[[np.ndarray], torch.Tensor]:
        """Train: Blur+JPEG, random crop, flip; eval: centre crop. Picklable (DataLoader workers)."""
        cfg = self.config
        steps: list[Callable] = []
        if train:
            if (aug := self.blur_jpeg()) is not None:
                steps.append(aug)
            if cfg.crop_size:
                steps.append(functools.partial(T.random_crop, size=cfg.crop_size))
            if cfg.hflip:
                steps.append(T.random_hflip)
        elif cfg.crop_size:
            steps.append(functools.partial(T.center_crop, size=cfg.crop_size))
        return T.Compose([*steps, T.to_tensor])

    def blur_jpeg(self) -> T.BlurJpeg | None:
        """The configured Blur+JPEG augmentation (uint8 images), or None when both probabilities are 0."""
        cfg = self.config
        if cfg.blur_prob <= 0 and cfg.jpeg_prob <= 0:
            return None
        return T.BlurJpeg(
            p_blur=cfg.blur_prob,
            p_jpeg=cfg.jpeg_prob,
            sigma_min=cfg.blur_sigma[0],
            sigma_max=cfg.blur_sigma[1],
            q_min=cfg.jpeg_quality[0],
            q_max=cfg.jpeg_quality[1],
        )

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) in [0,1] -> (B,) logits of 'fake'."""
        return self.model(images).squeeze(-1)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        logits = self.logits(batch["image"])  # (B,)
        target = batch["label"].float()
        loss = F.binary_cross_entropy_with_logits(logits, target)
        acc = ((logits > 0).float() == target).float().mean()
        return {"loss": loss, "acc": acc.detach()}

    @torch.no_grad()
    def predict(self, batch: Batch) -> dict[str, torch.Tensor]:
        logits = self.logits(batch["image"]).float()
        return {"score": torch.sigmoid(logits), "logits": logits}
