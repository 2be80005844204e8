"""The re-identification model every ``reid`` method trains, and what the methods share: layer groups of any
backbone, the phased optimiser, flip-averaged embeddings, per-group gradient probes.

Model (``ft_net`` of the official rollback code, after layumi's Person_reID_baseline_pytorch)::

    image (B,3,H,W) in [0,1] ──► backbone (nn/backbones.py, last tap) ──► global average pool ──► f (B,C)
      f ──► bottleneck: Linear(C, 512) + BN1d + LeakyReLU(0.1) + Dropout(0.5) ──► classifier Linear(512, IDs)
    test: classifier dropped; embedding = L2-normalise((f(x) + f(flip x)) / 2)  (B,C), ranked by cosine

Layer groups: the backbone's five tap segments (``nn.backbones`` feature taps: the stem and four stages for the
ResNets, MobileNetV2 and EfficientNet-Lite; a ViT's blocks are split into five consecutive runs) are the groups
``g0`` (stem) .. ``g4`` (last stage) that the schedules give learning rates to and roll back; ``head`` is the
bottleneck and the classifier. Backbone parameters outside the tap segments (a ViT's patch and position
embedding and final norm) join ``g0``.

Training uses SGD (momentum 0.9, Nesterov, weight decay 5e-4) with one param group per layer group; the
method's :class:`~trustvis.engine.phases.PhasedSchedule` sets each group's rate every step (``on_step_start``).
The mean squared gradient of each group (the paper's vanishing-gradient analysis) is logged as ``grad_<group>``:
the gradients of the previous step, read before the next one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trustvis.config import TrainConfig
from trustvis.engine.phases import Phase, PhasedSchedule, grouped_parameters
from trustvis.methods.base import Batch, Method
from trustvis.registry import Preset

GROUPS = ("g0", "g1", "g2", "g3", "g4")

#: training budget per preset (quick: the CPU bench; steps are shared by every schedule at equal budget)
REID_TRAIN = {
    "default": {"lr": 0.01, "batch_size": 32, "steps": 4000},
    # 18 runs of the quick bench + the vtest build (3 min) in about 25 min on 2 cores (300 steps took 33 min)
    "quick": {"lr": 0.01, "batch_size": 32, "steps": 250},
    "tiny": {"lr": 0.01, "batch_size": 4, "steps": 4},
}
REID_DATA = {"tiny": {"name": "photoreid", "size": "tiny"}}
REID_MODEL = {
    "default": {"backbone": "resnet50", "weights": "imagenet", "height": 288, "width": 144},
    "quick": {"backbone": "mobilenet_v2", "weights": "imagenet", "height": 128, "width": 64},
    "tiny": {"backbone": "tiny", "weights": "", "height": 32, "width": 16, "bottleneck": 16},
}


def reid_presets(extra: dict[str, dict] | None = None) -> dict[str, Preset]:
    """The presets of a reid method: :data:`REID_MODEL` (+ ``extra`` model values per preset), budgets of
    :data:`REID_TRAIN`, data of :data:`REID_DATA`."""
    extra = extra or {}
    return {name: Preset(model={**REID_MODEL[name], **extra.get(name, {})}, train=REID_TRAIN[name],
                         data=REID_DATA.get(name, {})) for name in REID_MODEL}  # fmt: skip


@dataclass
class ReidConfig:
    """Fields every reid method has (defaults: the paper's ResNet-50 at 288x144)."""

    backbone: str = "resnet50"  # any of nn.backbones.BACKBONES
    weights: str = "imagenet"  # "imagenet" (offline files), a path, or "" / none (random init)
    height: int = 288
    width: int = 144
    bottleneck: int = 512
    dropout: float = 0.5
    num_classes: int = 751  # training identities; set from the data by the reid task
    lr_backbone: float = 0.01  # first period / plain fine-tuning: backbone
    lr_head: float = 0.1  # first period / plain fine-tuning: bottleneck + classifier
    momentum: float = 0.9
    weight_decay: float = 5e-4
    decay_at: float = (
        0.5  # within each phase the rates drop by decay from this fraction of it on (StepLR 20/40)
    )
    decay: float = 0.1
    flip_test: bool = True  # embedding averaged with the horizontally flipped image's
    hflip: bool = True  # random horizontal flip while training


class ReidNet(nn.Module):
    """backbone -> pooled feature -> bottleneck -> ID classifier (``forward`` returns (logits, feature))."""

    def __init__(self, cfg: ReidConfig) -> None:
        super().__init__()
        from trustvis.nn.backbones import build_backbone

        self.backbone = build_backbone(
            cfg.backbone, cfg.weights or None, image_size=max(cfg.height, cfg.width)
        )
        c = self.backbone.channels[-1]
        self.bottleneck = nn.Sequential(nn.Linear(c, cfg.bottleneck), nn.BatchNorm1d(cfg.bottleneck),
                                        nn.LeakyReLU(0.1), nn.Dropout(cfg.dropout))  # fmt: skip
        self.classifier = nn.Linear(cfg.bottleneck, cfg.num_classes)
        nn.init.kaiming_normal_(self.bottleneck[0].weight, a=0, mode="fan_out")
        nn.init.zeros_(self.bottleneck[0].bias)
        nn.init.normal_(self.classifier.weight, std=0.001)
        nn.init.zeros_(self.classifier.bias)
        self.feature_dim = c

    def feature(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.backbone(x)[-1]  # (B,C,h,w)
        return F.adaptive_avg_pool2d(fmap, 1).flatten(1)  # (B,C)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.feature(x)
        return self.classifier(self.bottleneck(f)), f


def layer_groups(net: ReidNet, prefix: str = "model") -> dict[str, list[str]]:
    """``{group: module path prefixes}`` of a :class:`ReidNet`: g0..g4 over the backbone's tap segments, and
    ``head``. A backbone with more than five segments (a ViT) is cut into five consecutive runs."""
    segments = [list(s) for s in net.backbone._segments]
    if len(segments) > len(GROUPS):
        cuts = np.array_split(np.arange(len(segments)), len(GROUPS))
        segments = [[p for i in c for p in segments[i]] for c in cuts]
    bb = f"{prefix}.backbone.net"
    groups = {GROUPS[i]: [f"{bb}.{p}" for p in seg] for i, seg in enumerate(segments)}
    covered = [p for ps in groups.values() for p in ps]
    for name, _ in net.backbone.net.named_parameters():  # outside every segment: the first group
        full = f"{bb}.{name}"
        if not any(full == p or full.startswith(p + ".") for p in covered):
            groups[GROUPS[0]].append(full)
    groups["head"] = [f"{prefix}.bottleneck", f"{prefix}.classifier"]
    return groups


class ReidTransform:
    """uint8 (H,W,3) -> (3, height, width) float in [0,1]: resize (bilinear), random flip while training."""

    def __init__(self, height: int, width: int, train: bool, hflip: bool) -> None:
        self.height, self.width, self.train, self.hflip = height, width, train, hflip

    def __call__(self, img: np.ndarray) -> torch.Tensor:
        from PIL import Image

        if img.shape[:2] != (self.height, self.width):
            img = np.asarray(
                Image.fromarray(img).resize((self.width, self.height), Image.Resampling.BILINEAR)
            )
        x = (
            torch.from_numpy(np.array(img, copy=True)).permute(2, 0, 1).float().div_(255.0)
        )  # a read-only array too
        if self.train and self.hflip and bool(torch.rand(()) < 0.5):
            x = x.flip(-1)
        return x


class ReidMethod(Method):
    """Base of the reid methods: the model, the phased SGD, CE on identities, embeddings. Subclasses give the
    phases (:meth:`make_phases`)."""

    config: ReidConfig

    def __init__(self, config: ReidConfig) -> None:
        super().__init__(config)
        self.model = ReidNet(config)
        self.groups = layer_groups(self.model)
        self.total_steps = 1  # set by configure_optimizers from the run's budget
        self.schedule: PhasedSchedule | None = None
        self._grad_probe: dict[str, torch.Tensor] = {}

    # --- schedule ---------------------------------------------------------------------------------
    def base_lrs(self) -> dict[str, float]:
        """Plain fine-tuning rates: every backbone group at lr_backbone, the head at lr_head."""
        return {**dict.fromkeys(GROUPS, self.config.lr_backbone), "head": self.config.lr_head}

    def phase(
        self, start: int, lrs: dict[str, float], restore: tuple[str, ...] = (), decay: bool = True
    ) -> Phase:
        """A phase with the config's within-phase step decay (``decay=False``: constant rates)."""
        cfg = self.config
        return Phase(start, lrs, restore, cfg.decay_at, cfg.decay if decay else 1.0)

    def make_phases(self, total_steps: int) -> list[Phase]:
        raise NotImplementedError

    def build_schedule(self, total_steps: int) -> PhasedSchedule:
        groups = {g: ps for g, ps in self.groups.items() if ps}
        phases = [
            dataclasses.replace(
                p,
                lrs={g: lr for g, lr in p.lrs.items() if g in groups},
                restore=tuple(g for g in p.restore if g in groups),
            )
            for p in self.make_phases(total_steps)
        ]  # a backbone with fewer than five stages (tiny)
        sched = PhasedSchedule(groups, phases, total_steps)
        sched.take_snapshot(self)
        return sched

    def configure_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        self.total_steps = train.steps
        self.schedule = self.build_schedule(train.steps)
        cfg = self.config
        opt = torch.optim.SGD(grouped_parameters(self, self.schedule), lr=train.lr, momentum=cfg.momentum,
                              nesterov=cfg.momentum > 0, weight_decay=cfg.weight_decay)  # fmt: skip
        return {"main": opt}

    def on_step_start(self, step: int) -> None:
        if self.schedule is None:
            return
        self._grad_probe = self.gradient_norms()  # the previous step's gradients, before they are cleared
        self.schedule.apply(self, self.optimizers, step)

    def gradient_norms(self) -> dict[str, torch.Tensor]:
        """Mean squared gradient per layer group (the paper's probe), from the parameters' current ``.grad``."""
        if self.schedule is None:
            return {}
        sums: dict[str, list[float]] = {}
        for n, p in self.named_parameters():
            if p.grad is None:
                continue
            g = self.schedule.group_of(n)
            if g is not None:
                s = sums.setdefault(g, [0.0, 0.0])
                s[0] += float(p.grad.detach().float().pow(2).sum())
                s[1] += p.grad.numel()
        return {f"grad_{g}": torch.tensor(v[0] / max(v[1], 1.0)) for g, v in sums.items()}

    def export_image_size(self) -> tuple[int, int]:
        """(height, width) of the exported graph's input: the size the eval transform resizes to."""
        return (self.config.height, self.config.width)

    def backbone_heads(self) -> dict[str, list[str]]:
        """The backbone network, whose "heads" (trained in full under ``--lora``, the linear probe's part) are
        the bottleneck and the ID classifier."""
        return {"model.backbone.net": ["model.bottleneck", "model.classifier"]}

    # --- data, training, prediction ---------------------------------------------------------------
    def make_transform(self, train: bool) -> Callable[[np.ndarray], torch.Tensor]:
        cfg = self.config
        return ReidTransform(cfg.height, cfg.width, train, cfg.hflip)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        logits, _ = self.model(batch["image"])
        target = batch["label"]
        loss = F.cross_entropy(logits, target)
        acc = (logits.argmax(1) == target).float().mean()
        return {"loss": loss, "acc": acc.detach(), **self._grad_probe}

    @torch.no_grad()
    def predict(self, batch: Batch) -> dict[str, Any]:
        x = batch["image"]
        f = self.model.feature(x)
        if self.config.flip_test:
            f = (f + self.model.feature(x.flip(-1))) / 2
        return {"embedding": F.normalize(f.float(), dim=1)}


def period_starts(total_steps: int, periods: int) -> list[int]:
    """The first step of each of ``periods`` equal periods of ``total_steps``."""
    return [math.floor(i * total_steps / periods) for i in range(periods)]
