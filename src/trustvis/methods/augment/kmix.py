r"""K-image mixing under a Dirichlet prior: DCutMix (nested boxes) and DMixup (pixel blend).

Paper: Jeong, Cha, Choi, Yun, Moon, Yoo. "Observations on K-Image Expansion of Image-Mixing
Augmentation". IEEE Access vol. 11, pp. 16631-16643, 2023. arXiv 2110.04248.
Official code: clovaai/DCutMix (``main.py``).

Every sample i is mixed with K-1 partners x[π_1(i)], …, x[π_{K-1}(i)] (batch permutations, π_0 = id).
Proportions φ ~ Dir(α·1_K) become stick-breaking fractions v_k = φ_k / (1 − Σ_{j<k} φ_j). DCutMix
pastes partner k into a box R_k nested in R_{k-1} (area ratio 1 − v_{k-1} of the parent, uniform
position inside it); image k keeps the ring R_k \ R_{k+1}::

    +-- R_0: whole image ---------------+     K = 3, x (B,C,H,W)
    | x    +-- R_1 -----------------+   |     ring R_0\R_1 → x         area ≈ φ_0
    |      | x[π_1]  +-- R_2 --+    |   |     ring R_1\R_2 → x[π_1]    area ≈ φ_1
    |      |         | x[π_2]  |    |   |     box  R_2     → x[π_2]    area ≈ φ_2
    |      |         +---------+    |   |
    |      +------------------------+   |     R_k ⊂ R_{k-1}, sides × sqrt(1 − v_{k-1})
    +-----------------------------------+

DMixup blends instead: x̃ = Σ_k φ_k x[π_k]. Targets are Σ_k w_k · onehot(y[π_k]) (or soft y[π_k]) with
w = realised ring areas / (H·W) for DCutMix and w = φ for DMixup; train with
``soft_target_cross_entropy``. Shapes: x (B,C,H,W), y (B,) int64 or (B,N) soft, target (B,N).

Registered method ``kmix``: the classification recipe (``trustvis.methods.classify.classifier``) trained
on K-image mixes; ``mode`` picks DCutMix or DMixup, ``K = 2`` is the CutMix/Mixup special case.

``mixing_uncertainty`` scores how far a model is from the mixing model "the mix of K images has the
area-weighted class distribution of its components" (see its docstring).

Deviations:
  * vectorised over the batch (masks from broadcast ``arange`` comparisons, a loop over k only) instead
    of the official per-sample Python loop (whose ``np.int``/``np.float`` fail on NumPy >= 1.24);
  * labels always use the realised (integer) box areas, so they match the pasted pixels exactly;
    side lengths use ``torch.round`` (half to even);
  * K = 2 is CutMix/Mixup with λ = φ_0 ~ Beta(α, α); the CutMix box lies fully inside the image
    (uniform position, side ``round(H·sqrt(1−λ))``) instead of CutMix's uniform centre clipped at
    the border with ``int()`` sides;
  * Dirichlet draws use our own Marsaglia-Tsang gamma sampler (log-space, boosted for α < 1) driven
    by ``torch.randn``/``torch.rand`` with the given ``torch.Generator``, so results are reproducible
    per generator (``torch._standard_gamma`` takes no generator);
  * the paper's sample-wise uncertainty estimator is not published: ``mixing_uncertainty`` is our own
    estimator built on the paper's mixing model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from trustvis.methods.classify.classifier import Classifier, ClassifierConfig, classifier_presets
from trustvis.registry import Paper, register

MODES = ("cutmix", "mixup")
Gen = torch.Generator | None
MixOut = tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]


def _check(K: int, alpha: float, mode: str = "cutmix") -> None:
    if isinstance(K, bool) or not isinstance(K, int) or K < 2:
        raise ValueError(f"K must be an integer >= 2 (number of mixed images), got {K!r}")
    if not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha (Dirichlet concentration) must be a finite number > 0, got {alpha!r}")
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}; choose from {list(MODES)}")


def _rand_device(x: torch.Tensor, generator: Gen) -> torch.device:
    return generator.device if generator is not None else x.device


def _sample_dirichlet(n: int, K: int, alpha: float, generator: Gen, device: torch.device) -> torch.Tensor:
    """φ ~ Dir(α·1_K), (n,K) float64, via log-gammas (Marsaglia-Tsang) and a softmax."""
    a = alpha + 1.0 if alpha < 1.0 else float(alpha)  # boost: Gamma(α) = Gamma(α+1) · U^(1/α)
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    log_g = torch.empty(n, K, dtype=torch.float64, device=device)  # (n,K)
    pending = torch.ones(n, K, dtype=torch.bool, device=device)
    tiny = torch.finfo(torch.float64).tiny
    while bool(pending.any()):  # rejection rounds; every round draws a full (n,K) block (deterministic)
        z = torch.randn(n, K, generator=generator, device=device, dtype=torch.float64)
        u = torch.rand(n, K, generator=generator, device=device, dtype=torch.float64).clamp_min(tiny)
        v = (1.0 + c * z) ** 3
        log_v = v.clamp_min(tiny).log()
        ok = (v > 0) & (u.log() < 0.5 * z * z + d - d * v + d * log_v)
        take = pending & ok
        log_g = torch.where(take, math.log(d) + log_v, log_g)
        pending = pending & ~ok
    if alpha < 1.0:
        u = torch.rand(n, K, generator=generator, device=device, dtype=torch.float64).clamp_min(tiny)
        log_g = log_g + u.log() / alpha
    return torch.softmax(log_g, dim=1)  # (n,K), rows sum to 1 even when the gammas underflow


def stick_breaking(phi: torch.Tensor) -> torch.Tensor:
    """Stick-breaking fractions of Dirichlet proportions.

    Args:
        phi: proportions (B,K), rows summing to 1.

    Returns:
        v (B,K) with v_k = φ_k / (1 − Σ_{j<k} φ_j) clamped to [0, 1] and v_{K-1} = 1, so that
        φ_k = v_k Π_{j<k} (1 − v_j).
    """
    remaining = phi.flip(1).cumsum(1).flip(1)  # (B,K): Σ_{j>=k} φ_j = 1 − Σ_{j<k} φ_j
    v = (phi / remaining.clamp_min(torch.finfo(phi.dtype).tiny)).clamp(0.0, 1.0)  # (B,K)
    v[:, -1] = 1.0
    return v


def _nested_boxes(v: torch.Tensor, H: int, W: int, generator: Gen) -> torch.Tensor:
    """Boxes (B,K,4) as (top, left, height, width), int64; box 0 is the image, box k ⊂ box k-1."""
    B, K = v.shape
    boxes = torch.zeros(B, K, 4, dtype=torch.long, device=v.device)  # (B,K,4)
    boxes[:, 0, 2], boxes[:, 0, 3] = H, W
    for k in range(1, K):
        top, left, h, w = boxes[:, k - 1].unbind(1)  # (B,) each
        ratio = (1.0 - v[:, k - 1].double()).clamp_min(0.0).sqrt()  # (B,) side ratio
        hk = torch.minimum((h * ratio).round().long(), h)  # (B,)
        wk = torch.minimum((w * ratio).round().long(), w)
        u = torch.rand(2, B, generator=generator, device=v.device, dtype=torch.float64)  # (2,B)
        dy = torch.minimum((u[0] * (h - hk + 1)).floor().long(), h - hk)
        dx = torch.minimum((u[1] * (w - wk + 1)).floor().long(), w - wk)
        boxes[:, k] = torch.stack([top + dy, left + dx, hk, wk], 1)
    return boxes


def _paste_nested(sources: Sequence[torch.Tensor], boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste source k into box k (B,K,4); returns the mix (B,C,H,W) and realised ring areas (B,K)."""
    H, W = sources[0].shape[-2:]
    boxes = boxes.to(sources[0].device)
    rows = torch.arange(H, device=boxes.device)[None, :, None]  # (1,H,1)
    cols = torch.arange(W, device=boxes.device)[None, None, :]  # (1,1,W)
    x_mix = sources[0]
    for k in range(1, len(sources)):
        top, left, h, w = (t[:, None, None] for t in boxes[:, k].unbind(1))  # (B,1,1) each
        mask = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)  # (B,H,W)
        x_mix = torch.where(mask[:, None], sources[k], x_mix)  # (B,C,H,W)
    box_area = boxes[:, :, 2] * boxes[:, :, 3]  # (B,K)
    rings = box_area - F.pad(box_area[:, 1:], (0, 1))  # (B,K): |R_k \ R_{k+1}|, last = |R_{K-1}|
    return x_mix, rings.double() / (H * W)


