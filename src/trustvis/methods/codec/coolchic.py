"""COOL-CHIC: an image codec that overfits a tiny decoder and hierarchical latents to one image (baseline).

Paper: Ladune, Philippe, Henry, Clare, Leguay. "COOL-CHIC: Coordinate-based Low Complexity Hierarchical
Image Codec". ICCV 2023. arXiv 2212.05458. Official code: Orange-OpenSource/Cool-Chic (v1, 47d9ebf).
Spec: ``shared/specs/codec.md`` §2. The machinery here also serves ``eqlinr`` (its own file).

    image x (3,H,W) in [0,1] ──► overfit, per image:
      latents y_i (⌈H/2^i⌉, ⌈W/2^i⌉), i < 7, zero-initialised ──► Q (noise | SGA | STE) ──► ŷ_i
      ŷ_i ──► bicubic up-sampling to H×W ──► concat (7,H·W) ──► per-pixel synthesis MLP 7-12-12-3, ReLU
          ──► [LEM: residual 3×3 convs, eqlinr only] ──► x̂
      ŷ_i ──► ARM MLP on 12 causal neighbours ──► (μ, s) ──► rate R = −Σ log2 p(ŷ)
      loss = MSE(x, x̂) + λ·R / (H·W)                               (Adam, gradient-norm clip)
    then: round latents; quantise synthesis / LEM / ARM weights on a 2^−k lattice (k searched per module
    for the best MSE + λ·rate); range-code parameters and latents (constriction) ──► .tvc bytes
    decode: header ──► parameters ──► latents wavefront by wavefront (integer ARM) ──► synthesis ──► x̂

Deviations / documented choices:
  * schedule: a fixed iteration budget instead of v1's ReduceLROnPlateau + stopping rule — cosine decay of
    the learning rate over the first ``1 − ste_fraction`` of the iterations with the training proxy, then
    ``ste_fraction`` of straight-through rounding at ``ste_lr`` keeping the best hard-quantised loss
    (C3's two phases); v1 suggests up to 1e6 iterations, a CPU budget is a few thousand;
  * the ARM is evaluated in fixed point for coding (:mod:`~trustvis.methods.codec.entropy`) instead of
    v1's quantised (μ, σ) — exact across batch shapes; the decoder is float (same machine: bit-exact);
  * parameters are coded with a per-tensor quantised Laplace (scale in the header), steps 2^−k with k
    searched in :data:`K_CANDIDATES` (v1: Laplace, steps ``10**linspace(−5,0,11)``);
  * up-sampling: each grid straight to H×W with PyTorch's bicubic (v1: bicubic, coarse to fine);
  * the latents learn 10x faster than the networks (``latent_lr_scale``; v1: one lr 1e-2, C3: one lr): at a
    CPU budget of ~1,000 iterations the zero-initialised latents otherwise barely leave 0. Chosen on a
    held-out photo (scikit-image astronaut, 256x256, not in the evaluation set; 800 iterations, λ=1e-3,
    PSNR minus JPEG's PSNR at the same bpp): scale 1 −4.7 dB, 5 −1.27, 10 −1.23, 15 −1.25, 30 −2.0;
  * the synthesis output is not clamped while training (gradients), clamped to [0,1] and rounded to
    8 bits at decoding; rates count the real file bytes, header included.

Python use: ``registry.build("eqlinr", lmbda=1e-3).encode(img, iterations=500)`` — ``encode`` takes the
iteration budget for that call (default: the config's ``iterations``) and shows a tqdm bar by default, since
it trains for minutes (``progress=False``: silent; ``predict`` encodes silently). ``stats["iterations"]``
counts the steps taken.
"""

from __future__ import annotations

import logging
import math
import numbers
import time
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trustvis.methods.base import Batch, Method
from trustvis.methods.codec import bitstream as bs
from trustvis.methods.codec.entropy import (
    ARM,
    DISTRIBUTIONS,
    arm_to_integers,
    bits,
    causal_offsets,
    gather_context,
    integer_arm,
    scale_from_log,
)
from trustvis.methods.codec.quantize import quantize, sga_temperature
from trustvis.registry import Paper, register

log = logging.getLogger(__name__)

