"""DCutMix / DMixup (K-image Dirichlet mixing): targets, realised areas, K=2 reductions, determinism."""

from __future__ import annotations

import pickle

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from trustvis.methods.augment import kmix
from trustvis.methods.augment.kmix import (
    KMixer,
    dirichlet_cutmix,
    dirichlet_mixup,
    mixing_uncertainty,
    soft_target_cross_entropy,
    stick_breaking,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def index_images(B: int, C: int = 2, H: int = 12, W: int = 10) -> torch.Tensor:
    """Image i is the constant i (every channel)."""
    return torch.arange(B, dtype=torch.float32)[:, None, None, None].expand(B, C, H, W).contiguous()


def pixel_fractions(x_mix: torch.Tensor, B: int) -> torch.Tensor:
    """(B,B): fraction of the pixels of output i that come from source image j."""
    src = x_mix[:, 0].round().long()  # (B,H,W)
    return F.one_hot(src.flatten(1), B).float().mean(1)


def test_stick_breaking_hand_computed():
    phi = torch.tensor([[0.5, 0.25, 0.25], [0.2, 0.8, 0.0], [0.0, 0.0, 1.0]])
    v = stick_breaking(phi)
    expected = torch.tensor([[0.5, 0.5, 1.0], [0.2, 1.0, 1.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(v, expected)
    # φ_k = v_k Π_{j<k}(1 − v_j)
    rebuilt = v * torch.cumprod(F.pad(1 - v[:, :-1], (1, 0), value=1.0), 1)
    torch.testing.assert_close(rebuilt, phi)


def test_dirichlet_sampler_moments_and_small_alpha():
    for alpha, K in ((1.0, 3), (0.2, 5), (3.0, 2)):
        phi = kmix._sample_dirichlet(20000, K, alpha, gen(1), torch.device("cpu"))
        assert torch.isfinite(phi).all() and (phi >= 0).all()
        torch.testing.assert_close(phi.sum(1), torch.ones(20000, dtype=torch.float64))
        var = (1 / K) * (1 - 1 / K) / (K * alpha + 1)
        assert torch.allclose(phi.mean(0), torch.full((K,), 1 / K, dtype=torch.float64), atol=0.01)
        assert abs(phi.var(0).mean().item() - var) < 0.08 * var
        # E[log φ_k] = ψ(α) − ψ(Kα): sensitive to the α < 1 boost and to the small-φ tail
        e_log = torch.digamma(torch.tensor(alpha)) - torch.digamma(torch.tensor(K * alpha))
        assert abs(phi.log().mean().item() - e_log.item()) < 0.05 * abs(e_log.item())


@pytest.mark.parametrize("mode", ["cutmix", "mixup"])
@pytest.mark.parametrize("B", [1, 3, 7])
def test_targets_sum_to_one_and_match_pixels(mode, B):
    x = index_images(B)
    fn = dirichlet_cutmix if mode == "cutmix" else dirichlet_mixup
    x_mix, target, info = fn(x, torch.arange(B), K=4, alpha=0.7, num_classes=B, generator=gen(B))
    assert x_mix.shape == x.shape and target.shape == (B, B)
    assert info["perms"].shape == (4, B) and info["areas"].shape == (B, 4) and info["phi"].shape == (B, 4)
    torch.testing.assert_close(info["perms"][0], torch.arange(B))
    torch.testing.assert_close(target.sum(1), torch.ones(B))
    torch.testing.assert_close(info["areas"].sum(1), torch.ones(B))
    if mode == "cutmix":
        torch.testing.assert_close(target, pixel_fractions(x_mix, B))  # labels = realised pasted pixels
    else:
        torch.testing.assert_close(info["areas"], info["phi"])
        expected = (info["phi"] * info["perms"].T.float()).sum(1)  # blend of the constants
        torch.testing.assert_close(x_mix[:, 0, 0, 0], expected)


def test_cutmix_pixels_are_nested_boxes():
    B, K = 16, 4
    sources = [torch.full((B, 1, 20, 17), float(k)) for k in range(K)]  # component k is the constant k
    phi = kmix._sample_dirichlet(B, K, 1.0, gen(3), torch.device("cpu"))
    boxes = kmix._nested_boxes(stick_breaking(phi), 20, 17, gen(4))
    x_mix, rings = kmix._paste_nested(sources, boxes)
    depth = x_mix[:, 0].long()  # (B,H,W): which component owns each pixel
    for k in range(1, K):
        inside = depth >= k
        top, left, h, w = boxes[:, k].T
        for i in range(B):
            region = torch.zeros(20, 17, dtype=torch.bool)
            region[top[i] : top[i] + h[i], left[i] : left[i] + w[i]] = True
            assert torch.equal(inside[i], region)
            assert (boxes[i, k, :2] >= boxes[i, k - 1, :2]).all()
            assert (boxes[i, k, :2] + boxes[i, k, 2:] <= boxes[i, k - 1, :2] + boxes[i, k - 1, 2:]).all()
    torch.testing.assert_close(rings.float(), F.one_hot(depth.flatten(1), K).float().mean(1))


def test_p0_identity_and_p1_equals_function():
    x, y = torch.randn(5, 3, 8, 8), torch.tensor([0, 2, 1, 2, 0])
    out, target = KMixer(K=3, p=0.0, num_classes=3)(x, y, generator=gen(0))
    assert out is x
    torch.testing.assert_close(target, F.one_hot(y, 3).float())
    out, target = KMixer(K=3, alpha=0.5, p=1.0, num_classes=3)(x, y, generator=gen(7))
    ref, ref_t, _ = dirichlet_cutmix(x, y, K=3, alpha=0.5, num_classes=3, generator=gen(7))
    assert torch.equal(out, ref) and torch.equal(target, ref_t)


def test_batch_level_bernoulli():
    x, y = torch.randn(4, 1, 6, 6), torch.arange(4)
    mixer = KMixer(K=2, p=0.5, num_classes=4)
    g = gen(11)
    mixed = [not torch.equal(mixer(x, y, generator=g)[0], x) for _ in range(200)]
    assert 70 < sum(mixed) < 130
    assert pickle.loads(pickle.dumps(mixer)).p == 0.5


@pytest.mark.parametrize("mode", ["cutmix", "mixup"])
def test_determinism_per_seed(mode):
    x, y = torch.randn(6, 3, 16, 16), torch.randint(0, 5, (6,))
    mixer = KMixer(K=5, alpha=0.2, mode=mode, num_classes=5)
    a, ta = mixer(x, y, generator=gen(42))
    b, tb = mixer(x, y, generator=gen(42))
    c, tc = mixer(x, y, generator=gen(43))
    assert torch.equal(a, b) and torch.equal(ta, tb)
    assert not torch.equal(a, c)


def test_k2_is_cutmix_with_one_rectangular_box():
    B, H, W = 32, 24, 20
    x = index_images(B, H=H, W=W)
    x_mix, target, info = dirichlet_cutmix(
        x, torch.arange(B), K=2, alpha=1.0, num_classes=B, generator=gen(5)
    )
    perm, phi0 = info["perms"][1], info["phi"][:, 0]
    for i in range(B):
        values = x_mix[i, 0].unique()
        assert set(values.tolist()) <= {float(i), float(perm[i])}
        if perm[i] == i:
            continue
        pasted = x_mix[i, 0] == perm[i]  # (H,W)
        rows, cols = pasted.any(1), pasted.any(0)
        assert torch.equal(pasted, rows[:, None] & cols[None, :])  # a filled rectangle ...
        r, c = rows.nonzero().flatten(), cols.nonzero().flatten()
        if len(r):
            assert r[-1] - r[0] + 1 == len(r) and c[-1] - c[0] + 1 == len(c)  # ... of contiguous rows/cols
        side = (1 - phi0[i]).sqrt()
        assert abs(len(r) - H * side) <= 0.5 + 1e-6 and abs(len(c) - W * side) <= 0.5 + 1e-6
        frac = pasted.float().mean()
        assert abs(frac - (1 - phi0[i])) < (H + W + 1) / (2 * H * W) + 1e-6
        torch.testing.assert_close(target[i, perm[i]], frac)
        torch.testing.assert_close(target[i, i], 1 - frac)


def test_k2_mixup_is_mixup_with_lambda_phi0():
    x, y = torch.randn(7, 3, 5, 5), torch.randint(0, 4, (7,))
    x_mix, target, info = dirichlet_mixup(x, y, K=2, alpha=0.4, num_classes=4, generator=gen(2))
    lam, perm = info["phi"][:, 0], info["perms"][1]
    torch.testing.assert_close(x_mix, lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[perm])
    torch.testing.assert_close(
        target, lam[:, None] * F.one_hot(y, 4) + (1 - lam[:, None]) * F.one_hot(y[perm], 4)
    )


@pytest.mark.parametrize("mode", ["cutmix", "mixup"])
def test_soft_target_inputs(mode):
    B = 5
    x = index_images(B)
    y = torch.softmax(torch.randn(B, 3, generator=gen(9)), 1)
    fn = dirichlet_cutmix if mode == "cutmix" else dirichlet_mixup
    _, target, info = fn(x, y, K=3, alpha=1.0, num_classes=3, generator=gen(1))
    expected = sum(info["areas"][:, k, None] * y[info["perms"][k]] for k in range(3))
    torch.testing.assert_close(target, expected)
    torch.testing.assert_close(target.sum(1), torch.ones(B))


def test_mean_realised_area_is_one_over_k():
    K = 3
    x, y = torch.zeros(3000, 1, 32, 32), torch.zeros(3000, dtype=torch.long)
    _, _, info = dirichlet_cutmix(x, y, K=K, alpha=1.0, num_classes=2, generator=gen(0))
    torch.testing.assert_close(info["areas"].mean(0), torch.full((K,), 1 / K), atol=0.02, rtol=0)


class CountOps(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.n += 1
        return func(*args, **(kwargs or {}))


def test_no_python_loop_over_samples(monkeypatch):
    """The number of torch calls does not depend on B (the Dirichlet rejection loop is stubbed)."""
    monkeypatch.setattr(
        kmix, "_sample_dirichlet", lambda n, K, *a: torch.full((n, K), 1.0 / K, dtype=torch.float64)
    )
    counts = []
    for B in (2, 40):
        x, y = torch.randn(B, 3, 9, 9), torch.randint(0, 3, (B,))
        with CountOps() as mode:
            dirichlet_cutmix(x, y, K=4, alpha=1.0, num_classes=3, generator=gen(0))
        counts.append(mode.n)
    assert counts[0] == counts[1]


def test_validation_errors():
    with pytest.raises(ValueError, match="K must be an integer >= 2"):
        KMixer(K=1)
    with pytest.raises(ValueError, match="K must be an integer >= 2"):
        KMixer(K=2.5)
    with pytest.raises(ValueError, match="alpha"):
        KMixer(alpha=0.0)
    with pytest.raises(ValueError, match=r"p \(probability"):
        KMixer(p=1.5)
    with pytest.raises(ValueError, match=r"choose from \['cutmix', 'mixup'\]"):
        KMixer(mode="cutout")
    x = torch.randn(2, 1, 4, 4)
    with pytest.raises(ValueError, match="class indices"):
        dirichlet_cutmix(x, torch.tensor([0, 5]), K=2, alpha=1.0, num_classes=3)
    with pytest.raises(ValueError, match="soft targets"):
        dirichlet_mixup(x, torch.ones(2, 4) / 4, K=2, alpha=1.0, num_classes=3)
    with pytest.raises(ValueError, match=r"x must be a float tensor"):
        dirichlet_cutmix(x[0], torch.tensor([0, 1]), K=2, alpha=1.0, num_classes=3)
    with pytest.raises(ValueError, match="same shape"):
        soft_target_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="draws"):
        mixing_uncertainty(lambda t: t.mean((2, 3)), x, references=x, draws=0)
    with pytest.raises(ValueError, match="share C,H,W"):
        mixing_uncertainty(lambda t: t.mean((2, 3)), x, references=torch.randn(3, 2, 4, 4))


def test_soft_target_cross_entropy_matches_cross_entropy():
    logits, y = torch.randn(6, 5, generator=gen(0)), torch.tensor([0, 4, 2, 2, 1, 3])
    torch.testing.assert_close(
        soft_target_cross_entropy(logits, F.one_hot(y, 5).float()), F.cross_entropy(logits, y)
    )


def one_hot_colour_images(labels: torch.Tensor, size: int = 8) -> torch.Tensor:
    return F.one_hot(labels, 2).float()[:, :, None, None].expand(-1, -1, size, size).contiguous()


@pytest.mark.parametrize("mode", ["cutmix", "mixup"])
def test_mixing_uncertainty(mode):
    x = one_hot_colour_images(torch.tensor([0, 1, 1, 0, 1]))
    refs = one_hot_colour_images(torch.tensor([1, 0, 0, 1, 1, 0]))
    calls = []

    def linear(t):  # the mean colour of a mix IS the area-weighted mixture of its components
        calls.append(len(t))
        return t.mean((2, 3))

    u = mixing_uncertainty(linear, x, references=refs, K=3, draws=4, mode=mode, generator=gen(0))
    assert u.shape == (5,) and torch.isfinite(u).all()
    assert u.abs().max() < 1e-6
    assert calls == [5, 6, 5, 5, 5, 5]  # clean x, references, one batch of mixes per draw

    def sharp(t):  # confident, non-linear in the mix
        return torch.softmax(10 * t.mean((2, 3)), 1)

    a = mixing_uncertainty(sharp, x, references=refs, K=3, draws=4, mode=mode, generator=gen(1))
    b = mixing_uncertainty(sharp, x, references=refs, K=3, draws=4, mode=mode, generator=gen(1))
    c = mixing_uncertainty(sharp, x, references=refs, K=3, draws=4, mode=mode, generator=gen(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (a >= 0).all() and (a <= 1).all() and a.mean() > 0.05
