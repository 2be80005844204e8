"""Rolling-back fine-tuning for person re-identification.

Paper: Ro, Choi, Jo, Heo, Lim, Choi. "Backbone Can Not be Trained at Once: Rolling Back to Pre-trained Network
for Person Re-Identification". AAAI 2019. arXiv 1901.06140. Official code: youngminPIL/rollback
(``train_resnet_p1..p4.py``, ``network.py``, ``model.py``).

Implemented: fine-tuning in periods; at the start of each period after the first, the high-level layer groups
are rolled back to their pretrained (ImageNet) weights while the fine-tuned low-level groups and the ID head
are kept, so that later periods push learning into the low-level layers (spec §3)::

    period  start weights   rolled back to ImageNet   kept groups (lr_keep)   rolled-back groups + head
    P1      ImageNet        –                         all at lr_backbone       head at lr_head
    P2      end of P1       g1 g2 g3 g4               g0           @ 0.001     @ 0.01
    P3      end of P2       g2 g3 g4                  g0 g1        @ 0.001     @ 0.01
    P4      end of P3       g3 g4                     g0 g1 g2     @ 0.001     @ 0.01
    every period: SGD momentum 0.9 Nesterov, wd 5e-4, rates x0.1 for its second half (StepLR 20 of 40 epochs)

g0..g4 are the backbone's stem and four stages (ResNet conv1+bn1 / layer1..4; the matching stages of
MobileNetV2, EfficientNet-Lite and a ViT, see :mod:`trustvis.methods.reid.base`). The schedule is a
:class:`~trustvis.engine.phases.PhasedSchedule`, the engine's generic phases over named parameter groups.

Deviations:
  * Budgets are in steps: the run's ``train.steps`` is cut into ``periods`` equal periods (the paper: 4 x 40
    epochs), so that rollback and plain fine-tuning compare at the same total number of steps.
  * Roll-back restores the groups' parameters *and* BatchNorm running statistics (the state-dict entries); the
    official ``dup_net`` copies the fresh network's entries except the kept prefixes. The optimiser state is
    cleared at each period start (the official code starts each period with a new SGD).
  * Upstream bugs not ported: ``train_resnet_p3.py`` calls ``dup_net7`` with six names (intent: keep conv1, bn1,
    layer1); the test script's undefined options; PyTorch 0.4 idioms.
  * The quick preset uses ImageNet MobileNetV2 at 128x64 (offline weights from pip); the default is the
    paper's ResNet-50 at 288x144 when the user has its file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from trustvis.engine.phases import Phase
from trustvis.methods.reid.base import GROUPS, ReidConfig, ReidMethod, period_starts, reid_presets
from trustvis.registry import Paper, register

log = logging.getLogger(__name__)


@dataclass
class RollbackConfig(ReidConfig):
    """Rolling-back fine-tuning: ``periods`` periods; period k > 1 keeps the first k-1 groups."""

    periods: int = 4
    lr_keep: float = 0.001  # kept (low-level, already fine-tuned) groups after a roll-back
    lr_rest: float = 0.01  # rolled-back groups and the head after a roll-back


@register(
    "rollback",
    task="reid",
    config=RollbackConfig,
    presets=reid_presets(),
    paper=Paper(
        "Backbone Can Not be Trained at Once: Rolling Back to Pre-trained Network for Person Re-Identification",
        "Ro et al., AAAI 2019",
        "https://arxiv.org/abs/1901.06140",
    ),
    summary="fine-tune in periods, rolling the high-level layers back to ImageNet each period",
)
class Rollback(ReidMethod):
    """Rolling-back fine-tuning (seed method)."""

    config: RollbackConfig

    def __init__(self, config: RollbackConfig) -> None:
        if not 1 <= config.periods <= len(GROUPS):
            raise ValueError(f"model.periods={config.periods} is invalid; choose 1..{len(GROUPS)}")
        super().__init__(config)

    def make_phases(self, total_steps: int) -> list[Phase]:
        cfg = self.config
        periods = min(cfg.periods, max(total_steps, 1))  # a budget of fewer steps than periods: fewer periods
        if periods < cfg.periods:
            log.warning(
                "rollback: %d steps cannot hold %d periods; using %d", total_steps, cfg.periods, periods
            )
        starts = period_starts(total_steps, periods)
        phases = [self.phase(0, self.base_lrs())]
        for k, start in enumerate(starts[1:], start=1):
            keep, back = GROUPS[:k], GROUPS[k:]
            lrs = {
                **dict.fromkeys(keep, cfg.lr_keep),
                **dict.fromkeys(back, cfg.lr_rest),
                "head": cfg.lr_rest,
            }
            phases.append(self.phase(start, lrs, restore=back))
        return phases
