"""HopSkipJump (Chen, Jordan & Wainwright, IEEE S&P 2020, arXiv 1904.02144): L2, untargeted, decision-based.

Black-box: the attacker sees only the model's decision ``is_adversarial(x) -> bool`` and pays one
query per image evaluated. Each image is attacked on its own, with its own query budget::

    x (C,H,W), not adversarial
      └─► start x₀: the nearest `init` image the model gets wrong, else uniform noise (each try = 1 query)
      └─► x₁ = binary search on the segment [x, x₀] for the boundary (blend precision θ = γ / d^{3/2})
      └─► repeat for t = 1, 2, ...:
            δ_t = 0.1 (t = 1) or γ·‖x_t − x‖₂ / d                             probe radius
            u_b ~ uniform on the unit sphere, b = 1..n_t, n_t = min(n₀·√t, n_max)
            φ_b = ±1: is x_t + δ_t·u_b adversarial ?                           one batched call
            v = Σ_b (φ_b − mean φ) u_b, normalised                            boundary-normal estimate
            ξ = ‖x_t − x‖₂ / √t, halved until clip(x_t + ξ·v) is adversarial  geometric step search
            x_{t+1} = binary search on [x, clip(x_t + ξ·v)]
      └─► x_adv = the closest adversarial point met, ‖x_adv − x‖₂ (absolute L2, whole image)

Budget: every evaluated image counts, from the clean check onwards. An iteration runs only if the budget
left covers its gradient queries (reduced to fit, at least 2) plus one full binary search; the step search
and the binary search stop when the budget is spent, and both keep an adversarial point, so ``x_adv`` is
always adversarial when ``success`` is True and the budget is never exceeded.

Deviations (documented choices, not in the paper):
- ``init``: a pool of images (e.g. real images the detector calls real) tried nearest-first before noise.
- The gradient-query count of the last iteration shrinks to fit the remaining budget.
- The returned point is the best (closest) adversarial point seen, not the last iterate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

_MIN_GRAD_QUERIES = 2


@dataclass
class HSJAResult:
    """Per-image outcome of :func:`hop_skip_jump`.

    Attributes:
        x_adv: (B,C,H,W) adversarial images in [0,1]; the clean image where none was found.
        success: (B,) bool, an adversarial point was found at all (whatever its distance).
        norms: (B,) absolute L2 ``‖x_adv − x‖₂``; ``inf`` where ``success`` is False.
        queries: (B,) int64, model evaluations spent on each image (≤ ``max_queries``).
    """

    x_adv: Tensor
    success: Tensor
    norms: Tensor
    queries: Tensor


class _Oracle:
    """``is_adversarial`` for one image, counting queries and refusing to exceed the budget."""

    def __init__(self, fn: Callable[[Tensor], Tensor], budget: int) -> None:
        self.fn = fn
        self.left = int(budget)
        self.used = 0

    def __call__(self, points: Tensor) -> Tensor:
        n = points.shape[0]
        if n > self.left:  # a bug in the caller, never a user error
            raise RuntimeError(f"query budget exceeded: asked {n}, {self.left} left")
        self.left -= n
        self.used += n
        with torch.no_grad():
            out = self.fn(points)
        return torch.as_tensor(out).reshape(n).bool().cpu()

    def one(self, point: Tensor) -> bool:
        return bool(self(point.unsqueeze(0))[0])


def _binary_search(oracle: _Oracle, x: Tensor, adv: Tensor, theta: float) -> Tensor:
    """Boundary point on the segment [x, adv] (adv adversarial, x not); returns the adversarial side."""
    lo, hi = 0.0, 1.0
    while hi - lo > theta and oracle.left >= 1:
        mid = (lo + hi) / 2
        if oracle.one((1 - mid) * x + mid * adv):
            hi = mid
        else:
            lo = mid
    return (1 - hi) * x + hi * adv


def _estimate_direction(
    oracle: _Oracle, cur: Tensor, n: int, delta: float, batch_size: int, generator: torch.Generator | None
) -> Tensor:
    """Monte-Carlo estimate of the boundary normal at ``cur`` (pointing to the adversarial side), unit L2."""
    sum_u = torch.zeros_like(cur)
    sum_fu = torch.zeros_like(cur)
    sum_f = 0.0
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        u = torch.randn((m, *cur.shape), generator=generator, device="cpu").to(cur)
        u = u / u.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * cur.dim()))
        probes = (cur + delta * u).clamp(0, 1)
        u = (probes - cur) / delta  # the direction actually probed, after clipping
        f = oracle(probes).to(cur) * 2 - 1  # +1 adversarial, -1 not
        sum_u += u.sum(0)
        sum_fu += (f.view(-1, *([1] * cur.dim())) * u).sum(0)
        sum_f += float(f.sum())
    mean_f = sum_f / n
    if mean_f == 1.0:  # all probes adversarial: any probe direction is uphill
        g = sum_u
    elif mean_f == -1.0:
        g = -sum_u
    else:  # baseline-subtracted estimate: Σ (φ_b − φ̄) u_b
        g = sum_fu - mean_f * sum_u
    norm = g.norm()
    return g / norm if norm > 0 else g


def _attack_one(
    oracle: _Oracle,
    x: Tensor,
    pool: Tensor | None,
    init_tries: int,
    num_iterations: int | None,
    gamma: float,
    init_grad_queries: int,
    max_grad_queries: int,
    batch_size: int,
    generator: torch.Generator | None,
) -> tuple[Tensor, bool]:
    if oracle.left < 1:
        return x.clone(), False
    if oracle.one(x):
        return x.clone(), True
    d = x.numel()
    theta = gamma / d**1.5
    bs_steps = math.ceil(math.log2(1 / theta)) if theta < 1 else 0

    # starting point: pool images nearest first, then uniform noise
    start, tries = None, 0
    if pool is not None and len(pool):
        order = (pool - x).flatten(1).norm(dim=1).argsort()
        for j in order.tolist():
            if tries >= init_tries or oracle.left < 1:
                break
            tries += 1
            if oracle.one(pool[j]):
                start = pool[j]
                break
    while start is None and tries < init_tries and oracle.left >= 1:
        tries += 1
        noise = torch.rand(x.shape, generator=generator, device="cpu").to(x)
        if oracle.one(noise):
            start = noise
    if start is None:
        return x.clone(), False

    cur = _binary_search(oracle, x, start, theta)
    dist = float((cur - x).norm())
    best, best_dist = cur, dist
    t = 0
    while num_iterations is None or t < num_iterations:
        t += 1
        n_grad = min(int(init_grad_queries * math.sqrt(t)), max_grad_queries, oracle.left - 1 - bs_steps)
        if n_grad < _MIN_GRAD_QUERIES or dist == 0:
            break
        delta = 0.1 if t == 1 else gamma * dist / d
        v = _estimate_direction(oracle, cur, n_grad, delta, batch_size, generator)
        step = dist / math.sqrt(t)
        cand = None
        while oracle.left >= 1:
            trial = (cur + step * v).clamp(0, 1)
            if oracle.one(trial):
                cand = trial
                break
            step /= 2
        if cand is None:
            break
        cur = _binary_search(oracle, x, cand, theta)
        dist = float((cur - x).norm())
        if dist < best_dist:
            best, best_dist = cur, dist
    return best, True


def hop_skip_jump(
    is_adversarial: Callable[[Tensor], Tensor],
    x: Tensor,
    max_queries: int = 1000,
    init: Tensor | None = None,
    init_tries: int = 100,
    num_iterations: int | None = None,
    gamma: float = 1.0,
    init_grad_queries: int = 100,
    max_grad_queries: int = 1000,
    batch_size: int = 128,
    generator: torch.Generator | None = None,
) -> HSJAResult:
    """Smallest-L2 adversarial images found by HopSkipJump within ``max_queries`` queries per image.

    Args:
        is_adversarial: ``(N,C,H,W) images in [0,1] -> (N,) bool``; True where the attacker has won (for a
            detector and a fake image: the model says "real"). Called under ``torch.no_grad``.
        x: (B,C,H,W) clean images in [0,1]; not modified.
        max_queries: Budget per image, counting every evaluated image (clean check, initialisation,
            gradient probes, step and binary searches). Never exceeded.
        init: Optional pool (M,C,H,W) of starting candidates in [0,1] (e.g. real images the model calls
            real), tried nearest-first before uniform noise.
        init_tries: Most starting candidates (pool and noise together) tried per image.
        num_iterations: Most gradient iterations per image; None = until the budget is spent.
        gamma: HSJA's γ: binary-search precision θ = γ/d^{3/2} and probe radius γ·dist/d.
        init_grad_queries: Gradient probes at iteration 1; n₀·√t at iteration t.
        max_grad_queries: Cap on gradient probes per iteration (also capped by the budget left).
        batch_size: Most images per ``is_adversarial`` call when probing the gradient.
        generator: CPU generator for the noise and the probe directions (reproducible attacks).

    Returns:
        :class:`HSJAResult` with ``x_adv``, ``success``, ``norms`` (absolute L2) and ``queries``.
    """
    if x.dim() != 4:
        raise ValueError(f"x must be (B,C,H,W), got shape {tuple(x.shape)}")
    if max_queries < 0 or init_tries < 0 or batch_size < 1 or gamma <= 0:
        raise ValueError("need max_queries >= 0, init_tries >= 0, batch_size >= 1 and gamma > 0")
    x = x.detach()
    pool = None
    if init is not None:
        pool = init.detach().to(x).clamp(0, 1)
        if pool.shape[1:] != x.shape[1:]:
            raise ValueError(f"init images {tuple(pool.shape[1:])} differ from x images {tuple(x.shape[1:])}")
    x_adv = x.clone()
    success = torch.zeros(len(x), dtype=torch.bool)
    norms = torch.full((len(x),), math.inf)
    queries = torch.zeros(len(x), dtype=torch.long)
    for i in range(len(x)):
        oracle = _Oracle(is_adversarial, max_queries)
        adv, ok = _attack_one(
            oracle,
            x[i],
            pool,
            init_tries,
            num_iterations,
            gamma,
            init_grad_queries,
            max_grad_queries,
            batch_size,
            generator,
        )
        x_adv[i] = adv
        success[i] = ok
        queries[i] = oracle.used
        if ok:
            norms[i] = float((adv - x[i]).norm())
    return HSJAResult(x_adv=x_adv, success=success, norms=norms, queries=queries)