K_CANDIDATES = tuple(range(3, 15))  # parameter quantisation steps 2^-k tried per module
#: --quality 1 (smallest files) .. 8 (best quality) -> lambda (COOL-CHIC's range: 2e-2 .. 1e-4)
QUALITY_LAMBDAS = (2e-2, 1e-2, 5e-3, 2e-3, 1e-3, 5e-4, 2e-4, 1e-4)
PROXIES = ("noise", "sga")
#: Largest dense up-sampling matrix (entries: 64 MiB of float32, e.g. 4096x4096); beyond it the bicubic
#: weights are applied as 4 taps per sample. Sides up to 4096 keep the dense matrices (and their numbers).
DENSE_UPSAMPLING_LIMIT = 2**24


@dataclass
class CoolChicConfig:
    """Settings of one overfitted codec (architecture, rate-distortion trade-off, training budget)."""

    lmbda: float = 1e-3  # rate weight: loss = MSE + lmbda * bits per pixel
    iterations: int = 3000
    lr: float = 1e-2
    latent_lr_scale: float = 10.0  # the latents' learning rate is lr * latent_lr_scale (see Deviations)
    ste_fraction: float = 0.1  # last share of the iterations: straight-through rounding at ste_lr
    ste_lr: float = 1e-4
    grad_clip: float = 10.0
    eval_every: int = 25  # STE phase: how often the hard-quantised loss is checked for the best state
    n_grids: int = 7
    synthesis: list[int] = field(default_factory=lambda: [12, 12])
    arm_hidden: list[int] = field(default_factory=lambda: [12, 12])
    arm_rowcol: int = 2  # context: rows/cols of causal neighbours (2 -> 12 neighbours)
    distribution: str = "laplace"  # laplace | gaussian
    lem_layers: int = 0  # residual 3x3 conv layers after the synthesis (EQLINR's LEM)
    proxy: str = "noise"  # main-phase quantisation proxy: noise | sga (sga starts after noise_fraction)
    noise_fraction: float = 1.0  # share of the main phase with uniform noise before SGA
    tau_max: float = 0.5
    tau_min: float = 0.05
    tau_hold: float = 0.1
    temp_reg: float = 0.0  # dynamic temperature regularisation weight (eqlinr)
    seed: int = 0


def validate_config(cfg: CoolChicConfig) -> None:
    """Raise ``ValueError`` naming the field for settings that cannot give a correct encode (checked before
    any work: no silent default, no failure after the training)."""

    def need(ok: bool, name: str, rule: str) -> None:
        if not ok:
            raise ValueError(f"{name} must be {rule}, got {getattr(cfg, name)!r}")

    def finite(name: str) -> bool:
        return isinstance(getattr(cfg, name), int | float) and math.isfinite(getattr(cfg, name))

    if cfg.distribution not in DISTRIBUTIONS:
        raise ValueError(f"Unknown distribution {cfg.distribution!r}; choose from {list(DISTRIBUTIONS)}")
    if cfg.proxy not in PROXIES:
        raise ValueError(f"Unknown proxy {cfg.proxy!r}; choose from {list(PROXIES)}")
    need(cfg.iterations >= 1, "iterations", ">= 1")
    need(cfg.eval_every >= 1, "eval_every", ">= 1")
    for name in ("lmbda", "lr", "latent_lr_scale", "ste_lr", "tau_max", "tau_min"):
        need(finite(name) and getattr(cfg, name) > 0, name, "a finite number > 0")
    for name in ("grad_clip", "temp_reg"):
        need(finite(name) and getattr(cfg, name) >= 0, name, "a finite number >= 0")
    for name in ("ste_fraction", "noise_fraction", "tau_hold"):
        need(finite(name) and 0 <= getattr(cfg, name) <= 1, name, "in [0, 1]")
    need(cfg.tau_min <= cfg.tau_max, "tau_min", f"<= tau_max ({cfg.tau_max})")
    bs.check_architecture(
        cfg.n_grids, tuple(cfg.synthesis), cfg.lem_layers, cfg.arm_rowcol, tuple(cfg.arm_hidden)
    )


