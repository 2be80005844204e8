"""Rolling-back fine-tuning and the engine's phased schedules: what is restored, the rates, resuming."""

from __future__ import annotations

import pytest
import torch

from trustvis import registry
from trustvis.config import TrainConfig
from trustvis.engine.phases import Phase, PhasedSchedule
from trustvis.methods.reid.base import GROUPS


def _method(name: str, steps: int = 8, seed: int = 0, **cfg):
    torch.manual_seed(seed)
    m = registry.build(name, "tiny", num_classes=4, **cfg)
    m.optimizers = m.configure_optimizers(TrainConfig(steps=steps, lr=0.01))
    return m


def _step(m, s: int) -> None:
    m.on_step_start(s)
    g = torch.Generator().manual_seed(s)
    out = m.training_step({"image": torch.rand(4, 3, 32, 16, generator=g), "label": torch.arange(4)})
    opt = m.optimizers["main"]
    opt.zero_grad()
    out["loss"].backward()
    opt.step()


def _group_state(m, group: str) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in m.state_dict().items() if m.schedule.group_of(k) == group}


def _rates(m) -> dict[str, float]:
    return {g["name"]: g["lr"] for g in m.optimizers["main"].param_groups}


def test_rollback_restores_exactly_the_high_level_groups():
    """At the start of period k the groups g_k.. are bit-equal to the pretrained snapshot (parameters and BN
    statistics); the kept groups and the head keep their fine-tuned values."""
    m = _method("rollback", steps=8)  # 4 periods of 2 steps; the tiny backbone has groups g0..g3
    groups = [g for g in GROUPS if g in m.schedule.groups]
    pre = {g: _group_state(m, g) for g in [*groups, "head"]}
    for s in range(2):
        _step(m, s)
    before = {g: _group_state(m, g) for g in [*groups, "head"]}
    assert all(not torch.equal(before[g][k], pre[g][k]) for g in groups for k in pre[g] if "weight" in k)
    m.on_step_start(2)  # period 2: keep g0, roll back g1..
    for g in groups:
        now = _group_state(m, g)
        ref = pre[g] if g != "g0" else before[g]
        assert all(torch.equal(now[k], ref[k]) for k in now), g
    head = _group_state(m, "head")
    assert all(torch.equal(head[k], before["head"][k]) for k in head)  # the ID head is kept
    assert not m.optimizers["main"].state  # a fresh optimiser state each period


def test_rollback_rates_follow_the_spec_table():
    m = _method("rollback", steps=8)
    groups = [g for g in GROUPS if g in m.schedule.groups]
    expect = {
        0: {**dict.fromkeys(groups, 0.01), "head": 0.1},
        2: {"g0": 0.001, **dict.fromkeys(groups[1:], 0.01), "head": 0.01},
        4: {"g0": 0.001, "g1": 0.001, **dict.fromkeys(groups[2:], 0.01), "head": 0.01},
        6: {"g0": 0.001, "g1": 0.001, "g2": 0.001, **dict.fromkeys(groups[3:], 0.01), "head": 0.01},
    }
    for s in range(8):
        m.on_step_start(s)
        base = expect[s - s % 2]
        want = {g: lr * (0.1 if s % 2 else 1.0) for g, lr in base.items()}  # the second half of each period
        assert _rates(m) == pytest.approx(want), s


def test_fixbase_trains_the_head_alone_first_and_finetune_everything():
    fb = _method("fixbase", steps=20)  # head alone for 2 steps
    fb.on_step_start(0)
    assert _rates(fb)["head"] == 0.1 and all(_rates(fb)[g] == 0.0 for g in _rates(fb) if g != "head")
    before = {k: v.clone() for k, v in fb.named_parameters() if k.startswith("model.backbone")}
    _step(fb, 0)
    _step(fb, 1)
    after = dict(fb.named_parameters())
    assert all(torch.equal(before[k], after[k]) for k in before)  # lr 0: the backbone did not move
    fb.on_step_start(2)
    assert _rates(fb)["g0"] == 0.01 and _rates(fb)["head"] == 0.1
    ft = _method("finetune", steps=20)
    ft.on_step_start(0)
    assert _rates(ft)["g0"] == 0.01 and _rates(ft)["head"] == 0.1
    ft.on_step_start(10)
    assert _rates(ft)["g0"] == pytest.approx(0.001)


def test_resume_in_the_middle_of_a_period_continues_the_schedule():
    """A method rebuilt from the same seed, loaded from a step-5 state, sets the step-5 rates without restoring
    anything, and rolls back at step 6 to the same pretrained snapshot."""
    a = _method("rollback", steps=8, seed=3)
    for s in range(5):
        _step(a, s)
    state = {k: v.clone() for k, v in a.state_dict().items()}
    opt_state = a.optimizers["main"].state_dict()
    b = _method("rollback", steps=8, seed=3)  # the trainer rebuilds the method (pretrained weights) ...
    b.load_state_dict(state)  # ... then loads the checkpoint
    b.optimizers["main"].load_state_dict(opt_state)
    b.on_step_start(5)
    a.on_step_start(5)
    assert _rates(b) == _rates(a)
    assert all(torch.equal(v, state[k]) for k, v in b.state_dict().items())  # nothing restored mid-period
    a.on_step_start(6)
    b.on_step_start(6)
    assert all(torch.equal(v, a.state_dict()[k]) for k, v in b.state_dict().items())


def test_phased_schedule_checks_its_phases():
    groups = {"a": ["x"], "b": ["y"]}
    with pytest.raises(ValueError, match="starting at step 0"):
        PhasedSchedule(groups, [Phase(3, {"a": 0.1})], 10)
    with pytest.raises(ValueError, match="unknown groups"):
        PhasedSchedule(groups, [Phase(0, {"c": 0.1})], 10)
    with pytest.raises(ValueError, match="must increase"):
        PhasedSchedule(groups, [Phase(0, {"a": 0.1}), Phase(0, {"a": 0.1})], 10)
    s = PhasedSchedule({"a": ["net"], "b": ["net.fc"]}, [Phase(0, {"a": 1.0, "b": 2.0})], 10)
    assert s.group_of("net.fc.weight") == "b" and s.group_of("net.conv.weight") == "a"  # longest prefix
    assert s.group_of("other.weight") is None


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenet_v2", "efficientnet_lite0", "vit_tiny"])
def test_every_backbone_has_five_groups_that_cover_it(backbone):
    from trustvis.methods.reid.base import layer_groups

    m = registry.build("rollback", "tiny", backbone=backbone, num_classes=3, height=64, width=32)
    groups = layer_groups(m.model)
    assert [g for g in groups if g != "head"] == list(GROUPS)
    m.configure_optimizers(TrainConfig(steps=8))  # raises when a parameter is outside every group
    owners = {m.schedule.group_of(n) for n, _ in m.named_parameters()}
    assert owners == {*GROUPS, "head"}
