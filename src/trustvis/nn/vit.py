"""A small Vision Transformer for small images, which shows its attention and can carry a distillation token.

Paper of the architecture: Dosovitskiy et al. "An Image is Worth 16x16 Words: Transformers for Image
Recognition at Scale". ICLR 2021. arXiv 2010.11929. Distillation token: Touvron et al. "Training
data-efficient image transformers & distillation through attention" (DeiT). ICML 2021. arXiv 2012.12877.

It exists because the ViTs of :mod:`trustvis.nn.backbones` (torchvision's, patch 16) see a 28–64 px image as a
2x2 to 4x4 grid, and because attention-map regularisers (AAL) need every head's attention, which torchvision's
encoder does not return::

    image (B,3,H,W) in [0,1] ──normalise──► patches (B,P·P,D) (conv, patch p) ──► [CLS, (DIST), patches] + pos
        ──► depth x pre-norm block: x + Attn(LN x); x + MLP(LN x)            Attn: heads H, width D
        ──► LN ──► head(CLS) (B,K)  [and head_dist(DIST) (B,K)]
    forward(images, attention=True) also returns the CLS-to-patch attention of every head of every block:
        (B, depth, H, P, P), each row the softmax weights of the CLS query over the patch keys

Shapes: ``P = image_size // patch``; tokens ``T = P·P + 1 (+1 with the distillation token)``.

Choices: pre-norm blocks, GELU MLP of ``mlp_ratio x width``, learned position embeddings, truncated-normal
(std 0.02) initialisation as in DeiT/timm; no dropout or stochastic depth (small CPU budgets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ViTShape:
    """The size of a :class:`SmallViT`."""

    image_size: int = 32
    patch: int = 4
    width: int = 128
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 2.0

    def check(self) -> None:
        if self.image_size % self.patch:
            raise ValueError(
                f"image_size {self.image_size} must be a multiple of the patch size {self.patch}"
            )
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be a multiple of the number of heads {self.heads}")
        if min(self.image_size, self.patch, self.width, self.depth, self.heads) < 1:
            raise ValueError(f"every size of {self} must be >= 1")


class Attention(nn.Module):
    """Multi-head self-attention that returns its weights (B, H, T, T)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # (B,H,T,d_h)
        weights = (q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)).softmax(-1)  # (B,H,T,T)
        out = (weights @ v).transpose(1, 2).reshape(b, t, d)
        return self.proj(out), weights


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, width: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, w = self.attn(self.norm1(x))
        x = x + a
        return x + self.mlp(self.norm2(x)), w


class SmallViT(nn.Module):
    """A ViT for small images with an optional DeiT distillation token (see the module docstring)."""

    def __init__(self, shape: ViTShape, num_classes: int, distillation: bool = False) -> None:
        super().__init__()
        shape.check()
        self.shape = shape
        self.grid = shape.image_size // shape.patch
        self.distillation = distillation
        d = shape.width
        self.patch_embed = nn.Conv2d(3, d, shape.patch, shape.patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, d)) if distillation else None
        self.extra = 2 if distillation else 1  # tokens before the patches
        self.pos_embed = nn.Parameter(torch.zeros(1, self.extra + self.grid**2, d))
        self.blocks = nn.ModuleList([Block(d, shape.heads, shape.mlp_ratio) for _ in range(shape.depth)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, num_classes)
        self.head_dist = nn.Linear(d, num_classes) if distillation else None
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        for p in (self.pos_embed, self.cls_token, *((self.dist_token,) if distillation else ())):
            nn.init.trunc_normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) in [0,1] -> (B,T,D): [CLS, (DIST), patches] + position embeddings."""
        s = self.shape.image_size
        if tuple(images.shape[-2:]) != (s, s):
            images = F.interpolate(images, size=(s, s), mode="bilinear", align_corners=False)
        x = self.patch_embed((images - self.mean) / self.std).flatten(2).transpose(1, 2)  # (B,P·P,D)
        first = [self.cls_token.expand(x.shape[0], -1, -1)]
        if self.dist_token is not None:
            first.append(self.dist_token.expand(x.shape[0], -1, -1))
        return torch.cat([*first, x], 1) + self.pos_embed

    def forward(self, images: torch.Tensor, attention: bool = False) -> dict[str, torch.Tensor]:
        """``{"logits" (B,K)}``, plus ``"logits_dist"`` (B,K) with the distillation token and ``"attention"``
        (B, depth, heads, P, P) — the CLS row over the patch keys — when ``attention``."""
        x = self.tokens(images)
        maps = []
        for blk in self.blocks:
            x, w = blk(x)
            if attention:
                maps.append(w[:, :, 0, self.extra :])  # (B,H,P·P)
        x = self.norm(x)
        out = {"logits": self.head(x[:, 0])}
        if self.head_dist is not None:
            out["logits_dist"] = self.head_dist(x[:, 1])
        if attention:
            out["attention"] = torch.stack(maps, 1).unflatten(-1, (self.grid, self.grid))
        return out
