"""Phased training over named parameter groups: per-phase learning rates, and groups restored to a snapshot
when a phase starts. Rolling-back fine-tuning (Ro et al., AAAI 2019), torchreid's ``fixbase`` (train the new
head first) and plain staged fine-tuning are all schedules of this one kind, so any method can use them.

A method builds its optimiser with one parameter group per named group (``{"params": ..., "name": group}``),
holds a :class:`PhasedSchedule`, and calls :meth:`PhasedSchedule.apply` from its
:meth:`~trustvis.methods.base.Method.on_step_start` hook, which the trainer calls before every step::

    step s ──► phase i = the last phase with start <= s
           ├─ s == phase.start > 0: restore phase.restore groups to the snapshot (parameters and buffers,
           │                        bit-equal), clear the optimiser state (the official code starts each
           │                        period with a fresh SGD)
           └─ every step: lr of each param group = phase.lrs[group] x (decay if s - start >= decay_at x length)

Everything is a function of the step, so a run resumed in the middle of a phase continues the same schedule:
the checkpoint holds the weights (already restored at the phase start) and the optimiser state; the learning
rates are recomputed from the step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class Phase:
    """One phase: from step ``start`` on, group ``g`` trains at ``lrs[g]``; ``restore`` groups are reset to
    the snapshot as the phase starts. Within the phase the rates are multiplied by ``decay`` from
    ``decay_at`` of its length on (the official StepLR(20 of 40 epochs, 0.1))."""

    start: int
    lrs: Mapping[str, float]
    restore: tuple[str, ...] = ()
    decay_at: float = 0.5
    decay: float = 0.1


@dataclass
class PhasedSchedule:
    """Phases over the named groups of a module; ``groups`` maps a group name to module path prefixes."""

    groups: Mapping[str, Sequence[str]]
    phases: list[Phase]
    total_steps: int
    snapshot: dict[str, torch.Tensor] = field(default_factory=dict)  # state_dict entries of restorable groups

    def __post_init__(self) -> None:
        if not self.phases or self.phases[0].start != 0:
            raise ValueError("a phased schedule needs a first phase starting at step 0")
        starts = [p.start for p in self.phases]
        if starts != sorted(set(starts)) or starts[-1] >= max(self.total_steps, 1):
            raise ValueError(
                f"phase starts must increase and lie below total_steps={self.total_steps}: {starts}"
            )
        for p in self.phases:
            unknown = (set(p.lrs) | set(p.restore)) - set(self.groups)
            if unknown:
                raise ValueError(f"phase at step {p.start} names unknown groups {sorted(unknown)}; "
                                 f"groups: {sorted(self.groups)}")  # fmt: skip

    # --- queries --------------------------------------------------------------------------------------
    def phase_index(self, step: int) -> int:
        return max(i for i, p in enumerate(self.phases) if p.start <= step)

    def phase_end(self, i: int) -> int:
        return self.phases[i + 1].start if i + 1 < len(self.phases) else self.total_steps

    def lr(self, group: str, step: int) -> float:
        """The learning rate of ``group`` at ``step``."""
        i = self.phase_index(step)
        p = self.phases[i]
        length = self.phase_end(i) - p.start
        base = float(p.lrs.get(group, 0.0))
        return base * (p.decay if step - p.start >= p.decay_at * length else 1.0)

    def group_of(self, name: str) -> str | None:
        """The group a parameter / buffer name belongs to (longest matching prefix), or None."""
        best, best_len = None, -1
        for g, prefixes in self.groups.items():
            for pre in prefixes:
                if (name == pre or name.startswith(pre + ".")) and len(pre) > best_len:
                    best, best_len = g, len(pre)
        return best

    # --- actions --------------------------------------------------------------------------------------
    def take_snapshot(self, module: nn.Module) -> None:
        """Remember the current state of every group some phase restores (call before training)."""
        restorable = {g for p in self.phases for g in p.restore}
        self.snapshot = {k: v.detach().clone() for k, v in module.state_dict().items()
                         if self.group_of(k) in restorable}  # fmt: skip

    def restore(self, module: nn.Module, groups: Iterable[str]) -> list[str]:
        """Copy the snapshot into the entries of ``groups``; returns the names restored."""
        groups = set(groups)
        state = module.state_dict()
        done = []
        with torch.no_grad():
            for k, v in self.snapshot.items():
                if self.group_of(k) in groups:
                    state[k].copy_(v)
                    done.append(k)
        return done

    def apply(self, module: nn.Module, optimizers: Mapping[str, torch.optim.Optimizer], step: int) -> None:
        """What happens before ``step``: restore at a phase start, then set every param group's rate."""
        i = self.phase_index(step)
        p = self.phases[i]
        if step == p.start and step > 0:
            if p.restore:
                self.restore(module, p.restore)
            for opt in optimizers.values():
                opt.state.clear()
        for opt in optimizers.values():
            for g in opt.param_groups:
                if "name" in g:
                    g["lr"] = self.lr(g["name"], step)


def grouped_parameters(module: nn.Module, schedule: PhasedSchedule) -> list[dict]:
    """One optimiser param group per schedule group (``name`` key set), with the trainable parameters under it;
    parameters outside every group are an error (they would never train)."""
    by_group: dict[str, list[nn.Parameter]] = {g: [] for g in schedule.groups}
    stray = []
    for n, prm in module.named_parameters():
        if not prm.requires_grad:
            continue
        g = schedule.group_of(n)
        if g is None:
            stray.append(n)
        else:
            by_group[g].append(prm)
    if stray:
        raise ValueError(f"parameters outside every schedule group: {stray[:5]}")
    return [{"params": ps, "name": g, "lr": schedule.lr(g, 0)} for g, ps in by_group.items() if ps]
