"""A Vision Transformer trained from scratch on small data — the ``vit`` baseline, and the base of ``deit`` and
``aal``.

Paper of the network: Dosovitskiy et al. "An Image is Worth 16x16 Words: Transformers for Image Recognition at
Scale". ICLR 2021. arXiv 2010.11929. The network is :class:`trustvis.nn.vit.SmallViT` (patch 4 on 32 px by
default, so that a 28–64 px image is an 8x8 grid of tokens rather than torchvision's 2x2 to 4x4)::

    image (B,3,H,W) in [0,1] ──[random translate / flip]──► resize to image_size ──► SmallViT ──► logits (B,K)
    loss: CE(logits, label)          predict: logits, probs = softmax(logits)

It is what the ViT methods on small data are measured against: ``deit`` (a distillation token taught by a CNN)
and ``aal`` (attention heads linked to a frozen CNN's activation maps) train the same network for the same
number of steps.

Recipe (CPU-sized, documented choices): AdamW lr 1e-3, weight decay 0.05 on every parameter (DeiT leaves norms
and biases out), cosine schedule with a 10 % warm-up, batch 32; random translation by 2 px; no dropout, no
stochastic depth, no RandAugment/Mixup (DeiT's recipe adds them for 300-epoch ImageNet runs; here every method
shares the plain recipe so that the comparison is of the methods, not the augmentations).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from trustvis.methods.base import Batch, Method
from trustvis.methods.classify.classifier import classifier_transform
from trustvis.nn.vit import SmallViT, ViTShape
from trustvis.registry import Paper, Preset, register


@dataclass
class ViTConfig:
    """The small ViT and its augmentation."""

    num_classes: int = 10  # set from the data by `trustvis train` / the benches
    image_size: int = 32  # the ViT's input side: images are resized to it (bilinear) inside the model
    patch: int = 4  # patch side: the token grid is (image_size / patch)^2
    width: int = 96  # token width D
    depth: int = 4  # transformer blocks N
    heads: int = 4  # attention heads per block M (width must be a multiple)
    mlp_ratio: float = 2.0  # MLP hidden width = mlp_ratio * width
    crop_pad: int = 2  # train: random translation by up to this many pixels (zero fill); 0 = off
    hflip: bool = False  # train: random horizontal flip
    label_smoothing: float = 0.0

    def shape(self) -> ViTShape:
        return ViTShape(self.image_size, self.patch, self.width, self.depth, self.heads, self.mlp_ratio)


#: the model of every ViT method per preset: quick/default are CPU-sized (quick 0.3M parameters, about 0.05 s
#: per step of 32 images on 2 cores); default is DeiT-Ti's width (192) and 3 heads at half its depth
VIT_MODEL = {
    "default": {"width": 192, "depth": 6, "heads": 3},
    "quick": {},
    "tiny": {"image_size": 8, "patch": 2, "width": 16, "depth": 2, "heads": 2, "crop_pad": 1},
}
#: the training budget every ViT method shares (same steps, same schedule)
VIT_TRAIN = {
    "default": {"lr": 1e-3, "weight_decay": 0.05, "batch_size": 64, "steps": 3000, "schedule": "cosine",
                "warmup_steps": 300, "eval_every": 300},
    "quick": {"lr": 1e-3, "weight_decay": 0.05, "batch_size": 32, "steps": 300, "schedule": "cosine",
              "warmup_steps": 30, "eval_every": 50},
    "tiny": {"lr": 1e-3, "batch_size": 4, "steps": 2},
}  # fmt: skip
#: small data: 100 images per class of Fashion-MNIST (1,000 training images)
VIT_DATA = {
    "default": {"name": "fashion-mnist", "max_images": 100},
    "quick": {"name": "fashion-mnist", "max_images": 100},
    "tiny": {"name": "sklearn-digits", "max_images": 8},
}


def vit_presets(model: dict[str, dict]) -> dict[str, Preset]:
    """The ViT presets with ``model``'s fields on top of :data:`VIT_MODEL`, the shared budget and small data."""
    return {
        n: Preset(model={**VIT_MODEL[n], **model.get(n, {})}, train=VIT_TRAIN[n], data=VIT_DATA[n])
        for n in VIT_MODEL
    }


class ViTMethod(Method):
    """A :class:`SmallViT` classifier trained with cross-entropy; ``deit`` and ``aal`` add to :meth:`objective`."""

    config: ViTConfig
    #: a distillation token and head (DeiT)
    distillation: bool = False

    def __init__(self, config: ViTConfig) -> None:
        super().__init__(config)
        if config.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {config.num_classes}")
        if not 0.0 <= config.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {config.label_smoothing}")
        self.model = SmallViT(config.shape(), config.num_classes, distillation=self.distillation)

    def make_transform(self, train: bool) -> Callable[[np.ndarray], torch.Tensor]:
        return classifier_transform(train, self.config.crop_pad, self.config.hflip)

    def backbone_heads(self) -> dict[str, list[str]]:
        heads = ["model.head"] + (["model.head_dist"] if self.distillation else [])
        return {"model": heads}

    def export_image_size(self) -> int | None:
        return None  # the ViT resizes any input to image_size itself

    def objective(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"loss", **scalars}`` of one batch; the plain ViT: cross-entropy."""
        logits = self.model(images)["logits"]  # (B,K)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.config.label_smoothing)
        return {"loss": loss, "acc": (logits.argmax(1) == labels).float().mean().detach()}

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        return self.objective(batch["image"], batch["label"])

    def class_logits(self, images: torch.Tensor) -> torch.Tensor:
        """Test-time logits (B,K): the class head (DeiT averages it with the distillation head)."""
        return self.model(images)["logits"]

    @torch.no_grad()
    def predict(self, batch: Batch) -> dict[str, torch.Tensor]:
        logits = self.class_logits(batch["image"]).float()  # (B,K)
        return {"logits": logits, "probs": logits.softmax(1)}

    @torch.no_grad()
    def attention(self, images: torch.Tensor) -> torch.Tensor:
        """CLS-to-patch attention of every head of every block: (B, depth, heads, P, P)."""
        return self.model(images, attention=True)["attention"]


@register(
    "vit",
    task="classify",
    config=ViTConfig,
    presets=vit_presets({}),
    paper=Paper(
        "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
        "Dosovitskiy et al., ICLR 2021",
        "https://arxiv.org/abs/2010.11929",
    ),
    summary="small ViT (patch 4) trained from scratch: the baseline of the small-data ViT methods (deit, aal)",
    seed_method=False,
)
class PlainViT(ViTMethod):
    """The small ViT trained with cross-entropy alone."""
