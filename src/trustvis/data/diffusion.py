"""A small denoising diffusion model for SynthBench v2: a U-Net trained on real patches (DDPM), sampled in a few
deterministic DDIM steps, and an inpainting sampler that regenerates part of a real patch.

Papers: Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020, arXiv 2006.11239 (training:
ε-prediction, uniform t, linear β from 1e-4 to 0.02 over T = 1000); Song, Meng, Ermon, "Denoising Diffusion
Implicit Models", ICLR 2021, arXiv 2010.02502 (sampling: η = 0 on a sub-sequence of the T steps); Lugmayr et al.,
"RePaint", CVPR 2022, arXiv 2201.09865 (inpainting: the known region replaced by the real one, noised to the
current step, at every step).

::

    x0 (B,3,S,S) in [0,1] ──► x = 2·x0 − 1 ──► x_t = √ᾱ_t·x + √(1−ᾱ_t)·ε,  t ~ U{0..T−1}
    TinyUNet(x_t, t) ──► ε̂ (B,3,S,S);  loss = mean (ε̂ − ε)²                      (train_ddpm)
    sampling:   x_T ~ N(0, I) ──► for t in a few steps, T−1 … 0:
                x̂0 = (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t ──► x_prev = √ᾱ_prev·x̂0 + √(1−ᾱ_prev)·ε̂      (ddim_sample)
    inpainting: the same, and after each step x_prev ← m·x_prev + (1−m)·(√ᾱ_prev·x_real + √(1−ᾱ_prev)·ε')
                (m = 1 where generated); the final image keeps the real pixels outside the mask  (ddim_inpaint)

TinyUNet: conv3x3 in, then per level two residual blocks (GroupNorm, SiLU, conv3x3, time embedding added)
and a 2x average-pool down; the way up mirrors it with nearest x2 + conv3x3 and skip concatenations; a
sinusoidal time embedding through a two-layer MLP.

Deviations / choices:
  * CPU scale: widths 16-64, 2-3 levels, no attention layers, a few thousand training steps at most (the paper's
    CIFAR model has 35.7 M parameters and 800 k steps); samples are texture-like, the diffusion family's traces
    (its denoiser's up-sampling, the sampler's smoothing) are what the detectors are after;
  * x̂0 is clipped to [−1, 1] at each DDIM step (as the reference implementations do);
  * inpainting without RePaint's resampling jumps (one pass), on a rectangle or half of the patch.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from trustvis.data.generators import _batch, _check_train_args, _device, _summary, to_tensor, to_uint8


def linear_alpha_bars(steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """ᾱ_t = Π_{s≤t} (1 − β_s) for DDPM's linear β schedule: (steps,) float64, decreasing from ~1."""
    betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, 0)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer steps ``t`` (B,) -> (B, dim) (the Transformer's, as in DDPM)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / max(half, 1))
    args = t.float()[:, None] * freqs.to(t.device)[None]
    return torch.cat([torch.sin(args), torch.cos(args)], 1)  # (B, dim)


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, tdim: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(min(8, cin), cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(tdim, cout)
        self.norm2, self.conv2 = nn.GroupNorm(min(8, cout), cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.temb(temb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class TinyUNet(nn.Module):
    """ε-predictor ``(x_t (B,3,S,S) in [−1,1], t (B,) int) -> ε̂ (B,3,S,S)``.

    Args:
        size: patch side (divisible by ``2**(levels−1)``).
        width: channels at full resolution (doubled per level, capped at 128).
        levels: resolutions (2 or 3 for 32-128 px patches).
        steps: diffusion steps T of the schedule it is trained with.
    """

    def __init__(self, size: int = 64, width: int = 32, levels: int = 3, steps: int = 1000) -> None:
        super().__init__()
        if levels < 1 or size % 2 ** (levels - 1):
            raise ValueError(f"size {size} must be divisible by 2**(levels-1) = {2 ** (levels - 1)}")
        self.size, self.steps = size, steps
        self.register_buffer("alpha_bars", linear_alpha_bars(steps).float(), persistent=False)
        tdim, widths = 4 * width, [min(width * 2**i, 128) for i in range(levels)]
        self.tdim = tdim
        self.temb = nn.Sequential(nn.Linear(width, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.inp = nn.Conv2d(3, widths[0], 3, padding=1)
        self.down = nn.ModuleList()
        c = widths[0]
        for w in widths:
            self.down.append(nn.ModuleList([_ResBlock(c, w, tdim), _ResBlock(w, w, tdim)]))
            c = w
        self.mid = _ResBlock(c, c, tdim)
        self.up = nn.ModuleList()
        for i in reversed(range(levels)):
            w = widths[i]
            self.up.append(nn.ModuleList([_ResBlock(c + w, w, tdim), _ResBlock(w, w, tdim)]))
            c = widths[i - 1] if i > 0 else w  # up_convs bring each level to the next one's width
        self.up_convs = nn.ModuleList(
            nn.Conv2d(widths[i], widths[i - 1], 3, padding=1) for i in reversed(range(1, levels))
        )
        self.out = nn.Sequential(nn.GroupNorm(min(8, c), c), nn.SiLU(), nn.Conv2d(c, 3, 3, padding=1))
        self.width = width

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.temb(timestep_embedding(t, self.width))  # (B, tdim)
        h, skips = self.inp(x), []
        for i, (b1, b2) in enumerate(self.down):
            h = b2(b1(h, temb), temb)
            skips.append(h)
            if i < len(self.down) - 1:
                h = F.avg_pool2d(h, 2)
        h = self.mid(h, temb)
        for i, (b1, b2) in enumerate(self.up):
            h = b2(b1(torch.cat([h, skips.pop()], 1), temb), temb)
            if i < len(self.up) - 1:
                h = self.up_convs[i](F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.out(h)


def q_sample(model: TinyUNet, x: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Forward noising ``x_t = √ᾱ_t·x + √(1−ᾱ_t)·ε`` of ``x`` (B,3,S,S) in [−1,1] at steps ``t`` (B,)."""
    ab = model.alpha_bars.to(x.device)[t][:, None, None, None]
    return ab.sqrt() * x + (1 - ab).sqrt() * noise


def train_ddpm(
    model: TinyUNet,
    patches_uint8: np.ndarray,
    steps: int = 1000,
    batch_size: int = 32,
    lr: float = 2e-4,
    seed: int = 0,
    progress: bool = True,
    desc: str = "train ddpm",
) -> dict:
    """Train ``model`` (in place) to predict the noise of real patches uint8 ``(N, S, S, 3)`` at uniform steps;
    deterministic given ``seed``. Returns the loss summary of :func:`~trustvis.data.generators.train_autoencoder`."""
    data = _check_train_args(patches_uint8, steps, batch_size)
    if data.shape[-1] != model.size:
        raise ValueError(f"patches are {data.shape[-1]} px, the model makes {model.size} px")
    torch.manual_seed(seed)
    gen, device = torch.Generator().manual_seed(seed), _device(model)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history, t0 = [], time.perf_counter()
    model.train()
    for _ in tqdm(range(steps), desc=desc, disable=not progress, leave=False):
        x = _batch(data, batch_size, gen, device) * 2 - 1  # (B,3,S,S) in [−1,1]
        t = torch.randint(0, model.steps, (x.shape[0],), generator=gen).to(device)
        noise = torch.randn(x.shape, generator=gen).to(device)
        loss = F.mse_loss(model(q_sample(model, x, t, noise), t), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
    return _summary(history, time.perf_counter() - t0)


def ddim_steps(total: int, n: int) -> list[int]:
    """``n`` evenly spaced steps of ``0..total−1``, decreasing, starting at ``total − 1`` and ending at 0."""
    if not 1 <= n <= total:
        raise ValueError(f"sampling steps must be in 1..{total}, got {n}")
    return sorted({round(i * (total - 1) / max(n - 1, 1)) for i in range(n)}, reverse=True)


@torch.no_grad()
def _ddim(
    model: nn.Module, x: torch.Tensor, steps: list[int], alpha_bars: torch.Tensor, known=None
) -> torch.Tensor:
    """DDIM (η = 0) from ``x`` at ``steps[0]`` down to step 0 and x̂0; ``known = (x_real, mask, gen)`` replaces the
    unmasked region at every step (inpainting). ``model(x_t, t)`` predicts ε."""
    for i, t in enumerate(steps):
        ab = alpha_bars[t]
        eps = model(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long))
        x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1, 1)
        ab_prev = alpha_bars[steps[i + 1]] if i + 1 < len(steps) else None
        x = x0 if ab_prev is None else ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps
        if known is not None:
            real, mask, gen = known
            if ab_prev is None:
                x = mask * x + (1 - mask) * real
            else:
                noise = torch.randn(x.shape, generator=gen).to(x.device)
                x = mask * x + (1 - mask) * (ab_prev.sqrt() * real + (1 - ab_prev).sqrt() * noise)
    return x


@torch.no_grad()
def ddim_sample(
    model: TinyUNet, n: int, sampling_steps: int = 20, seed: int = 0, batch_size: int = 64
) -> np.ndarray:
    """``n`` samples uint8 ``(n, S, S, 3)`` in ``sampling_steps`` DDIM steps (η = 0) from seeded noise."""
    gen, device = torch.Generator().manual_seed(seed), _device(model)
    model.eval()
    steps, ab = ddim_steps(model.steps, sampling_steps), model.alpha_bars.to(device)
    outs = []
    for i in range(0, n, batch_size):
        x = torch.randn(min(batch_size, n - i), 3, model.size, model.size, generator=gen).to(device)
        outs.append(to_uint8((_ddim(model, x, steps, ab) + 1) / 2))
    return np.concatenate(outs) if outs else np.zeros((0, model.size, model.size, 3), np.uint8)


def inpaint_masks(
    n: int, size: int, seed: int = 0, min_share: float = 0.25, max_share: float = 0.5
) -> np.ndarray:
    """Seeded rectangles to regenerate, float32 ``(n, 1, size, size)``, 1 inside: each covers ``min_share`` to
    ``max_share`` of the patch's area (sides drawn so), at a random place."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, 1, size, size), np.float32)
    for m in masks:
        share = rng.uniform(min_share, max_share)
        h = int(np.clip(round(size * math.sqrt(share) * rng.uniform(0.75, 1.33)), 1, size))
        w = int(np.clip(round(share * size * size / h), 1, size))
        y, x = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
        m[0, y : y + h, x : x + w] = 1.0
    return masks


@torch.no_grad()
def ddim_inpaint(
    model: TinyUNet, reals_uint8: np.ndarray, masks: np.ndarray, sampling_steps: int = 20, seed: int = 0,
    batch_size: int = 64,
) -> np.ndarray:  # fmt: skip
    """Regenerate the masked part (``masks`` (n,1,S,S), 1 = generated) of each real patch uint8 ``(n, S, S, 3)``;
    the pixels outside the mask stay the real ones. Returns uint8 ``(n, S, S, 3)``."""
    if len(masks) != len(reals_uint8):
        raise ValueError(f"{len(masks)} masks for {len(reals_uint8)} patches")
    gen, device = torch.Generator().manual_seed(seed), _device(model)
    model.eval()
    steps, ab = ddim_steps(model.steps, sampling_steps), model.alpha_bars.to(device)
    outs = []
    for i in range(0, len(reals_uint8), batch_size):
        real = (to_tensor(reals_uint8[i : i + batch_size]) * 2 - 1).to(device)  # (b,3,S,S)
        mask = torch.from_numpy(masks[i : i + batch_size]).to(device)
        x = torch.randn(real.shape, generator=gen).to(device)
        x = mask * x + (1 - mask) * (ab[steps[0]].sqrt() * real + (1 - ab[steps[0]]).sqrt() * x)
        out = _ddim(model, x, steps, ab, known=(real, mask, gen))
        outs.append(to_uint8((out + 1) / 2))
    return np.concatenate(outs) if outs else np.zeros_like(reals_uint8)
