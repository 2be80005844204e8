"""DeiT-style distillation through attention: a distillation token taught by a frozen CNN — the ``deit`` baseline.

Paper: Touvron, Cord, Douze, Massa, Sablayrolles, Jégou. "Training data-efficient image transformers &
distillation through attention". ICML 2021. arXiv 2012.12877 (official code: facebookresearch/deit, losses.py).

The ViT gets a second token beside CLS whose head is trained to agree with the teacher, while the CLS head
learns the labels; at test time the two heads' logits are averaged::

    image ──► SmallViT [CLS, DIST, patches] ──► z_cls (B,K), z_dist (B,K)
    image ──► frozen CNN teacher (a classifier fine-tuned on the same data) ──► z_t (B,K)
    hard: L = (1-α) CE(z_cls, y) + α CE(z_dist, argmax z_t)                       (paper: α = 1/2)
    soft: L = (1-α) CE(z_cls, y) + α τ² KL(softmax(z_t/τ) ‖ softmax(z_dist/τ))    (paper: τ = 3, α = 0.1)
    predict: logits = (z_cls + z_dist) / 2

The teacher must know the classes: ``model.teacher=RUN`` is a finished ``classifier`` run (see
:mod:`trustvis.methods.adapt.teacher`); the ImageNet weights alone are refused (their head is random for these
classes).

Deviations / choices: the soft loss is the paper's per-image KL (``batchmean``); the official ``losses.py`` sums
and divides by the number of logits, i.e. also by the class count. ``alpha=-1`` (default) takes the paper's value
for the mode. No RandAugment, Mixup, repeated augmentation or stochastic depth (the shared plain recipe of
:mod:`trustvis.methods.classify.vit`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from trustvis.config import ConfigError
from trustvis.methods.adapt.teacher import TeacherViT, TeacherViTConfig
from trustvis.methods.classify.vit import vit_presets
from trustvis.nn.backbones import is_random_init
from trustvis.registry import Paper, register

MODES = ("hard", "soft")
#: the paper's weight of the distillation loss per mode
PAPER_ALPHA = {"hard": 0.5, "soft": 0.1}


@dataclass
class DeiTConfig(TeacherViTConfig):
    """DeiT distillation from a frozen CNN teacher."""

    distill: str = (
        "hard"  # hard (the teacher's argmax as the label) | soft (KL to the teacher at temperature tau)
    )
    alpha: float = (
        -1.0
    )  # weight of the distillation loss in [0, 1]; -1 = the paper's for the mode (hard 0.5, soft 0.1)
    tau: float = 3.0  # soft distillation temperature (paper 3.0)


@register(
    "deit",
    task="adapt",
    config=DeiTConfig,
    presets=vit_presets(
        {"tiny": {"teacher_backbone": "tiny", "teacher_weights": "none", "teacher_input_size": 8}}
    ),
    paper=Paper(
        "Training data-efficient image transformers & distillation through attention",
        "Touvron et al., ICML 2021",
        "https://arxiv.org/abs/2012.12877",
    ),
    summary="ViT with a distillation token taught by a frozen fine-tuned CNN (hard or soft); heads averaged at test",
    seed_method=False,
)
class DeiT(TeacherViT):
    """The small ViT with DeiT's distillation token (see the module docstring)."""

    config: DeiTConfig
    distillation = True

    def __init__(self, config: DeiTConfig) -> None:
        if config.distill not in MODES:
            raise ConfigError(f"model.distill={config.distill!r} is invalid; choose from {list(MODES)}")
        if not (config.alpha == -1.0 or 0.0 <= config.alpha <= 1.0):
            raise ConfigError(
                f"model.alpha={config.alpha} must be in [0, 1], or -1 (the paper's for the mode)"
            )
        if config.tau <= 0:
            raise ConfigError(f"model.tau={config.tau} must be > 0")
        if not config.teacher and not is_random_init(config.teacher_weights):
            raise ConfigError(
                "deit needs a teacher trained on these classes: --set model.teacher=/path/to/RUN, a finished classifier "
                "run (e.g. trained with model.backbone=mobilenet_v2 model.weights=imagenet model.input_size=32); "
                "--set model.teacher_weights=none builds a random teacher (tests only)"
            )
        super().__init__(config)

    @property
    def alpha(self) -> float:
        c = self.config
        return PAPER_ALPHA[c.distill] if c.alpha == -1.0 else c.alpha

    def distillation_loss(self, z_dist: torch.Tensor, z_teacher: torch.Tensor) -> torch.Tensor:
        """The distillation head's loss against the teacher's logits (both (B,K))."""
        if self.config.distill == "hard":
            return F.cross_entropy(z_dist, z_teacher.argmax(1))
        t = self.config.tau
        return F.kl_div(F.log_softmax(z_dist / t, 1), F.log_softmax(z_teacher / t, 1), reduction="batchmean",
                        log_target=True) * t * t  # fmt: skip

    def objective(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.model(images)  # logits (B,K), logits_dist (B,K)
        with torch.no_grad():
            z_t = self.teacher(images).float()  # (B,K)
        ce = F.cross_entropy(out["logits"], labels, label_smoothing=self.config.label_smoothing)
        kd = self.distillation_loss(out["logits_dist"], z_t)
        a = self.alpha
        avg = (out["logits"] + out["logits_dist"]) / 2
        return {"loss": (1 - a) * ce + a * kd, "ce": ce.detach(), "distill": kd.detach(),
                "acc": (avg.argmax(1) == labels).float().mean().detach(),
                "teacher_acc": (z_t.argmax(1) == labels).float().mean()}  # fmt: skip

    def class_logits(self, images: torch.Tensor) -> torch.Tensor:
        out = self.model(images)
        return (out["logits"] + out["logits_dist"]) / 2  # (B,K): DeiT's test-time average of both heads
