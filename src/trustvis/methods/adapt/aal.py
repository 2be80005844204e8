"""AAL: attention heads of a ViT linked to the activation maps of a frozen CNN, as a regulariser — ``aal``.

Paper: Jin & Choi. "Adaptive Attention Link-based Regularization for Vision Transformers". arXiv 2211.13852
(2022; no official code). The method section is not accessible: what follows is the reconstruction of
``../shared/specs/aal.md``; every unverified choice is a config field.

Each ViT head's CLS-to-patch attention is a map over the patch grid; a trainable 1x1 convolution (the *attention
augmentation module*, the "links") mixes the M·N head maps of all blocks into C maps that should look like the
C channel maps of a frozen pretrained CNN, resized to the grid; ViT and links train together::

    image ──► SmallViT ──► logits (B,K)      and  A (B, N blocks · M heads, P, P)   CLS row over the patches
                                                   │ links: A⁺_c = Σ_{m,n} w_{c,(m,n)} A_{m,n} + b_c   (1x1 conv)
                                                   ▼
                                               A⁺ (B, C, P, P)
    image ──► frozen CNN (ImageNet MobileNetV2, taps /4 and /8) ──► maps ──bicubic──► B (B, C, P, P)
    L = CE(logits, y) + λ · mean_c D(A⁺_c / ‖A⁺_c‖₂, B_c / ‖B_c‖₂)        D: squared L2 (attention transfer) or L1
    predict: the ViT alone (logits); the CNN and the links are training-time only

The advanced module (``model.links_from=RUN``, a finished ``aal`` run): the first run's link magnitudes |w| pick,
for every CNN map (``link_by=map``) or every head (``link_by=head``), its ``links_per`` strongest counterparts;
the second run trains fresh links restricted to exactly that sparse assignment (a fixed mask on the 1x1 weights).

Deviations / reconstruction (documented choices, config fields):
  * the loss and its distance (``distance``), λ (``lam`` 1.0; 0.3 and 3 gave the same validation accuracy within a
    seed's spread on Fashion-MNIST 1k),
    the CNN layers (``teacher_taps``: MobileNetV2's /4 and /8 stage ends, 24 + 32 maps at 32 px input — the
    grid of a patch-4 ViT on 32 px) are not published;
  * the links start from PyTorch's default 1x1-conv initialisation; the advanced module re-initialises the kept
    links rather than keeping the first run's values, and takes the mask from one first run (the bench uses the
    same seed's);
  * the teacher is the frozen ImageNet CNN by default (the paper's "pre-trained CNN"); ``model.teacher=RUN`` links
    to a CNN fine-tuned on the data instead (the DeiT teacher).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from trustvis.config import ConfigError
from trustvis.methods.adapt.teacher import TeacherViT, TeacherViTConfig
from trustvis.methods.classify.vit import vit_presets
from trustvis.nn.backbones import pretrained_skipped
from trustvis.registry import Paper, register

log = logging.getLogger(__name__)

DISTANCES = ("l2", "l1")
LINK_BY = ("map", "head")


@dataclass
class AALConfig(TeacherViTConfig):
    """AAL: the ViT, its frozen CNN, the links and the regulariser."""

    teacher_taps: tuple[int, ...] = (
        1,
        2,
    )  # feature taps of the CNN whose channels are the C maps (nn/backbones.py)
    lam: float = 1.0  # λ, the weight of the link regulariser
    distance: str = "l2"  # between L2-normalised maps: l2 (squared, attention transfer) | l1
    links_from: str = (
        ""  # the advanced module: a finished aal run whose link magnitudes choose the kept links
    )
    link_by: str = "map"  # advanced: keep the strongest links of every CNN map (map) or of every head (head)
    links_per: int = 2  # advanced: links kept per CNN map (or per head)


class AttentionLinks(nn.Module):
    """The attention augmentation module: a 1x1 convolution from M·N head maps to C CNN maps, optionally
    restricted to a fixed 0/1 ``mask`` (C, M·N) of links (the advanced module)."""

    def __init__(self, heads: int, maps: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(heads, maps, 1)
        self.register_buffer("mask", torch.ones(maps, heads))  # saved: a loaded advanced run keeps its links

    def weight(self) -> torch.Tensor:
        """The effective link weights (C, M·N): zero outside the mask."""
        return self.conv.weight[:, :, 0, 0] * self.mask

    def forward(self, head_maps: torch.Tensor) -> torch.Tensor:  # (B, M·N, P, P) -> (B, C, P, P)
        return F.conv2d(head_maps, self.weight()[:, :, None, None], self.conv.bias)


def strongest_links(weight: torch.Tensor, k: int, by: str = "map") -> torch.Tensor:
    """0/1 mask (C, M·N) keeping, for each CNN map (row; ``by="map"``) or each head (column; ``by="head"``),
    the ``k`` links of largest ``|weight|`` (C, M·N)."""
    if by not in LINK_BY:
        raise ValueError(f"link_by={by!r} is invalid; choose from {list(LINK_BY)}")
    w = weight.abs()
    dim = 1 if by == "map" else 0
    if not 1 <= k <= w.shape[dim]:
        raise ValueError(
            f"links_per={k} must be in 1..{w.shape[dim]} (the {'heads' if by == 'map' else 'CNN maps'})"
        )
    idx = w.topk(k, dim=dim).indices
    return torch.zeros_like(w).scatter_(dim, idx, 1.0)


def map_distance(a: torch.Tensor, b: torch.Tensor, distance: str = "l2") -> torch.Tensor:
    """Mean over images and maps of D(a_c/‖a_c‖₂, b_c/‖b_c‖₂) for maps (B, C, P, P); zero when a == b (up to a
    positive scale per map)."""
    if distance not in DISTANCES:
        raise ValueError(f"distance={distance!r} is invalid; choose from {list(DISTANCES)}")
    a = F.normalize(a.flatten(2), dim=2, eps=1e-8)  # (B,C,P·P)
    b = F.normalize(b.flatten(2), dim=2, eps=1e-8)
    d = (a - b).pow(2) if distance == "l2" else (a - b).abs()
    return d.sum(2).mean()


@register(
    "aal",
    task="adapt",
    config=AALConfig,
    presets=vit_presets(
        {
            "tiny": {
                "teacher_backbone": "tiny",
                "teacher_weights": "none",
                "teacher_input_size": 8,
                "teacher_taps": (1, 2),
            }
        }
    ),  # fmt: skip
    paper=Paper(
        "Adaptive Attention Link-based Regularization for Vision Transformers",
        "Jin & Choi, arXiv 2022",
        "https://arxiv.org/abs/2211.13852",
    ),
    summary="ViT whose attention heads are linked (trainable 1x1 conv) to a frozen CNN's activation maps as a "
    "regulariser; links_from=RUN trains the advanced sparse module",
)
class AAL(TeacherViT):
    """The small ViT regularised by attention links to a frozen CNN (see the module docstring)."""

    config: AALConfig

    def __init__(self, config: AALConfig) -> None:
        if config.distance not in DISTANCES:
            raise ConfigError(f"model.distance={config.distance!r} is invalid; choose from {list(DISTANCES)}")
        if config.link_by not in LINK_BY:
            raise ConfigError(f"model.link_by={config.link_by!r} is invalid; choose from {list(LINK_BY)}")
        if config.lam < 0:
            raise ConfigError(f"model.lam={config.lam} must be >= 0")
        super().__init__(config)
        with torch.no_grad():
            maps = self.teacher.feature_maps(torch.zeros(1, 3, 8, 8), config.teacher_taps)
        self.map_channels = [m.shape[1] for m in maps]  # C_i of each tap; C = their sum
        self.links = AttentionLinks(config.depth * config.heads, sum(self.map_channels))
        if config.links_from and not pretrained_skipped():
            self.links.mask.copy_(self._first_run_mask(config))

    def _first_run_mask(self, cfg: AALConfig) -> torch.Tensor:
        from safetensors import SafetensorError, safe_open

        run = Path(cfg.links_from)
        try:
            meta = json.loads((run / "model.json").read_text(encoding="utf-8"))
            method = meta.get("method") if isinstance(meta, dict) else None
            if method != "aal":
                raise ConfigError(f"model.links_from={run}: holds a {method!r} run, not an aal run")
            with safe_open(str(run / "model.safetensors"), "pt") as f:
                weight = f.get_tensor("links.conv.weight")[:, :, 0, 0] * f.get_tensor("links.mask")
        except (OSError, ValueError, KeyError, SafetensorError) as e:  # JSONDecodeError is a ValueError
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(
                f"model.links_from={run}: not a finished aal run ({type(e).__name__}: {e})"
            ) from None
        if tuple(weight.shape) != tuple(self.links.mask.shape):
            raise ConfigError(f"model.links_from={run}: its links are {tuple(weight.shape)}, this run's "
                              f"{tuple(self.links.mask.shape)} (the same ViT depth x heads and CNN maps are needed)")  # fmt: skip
        try:
            mask = strongest_links(weight, cfg.links_per, cfg.link_by)
        except ValueError as e:
            raise ConfigError(f"model.{e}") from None
        log.info("advanced links from %s: %d of %d kept", run, int(mask.sum()), mask.numel())
        return mask

    def cnn_maps(self, images: torch.Tensor) -> torch.Tensor:
        """The frozen CNN's maps at ``teacher_taps``, bicubically resized to the ViT's grid: (B, C, P, P)."""
        g = self.model.grid
        with torch.no_grad():
            maps = self.teacher.feature_maps(images, self.config.teacher_taps)
            return torch.cat([F.interpolate(m.float(), size=(g, g), mode="bicubic", align_corners=False)
                              if m.shape[-1] != g else m.float() for m in maps], 1)  # fmt: skip

    def objective(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.model(images, attention=True)  # logits (B,K); attention (B, N, M, P, P)
        augmented = self.links(out["attention"].flatten(1, 2))  # (B, C, P, P)
        reg = map_distance(augmented, self.cnn_maps(images), self.config.distance)
        ce = F.cross_entropy(out["logits"], labels, label_smoothing=self.config.label_smoothing)
        return {"loss": ce + self.config.lam * reg, "ce": ce.detach(), "link_distance": reg.detach(),
                "acc": (out["logits"].argmax(1) == labels).float().mean().detach()}  # fmt: skip

    @torch.no_grad()
    def link_matrix(self) -> torch.Tensor:
        """|w| of the links (C CNN maps, N·M heads, block-major): what the advanced module reads."""
        return self.links.weight().abs().float().cpu()

    @torch.no_grad()
    def augmented_maps(self, images: torch.Tensor) -> torch.Tensor:
        """A⁺ (B, C, P, P): the linked head maps the regulariser compares with :meth:`cnn_maps`."""
        return self.links(self.model(images, attention=True)["attention"].flatten(1, 2))
