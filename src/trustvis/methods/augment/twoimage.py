"""Two-image mixing baselines, Mixup and CutMix, through torchvision's own implementations.

Papers: Zhang, Cisse, Dauphin, Lopez-Paz. "mixup: Beyond Empirical Risk Minimization". ICLR 2018.
arXiv 1710.09412. Yun, Han, Oh, Chun, Choe, Yoo. "CutMix: Regularization Strategy to Train Strong
Classifiers with Localizable Features". ICCV 2019. arXiv 1905.04899.

Not re-implemented: ``torchvision.transforms.v2.MixUp`` / ``CutMix`` mix each batch with itself rolled
by one (so odd batch sizes work), with lambda ~ Beta(alpha, alpha); CutMix's targets use the clipped
box's area. These are the "K = 2" references of ``kmix`` (DCutMix/DMixup). ::

    image (B,3,H,W), label (B,) ──► torchvision MixUp|CutMix (with probability p) ──► x, target (B,C)
        ──► classifier recipe (trustvis.methods.classify.classifier)

Deviations: ``p`` (apply probability, one draw per batch from torch's global RNG, as the DCutMix
code's ``--beta``) is ours; torchvision always mixes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms import v2

from trustvis.methods.classify.classifier import Classifier, ClassifierConfig, classifier_presets
from trustvis.registry import Paper, register


@dataclass
class TwoImageMixConfig(ClassifierConfig):
    """Classifier recipe + the torchvision mixer's parameters."""

    alpha: float = 1.0  # lambda ~ Beta(alpha, alpha)
    p: float = 1.0  # probability that a batch is mixed


class _TorchvisionMix(Classifier):
    config: TwoImageMixConfig
    mixer_cls: type = v2.MixUp

    def __init__(self, config: TwoImageMixConfig) -> None:
        super().__init__(config)
        if config.alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {config.alpha}")
        if not 0.0 <= config.p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {config.p}")
        self.mixer = self.mixer_cls(alpha=config.alpha, num_classes=config.num_classes)

    def mix(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.config.p < 1.0 and float(torch.rand(())) >= self.config.p:
            return super().mix(images, labels)
        return self.mixer(images, labels)


PRESETS = classifier_presets({"default": {}, "quick": {}, "tiny": {"backbone": "tiny", "crop_pad": 1}})


@register(
    "mixup",
    task="augment",
    config=TwoImageMixConfig,
    presets=PRESETS,
    paper=Paper(
        "mixup: Beyond Empirical Risk Minimization",
        "Zhang et al., ICLR 2018",
        "https://arxiv.org/abs/1710.09412",
    ),  # fmt: skip
    summary="Mixup of two images (torchvision.transforms.v2.MixUp) on the classifier recipe (baseline)",
    seed_method=False,
)
class Mixup(_TorchvisionMix):
    """Mixup (torchvision) on the classification recipe."""

    mixer_cls = v2.MixUp


@register(
    "cutmix",
    task="augment",
    config=TwoImageMixConfig,
    presets=PRESETS,
    paper=Paper(
        "CutMix: Regularization Strategy to Train Strong Classifiers with Localizable Features",
        "Yun et al., ICCV 2019",
        "https://arxiv.org/abs/1905.04899",
    ),  # fmt: skip
    summary="CutMix of two images (torchvision.transforms.v2.CutMix) on the classifier recipe (baseline)",
    seed_method=False,
)
class CutMix(_TorchvisionMix):
    """CutMix (torchvision) on the classification recipe."""

    mixer_cls = v2.CutMix
