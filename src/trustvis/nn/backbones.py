"""Classifier backbones over torchvision architectures, with offline-only weight loading.

``build_classifier(name, num_outputs, weights)`` returns a pure ``nn.Module`` mapping images in [0,1]
(B,3,H,W) to logits (B, num_outputs). ImageNet normalisation happens inside the module.

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


BACKBONES = ("tiny", "resnet18", "resnet34", "resnet50")


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
        net: nn.Module = TinyCNN(num_outputs)
    elif name in ("resnet18", "resnet34", "resnet50"):
        net = getattr(torchvision.models, name)(weights=None)
        state = resolve_weights(name, weights)
        if state is not None:
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
            missing, unexpected = net.load_state_dict(state, strict=False)
            bad = [k for k in missing if not k.startswith("fc.")]
            if bad or unexpected:
                raise ValueError(f"weights do not fit {name}: missing {bad[:5]}, unexpected {unexpected[:5]}")
            log.info("loaded %s weights from %s", name, weights)
        net.fc = nn.Linear(net.fc.in_features, num_outputs)
    else:
        raise ValueError(f"Unknown backbone {name!r}; choose from {list(BACKBONES)}")
    return Normalized(net)
