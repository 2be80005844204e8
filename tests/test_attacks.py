"""Attacks: PGD stays in its ball, HopSkipJump keeps its query budget and finds the boundary, and
attack_detector's adversarial accuracy behaves (D4's protocol)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trustvis.attacks import (
    ATTACKS,
    HSJAResult,
    attack_detector,
    batch_norms,
    default_eps,
    hop_skip_jump,
    normalize_gradient,
    pgd,
    project,
    rms_to_l2,
)

SHAPE = (3, 8, 8)


def _direction(seed: int = 0) -> torch.Tensor:
    w = torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))
    return w / w.norm()


class LinearDetector(nn.Module):
    """logit of fake = scale · <w, x − 0.5>: the boundary is a hyperplane through the grey image."""

    def __init__(self, w: torch.Tensor, scale: float = 10.0) -> None:
        super().__init__()
        self.register_buffer("w", w)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * ((x - 0.5) * self.w).flatten(1).sum(1)

    def distance(self, x: torch.Tensor) -> torch.Tensor:
        """Signed L2 distance of each image to the hyperplane (w has unit norm)."""
        return self.forward(x) / self.scale


def _fakes(w: torch.Tensor, dists, seed: int = 1) -> torch.Tensor:
    """Images at the given signed distances from the hyperplane (well inside [0,1])."""
    d = torch.tensor(dists, dtype=torch.float32).view(-1, 1, 1, 1)
    x = 0.5 + d * w + 0.05 * torch.randn(len(dists), *SHAPE, generator=torch.Generator().manual_seed(seed))
    noise_along_w = ((x - 0.5 - d * w) * w).flatten(1).sum(1).view(-1, 1, 1, 1)
    return (x - noise_along_w * w).clamp(0, 1)


class Counter:
    """Wraps a decision rule and counts the images it is asked about."""

    def __init__(self, fn) -> None:
        self.fn, self.count = fn, 0

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        self.count += len(z)
        return self.fn(z)


# --------------------------------------------------------------------------------------------- PGD


def test_rms_to_l2():
    assert rms_to_l2(0.1, SHAPE) == pytest.approx(0.1 * math.sqrt(192))
    assert rms_to_l2(0.0257, (3, 224, 224)) == pytest.approx(9.97, abs=0.01)  # D4's ε = 10
    delta = torch.full((1, *SHAPE), 0.1)  # a constant perturbation has RMS = its value
    assert float(batch_norms(delta, "l2")[0]) == pytest.approx(rms_to_l2(0.1, SHAPE), rel=1e-6)


def test_project_and_tiny_gradients():
    delta = torch.randn(4, *SHAPE)
    assert torch.all(batch_norms(project(delta, 0.5, "l2"), "l2") <= 0.5 + 1e-6)
    assert float(project(delta, 0.1, "linf").abs().max()) <= 0.1 + 1e-6
    g = torch.randn(3, *SHAPE) * 1e-30  # a saturated loss: tiny but valid directions
    g[1] = 0
    n = batch_norms(normalize_gradient(g, "l2"), "l2")
    assert torch.allclose(n, torch.tensor([1.0, 0.0, 1.0]), atol=1e-5)


@pytest.mark.parametrize("norm, eps", [("l2", 0.8), ("linf", 8 / 255)])
def test_pgd_in_ball_and_increases_loss(norm, eps):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1)
    )
    x = torch.rand(6, *SHAPE)
    target = torch.ones(6)

    def loss_fn(z):
        return F.binary_cross_entropy_with_logits(model(z).squeeze(1), target, reduction="none")

    x_adv = pgd(loss_fn, x, eps, norm, steps=10, generator=torch.Generator().manual_seed(0))
    assert x_adv.shape == x.shape and not x_adv.requires_grad
    assert torch.all(batch_norms(x_adv - x, norm) <= eps + 1e-5)
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    with torch.no_grad():
        assert torch.all(loss_fn(x_adv) > loss_fn(x))
    assert torch.equal(pgd(loss_fn, x, 0.0, norm), x)


# -------------------------------------------------------------------------------------------- HSJA


@pytest.mark.parametrize("budget", [0, 1, 7, 60, 333])
def test_hsja_never_exceeds_budget(budget):
    det = LinearDetector(_direction())
    x = _fakes(det.w, [0.4, 0.8])
    total = 0
    for i in range(len(x)):
        rule = Counter(lambda z: det(z) <= 0)
        res = hop_skip_jump(
            rule, x[i : i + 1], max_queries=budget, generator=torch.Generator().manual_seed(0)
        )
        assert rule.count <= budget
        assert int(res.queries[0]) == rule.count
        total += rule.count
        if res.success[0]:  # whatever the budget, a reported point is adversarial and in [0,1]
            assert bool(det(res.x_adv)[0] <= 0)
        else:
            assert math.isinf(float(res.norms[0])) and torch.equal(res.x_adv, x[i : i + 1])
    rule = Counter(lambda z: det(z) <= 0)
    res = hop_skip_jump(rule, x, max_queries=budget, generator=torch.Generator().manual_seed(0))
    assert rule.count == int(res.queries.sum()) == total and torch.all(res.queries <= budget)


def test_hsja_finds_the_hyperplane():
    det = LinearDetector(_direction())
    x = _fakes(det.w, [0.4, 1.0])
    rule = Counter(lambda z: det(z) <= 0)
    res = hop_skip_jump(
        rule, x, max_queries=2000, num_iterations=None, generator=torch.Generator().manual_seed(0)
    )
    assert isinstance(res, HSJAResult) and res.success.all()
    assert res.queries.tolist() == [2000, 2000] and rule.count == 4000
    assert torch.all(det(res.x_adv) <= 0)
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    true = det.distance(x)
    assert torch.allclose(res.norms, (res.x_adv - x).flatten(1).norm(dim=1))
    assert torch.all(res.norms >= true - 1e-4) and torch.all(res.norms < 2 * true)
    # the first boundary point (no gradient iteration) is much farther than the final one
    early = hop_skip_jump(
        lambda z: det(z) <= 0,
        x,
        max_queries=2000,
        num_iterations=0,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.all(res.norms < 0.7 * early.norms)
    assert torch.all(early.queries < 200)


def test_hsja_deterministic_clean_adversarial_and_init_pool():
    det = LinearDetector(_direction())
    x = _fakes(det.w, [0.5, -0.3])  # the second image is already called real

    def rule(z):
        return det(z) <= 0

    a = hop_skip_jump(rule, x, max_queries=300, generator=torch.Generator().manual_seed(3))
    b = hop_skip_jump(rule, x, max_queries=300, generator=torch.Generator().manual_seed(3))
    assert (
        torch.equal(a.x_adv, b.x_adv) and torch.equal(a.norms, b.norms) and torch.equal(a.queries, b.queries)
    )
    assert bool(a.success[1]) and float(a.norms[1]) == 0 and int(a.queries[1]) == 1

    # a rule uniform noise (almost) never satisfies: only the init pool gives a starting point
    def strict(z):
        return (det.distance(z) < -0.2) & ((z - 0.5).abs().flatten(1).amax(1) < 0.45)

    pool = _fakes(det.w, [-0.5, -0.6], seed=5)
    no_pool = hop_skip_jump(strict, x[:1], max_queries=300, init_tries=20)
    assert not no_pool.success[0] and int(no_pool.queries[0]) == 21
    with_pool = hop_skip_jump(
        strict, x[:1], max_queries=300, init=pool, generator=torch.Generator().manual_seed(0)
    )
    assert with_pool.success[0] and float(with_pool.norms[0]) < float((pool[0] - x[0]).norm())


# ---------------------------------------------------------------------------------- attack_detector


def test_attack_detector_accuracy_and_report():
    det = LinearDetector(_direction())
    fakes = _fakes(det.w, [0.2, 0.3, 0.5, 0.7, 0.9, -0.3])  # the last one already fools the detector
    reals = _fakes(det.w, [-0.4, -0.8], seed=7)
    big = 1.2 / math.sqrt(192)  # RMS budget that covers every distance above
    for attack in ATTACKS:
        eps_big = 0.2 if attack == "pgd-linf" else big
        kw = {"init": reals, "queries": 500} if attack == "hsja" else {}
        out = attack_detector(det, fakes, attack, eps_big, **kw)
        json.dumps(out, allow_nan=False)
        assert out["n"] == 6 and out["clean_acc"] == pytest.approx(5 / 6)
        assert out["adv_acc"] <= out["clean_acc"]
        assert out["adv_acc"] <= 1 / 6, attack
        assert out["norm"] == ("linf" if attack == "pgd-linf" else "l2")
        zero = attack_detector(det, fakes, attack, 0.0, **kw)
        assert zero["adv_acc"] == zero["clean_acc"] == pytest.approx(5 / 6)
    l2 = attack_detector(det, fakes, "pgd-l2", 0.03)
    assert l2["eps_abs"] == pytest.approx(rms_to_l2(0.03, SHAPE)) and l2["steps"] == 10
    assert l2["mean_norm"] <= 0.03 + 1e-6  # reported in the units of eps
    hs = attack_detector(det, fakes, "hsja", big, queries=200)
    assert hs["mean_queries"] <= 200 and hs["queries"] == 200 and hs["steps"] is None
    assert hs["median_norm"] < big


def test_attack_names_and_defaults():
    with pytest.raises(ValueError, match="pgd-l2"):
        attack_detector(LinearDetector(_direction()), torch.rand(2, *SHAPE), "fgsm", 0.1)
    with pytest.raises(ValueError, match="hsja"):
        default_eps("cw")
    assert default_eps("pgd-l2") == default_eps("hsja") == 0.0257
    assert default_eps("pgd-linf") == pytest.approx(4 / 255)


# ----------------------------------------------------------------------------------------- package

_LAZY_IMPORT_CHECK = """
import sys, types
import trustvis.attacks as a
assert "torch" not in sys.modules, "import trustvis.attacks pulled in torch"
assert a.ATTACKS == ("pgd-l2", "pgd-linf", "hsja")
assert set(a.__all__) <= set(dir(a))
import trustvis.attacks.projected  # the submodule no longer shadows the function it defines
from trustvis.attacks import pgd
assert isinstance(pgd, types.FunctionType), pgd
print("ok")
"""


def test_package_import_is_torch_free_and_names_are_lazy():
    """The CLI parser reads ATTACKS without importing torch; every public name resolves on access."""
    proc = subprocess.run(
        [sys.executable, "-c", _LAZY_IMPORT_CHECK], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
    import trustvis.attacks as pkg
    from trustvis.attacks import evaluate

    assert pkg.__all__ == ["ATTACKS", *sorted(pkg._LAZY)]
    assert evaluate.ATTACKS is pkg.ATTACKS
    for name in pkg.__all__:
        value = getattr(pkg, name)
        assert not isinstance(value, type(pkg)), f"trustvis.attacks.{name} is a module"
    with pytest.raises(AttributeError, match="no_such_attack"):
        pkg.no_such_attack  # noqa: B018