def _blend(sources: Sequence[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """Σ_k weights[:, k] · sources[k] → (B,C,H,W)."""
    w = weights.to(device=sources[0].device, dtype=sources[0].dtype)  # (B,K)
    return sum(w[:, k, None, None, None] * s for k, s in enumerate(sources))


def _as_soft(y: torch.Tensor, B: int, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    if y.shape[:1] != (B,) or y.dim() not in (1, 2):
        raise ValueError(
            f"y must be (B,) class indices or (B,num_classes) soft targets; got {tuple(y.shape)}"
        )
    if y.dim() == 2:
        if y.shape[1] != num_classes:
            raise ValueError(f"soft targets have {y.shape[1]} classes, expected num_classes={num_classes}")
        return y.to(torch.promote_types(y.dtype, dtype))
    if y.dtype.is_floating_point or (B and (int(y.min()) < 0 or int(y.max()) >= num_classes)):
        raise ValueError(f"class indices must be integers in [0, {num_classes}); got {y.tolist()[:8]}")
    return F.one_hot(y.long(), num_classes).to(dtype)


def _mix(
    x: torch.Tensor, y: torch.Tensor, K: int, alpha: float, num_classes: int, generator: Gen, mode: str
) -> MixOut:
    _check(K, alpha, mode)
    if x.dim() != 4 or not x.dtype.is_floating_point:
        raise ValueError(f"x must be a float tensor (B,C,H,W), got {x.dtype} {tuple(x.shape)}")
    B, _, H, W = x.shape
    dtype = torch.promote_types(x.dtype, torch.float32)
    soft = _as_soft(y, B, num_classes, dtype)  # (B,N)
    dev = _rand_device(x, generator)
    phi = _sample_dirichlet(B, K, alpha, generator, dev)  # (B,K)
    perms = torch.stack(
        [torch.arange(B, device=dev)]
        + [torch.randperm(B, generator=generator, device=dev) for _ in range(K - 1)]
    ).to(x.device)  # (K,B)
    sources = [x[p] for p in perms]  # K × (B,C,H,W)
    if mode == "cutmix":
        x_mix, areas = _paste_nested(sources, _nested_boxes(stick_breaking(phi), H, W, generator))
    else:
        x_mix, areas = _blend(sources, phi), phi
    areas = areas.to(device=x.device, dtype=dtype)  # (B,K)
    target = sum(areas[:, k, None] * soft[perms[k]] for k in range(K))  # (B,N)
    return x_mix, target, {"perms": perms, "areas": areas, "phi": phi.to(device=x.device, dtype=dtype)}


def dirichlet_cutmix(
    x: torch.Tensor, y: torch.Tensor, *, K: int, alpha: float, num_classes: int, generator: Gen = None
) -> MixOut:
    """DCutMix: paste K-1 batch partners into nested boxes drawn by stick-breaking of φ ~ Dir(α·1_K).

    Args:
        x: images (B,C,H,W), float.
        y: class indices (B,) or soft targets (B,num_classes).
        K: images per mix (>= 2).
        alpha: Dirichlet concentration (> 0).
        num_classes: number of classes N.
        generator: random source; the same generator state gives the same output.

    Returns:
        ``(x_mix (B,C,H,W), target (B,N), info)`` where target rows sum to 1 and ``info`` holds
        ``perms`` (K,B) source indices (row 0 = identity), ``areas`` (B,K) realised pixel fractions
        of each component and ``phi`` (B,K) the drawn proportions.
    """
    return _mix(x, y, K, alpha, num_classes, generator, "cutmix")


def dirichlet_mixup(
    x: torch.Tensor, y: torch.Tensor, *, K: int, alpha: float, num_classes: int, generator: Gen = None
) -> MixOut:
    """DMixup: x̃ = Σ_k φ_k x[π_k], target = Σ_k φ_k y[π_k]; same arguments and return as
    ``dirichlet_cutmix`` (``info["areas"]`` equals ``phi``)."""
    return _mix(x, y, K, alpha, num_classes, generator, "mixup")


def soft_target_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of −Σ_j target_j · log softmax(logits)_j; logits and target (B,N)."""
    if logits.shape != target.shape:
        raise ValueError(f"logits and target must have the same shape; got {logits.shape}, {target.shape}")
    return F.cross_entropy(logits, target)  # probability targets: −Σ_j t_j log softmax(z)_j, batch mean


class KMixer:
    """Batch augmentation: with probability ``p`` (one draw per batch) mix K images per sample.

    Args:
        K: images per mix (>= 2).
        alpha: Dirichlet concentration (> 0); the paper uses 0.2-1 (CIFAR-100) and 1/3 (CIFAR-10).
        p: probability of mixing a batch (the official ``--beta``); otherwise one-hot targets.
        mode: ``"cutmix"`` (DCutMix) or ``"mixup"`` (DMixup).
        num_classes: number of classes N.
    """

    def __init__(
        self, K: int = 3, alpha: float = 1.0, p: float = 1.0, mode: str = "cutmix", num_classes: int = 10
    ):
        _check(K, alpha, mode)
        if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"p (probability of mixing) must be in [0, 1], got {p!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.K, self.alpha, self.p, self.mode, self.num_classes = K, float(alpha), float(p), mode, num_classes

    def __repr__(self) -> str:
        args = (
            f"K={self.K}, alpha={self.alpha}, p={self.p}, mode={self.mode!r}, num_classes={self.num_classes}"
        )
        return f"KMixer({args})"

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: Gen = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(x_mix (B,C,H,W), target (B,N))``; p = 0 returns ``x`` itself. The Bernoulli
        draw is only taken when 0 < p < 1, so p = 1 reproduces ``dirichlet_cutmix`` for one seed."""
        mix = self.p >= 1.0 or (
            self.p > 0.0
            and float(torch.rand((), generator=generator, device=_rand_device(x, generator))) < self.p
        )
        if not mix:
            return x, _as_soft(y, x.shape[0], self.num_classes, torch.promote_types(x.dtype, torch.float32))
        x_mix, target, _ = _mix(x, y, self.K, self.alpha, self.num_classes, generator, self.mode)
        return x_mix, target


@torch.no_grad()
def mixing_uncertainty(
    predict_probs: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    references: torch.Tensor,
    K: int = 3,
    alpha: float = 1.0,
    draws: int = 8,
    mode: str = "cutmix",
    generator: Gen = None,
) -> torch.Tensor:
    """Sample-wise uncertainty from the K-image mixing model (our estimator; the paper's is unpublished).

    For each draw, x_i is mixed (component 0) with K-1 images drawn uniformly from ``references``
    under φ ~ Dir(α·1_K). The mixing model predicts p(mix) = Σ_k w_k p(x_k) with w the realised areas
    (cutmix) or φ (mixup); the score is the total-variation distance ½‖p(mix) − Σ_k w_k p(x_k)‖₁
    averaged over ``draws``. A model that is linear in the mix scores 0; higher = less consistent.

    Args:
        predict_probs: images (n,C,H,W) → class probabilities (n,N); called once on ``x``, once on
            ``references`` and once per draw on a (B,C,H,W) batch of mixes.
        x: images to score (B,C,H,W).
        references: partner images (R,C,H,W) with the same C,H,W.
        K, alpha, mode: as in ``KMixer``.
        draws: number of mixes per image (>= 1).
        generator: random source; the same generator state gives the same scores.

    Returns:
        Scores (B,), in [0, 1] for probability outputs.
    """
    _check(K, alpha, mode)
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be an integer >= 1, got {draws!r}")
    if x.dim() != 4 or references.dim() != 4 or references.shape[1:] != x.shape[1:] or len(references) == 0:
        shapes = f"{tuple(x.shape)}, {tuple(references.shape)}"
        raise ValueError(f"x (B,C,H,W) and references (R>=1,C,H,W) must share C,H,W; got {shapes}")
    B, _, H, W = x.shape
    references = references.to(device=x.device, dtype=x.dtype)
    p_x, p_ref = predict_probs(x).double(), predict_probs(references).double()  # (B,N), (R,N)
    if p_x.dim() != 2 or p_x.shape[0] != B or p_ref.shape != (len(references), p_x.shape[1]):
        raise ValueError(f"predict_probs must map (n,C,H,W) to (n,N); got {p_x.shape}, {p_ref.shape}")
    dev = _rand_device(x, generator)
    total = torch.zeros(B, dtype=torch.float64, device=x.device)
    for _ in range(draws):
        phi = _sample_dirichlet(B, K, alpha, generator, dev)  # (B,K)
        idx = torch.randint(len(references), (K - 1, B), generator=generator, device=dev)  # (K-1,B)
        idx = idx.to(x.device)
        sources = [x] + [references[i] for i in idx]  # K × (B,C,H,W)
        if mode == "cutmix":
            x_mix, w = _paste_nested(sources, _nested_boxes(stick_breaking(phi), H, W, generator))
        else:
            x_mix, w = _blend(sources, phi), phi
        w = w.to(device=x.device, dtype=torch.float64)  # (B,K)
        expected = w[:, :1] * p_x + sum(w[:, k, None] * p_ref[idx[k - 1]] for k in range(1, K))  # (B,N)
        total += 0.5 * (predict_probs(x_mix).double() - expected).abs().sum(1)  # (B,)
    return (total / draws).to(torch.promote_types(x.dtype, torch.float32))


# ----------------------------------------------------------------------------------------------------
# the registered method


@dataclass
class KMixConfig(ClassifierConfig):
    """Classifier recipe + the K-image mixer."""

    K: int = 3  # images per mix (2 = CutMix / Mixup)
    alpha: float = 1.0  # Dirichlet concentration (1 = uniform on the simplex; the paper: 1/3 to 1)
    p: float = 1.0  # probability that a batch is mixed (official --beta)
    mode: str = "cutmix"  # cutmix (DCutMix) | mixup (DMixup)


@register(
    "kmix",
    task="augment",
    config=KMixConfig,
    presets=classifier_presets(
        {"default": {}, "quick": {}, "tiny": {"backbone": "tiny", "crop_pad": 1, "K": 3}}
    ),
    paper=Paper(
        "Observations on K-Image Expansion of Image-Mixing Augmentation",
        "Jeong et al., IEEE Access 2023",
        "https://arxiv.org/abs/2110.04248",
    ),  # fmt: skip
    summary="DCutMix / DMixup: K images per sample, proportions from a Dirichlet prior by stick-breaking",
)
class KMix(Classifier):
    """The classification recipe trained on DCutMix (``mode="cutmix"``) or DMixup mixes."""

    config: KMixConfig

    def __init__(self, config: KMixConfig) -> None:
        super().__init__(config)
        self.mixer = KMixer(config.K, config.alpha, config.p, config.mode, config.num_classes)

    def mix(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mixer(images, labels)  # torch's global RNG: seeded by the trainer, checkpointed
