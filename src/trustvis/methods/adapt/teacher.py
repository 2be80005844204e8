"""The frozen CNN teacher of the small-data ViT methods (``deit``, ``aal``): its fields, how it is built, and
:class:`TeacherViT`, the ViT method that holds one.

A teacher is a :class:`trustvis.nn.backbones.Normalized` CNN held by the method as ``.teacher``, frozen (no
parameter requires a gradient) and always in eval mode (BatchNorm statistics never move)::

    model.teacher = RUN_DIR        a finished classifier run (``trustvis train classifier ...``): its fine-tuned CNN,
                                   classes and all — what DeiT distils from
    model.teacher = ""             teacher_backbone with teacher_weights (``imagenet``: the offline ImageNet weights,
                                   the "frozen pre-trained CNN" of AAL; ``none``: random, for tests only)

The teacher's weights are saved in the method's checkpoint, so a finished run loads without the teacher's folder
(the architecture comes from ``teacher_backbone`` and ``teacher_input_size``, which must match the teacher run's).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from trustvis.config import ConfigError
from trustvis.methods.classify.vit import ViTConfig, ViTMethod
from trustvis.nn.backbones import BACKBONES, Normalized, build_classifier, pretrained_skipped

log = logging.getLogger(__name__)


@dataclass
class TeacherViTConfig(ViTConfig):
    """The small ViT, and where its frozen CNN teacher comes from (the fields of ``deit`` and ``aal``)."""

    # a finished classifier run folder (its fine-tuned CNN); "" = teacher_backbone with teacher_weights
    teacher: str = ""
    # a CNN of trustvis.nn.backbones.BACKBONES (must match a teacher run's)
    teacher_backbone: str = "mobilenet_v2"
    # when teacher is "": imagenet (offline) | none (random: tests) | a weights file
    teacher_weights: str = "imagenet"
    teacher_input_size: int = 32  # the teacher sees images resized to this side (must match a teacher run's)


def build_teacher(cfg: Any, num_classes: int) -> Normalized:
    """The frozen teacher of ``cfg`` (a :class:`TeacherViTConfig`) with ``num_classes`` outputs.

    Raises:
        ConfigError: an unknown backbone, a teacher run that is not a plain classifier run of this backbone,
            input size and class count.
    """
    if cfg.teacher_backbone not in BACKBONES or cfg.teacher_backbone.startswith("vit"):
        cnns = [b for b in BACKBONES if not b.startswith("vit")]
        raise ConfigError(f"model.teacher_backbone={cfg.teacher_backbone!r} is not a CNN; choose from {cnns}")
    if cfg.teacher and not pretrained_skipped():
        net = _teacher_from_run(cfg, num_classes)
    else:  # a checkpoint is about to overwrite the weights, or no teacher run
        weights = None if cfg.teacher else cfg.teacher_weights
        try:
            net = build_classifier(
                cfg.teacher_backbone, num_classes, weights, input_size=cfg.teacher_input_size
            )
        except FileNotFoundError as e:  # the flags it names are the teacher's here
            raise FileNotFoundError(str(e).replace("model.weights=", "model.teacher_weights=")) from None
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _teacher_from_run(cfg: Any, num_classes: int) -> Normalized:
    from trustvis.engine.checkpoint import CheckpointError, load_method

    try:
        method = load_method(cfg.teacher)
    except (CheckpointError, FileNotFoundError, OSError) as e:
        raise ConfigError(f"model.teacher={cfg.teacher}: {e}") from None
    run = getattr(method, "run_config", None)
    net = getattr(method, "model", None)
    if not isinstance(net, Normalized) or run is None or run.lora.r:
        raise ConfigError(
            f"model.teacher={cfg.teacher} holds a {method.method_name!r} run; a teacher is a classifier run without "
            "LoRA (`trustvis train classifier --set model.backbone=mobilenet_v2 --set model.weights=imagenet ...`)"
        )
    want = {"teacher_backbone": (net.backbone, cfg.teacher_backbone),
            "teacher_input_size": (net.input_size, cfg.teacher_input_size),
            "num_classes": (int(getattr(run.model, "num_classes", 0)), num_classes)}  # fmt: skip
    bad = [
        f"model.{k}={ours} but the teacher run has {theirs}"
        for k, (theirs, ours) in want.items()
        if theirs != ours
    ]
    if bad:
        raise ConfigError(
            f"model.teacher={cfg.teacher}: " + "; ".join(bad) + " (set them to the teacher run's)"
        )
    log.info("teacher: %s (%s, input %d)", cfg.teacher, net.backbone, net.input_size)
    return net


class TeacherViT(ViTMethod):
    """A :class:`ViTMethod` with a frozen CNN ``.teacher`` (kept in eval mode whatever ``train()`` is asked)."""

    config: TeacherViTConfig

    def __init__(self, config: TeacherViTConfig) -> None:
        super().__init__(config)
        self.teacher = build_teacher(config, config.num_classes)

    def train(self, mode: bool = True) -> TeacherViT:
        super().train(mode)
        self.teacher.eval()
        return self
