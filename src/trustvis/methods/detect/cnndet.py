"""CNNDetection baseline: a ResNet-50 real/fake classifier with Blur+JPEG augmentation.

Paper: Wang, Wang, Zhang, Owens, Efros. "CNN-generated images are surprisingly easy to spot... for now".
CVPR 2020. arXiv 1912.11035. Official code: PeterWang512/CNNDetection.

Implemented: ImageNet ResNet-50 with ``fc -> 1`` and BCE-with-logits; Adam lr 1e-4, betas (0.9, 0.999),
batch 64; Blur+JPEG(0.5) augmentation (blur sigma ~ U[0,3], JPEG quality ~ U{30..100}, each with
p = 0.5); horizontal flip; optional random crop (train) / centre crop (eval). Shapes::

    image (B,3,H,W) in [0,1] ──► ImageNet normalise ──► ResNet ──► fc ──► logits (B,) ──► sigmoid = score

Deviations:
  * Budgets are in steps, not "early stopping with patience 5 then lr/10 until 1e-6"; the quick bench
    uses a fixed step budget and a ResNet-18 because it trains from scratch on a CPU.
  * ImageNet initialisation only when the weights are available offline (``weights="imagenet"`` finds
    torchvision's cached file, or pass a path). Without them, set ``weights=""`` (random init).
  * ``crop_size=0`` (no crop) by default: the paper's ``--no_crop`` evaluation is better on most sets.
"""

from __future__ import annotations

from dataclasses import dataclass

from trustvis.methods.detect.base import BinaryDetector, DetectorConfig, detector_presets
from trustvis.nn.backbones import build_classifier
from trustvis.registry import Paper, register


@dataclass
class CNNDetConfig(DetectorConfig):
    """CNNDetection: only the shared detector fields."""


PRESETS = {
    "default": {},
    "quick": {"backbone": "resnet18", "weights": ""},
    "full": {"backbone": "resnet50", "weights": ""},
    "tiny": {"backbone": "tiny", "weights": "", "blur_prob": 0.1, "jpeg_prob": 0.1},
}


@register(
    "cnndet",
    task="detect",
    config=CNNDetConfig,
    presets=detector_presets(PRESETS),
    paper=Paper(
        "CNN-generated images are surprisingly easy to spot... for now",
        "Wang et al., CVPR 2020",
        "https://arxiv.org/abs/1912.11035",
    ),
    summary="ResNet real/fake classifier with Blur+JPEG augmentation (baseline)",
    seed_method=False,
)
class CNNDet(BinaryDetector):
    """CNNDetection (baseline)."""

    def __init__(self, config: CNNDetConfig) -> None:
        super().__init__(config)
        self.model = build_classifier(config.backbone, 1, config.weights or None)
