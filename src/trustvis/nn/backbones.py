"""Classifier backbones: torchvision ResNets, small CIFAR-style ResNets, a tiny CNN; offline weights only.

``build_classifier(name, num_outputs, weights)`` returns a pure ``nn.Module`` mapping images in [0,1]
(B,3,H,W) to logits (B, num_outputs). ImageNet normalisation happens inside the module.

Backbones (:data:`BACKBONES`):
  * ``tiny``                          4-layer CNN (~25k parameters) for the ``tiny`` presets and tests;
  * ``resnet8``, ``resnet20``         the CIFAR ResNets of He et al. (CVPR 2016, section 4.2): a 3x3
                                      stem, three stages of 6n+2 layers with widths 16/32/64 at full,
                                      1/2 and 1/4 resolution; for 20-64 px images on a CPU (resnet8:
                                      78k parameters, ~0.1 s per batch of 64 28x28 images on 2 cores).
                                      Shortcuts that change shape are 1x1 conv + BN (option B);
  * ``resnet18``, ``resnet34``, ``resnet50``  torchvision's ImageNet ResNets.

Weights (never downloaded):
  * ``None``         random initialisation;
  * ``"imagenet"``   torchvision's cached ImageNet file if the user already has it in
                     ``$TORCH_HOME/hub/checkpoints``; otherwise a clear error saying where to put it;
  * a file path      ``.safetensors`` (preferred) or a torchvision ``.pth`` state dict, loaded with
                     ``weights_only=True`` (no arbitrary unpickling).
The classification head is always re-initialised to ``num_outputs``.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from pathlib import Path

import torch
import torchvision
from torch import nn

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: torchvision file names of the ImageNet weights (IMAGENET1K_V1), looked up in the user's cache only.
_TORCHVISION_FILES = {
    "resnet18": "resnet18-f37072fd.pth",
    "resnet34": "resnet34-b627a593.pth",
    "resnet50": "resnet50-0676ba61.pth",
}


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
BACKBONES = ("tiny", "resnet8", "resnet20", "resnet18", "resnet34", "resnet50")


class Normalized(nn.Module):
    """Wraps a network with ImageNet mean/std normalisation of [0,1] inputs."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B,3,H,W) in [0,1] -> (B, K)
        return self.net((x - self.mean) / self.std)


_SKIP_PRETRAINED = contextvars.ContextVar("skip_pretrained", default=False)


@contextlib.contextmanager
def no_pretrained() -> Iterator[None]:
    """Build backbones without loading pretrained weights (used when a checkpoint overwrites them)."""
    token = _SKIP_PRETRAINED.set(True)
    try:
        yield
    finally:
        _SKIP_PRETRAINED.reset(token)


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


def resolve_weights(name: str, weights: str | None) -> dict[str, torch.Tensor] | None:
    """Find the weights for backbone ``name`` without any network access (see module docstring)."""
    if not weights or _SKIP_PRETRAINED.get():
        return None
    if weights == "imagenet":
        if name not in _TORCHVISION_FILES:
            raise ValueError(
                f"No ImageNet weights known for backbone {name!r}; known: {sorted(_TORCHVISION_FILES)}"
            )
        cached = Path(torch.hub.get_dir()) / "checkpoints" / _TORCHVISION_FILES[name]
        if not cached.is_file():
            raise FileNotFoundError(
                f"ImageNet weights for {name} are not in torchvision's cache ({cached}). trustvis never downloads; "
                f"copy the file there, or pass model.weights=/path/to/{_TORCHVISION_FILES[name]} "
                "(or a .safetensors file), or use model.weights='' for random initialisation."
            )
        return _load_state(cached)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    return _load_state(path)


def build_classifier(name: str, num_outputs: int = 1, weights: str | None = None) -> nn.Module:
    """Backbone ``name`` with a fresh ``num_outputs`` head; [0,1] images in, logits out."""
    if name == "tiny":
        return Normalized(TinyCNN(num_outputs))
    if name in _CIFAR_RESNETS:
        net: nn.Module = CifarResNet(_CIFAR_RESNETS[name], num_outputs)
    elif name in ("resnet18", "resnet34", "resnet50"):
        net = getattr(torchvision.models, name)(weights=None)
        net.fc = nn.Linear(net.fc.in_features, num_outputs)
    else:
        raise ValueError(f"Unknown backbone {name!r}; choose from {list(BACKBONES)}")
    state = resolve_weights(name, weights)
    if state is not None:  # every layer but the head, which is always fresh
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        missing, unexpected = net.load_state_dict(state, strict=False)
        bad = [k for k in missing if not k.startswith("fc.")]
        if bad or unexpected:
            raise ValueError(f"weights do not fit {name}: missing {bad[:5]}, unexpected {unexpected[:5]}")
        log.info("loaded %s weights from %s", name, weights)
    return Normalized(net)
