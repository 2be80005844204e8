"""The small-data ViT methods (issue 24): ``vit``, ``deit`` and ``aal`` — the invariants of the spec.

AAL: the link module maps (B, M·N, P, P) head maps to (B, C, P, P); the regulariser is zero when the linked maps
equal the CNN maps and positive otherwise; no gradient reaches the frozen CNN, which stays in eval mode; the
advanced module keeps exactly the chosen links (mask from a first run, zero weight and zero gradient elsewhere).
DeiT: test-time logits are the average of the class and distillation heads; hard distillation trains the
distillation head on the teacher's argmax; a teacher run's weights are loaded, frozen and saved with the run.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from trustvis.cli import main
from trustvis.config import ConfigError, make_run_config
from trustvis.engine.checkpoint import build_method, load_method
from trustvis.methods.adapt.aal import AttentionLinks, map_distance, strongest_links


def _method(name: str, **model):
    return build_method(make_run_config(name, "tiny", model=model))


def _batch(n: int = 6, side: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.rand(n, 3, side, side, generator=g), "label": torch.arange(n) % 10}


def _train(tmp_path, name: str, *sets: str, out: str = "") -> str:
    out = tmp_path / (out or name)
    argv = ["-q", "train", name, "--preset", "tiny", "--out", str(out), "--set", "train.progress=false",
            "--set", "train.steps=3", *[a for s in sets for a in ("--set", s)]]  # fmt: skip
    assert main(argv) == 0
    return str(out)


# --- AAL ---------------------------------------------------------------------------------------------------


def test_links_map_head_maps_to_cnn_maps():
    links = AttentionLinks(heads=12, maps=40)
    out = links(torch.rand(3, 12, 7, 7))
    assert out.shape == (3, 40, 7, 7)
    w, b = links.conv.weight[:, :, 0, 0], links.conv.bias  # a 1x1 conv is a per-pixel linear map
    a = torch.rand(2, 12, 5, 5)
    torch.testing.assert_close(links(a), torch.einsum("ch,bhxy->bcxy", w, a) + b[None, :, None, None])


def test_aal_module_shapes_follow_the_vit_and_the_cnn():
    m = _method("aal")
    cfg = m.config
    att = m.attention(_batch()["image"])
    assert att.shape == (6, cfg.depth, cfg.heads, m.model.grid, m.model.grid)
    aug, cnn = m.augmented_maps(_batch()["image"]), m.cnn_maps(_batch()["image"])
    assert aug.shape == cnn.shape == (6, sum(m.map_channels), m.model.grid, m.model.grid)
    assert m.link_matrix().shape == (sum(m.map_channels), cfg.depth * cfg.heads)


@pytest.mark.parametrize("distance", ["l2", "l1"])
def test_regulariser_is_zero_for_equal_maps_and_positive_otherwise(distance):
    b = torch.rand(4, 9, 6, 6) + 0.1
    assert map_distance(b, b, distance).item() == pytest.approx(0.0, abs=1e-6)
    assert map_distance(3.0 * b, b, distance).item() == pytest.approx(0.0, abs=1e-6)  # maps are normalised
    other = b.flip(-1) + torch.rand_like(b)
    assert map_distance(other, b, distance).item() > 1e-3
    with pytest.raises(ValueError, match="l2"):
        map_distance(b, b, "cosine")


def test_regulariser_reaches_the_vit_but_no_gradient_reaches_the_frozen_cnn():
    m = _method("aal", lam=1.0)
    m.train()
    assert not m.teacher.training  # BatchNorm statistics of the CNN never move
    assert not any(p.requires_grad for p in m.teacher.parameters())
    before = {k: v.clone() for k, v in m.teacher.state_dict().items()}
    batch = _batch()
    out = m.model(batch["image"], attention=True)
    reg = map_distance(m.links(out["attention"].flatten(1, 2)), m.cnn_maps(batch["image"]))
    reg.backward()
    qkv = m.model.blocks[0].attn.qkv.weight.grad
    assert qkv is not None and qkv.abs().sum() > 0  # the regulariser shapes the ViT's attention
    assert m.links.conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in m.teacher.parameters())
    opt = m.run_optimizer(m.parameters(), make_run_config("aal", "tiny").train)
    for _ in range(2):
        opt.zero_grad()
        m.training_step(batch)["loss"].backward()
        opt.step()
    after = m.teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and running statistics


def test_strongest_links_keep_k_per_map_or_per_head():
    w = torch.tensor([[0.1, -0.9, 0.3], [0.5, 0.2, -0.4]])
    torch.testing.assert_close(strongest_links(w, 1, "map"), torch.tensor([[0.0, 1, 0], [1, 0, 0]]))
    torch.testing.assert_close(strongest_links(w, 2, "map"), torch.tensor([[0.0, 1, 1], [1, 0, 1]]))
    torch.testing.assert_close(strongest_links(w, 1, "head"), torch.tensor([[0.0, 1, 0], [1, 0, 1]]))
    with pytest.raises(ValueError, match="links_per"):
        strongest_links(w, 4, "map")


def test_advanced_module_keeps_exactly_the_chosen_links(tmp_path):
    first = _train(tmp_path, "aal")
    first_links = load_method(first).link_matrix()
    m = _method("aal", links_from=first, links_per=2, link_by="map")
    expected = strongest_links(first_links, 2, "map")
    torch.testing.assert_close(m.links.mask, expected)
    assert (m.links.mask.sum(1) == 2).all()
    m.train()
    m.training_step(_batch())["loss"].backward()
    grad = m.links.conv.weight.grad[:, :, 0, 0]
    assert (grad[expected == 0] == 0).all() and grad[expected == 1].abs().sum() > 0
    assert (m.link_matrix()[expected == 0] == 0).all()
    # the mask is saved: the advanced run loads without the first run's folder
    adv = _train(
        tmp_path, "aal", f"model.links_from={first}", "model.links_per=1", "model.link_by=head", out="adv"
    )
    shutil.rmtree(first)
    loaded = load_method(adv)
    torch.testing.assert_close(loaded.links.mask, strongest_links(first_links, 1, "head"))
    assert (loaded.link_matrix()[loaded.links.mask == 0] == 0).all()


# --- DeiT --------------------------------------------------------------------------------------------------


def test_deit_predicts_the_average_of_both_heads():
    m = _method("deit").eval()
    x = _batch()["image"]
    out = m.model(x)
    assert out["logits"].shape == out["logits_dist"].shape == (6, 10)
    assert not torch.allclose(out["logits"], out["logits_dist"])  # two different heads
    torch.testing.assert_close(m.predict({"image": x})["logits"], (out["logits"] + out["logits_dist"]) / 2)


def test_hard_distillation_trains_the_distillation_head_on_the_teacher_argmax():
    m = _method("deit", distill="hard", alpha=1.0)
    m.train()
    batch = _batch()
    loss = m.training_step(batch)["loss"]  # alpha=1: the distillation term alone
    with torch.no_grad():
        z_t = m.teacher(batch["image"])
    expected = torch.nn.functional.cross_entropy(m.model(batch["image"])["logits_dist"], z_t.argmax(1))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert m.model.head.weight.grad.abs().sum() == 0  # the class head does not learn from the teacher
    assert m.model.head_dist.weight.grad.abs().sum() > 0


def test_soft_distillation_is_zero_when_the_head_matches_the_teacher():
    m = _method("deit", distill="soft", tau=2.0)
    z = torch.randn(5, 10)
    assert m.distillation_loss(z, z).item() == pytest.approx(0.0, abs=1e-6)
    assert m.distillation_loss(z, z.flip(1)).item() > 0.01
    assert m.alpha == 0.1  # the paper's weight for soft distillation


def test_a_teacher_run_is_loaded_frozen_and_saved_with_the_student(tmp_path):
    teacher = _train(tmp_path, "classifier", "model.input_size=8")
    t_weights = load_method(teacher).model.state_dict()
    m = _method("deit", teacher=teacher)
    for k, v in m.teacher.state_dict().items():
        torch.testing.assert_close(v, t_weights[k])
    student = _train(tmp_path, "deit", f"model.teacher={teacher}")
    before = load_method(student).predict(_batch())["logits"]
    shutil.rmtree(teacher)  # the student's checkpoint holds the teacher
    loaded = load_method(student)
    torch.testing.assert_close(loaded.predict(_batch())["logits"], before)
    for k, v in loaded.teacher.state_dict().items():
        torch.testing.assert_close(v, t_weights[k])


def test_deit_refuses_a_teacher_that_does_not_know_the_classes():
    with pytest.raises(ConfigError, match="model.teacher=/path/to/RUN"):
        _method("deit", teacher_backbone="mobilenet_v2", teacher_weights="imagenet")


def test_lora_and_linear_probe_target_the_vit_not_the_teacher():
    m = _method("aal")
    assert m.backbone_heads() == {"model": ["model.head"]}
    assert _method("deit").backbone_heads() == {"model": ["model.head", "model.head_dist"]}