def lambda_for_quality(quality: int) -> float:
    """``--quality`` (1..8) -> λ."""
    if not 1 <= int(quality) <= len(QUALITY_LAMBDAS):
        raise ValueError(f"quality must be in 1..{len(QUALITY_LAMBDAS)}, got {quality}")
    return QUALITY_LAMBDAS[int(quality) - 1]


class OverfitCodec(nn.Module):
    """Latent grids + up-sampling + synthesis MLP (+ LEM) + ARM for one H×W image (pure model)."""

    def __init__(
        self,
        height: int,
        width: int,
        n_grids: int = 7,
        synthesis: tuple[int, ...] = (12, 12),
        lem_layers: int = 0,
        arm_rowcol: int = 2,
        arm_hidden: tuple[int, ...] = (12, 12),
    ) -> None:
        super().__init__()
        self.height, self.width = int(height), int(width)
        self.arm_rowcol = int(arm_rowcol)
        self.offsets = causal_offsets(self.arm_rowcol)
        self.latents = nn.ParameterList(
            nn.Parameter(torch.zeros(math.ceil(height / 2**i), math.ceil(width / 2**i)))
            for i in range(n_grids)
        )
        dims = [n_grids, *synthesis, 3]
        self.synthesis = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))  # per pixel
        for i, g in enumerate(self.latents):  # bicubic up-sampling: two fixed operators per grid
            for axis, n, out in (("h", g.shape[0], self.height), ("w", g.shape[1], self.width)):
                if i == 0:  # full resolution: the identity, applied as nothing
                    weights, idx = None, None
                elif out * n <= DENSE_UPSAMPLING_LIMIT:  # a dense (out, n) matrix
                    weights, idx = _upsampling_matrix(n, 2**i, out), None
                else:  # banded: 4 taps per output sample, O(out) memory
                    idx, weights = _upsampling_taps(n, 2**i, out)
                self.register_buffer(f"up_{axis}{i}", weights, persistent=False)
                self.register_buffer(f"up_{axis}{i}_idx", idx, persistent=False)
        self.lem = nn.ModuleList(
            nn.Conv2d(3, 3, 3, padding=1, padding_mode="replicate") for _ in range(lem_layers)
        )
        for conv in self.lem:  # the LEM starts as the identity
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        self.arm = ARM(len(self.offsets), tuple(arm_hidden))

    def coded_modules(self) -> list[tuple[str, list[nn.Module]]]:
        """(name, layers) of the parameterised modules in bitstream order."""
        return [("synth", list(self.synthesis)), ("lem", list(self.lem)), ("arm", self.arm.layers())]

    def upsample(self, grids: list[torch.Tensor]) -> torch.Tensor:
        """Latent grids [(h_i, w_i)] -> (L, H·W): grid i bicubically up-sampled by 2^i, cropped to H×W.

        Grid 0 is at full resolution and used as it is. Bicubic interpolation is separable, so the others are
        computed as ``U_h · g · U_wᵀ`` with the matrices of
        :func:`_upsampling_matrix` (exactly PyTorch's bicubic weights; far faster to differentiate on a CPU
        than ``F.interpolate``). Where a dense matrix would exceed :data:`DENSE_UPSAMPLING_LIMIT` entries
        (sides above 4096), the same weights are applied as 4 taps per output sample
        (:func:`_upsampling_taps`): memory O(out) instead of O(out · n).
        """
        ups = [grids[0]]  # grid 0 is at full resolution
        for i, g in enumerate(grids[1:], 1):
            u, idx = getattr(self, f"up_h{i}"), getattr(self, f"up_h{i}_idx")
            g = u @ g if idx is None else (u[:, :, None] * g[idx]).sum(1)  # (H, w_i)
            u, idx = getattr(self, f"up_w{i}"), getattr(self, f"up_w{i}_idx")
            ups.append(g @ u.T if idx is None else (g[:, idx] * u).sum(-1))  # (H, W)
        return torch.stack(ups).reshape(len(grids), self.height * self.width)

    def synthesize(self, grids: list[torch.Tensor]) -> torch.Tensor:
        """Latent grids -> image (1,3,H,W) before clamping."""
        h = self.upsample(grids)  # (L, HW): column-major, the fast layout for tiny layers on a CPU
        for j, layer in enumerate(self.synthesis):
            h = torch.addmm(layer.bias[:, None], layer.weight, h)
            if j < len(self.synthesis) - 1:
                h = torch.relu_(h)
        y = h.reshape(1, 3, self.height, self.width)
        for j, conv in enumerate(self.lem):
            r = conv(y)
            y = y + (F.relu(r) if j < len(self.lem) - 1 else r)
        return y

    def rate_bits(self, grids: list[torch.Tensor], dist: str) -> torch.Tensor:
        """Total −log2 p of the (relaxed) latents under the float ARM (scalar); one ARM pass for all grids."""
        outs = [self.arm.forward_grid(g, self.offsets) for g in grids]
        mu, s = torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])
        y = torch.cat([g.flatten() for g in grids])
        return bits(y, mu, scale_from_log(s), dist).sum()


