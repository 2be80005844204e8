"""NPR baseline: a small CNN on the Neighbouring Pixel Relationships left by up-sampling.

Paper: Tan, Liu, Zhao, Wei, Gu, Liu, Wei. "Rethinking the Up-Sampling Operations in CNN-based
Generative Network for Generalizable Deepfake Detection". CVPR 2024. arXiv 2312.10461.
Official code: chuangchuangtan/NPR-DeepfakeDetection (``networks/resnet.py``, ``networks/trainer.py``).

Generators up-sample with nearest/transposed convolutions, which ties the pixels of every 2×2 block
together. NPR isolates that local relation: it subtracts from the image its own nearest-neighbour
down-/up-sampled copy, so every pixel becomes its difference to the top-left pixel of its 2×2 block
(the top-left pixel itself becomes 0). A ResNet-50 cut after ``layer2`` classifies the residual (spec
§2.5)::

    x (B,3,H,W) in [0,1]
      └─► (x − mean) / std                     ImageNet normalisation, as the official data pipeline
      └─► trim to even H', W'                  odd sizes lose their last row / column
      └─► NPR = x − up_nearest(down_nearest(x, factor), 1/factor)     (B,3,H',W'), factor = ½
      └─► conv1 3×3/s2 (3→w) ─ BN ─ ReLU ─ maxpool 3×3/s2            (B,w,H'/4,W'/4)
      └─► layer1: 3 bottlenecks (w→4w)                                 (B,4w,H'/4,W'/4)
      └─► layer2: 4 bottlenecks, stride 2 (4w→8w)                      (B,8w,H'/8,W'/8)
      └─► global average pool ─ fc1 (8w→1) ──► logits (B,) ──► sigmoid = score

The residual is multiplied by ``scale`` (2/3) before ``conv1``, as in the official forward pass. With
w = 64 the network has 1.44M parameters and is trained from scratch with Adam 2e-4, batch 32, BCE,
horizontal flips and no blur/JPEG augmentation. ``weights=<file>`` loads an ``NPRNet`` state dict
(``.safetensors`` or a ``.pth`` state dict; a ``module.`` prefix is dropped); the module names follow
the official network, so its released checkpoint is meant to load as it is.

Deviations:
  * budgets are in optimiser steps at a constant learning rate, not 50 epochs with lr ×0.9 every 10
    epochs (the trainer has no schedule): ``default`` 20k steps, ``full`` 10k, ``quick`` 700. The net
    is small in parameters but not in compute: layer1 runs at 1/4 resolution with 256 channels, so a
    step on 64×64 patches costs about a ResNet-18 step (26.8 vs 27.8 GFLOP fwd+bwd at batch 32,
    measured ~1.1× slower on CPU), and 700 steps keep the quick run near the ResNet-18 baseline's
    800-step time. Every preset keeps the paper's lr 2e-4: on SynthBench quick (trained on ae_tconv),
    800 steps at 2e-4, 5e-4 and 1e-3 all reached val AUC 1.00 and unseen-family AUC 0.996-0.999
    (2 seeds each; the loss is ~0.01 by then), and 1500 steps added nothing;
  * training images are used as they are (``crop_size=0``); the official pipeline resizes to 256×256
    and random-crops 224 (on 256-px ForenSynths images that is a random 224 crop: set
    ``crop_size=224``). Any resize would blur the very pixel relations NPR reads;
  * odd image sizes are trimmed to even inside the model (last row / column dropped) instead of being
    rejected; the README asks users to trim them;
  * ``width`` (base channels, 64 in the paper) makes the ``tiny`` preset a narrower (w = 8, ~23k
    parameters) copy of the same network;
  * ``factor`` (½ in the paper) may be any 1/k, k ≥ 2 integer; sizes are then trimmed to multiples of k.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import Bottleneck

from trustvis.methods.detect.base import BinaryDetector, DetectorConfig, detector_presets
from trustvis.nn.backbones import IMAGENET_MEAN, IMAGENET_STD, resolve_weights
from trustvis.registry import Paper, register


@dataclass
class NPRConfig(DetectorConfig):
    """NPR = the shared detector fields (NPR's values) + the residual and network constants."""

    backbone: str = "resnet50"  # NPR's ResNet-50 bottleneck layout cut after layer2 (the only choice)
    weights: str = ""  # "" = from scratch (the paper); or a file with NPRNet weights
    blur_prob: float = 0.0  # NPR trains without Blur+JPEG
    jpeg_prob: float = 0.0
    scale: float = 2.0 / 3.0  # the residual is multiplied by this before conv1
    factor: float = 0.5  # down-sampling factor of the nearest round trip (1/k, integer k >= 2)
    width: int = 64  # base channels (conv1, layer1); layer2 has 2x, its output 8x
    normalize: bool = True  # ImageNet mean/std before the residual (official data pipeline)


def _factor_k(factor: float) -> int:
    k = round(1.0 / factor) if factor > 0 else 0
    if k < 2 or abs(k * factor - 1.0) > 1e-6:
        raise ValueError(f"NPR factor must be 1/k for an integer k >= 2 (0.5, 0.25, ...), got {factor}")
    return k


def npr_residual(x: torch.Tensor, factor: float = 0.5) -> torch.Tensor:
    """``x − up_nearest(down_nearest(x, factor))`` on the largest top-left crop divisible by 1/factor.

    Args:
        x: (B,C,H,W) images.
        factor: 1/k; with ½ every pixel minus the top-left pixel of its 2×2 block.

    Returns:
        (B,C,H',W') residual, H' = H − H mod k, W' = W − W mod k. Differentiable.
    """
    k = _factor_k(factor)
    h, w = x.shape[-2:]
    h2, w2 = h - h % k, w - w % k
    if h2 == 0 or w2 == 0:
        raise ValueError(f"NPR needs images of at least {k}x{k} pixels, got {h}x{w}")
    x = x[..., :h2, :w2]
    low = F.interpolate(x, size=(h2 // k, w2 // k), mode="nearest")  # picks the top-left of each block
    return x - F.interpolate(low, size=(h2, w2), mode="nearest")


class NPRNet(nn.Module):
    """Pure model: NPR residual + ResNet-50 stem/layer1/layer2 + fc; images in [0,1] -> logits (B, 1).

    Module names (``conv1``, ``bn1``, ``layer1``, ``layer2``, ``fc1``) follow the official network.
    """

    def __init__(
        self,
        width: int = 64,
        scale: float = 2.0 / 3.0,
        factor: float = 0.5,
        normalize: bool = True,
        blocks: tuple[int, int] = (3, 4),
    ) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"NPR width must be >= 1, got {width}")
        _factor_k(factor)
        self.scale, self.factor, self.normalize = scale, factor, normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._layer(width, width, blocks[0], stride=1)  # -> 4w channels
        self.layer2 = self._layer(4 * width, 2 * width, blocks[1], stride=2)  # -> 8w channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(8 * width, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def _layer(inplanes: int, planes: int, n: int, stride: int) -> nn.Sequential:
        out = planes * Bottleneck.expansion
        down = None
        if stride != 1 or inplanes != out:
            down = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))
        layers = [Bottleneck(inplanes, planes, stride, down)]
        layers += [Bottleneck(out, planes) for _ in range(1, n)]
        return nn.Sequential(*layers)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """What the CNN sees: ``scale`` × NPR of the (normalised) image, (B,3,H',W')."""
        if self.normalize:
            x = (x - self.mean) / self.std
        return self.scale * npr_residual(x, self.factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.maxpool(self.relu(self.bn1(self.conv1(self.residual(x)))))
        z = self.layer2(self.layer1(z))
        return self.fc1(torch.flatten(self.avgpool(z), 1))


def _load_weights(net: NPRNet, weights: str) -> None:
    """Load an NPRNet state dict from ``weights`` (see the module docstring); no-op for ""."""
    state = resolve_weights("npr", weights)
    if state is None:
        return
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}  # an unused 2048->1 head
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise ValueError(
            f"weights {weights} do not fit NPRNet(width={net.fc1.in_features // 8}): missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, other shapes {shapes[:5]}"
        )
    net.load_state_dict(state)


