"""Re-identification baselines at the same budget as rolling-back fine-tuning, on the same model and data.

finetune  plain fine-tuning: one period of the whole budget, backbone at lr_backbone, new head at lr_head,
          rates x0.1 for the second half (the first period of the official rollback code, stretched)
fixbase   torchreid's ``fixbase_epoch`` + ``open_layers`` recipe: the new head alone trains first
          (``fixbase_fraction`` of the budget, backbone frozen by a zero rate), then everything as ``finetune``

Shapes: those of :mod:`trustvis.methods.reid.base` (embedding (B, C), L2-normalised, flip-averaged).

Deviations:
  * torchreid counts ``fixbase_epoch`` in epochs and keeps one optimiser; here the head-only phase is a fraction
    of the step budget (default 0.1: 6 of torchreid's usual 60 epochs) and, as every phase start of the engine's
    schedules, the second phase starts with a cleared optimiser state. Its head trains at lr_head throughout
    the first phase (no decay there).
"""

from __future__ import annotations

from dataclasses import dataclass

from trustvis.engine.phases import Phase
from trustvis.methods.reid.base import GROUPS, ReidConfig, ReidMethod, reid_presets
from trustvis.registry import Paper, register

_PAPER = Paper("Deep Residual Learning for Image Recognition (the fine-tuned backbone)", "He et al., CVPR 2016",
               "https://arxiv.org/abs/1512.03385")  # fmt: skip


@register(
    "finetune",
    task="reid",
    config=ReidConfig,
    presets=reid_presets(),
    paper=_PAPER,
    summary="plain fine-tuning of an ImageNet backbone with an ID head (baseline)",
    seed_method=False,
)
class FineTune(ReidMethod):
    """Plain fine-tuning (baseline)."""

    def make_phases(self, total_steps: int) -> list[Phase]:
        return [self.phase(0, self.base_lrs())]


@dataclass
class FixBaseConfig(ReidConfig):
    """torchreid's fixbase: the head alone for the first ``fixbase_fraction`` of the steps."""

    fixbase_fraction: float = 0.1


@register(
    "fixbase",
    task="reid",
    config=FixBaseConfig,
    presets=reid_presets(),
    paper=Paper(
        "Torchreid: A Library for Deep Learning Person Re-Identification in Pytorch (fixbase_epoch)",
        "Zhou & Xiang, arXiv 2019",
        "https://arxiv.org/abs/1910.10093",
    ),  # fmt: skip
    summary="train the new head first, then everything: torchreid's fixbase (baseline)",
    seed_method=False,
)
class FixBase(ReidMethod):
    """Head first, then the whole network (baseline)."""

    config: FixBaseConfig

    def make_phases(self, total_steps: int) -> list[Phase]:
        cfg = self.config
        if not 0 <= cfg.fixbase_fraction < 1:
            raise ValueError(f"model.fixbase_fraction={cfg.fixbase_fraction} must be in [0, 1)")
        start = int(round(cfg.fixbase_fraction * total_steps))
        if start == 0:
            return [self.phase(0, self.base_lrs())]
        head_only = {**dict.fromkeys(GROUPS, 0.0), "head": cfg.lr_head}
        return [self.phase(0, head_only, decay=False), self.phase(start, self.base_lrs())]