def _upsampling_matrix(n: int, factor: int, out: int) -> torch.Tensor:
    """(out, n) matrix of PyTorch's bicubic up-sampling (align_corners=False) of a length-``n`` signal by
    ``factor``, cropped to ``out`` samples; the identity for ``factor`` 1. O(out · n) memory: only for
    sizes up to :data:`DENSE_UPSAMPLING_LIMIT` (larger ones use :func:`_upsampling_taps`)."""
    if out * n > DENSE_UPSAMPLING_LIMIT:
        raise ValueError(f"a dense {out}x{n} up-sampling matrix is too large; use _upsampling_taps")
    if factor == 1:
        return torch.eye(n)[:out]
    eye = torch.eye(n).reshape(n, 1, n, 1)  # column j = unit impulse at j
    up = F.interpolate(eye, size=(n * factor, 1), mode="bicubic", align_corners=False)  # (n,1,n·f,1)
    return up[:, 0, :out, 0].T.contiguous()


def _upsampling_taps(n: int, factor: int, out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The non-zero entries of :func:`_upsampling_matrix` without building it: ``(idx, w)``, each (out, 4),
    so that output sample ``o`` is ``Σ_k w[o,k]·x[idx[o,k]]``.

    PyTorch's bicubic sample ``o`` reads the inputs ``i−1 .. i+2`` (clamped to [0, n−1]) with
    ``i = ⌊(o + ½)/factor − ½⌋`` (exact in float64 for a power-of-two ``factor``). Its weights are read off
    PyTorch itself, by up-sampling four combs of unit impulses 4 samples apart: every 4-sample window holds
    one impulse of each comb, so each weight is exactly the matrix entry (border taps that clamp to the
    same input are merged into one, the others get weight 0).
    """
    if factor == 1:  # the identity
        return torch.arange(out)[:, None].repeat(1, 4), torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(out, 1)
    combs = torch.zeros(4, 1, n, 1)
    for c in range(4):
        combs[c, 0, c::4, 0] = 1.0
    resp = F.interpolate(combs, size=(n * factor, 1), mode="bicubic", align_corners=False)
    resp = resp[:, 0, :out, 0]  # (4, out): comb c's response
    o = torch.arange(out, dtype=torch.float64)
    start = torch.floor((o + 0.5) / factor - 0.5).long() - 1  # (out,)
    idx = (start[:, None] + torch.arange(4)).clamp(0, n - 1)  # (out, 4)
    w = resp.T.gather(1, idx % 4)  # (out, 4): the comb holding each tap's input
    dup = torch.zeros_like(idx, dtype=torch.bool)
    dup[:, 1:] = idx[:, 1:] == idx[:, :-1]  # clamped repeats of the previous tap: already counted
    return idx, w.masked_fill(dup, 0.0).contiguous()


# ------------------------------------------------------------------------------------------ encoding


@dataclass
class EncodeResult:
    """What :meth:`CoolChic.encode` returns: the file, the encoder's reconstruction and statistics."""

    data: bytes
    x_hat: torch.Tensor  # (3,H,W) float, multiples of 1/255: exactly what decoding the file gives
    stats: dict[str, float]


def _round8(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x.clamp(0, 1) * 255) / 255


def _laplace_bits(values: torch.Tensor) -> float:
    """Bits of integer ``values`` under the header's quantised Laplace (the coder spends about this)."""
    v = values.flatten().double()
    b = bs.index_scale(bs.scale_index(v.numpy()))
    return float(bits(v, torch.zeros_like(v), torch.full_like(v, b), "laplace").sum())


def _set_quantised(layers: list[nn.Module], k: int) -> list[torch.Tensor]:
    """Round the layers' weights/biases to the 2^−k lattice in place; returns the integer tensors."""
    ints = []
    for layer in layers:
        for p in (layer.weight, layer.bias):
            q = torch.round(p.detach().double() * 2**k).long()
            p.data.copy_((q.double() / 2**k).to(p.dtype))
            ints.append(q)
    return ints


def build_decoder(header: bs.Header, params: list[torch.Tensor]) -> OverfitCodec:
    """The decoding network of a header and its integer parameters (as the decoder and encoder use it)."""
    h = header
    model = OverfitCodec(h.height, h.width, h.n_grids, h.synthesis, h.lem_layers, h.arm_rowcol, h.arm_hidden)
    ks = {"synth": h.k_synth, "lem": h.k_lem, "arm": h.k_arm}
    it = iter(params)
    for name, layers in model.coded_modules():
        for layer in layers:
            for p in (layer.weight, layer.bias):
                q = next(it)
                if tuple(q.shape) != tuple(p.shape):
                    raise bs.BitstreamError(f"Parameter shape {tuple(q.shape)} != {tuple(p.shape)}")
                p.data.copy_((q.double() / 2 ** ks[name]).to(p.dtype))
    return model.eval()


@torch.no_grad()
def reconstruct(model: OverfitCodec, grids: list[torch.Tensor]) -> torch.Tensor:
    """Integer latent grids -> decoded image (3,H,W), clamped and rounded to 8 bits."""
    return _round8(model.synthesize([g.float() for g in grids])[0])


def decode(data: bytes, progress: bool = False) -> torch.Tensor:
    """A ``.tvc`` file's bytes -> the image (3,H,W) float in [0,1] (multiples of 1/255).

    Raises :class:`~trustvis.methods.codec.bitstream.BitstreamError` for anything that is not a complete,
    intact trustvis codec file.
    """
    return reconstruct(*decode_parts(data, progress))


def decode_parts(data: bytes, progress: bool = False) -> tuple[OverfitCodec, list[torch.Tensor]]:
    """A ``.tvc`` file's bytes -> (the decoder with the file's networks, the integer latent grids): all of
    :func:`decode` but the synthesis pass (:func:`reconstruct`)."""
    import constriction

    header, words = bs.unpack(data)
    decoder = constriction.stream.queue.RangeDecoder(words)
    try:
        params = bs.decode_params(decoder, header.param_shapes(), header.param_scales)
        model = build_decoder(header, params)
        n_arm = 2 * (len(header.arm_hidden) + 1)
        shapes = [tuple(g.shape) for g in model.latents]
        bar = _bar(len(shapes), "decode latents", progress)
        grids = bs.decode_latents(decoder, shapes, header.grid_max, params[-n_arm:], header.k_arm,
                                  header.arm_rowcol, header.distribution, progress=bar, version=header.version)  # fmt: skip
        if bar is not None:
            bar.close()
    except bs.BitstreamError:
        raise
    except Exception as e:  # the range decoder on damaged data
        raise bs.BitstreamError(f"Corrupt .tvc file: decoding failed ({e})") from e
    return model, grids


def _bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)


