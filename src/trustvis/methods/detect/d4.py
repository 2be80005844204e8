"""D4: a disjoint ensemble over the DCT spectrum, each member adversarially trained (TRADES, L2).

Paper: Hooda, Mangaokar, Feng, Fawaz, Jha, Prakash. "D4: Detection of Adversarial Diffusion Deepfakes
Using Disjoint Ensembles". WACV 2024, pp. 3812-3822. arXiv 2202.05687.
Official code: nmangaokar/wacv_24_d4 (MIT; read, not copied). Spec: detection.md §2.4.

Every member sees a disjoint part of the per-image log-magnitude DCT spectrum; the parts are dealt
round-robin by saliency, so each member gets an equal share of the useful evidence and an attacker
must move all of them at once::

    x (B,3,S,S) in [0,1]
      └─► T(x) = (log(|DCT2(x)| + 1e-12) − μ) / sqrt(σ²)     per channel; μ, σ² per coefficient (3,S,S)
            ├─► full-spectrum model f(T(x))                   phase 1 (TRADES), then saliency
            └─► member i: f_i(T(x) ⊙ M_i), i = 1..K          phase 2 (TRADES), M_i disjoint, Σ_i M_i = 1
      └─► p(fake) = mean_i softmax(f_i(·))[fake] = score;  logits = log(p / (1 − p))

One method trains all of it in one run of the generic Trainer (``step`` is a persistent buffer)::

    steps [0, saliency_steps)   μ/σ² from the first `stats_images` training images (running merge);
                                TRADES on the full-spectrum model; keep the latest `saliency_images` fakes
    step saliency_steps         saliency = mean over kept fakes of |∇ loss(x_adv)| ⊙ |x_adv − x|, taken
                                w.r.t. the DCT coefficients (x = IDCT(c)); sort descending; the l-th
                                coefficient goes to mask l mod K
    steps [saliency_steps, …)   TRADES on every member (same batch), one Adam over the members

TRADES (Zhang et al. 2019; ``trustvis.attacks.trades``): ``L = CE(f(x), y) + β · KL(f(x_adv) ‖ f(x))``,
x_adv from L2 PGD on the KL (``trustvis.attacks.projected``) with radius ε·sqrt(3·S·S) (ε is the normalised
RMS budget; the paper's ε = 10 at 3×224×224 is 0.0257), step 2ε/steps, generated with the model in eval mode.

Deviations:
  * μ, σ² come from the first ``stats_images`` training images (augmented, real and fake), merged
    batch by batch (Chan et al.'s parallel variance), not from a precomputed file over the whole set;
    the first steps therefore see a slightly moving standardisation. σ² is floored at 1e-8.
  * The saliency gradient and ``|x_adv − x|`` are taken w.r.t. the DCT coefficients (``saliency="dct"``),
    as the paper describes; the released code uses pixel space and applies the pixel map to DCT
    indices (``saliency="pixel"``). ``"random"`` deals a random order (no-saliency ablation).
  * The saliency attack is L2 PGD maximising the cross-entropy (``saliency_attack="pgd"``, ε and
    ``saliency_attack_steps``); the released code runs Carlini-Wagner L2 (c = 1e-3, 1000 Adam steps,
    lr 0.01, κ = 0), available as ``"cw"`` (``trustvis.attacks.cw``) — started from the image (tanh
    space), not from the grey image the released code starts from; images never misclassified keep the
    last iterate.
  * Saliency images are the latest ``saliency_images`` fake *training* images seen in phase 1 (the
    method has no dataset access); the full-spectrum model is trained in the same run for
    ``saliency_steps`` steps instead of a separate 20-epoch run. Coefficients are sorted in descending
    saliency (the released code sorts ascending; the deal is the same up to which mask gets a remainder).
  * PGD starts uniformly in the ε-ball (trustvis' PGD) instead of x + 0.001·N(0, 1).
  * JPEG quality in the augmentation is uniform in ``jpeg_quality`` (the code draws from {30, 100});
    images are centre-cropped (or randomly, with ``crop_size``) to ``image_size``, not resized to 256.
  * The members skip ImageNet normalisation (their input is a standardised spectrum, not an image).
  * Before the masks exist (training stopped in phase 1), ``logits`` falls back to the full model.

Presets (cost measured through the Trainer; a TRADES step costs about attack_steps + 2 forward/backward
passes per model):
  * default: the paper's (ResNet-50 from scratch, K = 4, ε = 0.0257, 10 steps, 224 px), 10k + 10k steps
    of batch 32; on one H100 0.32 s/step in phase 1 and 1.2 s/step in phase 2 (about 4 h in all).
  * quick: SynthBench quick (64 px) on 2 CPU cores: TinyCNN members, K = 4, 3 PGD steps, 250 + 500
    steps of batch 32; 0.25 s/step (phase 1), 0.74 s/step (phase 2), 4.5 s of saliency, ≈ 440 s in all.
  * full: SynthBench full (128 px), ResNet-18 members, 7 PGD steps, 2000 + 4000 steps of batch 64 (GPU).
  * tiny: contract tests; ``saliency_steps = 1`` so that two steps cross the phase boundary.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trustvis.attacks.cw import carlini_wagner_l2
from trustvis.attacks.projected import pgd, rms_to_l2
from trustvis.attacks.trades import trades_loss
from trustvis.config import TrainConfig
from trustvis.data import transforms as T
from trustvis.engine import distributed as dist_utils
from trustvis.methods.base import Batch
from trustvis.methods.detect.base import BinaryDetector, DetectorConfig, detector_presets
from trustvis.nn.backbones import build_classifier
from trustvis.nn.dct import dct_2d, idct_2d
from trustvis.registry import Paper, register

log = logging.getLogger(__name__)

SALIENCY_MODES = ("dct", "pixel", "random")
SALIENCY_ATTACKS = ("pgd", "cw")
_CHUNK = 64  # images per saliency attack batch


@dataclass
class D4Config(DetectorConfig):
    """D4 = the shared detector fields + ensemble, adversarial-training and saliency settings."""

    backbone: str = "resnet50"  # paper: torchvision ResNet-50, random init, fc -> 2
    weights: str = ""
    blur_prob: float = 0.1  # released code: blur and JPEG each with p = 0.1
    jpeg_prob: float = 0.1
    hflip: bool = False  # the released code does not flip
    image_size: int = 224  # side S of the (3,S,S) inputs; masks and μ/σ² have this shape
    num_members: int = 4  # K
    eps: float = 0.0257  # TRADES L2 budget as normalised RMS ‖δ‖₂ / sqrt(3·S·S)
    attack_steps: int = 10  # TRADES inner PGD steps
    trades_beta: float = 1.0
    saliency: str = "dct"  # dct | pixel (released code) | random (ablation)
    saliency_steps: int = 10000  # training steps of the full-spectrum model before the partition
    saliency_images: int = 1000  # fake training images that feed the saliency
    saliency_attack: str = "pgd"  # pgd | cw (released code: Carlini-Wagner L2)
    saliency_attack_steps: int = 10  # PGD steps, or CW Adam steps (1000 in the released code)
    cw_const: float = 1e-3  # CW: weight c of the margin term
    cw_lr: float = 0.01  # CW: Adam learning rate
    stats_images: int = 4096  # training images for the per-coefficient μ/σ²


# ----------------------------------------------------------------------------------------------------
# building blocks


def log_dct_spectrum(x: torch.Tensor) -> torch.Tensor:
    """``log(|DCT2(x)| + 1e-12)`` per channel, in float32 (also under autocast); (B,C,H,W)."""
    with torch.autocast(x.device.type, enabled=False):
        return torch.log(dct_2d(x.float()).abs() + 1e-12)


def round_robin_masks(saliency: torch.Tensor, k: int) -> torch.Tensor:
    """Deal coefficients by descending saliency into ``k`` disjoint masks: rank l -> mask l mod k.

    Args:
        saliency: (C,H,W) saliency per coefficient (ties keep index order).
        k: number of masks.

    Returns:
        (k,C,H,W) float masks in {0,1} whose sum over k is 1 everywhere.
    """
    n = saliency.numel()
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= num_members <= {n} coefficients, got {k}")
    order = torch.argsort(saliency.flatten().float(), descending=True, stable=True)  # (n,)
    owner = torch.empty(n, dtype=torch.long, device=saliency.device)
    owner[order] = torch.arange(n, device=saliency.device) % k  # rank l -> mask l mod k
    masks = F.one_hot(owner, k).T.float()  # (k, n)
    return masks.view(k, *saliency.shape)


def saliency_map(
    logits_fn: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    space: str = "dct",
    attack: str = "pgd",
    steps: int = 10,
    cw_const: float = 1e-3,
    cw_lr: float = 0.01,
) -> torch.Tensor:
    """D4 saliency: ``mean over images of |∇ loss(x_adv)| ⊙ |x_adv − x|``; (C,H,W).

    Args:
        logits_fn: the trained full-spectrum model, images -> class logits (B,2).
        images: (N,C,H,W) in [0,1] (fakes); labels: (N,) their labels.
        eps: absolute L2 radius of the PGD attack (unused by CW).
        space: ``"dct"``: gradient w.r.t. the DCT coefficients c of x = IDCT(c) and ``|c_adv − c|``;
            ``"pixel"``: both in pixel space (the released code).
        attack: ``"pgd"`` (loss = cross-entropy) or ``"cw"`` (loss = the CW objective).
    """
    if space not in ("dct", "pixel"):
        raise ValueError(f"Unknown saliency space {space!r}; choose from ['dct', 'pixel']")
    if attack not in SALIENCY_ATTACKS:
        raise ValueError(f"Unknown saliency attack {attack!r}; choose from {list(SALIENCY_ATTACKS)}")
    total = torch.zeros(images.shape[1:], device=images.device)
    for start in range(0, len(images), _CHUNK):
        x, y = images[start : start + _CHUNK], labels[start : start + _CHUNK]
        if attack == "pgd":

            def loss_fn(xa: torch.Tensor, y=y) -> torch.Tensor:
                return F.cross_entropy(logits_fn(xa).float(), y, reduction="none")

            x_adv = pgd(loss_fn, x, eps, "l2", steps, random_start=True)
        else:
            x_adv, loss_fn = carlini_wagner_l2(logits_fn, x, y, cw_const, steps, cw_lr)
        with torch.enable_grad():
            if space == "dct":
                c_adv = dct_2d(x_adv.float()).requires_grad_(True)  # x = IDCT(c) per channel
                (grad,) = torch.autograd.grad(loss_fn(idct_2d(c_adv)).sum(), c_adv)
                change = (c_adv.detach() - dct_2d(x.float())).abs()
            else:
                xa = x_adv.clone().requires_grad_(True)
                (grad,) = torch.autograd.grad(loss_fn(xa).sum(), xa)
                change = (x_adv - x).abs()
        total += (grad.abs() * change).sum(dim=0)
    return total / max(len(images), 1)


# ----------------------------------------------------------------------------------------------------
# model


def _member_net(cfg: D4Config) -> nn.Module:
    # 2-class softmax head as in the released code; no ImageNet normalisation (input is a spectrum)
    return build_classifier(cfg.backbone, 2, cfg.weights or None).net


class D4Net(nn.Module):
    """Pure model: DCT standardisation, the full-spectrum classifier and K masked members.

    Buffers (persistent, shaped from ``image_size``): ``coef_mean``/``coef_var`` (3,S,S),
    ``stats_count`` (1,), ``masks`` (K,3,S,S), ``masks_ready`` (1,), ``saliency`` (3,S,S).
    """

    def __init__(self, cfg: D4Config) -> None:
        super().__init__()
        shape = (3, cfg.image_size, cfg.image_size)
        self.register_buffer("coef_mean", torch.zeros(shape))
        self.register_buffer("coef_var", torch.ones(shape))
        self.register_buffer("stats_count", torch.zeros(1, dtype=torch.int64))
        self.register_buffer("masks", torch.zeros(cfg.num_members, *shape))
        self.register_buffer("masks_ready", torch.zeros(1, dtype=torch.bool))
        self.register_buffer("saliency", torch.zeros(shape))
        self.full = _member_net(cfg)
        self.members = nn.ModuleList(_member_net(cfg) for _ in range(cfg.num_members))
        self._warned = False

    def check_input(self, x: torch.Tensor) -> None:
        want = tuple(self.coef_mean.shape)
        if x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(
                f"D4 was built for images of shape (B,{want[0]},{want[1]},{want[2]}) (model.image_size="
                f"{want[1]}); got {tuple(x.shape)}. Crop/resize the data or set model.image_size."
            )

    def spectrum(self, x: torch.Tensor) -> torch.Tensor:
        """T(x): standardised log-magnitude DCT, (B,3,S,S) float32."""
        self.check_input(x)
        return (log_dct_spectrum(x) - self.coef_mean) / self.coef_var.clamp_min(1e-8).sqrt()

    @torch.no_grad()
    def update_stats(self, x: torch.Tensor, limit: int) -> None:
        """Merge the batch into μ/σ² (Chan et al.'s parallel variance) until ``limit`` images are seen."""
        n_old = int(self.stats_count)
        take = min(len(x), limit - n_old)
        if take <= 0:
            return
        s = log_dct_spectrum(x[:take]).double()  # (b,3,S,S)
        mean_b, var_b = s.mean(dim=0), s.var(dim=0, unbiased=False)
        n = n_old + take
        delta = mean_b - self.coef_mean.double()
        mean = self.coef_mean.double() + delta * (take / n)
        m2 = self.coef_var.double() * n_old + var_b * take + delta.pow(2) * (n_old * take / n)
        self.coef_mean.copy_(mean)
        self.coef_var.copy_(m2 / n)
        self.stats_count.fill_(n)

    def set_masks(self, saliency: torch.Tensor) -> None:
        with torch.no_grad():
            self.saliency.copy_(saliency)
            self.masks.copy_(round_robin_masks(saliency, len(self.members)))
            self.masks_ready.fill_(True)

    def full_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B,2) of the full-spectrum model."""
        return self.full(self.spectrum(x))

    def member_logits(self, x: torch.Tensor, i: int, z: torch.Tensor | None = None) -> torch.Tensor:
        """Class logits (B,2) of member ``i``; ``z`` = precomputed :meth:`spectrum` of ``x``."""
        z = self.spectrum(x) if z is None else z
        return self.members[i](z * self.masks[i])

    def ensemble_log_probs(self, x: torch.Tensor, ready: bool | None = None) -> torch.Tensor:
        """log of the mean member softmax (B,2), computed stably; the full model's before the masks exist
        (``ready``: whether they do, when the caller knows it; None reads the ``masks_ready`` buffer)."""
        z = self.spectrum(x)
        if not (bool(self.masks_ready) if ready is None else ready):
            if not self._warned:
                log.warning("D4 masks are not built yet (training stopped in phase 1); using the full model")
                self._warned = True
            return F.log_softmax(self.full(z).float(), dim=1)
        logps = torch.stack(
            [F.log_softmax(self.member_logits(x, i, z).float(), dim=1) for i in range(len(self.members))]
        )  # (K,B,2)
        return torch.logsumexp(logps, dim=0) - math.log(len(self.members))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ensemble_log_probs(x)


class _D4Graph(nn.Module):
    """D4's ``predict`` for export: image (N,3,S,S) in [0,1] -> (score (N,), logits (N,)); the ensemble, or the
    full model when the run stopped before the masks were built (decided when the graph is made)."""

    def __init__(self, net: D4Net) -> None:
        super().__init__()
        self.net = net
        self.ready = bool(net.masks_ready)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logp = self.net.ensemble_log_probs(image, ready=self.ready).float()  # (N,2)
        return logp[:, 1].exp(), logp[:, 1] - logp[:, 0]


# ----------------------------------------------------------------------------------------------------
# method


PRESETS = {
    "default": {},
    # SynthBench quick (64 px, 2 CPU cores): tiny members, 3-step TRADES; D4_TRAIN holds the budget
    "quick": {
        "backbone": "tiny",
        "image_size": 64,
        "attack_steps": 3,
        "saliency_steps": 250,
        "saliency_images": 256,
        "stats_images": 512,
    },
    "full": {
        "backbone": "resnet18",
        "image_size": 128,
        "attack_steps": 7,
        "saliency_steps": 2000,
        "saliency_images": 1000,
        "stats_images": 4096,
    },
    "tiny": {
        "backbone": "tiny",
        "image_size": 32,
        "num_members": 2,
        "attack_steps": 1,
        "saliency_steps": 1,  # the 2-step contract test crosses the phase boundary
        "saliency_images": 4,
        "saliency_attack_steps": 1,
        "stats_images": 4,
    },
}


D4_TRAIN = {
    "default": {"lr": 1e-4, "batch_size": 32, "steps": 20000},
    "quick": {"lr": 1e-3, "batch_size": 32, "steps": 750},
    "full": {"lr": 5e-4, "batch_size": 64, "steps": 6000, "num_workers": 4},
    "tiny": {"lr": 1e-3, "batch_size": 4, "steps": 2},
}


@register(
    "d4",
    task="detect",
    config=D4Config,
    presets=detector_presets(PRESETS, D4_TRAIN),
    paper=Paper(
        "D4: Detection of Adversarial Diffusion Deepfakes Using Disjoint Ensembles",
        "Hooda et al., WACV 2024",
        "https://arxiv.org/abs/2202.05687",
    ),
    summary="disjoint ensemble over saliency-dealt DCT coefficients, each member TRADES-trained",
)
class D4(BinaryDetector):
    """D4 detector (seed method). ``logits``/``predict`` are the ensemble's; ``*_full`` the full model's."""

    manual_optimization = True  # phase 1 steps "full", phase 2 "members" (no unused-parameter DDP issue)

    config: D4Config

    def __init__(self, config: D4Config) -> None:
        super().__init__(config)
        c = config
        checks = [
            (
                c.saliency in SALIENCY_MODES,
                f"Unknown saliency {c.saliency!r}; choose from {list(SALIENCY_MODES)}",
            ),
            (
                c.saliency_attack in SALIENCY_ATTACKS,
                f"Unknown saliency_attack {c.saliency_attack!r}; choose from {list(SALIENCY_ATTACKS)}",
            ),
            (c.image_size >= 2, f"image_size must be >= 2, got {c.image_size}"),
            (
                1 <= c.num_members <= 3 * c.image_size**2,
                f"num_members must be in [1, {3 * c.image_size**2}], got {c.num_members}",
            ),
            (
                c.crop_size in (0, c.image_size),
                f"crop_size must be 0 or image_size ({c.image_size}), got {c.crop_size}",
            ),
            (
                c.eps >= 0 and c.attack_steps >= 0,
                f"eps and attack_steps must be >= 0, got {c.eps}, {c.attack_steps}",
            ),
            (c.saliency_steps >= 0, f"saliency_steps must be >= 0, got {c.saliency_steps}"),
            (c.saliency_images >= 1 and c.stats_images >= 1, "saliency_images and stats_images must be >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)
        self.model = D4Net(config)
        self.register_buffer("step", torch.zeros(1, dtype=torch.int64))  # training steps taken
        self._fakes: list[torch.Tensor] = []  # uint8 (n,3,S,S) on CPU: latest fakes of phase 1

    # --- data -----------------------------------------------------------------------------------

    def backbone_heads(self) -> dict[str, list[str]]:
        """The full-spectrum network and each member (torchvision-style nets without a wrapper)."""
        from trustvis.nn.backbones import HEAD_NAMES

        head = HEAD_NAMES[self.config.backbone]
        nets = ["model.full", *[f"model.members.{i}" for i in range(len(self.model.members))]]
        return {n: [f"{n}.{head}"] for n in nets}

    def make_transform(self, train: bool) -> Callable[[np.ndarray], torch.Tensor]:
        """Train: Blur+JPEG, crop to ``image_size`` (random if ``crop_size`` else centre), flip; eval:
        centre crop. Images smaller than ``image_size`` are enlarged first. Picklable."""
        cfg = self.config
        steps: list[Callable] = []
        if train and (aug := self.blur_jpeg()) is not None:
            steps.append(aug)
        crop = T.random_crop if train and cfg.crop_size else T.center_crop
        steps.append(functools.partial(crop, size=cfg.image_size))
        if train and cfg.hflip:
            steps.append(T.random_hflip)
        return T.Compose([*steps, T.to_tensor])

    # --- inference ------------------------------------------------------------------------------
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """(B,3,S,S) in [0,1] -> (B,) log-odds of the ensemble's mean softmax; differentiable."""
        logp = self.model.ensemble_log_probs(images)  # (B,2)
        return logp[:, 1] - logp[:, 0]

    def logits_full(self, images: torch.Tensor) -> torch.Tensor:
        """(B,) log-odds of the single adversarially trained full-spectrum model."""
        z = self.model.full_logits(images).float()
        return z[:, 1] - z[:, 0]

    @torch.no_grad()
    def predict(self, batch: Batch) -> dict[str, torch.Tensor]:
        logp = self.model.ensemble_log_probs(batch["image"]).float()
        return {"score": logp[:, 1].exp(), "logits": logp[:, 1] - logp[:, 0]}

    def export_module(self) -> nn.Module:
        """:meth:`predict` as a graph (``trustvis export``). ``torch.export`` cannot branch on the value of the
        ``masks_ready`` buffer, so whether the ensemble or the full model answers is read here, once."""
        return _D4Graph(self.model)

    @torch.no_grad()
    def predict_full(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Like :meth:`predict`, for the full-spectrum model (the adversarial-training baseline)."""
        logits = self.logits_full(batch["image"])
        return {"score": torch.sigmoid(logits), "logits": logits}

    # --- training -------------------------------------------------------------------------------
    def configure_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        return {
            "full": self.run_optimizer(self.model.full.parameters(), train),
            "members": self.run_optimizer(self.model.members.parameters(), train),
        }

    def _eps_abs(self) -> float:
        return rms_to_l2(self.config.eps, tuple(self.model.coef_mean.shape))

    def _keep_fakes(self, x: torch.Tensor, y: torch.Tensor) -> None:
        fakes = x[y == 1].detach()
        if len(fakes):
            self._fakes.append(fakes.mul(255).round().clamp(0, 255).to(torch.uint8).cpu())
        n, limit = sum(len(f) for f in self._fakes), self.config.saliency_images
        while self._fakes and n - len(self._fakes[0]) >= limit:
            n -= len(self._fakes.pop(0))

    def build_masks(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Saliency of the full-spectrum model on the kept fakes -> round-robin masks (phase 1 -> 2)."""
        cfg, net = self.config, self.model
        if cfg.saliency == "random":
            sal = torch.rand(net.saliency.shape).to(net.saliency.device)
        else:
            kept = [f.to(x.device).float().div(255) for f in self._fakes]
            if not kept:  # resumed at the boundary or saliency_steps == 0: use this batch
                kept = [x[y == 1].detach()] if (y == 1).any() else [x.detach()]
            images = torch.cat(kept)[-cfg.saliency_images :]
            log.info(
                "D4: computing %s saliency on %d images (%s)", cfg.saliency, len(images), cfg.saliency_attack
            )
            was_training = net.full.training
            net.full.eval()
            sal = saliency_map(
                net.full_logits,
                images,
                torch.ones(len(images), dtype=torch.long, device=images.device),
                eps=self._eps_abs(),
                space=cfg.saliency,
                attack=cfg.saliency_attack,
                steps=cfg.saliency_attack_steps,
                cw_const=cfg.cw_const,
                cw_lr=cfg.cw_lr,
            )
            net.full.train(was_training)
        if dist_utils.world_size() > 1:  # every process must hold the same partition
            torch.distributed.all_reduce(sal)  # the mean saliency, identical on every process
            sal /= dist_utils.world_size()
        net.set_masks(sal)
        self._fakes = []

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        cfg, net = self.config, self.model
        x, y = batch["image"], batch["label"].long()
        net.check_input(x)
        if int(net.stats_count) < cfg.stats_images:
            net.update_stats(x, cfg.stats_images)
            if dist_utils.world_size() > 1:
                for buf in (net.coef_mean, net.coef_var, net.stats_count):
                    torch.distributed.broadcast(buf, src=0)
        eps = self._eps_abs()
        if not bool(net.masks_ready) and int(self.step) >= cfg.saliency_steps:
            self.build_masks(x, y)

        if not bool(net.masks_ready):  # phase 1: the full-spectrum model
            self._keep_fakes(x, y)
            loss, parts = trades_loss(
                net.full_logits, x, y, eps, cfg.attack_steps, cfg.trades_beta, module=net.full
            )
            self.optimizer_step("full", loss)
            phase = 1.0
        else:  # phase 2: every member on its mask, same batch
            z = net.spectrum(x)
            losses, nats, robs = [], [], []
            for i, member in enumerate(net.members):

                def member_logits(xa: torch.Tensor, i=i, z=z) -> torch.Tensor:
                    return net.member_logits(xa, i, z if xa is x else None)

                loss_i, parts = trades_loss(
                    member_logits, x, y, eps, cfg.attack_steps, cfg.trades_beta, module=member
                )
                losses.append(loss_i)
                nats.append(parts["loss_nat"].detach())
                robs.append(parts["loss_rob"].detach())
            loss = torch.stack(losses).sum()
            self.optimizer_step("members", loss)
            parts = {"loss_nat": torch.stack(nats).mean(), "loss_rob": torch.stack(robs).mean()}
            phase = 2.0
        self.step += 1
        return {
            "loss": loss.detach(),
            "loss_nat": parts["loss_nat"].detach(),
            "loss_rob": parts["loss_rob"].detach(),
            "phase": torch.tensor(phase),
        }