PRESETS = {
    "default": {},
    "quick": {},
    "full": {},
    "tiny": {"width": 8},
}


NPR_TRAIN = {
    "default": {"lr": 2e-4, "batch_size": 32, "steps": 20000},
    "quick": {"lr": 2e-4, "batch_size": 32, "steps": 800},
    "full": {"lr": 2e-4, "batch_size": 32, "steps": 10000, "num_workers": 4},
    "tiny": {"lr": 1e-3, "batch_size": 4, "steps": 2},
}


@register(
    "npr",
    task="detect",
    config=NPRConfig,
    presets=detector_presets(PRESETS, NPR_TRAIN),
    paper=Paper(
        "Rethinking the Up-Sampling Operations in CNN-based Generative Network for Generalizable "
        "Deepfake Detection",
        "Tan et al., CVPR 2024",
        "https://arxiv.org/abs/2312.10461",
    ),
    summary="neighbouring-pixel residual of the 2x2 up-sampling grid + ResNet-50 cut after layer2 (baseline)",
    seed_method=False,
)
class NPR(BinaryDetector):
    """NPR detector (baseline)."""

    def __init__(self, config: NPRConfig) -> None:
        super().__init__(config)
        if config.backbone != "resnet50":
            raise ValueError(
                f"NPR's network is the ResNet-50 layout cut after layer2; backbone must be 'resnet50', "
                f"got {config.backbone!r} (use width= for a narrower copy)"
            )
        self.model = NPRNet(config.width, config.scale, config.factor, config.normalize)
        _load_weights(self.model, config.weights)

    def backbone_heads(self) -> dict[str, list[str]]:
        """The NPR network (its own ResNet, head ``fc1``)."""
        return {"model": ["model.fc1"]}
