"""The classification recipe: a ResNet trained with (soft-target) cross-entropy — the ``classifier`` baseline.

Paper of the network: He, Zhang, Ren, Sun. "Deep Residual Learning for Image Recognition". CVPR 2016.
arXiv 1512.03385 (the CIFAR ResNets of its section 4.2 are the default backbones here).

This file is the base of every method that trains an image classifier (``kmix``, ``mixup``, ``cutmix``;
later adapters and active learners). A subclass changes *what the network sees* by overriding
:meth:`Classifier.mix`; the objective is always cross-entropy against the (possibly soft) targets::

    image (B,3,H,W) in [0,1], label (B,)
        ──► mix(image, label) ──► x (B,3,H,W), target (B,C) rows summing to 1   (identity: one-hot)
        ──► backbone ──► logits (B,C) ──► CE(logits, target)  [label smoothing optional]
    predict: image ──► logits (B,C), probs = softmax(logits)

Recipe (CPU-sized, documented choices rather than a paper's): ``resnet8`` (78k parameters), AdamW
lr 2e-3 with weight decay 5e-4, cosine schedule with a short warm-up, batch 64, random translation by
up to 2 pixels (zero fill, CIFAR's pad-and-crop); no flip by default because digits are not mirror
symmetric (``hflip=True`` for Fashion-MNIST-like data). Grayscale sets are replicated to 3 channels by
the data pipeline.
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
from trustvis.nn.backbones import BACKBONES, build_classifier
from trustvis.registry import Paper, Preset, register


@dataclass
class ClassifierConfig:
    """Fields every image classifier has."""

    backbone: str = "resnet8"  # one of trustvis.nn.backbones.BACKBONES (tiny, resnet8, mobilenet_v2, ...)
    num_classes: int = 10  # set from the data by `trustvis train` / the benches
    weights: str = ""  # "" = random init; "imagenet" (offline: see nn/backbones.py) or a weights file
    input_size: int = 0  # resize inputs to this square side inside the model (bilinear); 0 = as given
    crop_pad: int = 2  # train: random translation by up to this many pixels (zero fill); 0 = off
    hflip: bool = False  # train: random horizontal flip
    label_smoothing: float = 0.0


#: the classification recipe's training budget and data per preset, shared by every classifier method
CLASSIFIER_TRAIN = {
    "default": {"lr": 2e-3, "weight_decay": 5e-4, "batch_size": 64, "steps": 3000, "schedule": "cosine",
                "warmup_steps": 100},
    "quick": {"lr": 2e-3, "weight_decay": 5e-4, "batch_size": 64, "steps": 600, "schedule": "cosine",
              "warmup_steps": 50},
    "tiny": {"lr": 1e-3, "batch_size": 4, "steps": 2},
}  # fmt: skip
CLASSIFIER_DATA = {"default": {"name": "fashion-mnist"}, "quick": {"name": "fashion-mnist"},
                   "tiny": {"name": "sklearn-digits"}}  # fmt: skip


def classifier_presets(model: dict[str, dict], train: dict[str, dict] | None = None) -> dict[str, Preset]:
    """One :class:`Preset` per name of ``model`` (model values), with the classification recipe's training
    budget (``train``, default :data:`CLASSIFIER_TRAIN`) and data of the same name."""
    train = CLASSIFIER_TRAIN if train is None else train
    return {
        n: Preset(model=v, train=train.get(n, {}), data=CLASSIFIER_DATA.get(n, {})) for n, v in model.items()
    }


def classifier_transform(train: bool, crop_pad: int, hflip: bool) -> Callable[[np.ndarray], torch.Tensor]:
    """uint8 (H,W,3) -> (3,H,W) in [0,1]; in training a random translation by up to ``crop_pad`` pixels (zero
    fill) and, with ``hflip``, a random horizontal flip: the augmentation of every image classifier here."""
    steps: list[Callable] = []
    if train and crop_pad > 0:
        steps.append(functools.partial(T.random_translate, pad=crop_pad))
    if train and hflip:
        steps.append(T.random_hflip)
    return T.Compose([*steps, T.to_tensor])


class Classifier(Method):
    """A classifier trained with cross-entropy; subclasses override :meth:`mix`."""

    config: ClassifierConfig

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__(config)
        if config.backbone not in BACKBONES:
            raise ValueError(f"Unknown backbone {config.backbone!r}; choose from {list(BACKBONES)}")
        if config.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {config.num_classes}")
        if not 0.0 <= config.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {config.label_smoothing}")
        self.model = self.build_network()

    def build_network(self) -> torch.nn.Module:
        """The network: images (B,3,H,W) in [0,1] -> logits (B,C). Default: ``build_classifier`` of the config's
        backbone; a subclass that needs more of the network (the active learners' stage features) overrides it."""
        cfg = self.config
        return build_classifier(cfg.backbone, cfg.num_classes, cfg.weights or None, input_size=cfg.input_size)

    def make_transform(self, train: bool) -> Callable[[np.ndarray], torch.Tensor]:
        return classifier_transform(train, self.config.crop_pad, self.config.hflip)

    def mix(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training inputs and soft targets (B,C); the plain classifier uses the one-hot labels."""
        return images, F.one_hot(labels, self.config.num_classes).float()

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        images, target = self.mix(batch["image"], batch["label"])  # (B,3,H,W), (B,C)
        logits = self.model(images)  # (B,C)
        loss = F.cross_entropy(logits, target, label_smoothing=self.config.label_smoothing)
        acc = (logits.argmax(1) == target.argmax(1)).float().mean()
        return {"loss": loss, "acc": acc.detach()}

    @torch.no_grad()
    def predict(self, batch: Batch) -> dict[str, torch.Tensor]:
        logits = self.model(batch["image"]).float()  # (B,C)
        return {"logits": logits, "probs": logits.softmax(1)}

    @torch.no_grad()
    def uncertainty(
        self,
        images: torch.Tensor,
        references: torch.Tensor,
        K: int = 3,
        alpha: float = 1.0,
        draws: int = 8,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Sample-wise uncertainty (B,) of ``images`` (B,3,H,W) from the K-image mixing model, with
        partners drawn from ``references`` (R,3,H,W): see ``trustvis.methods.augment.kmix.mixing_uncertainty``."""
        from trustvis.methods.augment.kmix import mixing_uncertainty

        def probs(x: torch.Tensor) -> torch.Tensor:
            return torch.cat([self.predict({"image": c})["probs"] for c in x.split(512)])

        return mixing_uncertainty(probs, images, references=references, K=K, alpha=alpha, draws=draws,
                                  generator=generator)  # fmt: skip


PRESETS = {
    "default": {},
    "quick": {},
    "tiny": {"backbone": "tiny", "crop_pad": 1},
}


@register(
    "classifier",
    task="classify",
    config=ClassifierConfig,
    presets=classifier_presets(PRESETS),
    paper=Paper(
        "Deep Residual Learning for Image Recognition",
        "He et al., CVPR 2016",
        "https://arxiv.org/abs/1512.03385",
    ),  # fmt: skip
    summary="ResNet image classifier with cross-entropy: the recipe (and no-mixing baseline) of classification",
    seed_method=False,
)
class PlainClassifier(Classifier):
    """The classification recipe without any mixing (baseline)."""