def as_image_tensor(image: Any) -> torch.Tensor:
    """uint8 (H,W,3) array or float tensor (3,H,W) in [0,1] -> float (3,H,W)."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"Expected an (H, W, 3) RGB array, got shape {image.shape}")
        return torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()
    x = torch.as_tensor(image, dtype=torch.float32)
    if x.ndim != 3 or x.shape[0] != 3:
        raise ValueError(f"Expected a (3, H, W) image tensor, got shape {tuple(x.shape)}")
    return x


def overfit(
    model: OverfitCodec, x: torch.Tensor, cfg: CoolChicConfig, progress: bool = False, desc: str = "encode"
) -> dict[str, float]:
    """Fit ``model`` to image ``x`` (1,3,H,W) with the rate-distortion loss for ``cfg.iterations`` steps;
    the best hard-quantised state of the STE phase is kept. Returns training statistics, among them
    ``iterations``: the optimisation steps taken (``progress``: a tqdm bar over them, on stderr)."""
    if cfg.distribution not in DISTRIBUTIONS:
        raise ValueError(f"Unknown distribution {cfg.distribution!r}; choose from {list(DISTRIBUTIONS)}")
    if cfg.proxy not in PROXIES:
        raise ValueError(f"Unknown proxy {cfg.proxy!r}; choose from {list(PROXIES)}")
    gen = torch.Generator().manual_seed(cfg.seed)
    npix = x.shape[-1] * x.shape[-2]
    latents = list(model.latents.parameters())
    others = [p for n, p in model.named_parameters() if not n.startswith("latents.")]
    opt = torch.optim.Adam(
        [{"params": latents, "scale": cfg.latent_lr_scale}, {"params": others, "scale": 1.0}], lr=cfg.lr
    )
    n_main = int(round(cfg.iterations * (1 - cfg.ste_fraction)))
    n_noise = int(round(n_main * cfg.noise_fraction)) if cfg.proxy == "sga" else n_main
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    bar = _bar(cfg.iterations, desc, progress)
    stats: dict[str, float] = {}

    def hard_loss() -> float:
        with torch.no_grad():
            q = [torch.round(g) for g in model.latents]
            mse = F.mse_loss(model.synthesize(q).clamp(0, 1), x)
            return float(mse + cfg.lmbda * model.rate_bits(q, cfg.distribution) / npix)

    for t in range(cfg.iterations):
        tau = cfg.tau_max
        if t < n_main:
            lr = 0.5 * cfg.lr * (1 + math.cos(math.pi * t / max(n_main, 1)))
            if t < n_noise:
                mode = "noise"
            else:
                mode = "sga"
                tau = sga_temperature(
                    (t - n_noise) / max(n_main - n_noise, 1), cfg.tau_max, cfg.tau_min, cfg.tau_hold
                )
        else:
            lr, mode = cfg.ste_lr, "ste"
        for g in opt.param_groups:
            g["lr"] = lr * g["scale"]
        q = [quantize(g, mode, tau, gen) for g in model.latents]
        x_hat = model.synthesize(q)
        mse = F.mse_loss(x_hat, x)
        rate = model.rate_bits(q, cfg.distribution) / npix
        loss = mse + cfg.lmbda * rate
        if cfg.temp_reg > 0 and mode == "sga":  # dynamic temperature regularisation (eqlinr)
            gap = sum(((g - torch.round(g).detach()) ** 2).sum() for g in model.latents) / npix
            loss = loss + cfg.temp_reg * cfg.lmbda * (1 - tau / cfg.tau_max) * gap
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        stats["iterations"] = float(t + 1)
        if t >= n_main - 1 and ((t - n_main + 1) % cfg.eval_every == 0 or t == cfg.iterations - 1):
            h = hard_loss()
            if best is None or h < best[0]:
                best = (h, {k: v.detach().clone() for k, v in model.state_dict().items()})
        if bar is not None:
            bar.update(1)
            if t % 20 == 0:
                psnr = -10 * math.log10(max(float(mse.detach()), 1e-12))
                bar.set_postfix(psnr=f"{psnr:.2f}", bpp=f"{float(rate.detach()):.3f}", q=mode)
    if bar is not None:
        bar.close()
    if best is not None:
        model.load_state_dict(best[1])
        stats["best_hard_loss"] = best[0]
    return stats


def _pick_k(model: OverfitCodec, layers: list[nn.Module], score) -> int:
    """The lattice exponent of ``layers`` with the lowest ``score(ints)`` (restores the float weights)."""
    saved = [(p, p.detach().clone()) for layer in layers for p in (layer.weight, layer.bias)]
    best_k, best_s = K_CANDIDATES[-1], math.inf
    for k in K_CANDIDATES:
        ints = _set_quantised(layers, k)
        if any(int(v.abs().max()) >= bs.PARAM_SUPPORT for v in ints if v.numel()):
            s = math.inf
        else:
            s = score(ints)
        if s < best_s:
            best_k, best_s = k, s
        for p, v in saved:
            p.data.copy_(v)
    return best_k


@torch.no_grad()
def quantise_and_code(model: OverfitCodec, x: torch.Tensor, cfg: CoolChicConfig, method: str) -> EncodeResult:
    """Round the latents, search the parameter steps, range-code everything; returns the file, the
    reconstruction the decoder will produce and statistics."""
    import constriction

    npix = x.shape[-1] * x.shape[-2]
    grids = [torch.round(g.detach()).long() for g in model.latents]
    gf = [g.float() for g in grids]
    mods = dict(model.coded_modules())

    def synth_score(ints: list[torch.Tensor]) -> float:
        mse = float(F.mse_loss(_round8(model.synthesize(gf)[0]), x[0]))
        return mse + cfg.lmbda * sum(_laplace_bits(v) for v in ints) / npix

    k_synth = _pick_k(model, mods["synth"], synth_score)
    ints_synth = _set_quantised(mods["synth"], k_synth)
    k_lem = _pick_k(model, mods["lem"], synth_score) if mods["lem"] else 0
    ints_lem = _set_quantised(mods["lem"], k_lem)

    def arm_score(ints: list[torch.Tensor], k: int, with_params: bool = True) -> float:
        total = sum(_laplace_bits(v) for v in ints) if with_params else 0.0
        for g in grids:
            if g.abs().max() == 0:
                continue
            mu, s = integer_arm(gather_context(g, model.offsets), ints, k)
            total += float(bits(g.flatten().double(), mu, scale_from_log(s), cfg.distribution).sum())
        return total

    best_k, best_s = K_CANDIDATES[-1], math.inf
    for k in K_CANDIDATES:
        ints = arm_to_integers(model.arm, k)
        if any(int(v.abs().max()) >= bs.PARAM_SUPPORT for v in ints if v.numel()):
            continue
        s = arm_score(ints, k)
        if s < best_s:
            best_k, best_s = k, s
    k_arm = best_k
    ints_arm = arm_to_integers(model.arm, k_arm)
    params = [*ints_synth, *ints_lem, *ints_arm]
    scales = [bs.scale_index(v.numpy()) for v in params]

    encoder = constriction.stream.queue.RangeEncoder()
    bs.encode_params(encoder, params, scales)
    maxima = bs.encode_latents(encoder, grids, ints_arm, k_arm, model.arm_rowcol, cfg.distribution)
    header = bs.Header(method, model.height, model.width, float(cfg.lmbda), len(grids), tuple(cfg.synthesis),
                       cfg.lem_layers, cfg.arm_rowcol, tuple(cfg.arm_hidden), cfg.distribution, k_synth, k_lem,
                       k_arm, tuple(maxima), tuple(scales))  # fmt: skip
    words = encoder.get_compressed()
    data = bs.pack(header, words)
    x_hat = reconstruct(build_decoder(header, params), grids)
    est_latent = arm_score(ints_arm, k_arm, with_params=False)
    est_params = sum(_laplace_bits(v) for v in params)
    mse = float(F.mse_loss(x_hat, x[0]))
    stats = {
        "bpp": 8 * len(data) / npix,
        "bytes": float(len(data)),
        "header_bytes": float(len(data) - 4 * len(words)),
        "estimated_bpp": (est_latent + est_params) / npix,
        "latent_bpp": est_latent / npix,
        "param_bpp": est_params / npix,
        "psnr": -10 * math.log10(max(mse, 1e-12)),
        "k_synth": float(k_synth),
        "k_lem": float(k_lem),
        "k_arm": float(k_arm),
        "n_params": float(sum(v.numel() for v in params)),
    }
    return EncodeResult(data, x_hat, stats)


# ------------------------------------------------------------------------------------------- method


class OverfitCodecMethod(Method):
    """A codec whose "training" is per image: ``compress`` overfits, ``decompress`` decodes the file.

    There are no weights to train on a data set: the trainer saves the configuration only, and a loaded
    run encodes exactly as the run it was saved from.
    """

    trainable: ClassVar[bool] = False
    config: CoolChicConfig

    def __init__(self, config: CoolChicConfig) -> None:
        super().__init__(config)
        validate_config(config)

    def fit(self, loader: Any) -> None:  # nothing is fitted to a data set
        return None

    def encode(self, image: Any, progress: bool = True, iterations: int | None = None) -> EncodeResult:
        """Overfit to one image (uint8 (H,W,3) or float (3,H,W)) and code it; see :class:`EncodeResult`.

        Encoding is training: ``iterations`` Adam steps (default: the config's ``iterations``, 3,000 in the
        ``default`` preset, 1,500 in ``quick``). A 256x256 image takes about 0.016 s (COOL-CHIC) to 0.026 s
        (EQLINR) per iteration on two CPU cores, quantisation search and coding included (the codec bench:
        13 s and 21 s for 800 iterations), so about a minute at the default budget; time grows with the pixel
        count. ``progress`` (default on) shows a tqdm bar of the iterations on stderr (PSNR, rate and
        quantisation mode as it goes); ``progress=False`` is silent. ``stats["iterations"]`` is the
        number of steps taken.

        Raises ``ValueError`` before any work for ``iterations`` < 1 and for an image the ``.tvc`` format
        cannot hold (sides above 65535, more than :data:`~trustvis.methods.codec.bitstream.MAX_PIXELS`
        pixels).
        """
        cfg = self.config
        if iterations is not None:
            if isinstance(iterations, bool) or not isinstance(iterations, numbers.Integral) or iterations < 1:
                raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}")
            cfg = replace(cfg, iterations=int(iterations))
        x = as_image_tensor(image)[None]  # (1,3,H,W)
        bs.check_size(x.shape[2], x.shape[3], cfg.n_grids, tuple(cfg.synthesis))
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            model = OverfitCodec(x.shape[2], x.shape[3], cfg.n_grids, tuple(cfg.synthesis), cfg.lem_layers,
                                 cfg.arm_rowcol, tuple(cfg.arm_hidden))  # fmt: skip
        train_stats = overfit(model, x, cfg, progress=progress, desc=f"{self.method_name} λ={cfg.lmbda:g}")
        t1 = time.perf_counter()
        res = quantise_and_code(model, x, cfg, self.method_name)
        res.stats.update(train_stats)
        res.stats["encode_seconds"] = time.perf_counter() - t0
        res.stats["fit_seconds"] = t1 - t0
        return res

    def compress(self, image: Any, progress: bool = True, iterations: int | None = None) -> bytes:
        """Image -> ``.tvc`` bytes (:meth:`encode`'s file)."""
        return self.encode(image, progress=progress, iterations=iterations).data

    def decompress(self, data: bytes, progress: bool = False) -> torch.Tensor:
        """``.tvc`` bytes -> image (3,H,W) float in [0,1]."""
        return decode(data, progress=progress)

    def predict(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Encode and decode every image of the batch: ``x_hat (B,3,H,W)``, ``bpp (B,)`` of the real file."""
        images = batch["image"]
        outs, rates = [], []
        for img in images:
            data = self.compress(img.detach().cpu(), progress=False)
            outs.append(self.decompress(data))
            rates.append(8 * len(data) / (img.shape[-1] * img.shape[-2]))
        return {"x_hat": torch.stack(outs), "bpp": torch.tensor(rates)}


TINY = {"iterations": 4, "n_grids": 3, "synthesis": [4], "arm_hidden": [4], "arm_rowcol": 1, "eval_every": 1}


@register(
    "coolchic",
    task="codec",
    config=CoolChicConfig,
    presets={"default": {}, "quick": {"iterations": 1500}, "tiny": TINY},
    paper=Paper(
        "COOL-CHIC: Coordinate-based Low Complexity Hierarchical Image Codec",
        "Ladune et al., ICCV 2023",
        "https://arxiv.org/abs/2212.05458",
    ),
    summary="Per-image overfitted latents + tiny synthesis MLP + autoregressive Laplace entropy model",
    seed_method=False,
)
class CoolChic(OverfitCodecMethod):
    """COOL-CHIC v1: uniform-noise proxy, Laplace ARM, no post-filter."""
