"""Generator zoo for SynthBench: small up-sampling autoencoders, a DCGAN and a VAE, with trainers.

Implements the "fakes without big GANs" recipe of ``specs/detection.md`` section 5:

- ``UpsamplingAutoencoder``: AutoGAN-style image-to-image autoencoders (Zhang, Karaman & Chang,
  "Detecting and Simulating Artifacts in GAN Fake Images", WIFS 2019, arXiv 1907.06515) trained on real
  images only; the decoder's up-sampling operation is a constructor argument, one per family:

  =================  ==================================================================
  ``tconv``          ConvTranspose2d 4x4 / stride 2, then conv3x3  (ProGAN/DCGAN-like)
  ``nearest``        nearest x2, then conv3x3               (Chandrasegaran "N")
  ``bilinear``       bilinear x2, then conv3x3              (Chandrasegaran "B")
  ``pixelshuffle``   conv3x3 to 4C, PixelShuffle(2), conv3x3   (sub-pixel convolution)
  ``zeroins``        zero-insertion x2, then conv3x3        (Chandrasegaran "Z"; a delta-kernel
                     ``conv_transpose2d``, as in their ``zero_insert_module.py``)
  =================  ==================================================================

  Chandrasegaran, Tran & Cheung, "A Closer Look at Fourier Spectrum Discrepancies for CNN-generated
  Images Detection", CVPR 2021, arXiv 2103.17195.
- ``DCGANGenerator`` / ``DCGANDiscriminator``: Radford, Metz & Chintala, "Unsupervised Representation
  Learning with Deep Convolutional GANs", ICLR 2016, arXiv 1511.06434; trained with the standard
  non-saturating BCE loss (Goodfellow et al. 2014), Adam 2e-4, beta1 0.5, the paper's N(0, 0.02) init.
- ``AntialiasedGenerator``: a DCGAN-trained generator with bilinear up-sampling and reflect padding only —
  the family without the transposed-convolution and zero-padding cues (SynthBench v2).
- ``VAE``: Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014, arXiv 1312.6114; conv
  encoder -> (mu, logvar) -> decoder whose up-sampling type is a constructor argument.

Every model is a pure ``nn.Module`` with images in ``[0, 1]`` (``(B, 3, H, W)``, output sigmoid).
The training functions take uint8 ``(N, H, W, 3)`` patches, are deterministic given ``seed`` (they call
``torch.manual_seed`` and draw batches from a seeded ``torch.Generator``; the number of threads is left as
torch has it) and return a small loss summary. Models train on whatever device they sit on; batches and
latents are drawn on the CPU and moved, so the random stream does not depend on the accelerator.

Deviations/choices:
    - Sizes are CPU-scale (widths 16-64, two or three up stages), not the papers' 256x256 models.
    - AutoGAN trains its autoencoder with reconstruction + GAN loss; here plain L1 reconstruction (the
      up-sampling artifact comes from the decoder architecture, not from the loss).
    - Each decoder stage is ``up-sample -> conv3x3 -> LeakyReLU(0.2)``; for ``tconv`` and
      ``pixelshuffle`` the up-sampling is itself learned. The output layer is conv3x3 + sigmoid. No
      normalisation layers in the autoencoders (batch statistics would make reconstruction depend on
      the batch).
    - DCGAN outputs ``sigmoid`` in [0, 1] instead of ``tanh`` in [-1, 1] (same model up to an affine
      map; every generator here speaks [0, 1]); the discriminator rescales its input to [-1, 1].
    - Training batches are drawn with replacement and randomly flipped horizontally.
    - Short runs leave family-specific colour errors: at 64x64 / 300 steps the transposed-conv and
      zero-insertion autoencoders under-shoot green on green-dominant patches (mean green error about
      -10/255 on the quick test split, not fixed by more steps, width, a cosine schedule or RGB
      shuffling), while nearest/bilinear do not. This is kept as a property of the family.
    - Convolutions zero-pad, as in the reference generators, so outputs also carry a faint border
      (except ``AntialiasedGenerator``'s, which reflect).
    - VAE: Gaussian decoder with a per-pixel MSE (sum over pixels) + KL, weight ``beta`` (default 1);
      decoder up-sampling defaults to ``nearest`` so that the VAE family differs from the DCGAN's
      transposed convolutions.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

UPSAMPLE_TYPES: tuple[str, ...] = ("tconv", "nearest", "bilinear", "pixelshuffle", "zeroins")


# --------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------


def zero_insert(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Insert zeros between pixels: ``y[..., f*i, f*j] = x[..., i, j]``, every other entry 0.

    Implemented as Chandrasegaran et al.'s ``conv_transpose2d`` with a per-channel delta kernel.

    Args:
        x: ``(B, C, H, W)``.
        factor: up-sampling factor.

    Returns:
        ``(B, C, factor*H, factor*W)``.
    """
    c = x.shape[1]
    weight = x.new_zeros(c, 1, factor, factor)  # (C, 1, f, f) delta kernel
    weight[:, :, 0, 0] = 1.0
    return F.conv_transpose2d(x, weight, stride=factor, groups=c)  # (B, C, fH, fW)


class ZeroInsert(nn.Module):
    """Module form of :func:`zero_insert` (no parameters)."""

    def __init__(self, factor: int = 2) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return zero_insert(x, self.factor)


def make_upsample(kind: str, in_ch: int, out_ch: int) -> nn.Module:
    """One x2 up-sampling stage: the family's operation, then conv3x3 + LeakyReLU.

    Args:
        kind: one of :data:`UPSAMPLE_TYPES`.
        in_ch: input channels.
        out_ch: output channels.

    Returns:
        A module mapping ``(B, in_ch, H, W)`` to ``(B, out_ch, 2H, 2W)``.
    """
    mid = in_ch
    if kind == "tconv":
        up: nn.Module = nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1)
        mid = out_ch
    elif kind == "nearest":
        up = nn.Upsample(scale_factor=2, mode="nearest")
    elif kind == "bilinear":
        up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
    elif kind == "pixelshuffle":
        up = nn.Sequential(nn.Conv2d(in_ch, 4 * out_ch, 3, padding=1), nn.PixelShuffle(2))
        mid = out_ch
    elif kind == "zeroins":
        up = ZeroInsert(2)
    else:
        raise ValueError(f"Unknown up-sampling type {kind!r}; choose from {list(UPSAMPLE_TYPES)}")
    return nn.Sequential(up, nn.Conv2d(mid, out_ch, 3, padding=1), nn.LeakyReLU(0.2, inplace=True))


def _widths(base: int, depth: int, max_width: int) -> list[int]:
    return [min(base * 2**i, max_width) for i in range(depth + 1)]


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------


class UpsamplingAutoencoder(nn.Module):
    """Image autoencoder whose decoder up-samples by one chosen operation (AutoGAN-style).

    Encoder: conv3x3 stem, then ``depth`` strided 4x4 convs (each halves H and W). Decoder: ``depth``
    stages of ``up-sample x2 -> conv3x3 -> LeakyReLU``, then conv3x3 + sigmoid.

    Args:
        upsample: one of :data:`UPSAMPLE_TYPES`.
        depth: number of down/up stages (H and W must be divisible by ``2**depth``).
        base_width: channels at full resolution; doubled at each down stage up to ``max_width``.
        max_width: channel cap.
    """

    def __init__(self, upsample: str = "tconv", depth: int = 2, base_width: int = 16, max_width: int = 64):
        super().__init__()
        if upsample not in UPSAMPLE_TYPES:
            raise ValueError(f"Unknown up-sampling type {upsample!r}; choose from {list(UPSAMPLE_TYPES)}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.upsample, self.depth = upsample, depth
        w = _widths(base_width, depth, max_width)
        enc: list[nn.Module] = [nn.Conv2d(3, w[0], 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        for i in range(depth):
            enc += [nn.Conv2d(w[i], w[i + 1], 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(
            *[make_upsample(upsample, w[i + 1], w[i]) for i in reversed(range(depth))]
        )
        self.head = nn.Conv2d(w[0], 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``x (B, 3, H, W)`` in [0, 1]; returns ``(B, 3, H, W)`` in [0, 1]."""
        h, w = x.shape[-2:]
        m = 2**self.depth
        if h % m or w % m:
            raise ValueError(f"Input size {h}x{w} must be divisible by 2**depth = {m}")
        z = self.encoder(x * 2 - 1)  # (B, C_d, H/2^d, W/2^d)
        return torch.sigmoid(self.head(self.decoder(z)))  # (B, 3, H, W)


def _n_up(size: int, start: int = 4) -> int:
    n = int(round(math.log2(size / start)))
    if n < 1 or start * 2**n != size:
        raise ValueError(
            f"Image size must be {start} times a power of two (e.g. 16, 32, 64, 128), got {size}"
        )
    return n


def dcgan_init(module: nn.Module) -> None:
    """DCGAN weight init (Radford et al. 2016): conv weights ~ N(0, 0.02), BatchNorm gain ~ N(1, 0.02)."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """DCGAN generator: latent ``(B, latent_dim)`` -> 4x4 -> transposed-conv doublings -> ``size``.

    Args:
        size: output side (4 * 2**k, e.g. 64 or 128).
        latent_dim: latent dimension.
        base_width: channels of the last hidden stage; doubled per stage towards 4x4, capped at 256.
    """

    def __init__(self, size: int = 64, latent_dim: int = 64, base_width: int = 16):
        super().__init__()
        n = _n_up(size)
        self.size, self.latent_dim = size, latent_dim
        w = [min(base_width * 2 ** (n - 1 - i), 256) for i in range(n)]  # widths at 4, 8, ..., size/2
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, w[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(w[0]),
            nn.ReLU(True),
        ]
        for i in range(n - 1):
            layers += [
                nn.ConvTranspose2d(w[i], w[i + 1], 4, 2, 1, bias=False),
                nn.BatchNorm2d(w[i + 1]),
                nn.ReLU(True),
            ]
        layers += [nn.ConvTranspose2d(w[-1], 3, 4, 2, 1)]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``z (B, latent_dim)`` -> images ``(B, 3, size, size)`` in [0, 1]."""
        return torch.sigmoid(self.net(z[:, :, None, None]))  # (B, 3, S, S)


class AntialiasedGenerator(nn.Module):
    """A GAN generator without the two cues the other families share: every up-sampling is bilinear x2 (a
    [1,3,3,1]/4 low-pass on the zero-inserted signal, no transposed convolution, so no checkerboard) and every
    convolution pads by reflection (no zero-padding border).

    latent ``(B, latent_dim)`` -> linear to 4x4 -> [bilinear x2 -> conv3x3 (reflect) -> BatchNorm -> ReLU] per
    doubling -> conv3x3 (reflect) to RGB -> sigmoid. Trained by :func:`train_dcgan` against a
    :class:`DCGANDiscriminator`.

    Args:
        size: output side (4 * 2**k, e.g. 64 or 128).
        latent_dim: latent dimension.
        base_width: channels of the last hidden stage; doubled per stage towards 4x4, capped at 256.
    """

    def __init__(self, size: int = 64, latent_dim: int = 64, base_width: int = 16):
        super().__init__()
        n = _n_up(size)
        self.size, self.latent_dim = size, latent_dim
        w = [min(base_width * 2 ** (n - i), 256) for i in range(n + 1)]  # widths at 4, 8, ..., size
        self.w0 = w[0]
        self.stem = nn.Linear(latent_dim, w[0] * 16)
        layers: list[nn.Module] = [nn.BatchNorm2d(w[0]), nn.ReLU(True)]
        for i in range(n):
            layers += [
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(w[i], w[i + 1], 3, padding=1, padding_mode="reflect", bias=False),
                nn.BatchNorm2d(w[i + 1]),
                nn.ReLU(True),
            ]
        layers += [nn.Conv2d(w[-1], 3, 3, padding=1, padding_mode="reflect")]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``z (B, latent_dim)`` -> images ``(B, 3, size, size)`` in [0, 1]."""
        return torch.sigmoid(self.net(self.stem(z).view(-1, self.w0, 4, 4)))  # (B, 3, S, S)


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator: strided 4x4 convs down to 4x4, then a 4x4 conv to one logit.

    Args:
        size: input side (4 * 2**k).
        base_width: channels of the first stage; doubled per stage, capped at 256.
    """

    def __init__(self, size: int = 64, base_width: int = 16):
        super().__init__()
        n = _n_up(size)
        w = [min(base_width * 2**i, 256) for i in range(n)]
        layers: list[nn.Module] = [nn.Conv2d(3, w[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for i in range(n - 1):
            layers += [
                nn.Conv2d(w[i], w[i + 1], 4, 2, 1, bias=False),
                nn.BatchNorm2d(w[i + 1]),
                nn.LeakyReLU(0.2, True),
            ]
        layers += [nn.Conv2d(w[-1], 1, 4, 1, 0)]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, 3, S, S)`` in [0, 1] -> logits ``(B,)``."""
        return self.net(x * 2 - 1).flatten()  # (B,)


class VAE(nn.Module):
    """Convolutional VAE: strided-conv encoder -> (mu, logvar) -> decoder with ``upsample`` stages.

    Args:
        size: image side (divisible by ``2**depth``).
        latent_dim: latent dimension.
        depth: number of down/up stages; the bottleneck map is ``size / 2**depth`` square.
        base_width: channels of the first stage; doubled per stage up to ``max_width``.
        max_width: channel cap.
        upsample: decoder up-sampling type, one of :data:`UPSAMPLE_TYPES` (default ``nearest``).
    """

    def __init__(
        self,
        size: int = 64,
        latent_dim: int = 64,
        depth: int = 3,
        base_width: int = 16,
        max_width: int = 64,
        upsample: str = "nearest",
    ):
        super().__init__()
        if size % 2**depth:
            raise ValueError(f"VAE size {size} must be divisible by 2**depth = {2**depth}")
        self.size, self.latent_dim, self.depth = size, latent_dim, depth
        w = _widths(base_width, depth, max_width)
        self.bottom = size // 2**depth
        enc: list[nn.Module] = [nn.Conv2d(3, w[0], 3, padding=1), nn.LeakyReLU(0.2, True)]
        for i in range(depth):
            enc += [nn.Conv2d(w[i], w[i + 1], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        self.encoder = nn.Sequential(*enc)
        flat = w[-1] * self.bottom**2
        self.to_stats = nn.Linear(flat, 2 * latent_dim)
        self.from_z = nn.Linear(latent_dim, flat)
        self.decoder = nn.Sequential(
            *[make_upsample(upsample, w[i + 1], w[i]) for i in reversed(range(depth))]
        )
        self.head = nn.Conv2d(w[0], 3, 3, padding=1)
        self._top = w[-1]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, 3, S, S)`` -> ``mu, logvar``, each ``(B, latent_dim)``."""
        h = self.encoder(x * 2 - 1).flatten(1)  # (B, C*b*b)
        mu, logvar = self.to_stats(h).chunk(2, dim=1)  # (B, D), (B, D)
        return mu, logvar.clamp(-10, 10)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``z (B, latent_dim)`` -> images ``(B, 3, S, S)`` in [0, 1]."""
        h = F.leaky_relu(self.from_z(z), 0.2).view(-1, self._top, self.bottom, self.bottom)  # (B, C, b, b)
        return torch.sigmoid(self.head(self.decoder(h)))  # (B, 3, S, S)

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns ``(reconstruction (B, 3, S, S), mu (B, D), logvar (B, D))``."""
        mu, logvar = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)  # (B, D)
        return self.decode(mu + eps * torch.exp(0.5 * logvar)), mu, logvar


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


def to_tensor(patches_uint8: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` -> float ``(N, 3, H, W)`` in [0, 1]."""
    arr = np.asarray(patches_uint8)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"Expected uint8 patches of shape (N, H, W, 3), got {arr.dtype} {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float().div_(255.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float ``(N, 3, H, W)`` in [0, 1] -> uint8 ``(N, H, W, 3)`` (rounded)."""
    x = images.detach().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)  # (N, 3, H, W)
    return x.permute(0, 2, 3, 1).contiguous().numpy()  # (N, H, W, 3)


def _summary(history: Sequence[float], seconds: float, **extra: float) -> dict:
    h = np.asarray(history, dtype=np.float64)
    tail = h[-max(1, len(h) // 10) :]
    out = {
        "steps": int(len(h)),
        "loss_first": float(h[0]) if len(h) else float("nan"),
        "loss_last": float(tail.mean()) if len(h) else float("nan"),
        "loss_min": float(h.min()) if len(h) else float("nan"),
        "seconds": round(float(seconds), 3),
    }
    # A short curve (at most 20 points, means over equal chunks) for plots and manifests.
    out["curve"] = [float(c.mean()) for c in np.array_split(h, min(20, len(h)))] if len(h) else []
    out.update({k: float(v) for k, v in extra.items()})
    return out


def _check_train_args(patches: np.ndarray, steps: int, batch_size: int) -> torch.Tensor:
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    arr = np.asarray(patches)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3 or len(arr) == 0:
        raise ValueError(
            f"Expected non-empty uint8 patches of shape (N, H, W, 3), got {arr.dtype} {arr.shape}"
        )
    # Kept as uint8 (a quarter of the float memory); batches are converted on the fly.
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2)  # (N, 3, H, W) uint8


def _device(model: nn.Module) -> torch.device:
    return next(iter(model.parameters())).device


def _batch(data: torch.Tensor, batch_size: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    idx = torch.randint(len(data), (batch_size,), generator=gen)  # (B,)
    x = data[idx].float().div_(255.0)  # (B, 3, H, W) in [0, 1]
    flip = torch.rand(batch_size, generator=gen) < 0.5  # (B,) random horizontal flips
    return torch.where(flip[:, None, None, None], x.flip(-1), x).to(device)


def train_autoencoder(
    model: UpsamplingAutoencoder | nn.Module,
    patches_uint8: np.ndarray,
    steps: int = 300,
    batch_size: int = 32,
    lr: float = 2e-3,
    seed: int = 0,
    progress: bool = True,
    desc: str = "train autoencoder",
) -> dict:
    """Train an autoencoder for L1 reconstruction with Adam (in place).

    Args:
        model: maps ``(B, 3, H, W)`` in [0, 1] to the same shape.
        patches_uint8: real training patches, uint8 ``(N, H, W, 3)``.
        steps: optimiser steps.
        batch_size: patches per step (sampled with replacement, random horizontal flips).
        lr: Adam learning rate.
        seed: seeds ``torch.manual_seed`` and the batch sampler.
        progress: show a tqdm bar.
        desc: progress-bar label.

    Returns:
        Loss summary: ``steps, loss_first, loss_last`` (mean of the last 10 %), ``loss_min, seconds, curve``.
    """
    data = _check_train_args(patches_uint8, steps, batch_size)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dev = _device(model)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    history: list[float] = []
    t0 = time.perf_counter()
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    for _ in bar:
        x = _batch(data, batch_size, gen, dev)  # (B, 3, H, W)
        loss = F.l1_loss(model(x), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(loss.item())
        bar.set_postfix(l1=f"{history[-1]:.4f}", refresh=False)
    model.eval()
    out = _summary(history, time.perf_counter() - t0)
    logger.info(
        "%s: %d steps, L1 %.4f -> %.4f (%.1fs)",
        desc,
        steps,
        out["loss_first"],
        out["loss_last"],
        out["seconds"],
    )
    return out


def train_dcgan(
    generator: DCGANGenerator | AntialiasedGenerator,
    discriminator: DCGANDiscriminator,
    patches_uint8: np.ndarray,
    steps: int = 300,
    batch_size: int = 32,
    lr: float = 2e-4,
    beta1: float = 0.5,
    seed: int = 0,
    progress: bool = True,
    desc: str = "train dcgan",
) -> dict:
    """Train a DCGAN with the non-saturating BCE loss; one D step then one G step per iteration.

    Args:
        generator: the generator (trained in place).
        discriminator: the discriminator (trained in place).
        patches_uint8: real training patches, uint8 ``(N, S, S, 3)``.
        steps: iterations.
        batch_size: real and fake images per iteration.
        lr: Adam learning rate of both networks.
        beta1: Adam beta1.
        seed: seeds ``torch.manual_seed``, the batch sampler and the latents.
        progress: show a tqdm bar.
        desc: progress-bar label.

    Returns:
        Summary of the generator loss (as :func:`train_autoencoder`) plus ``d_loss_last``.
    """
    data = _check_train_args(patches_uint8, steps, batch_size)
    if data.shape[-1] != generator.size:
        raise ValueError(f"Patch size {data.shape[-1]} does not match the generator size {generator.size}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dev = _device(generator)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(beta1, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(beta1, 0.999))
    ones, zeros = torch.ones(batch_size, device=dev), torch.zeros(batch_size, device=dev)
    generator.train()
    discriminator.train()
    g_hist: list[float] = []
    d_hist: list[float] = []
    t0 = time.perf_counter()
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    for _ in bar:
        real = _batch(data, batch_size, gen, dev)  # (B, 3, S, S)
        z = torch.randn(batch_size, generator.latent_dim, generator=gen).to(dev)  # (B, D)
        fake = generator(z)  # (B, 3, S, S)
        d_loss = F.binary_cross_entropy_with_logits(
            discriminator(real), ones
        ) + F.binary_cross_entropy_with_logits(discriminator(fake.detach()), zeros)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = F.binary_cross_entropy_with_logits(discriminator(fake), ones)  # non-saturating
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        g_hist.append(g_loss.item())
        d_hist.append(d_loss.item())
        bar.set_postfix(g=f"{g_hist[-1]:.3f}", d=f"{d_hist[-1]:.3f}", refresh=False)
    generator.eval()
    discriminator.eval()
    tail = d_hist[-max(1, len(d_hist) // 10) :]
    out = _summary(
        g_hist, time.perf_counter() - t0, d_loss_last=float(np.mean(tail)) if tail else float("nan")
    )
    logger.info(
        "%s: %d steps, G %.3f, D %.3f (%.1fs)",
        desc,
        steps,
        out["loss_last"],
        out["d_loss_last"],
        out["seconds"],
    )
    return out


def train_vae(
    model: VAE,
    patches_uint8: np.ndarray,
    steps: int = 300,
    batch_size: int = 32,
    lr: float = 1e-3,
    beta: float = 1.0,
    seed: int = 0,
    progress: bool = True,
    desc: str = "train vae",
) -> dict:
    """Train a VAE: per-image summed squared error + ``beta`` * KL(q(z|x) || N(0, I)), Adam.

    Args:
        model: the VAE (trained in place).
        patches_uint8: real training patches, uint8 ``(N, S, S, 3)``.
        steps: optimiser steps.
        batch_size: patches per step.
        lr: Adam learning rate.
        beta: KL weight.
        seed: seeds ``torch.manual_seed``, the batch sampler and the reparameterisation noise.
        progress: show a tqdm bar.
        desc: progress-bar label.

    Returns:
        Summary of the total loss per image (as :func:`train_autoencoder`) plus ``kl_last``.
    """
    data = _check_train_args(patches_uint8, steps, batch_size)
    if data.shape[-1] != model.size:
        raise ValueError(f"Patch size {data.shape[-1]} does not match the VAE size {model.size}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dev = _device(model)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    history: list[float] = []
    kls: list[float] = []
    t0 = time.perf_counter()
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    for _ in bar:
        x = _batch(data, batch_size, gen, dev)  # (B, 3, S, S)
        x_hat, mu, logvar = model(x, generator=gen)
        recon = (x_hat - x).pow(2).flatten(1).sum(1).mean()
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()
        loss = recon + beta * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(loss.item())
        kls.append(kl.item())
        bar.set_postfix(loss=f"{history[-1]:.2f}", kl=f"{kls[-1]:.2f}", refresh=False)
    model.eval()
    tail = kls[-max(1, len(kls) // 10) :]
    out = _summary(history, time.perf_counter() - t0, kl_last=float(np.mean(tail)) if tail else float("nan"))
    logger.info(
        "%s: %d steps, loss %.2f -> %.2f (%.1fs)",
        desc,
        steps,
        out["loss_first"],
        out["loss_last"],
        out["seconds"],
    )
    return out


# --------------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def reconstruct(model: nn.Module, patches_uint8: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Pass real patches through an autoencoder (or VAE, using the posterior mean).

    Args:
        model: an :class:`UpsamplingAutoencoder` or a :class:`VAE`.
        patches_uint8: uint8 ``(N, H, W, 3)``.
        batch_size: images per forward pass.

    Returns:
        uint8 ``(N, H, W, 3)``; output ``i`` is the reconstruction of input ``i``.
    """
    data = to_tensor(patches_uint8)  # (N, 3, H, W)
    model.eval()
    outs = []
    for i in range(0, len(data), batch_size):
        x = data[i : i + batch_size].to(_device(model))  # (b, 3, H, W)
        y = model.decode(model.encode(x)[0]) if isinstance(model, VAE) else model(x)  # (b, 3, H, W)
        outs.append(to_uint8(y))
    return np.concatenate(outs) if outs else np.zeros((0, *patches_uint8.shape[1:]), np.uint8)


#: The models :func:`sample` draws from (the others reconstruct).
SAMPLED = (DCGANGenerator, AntialiasedGenerator, VAE)


@torch.no_grad()
def sample(
    model: DCGANGenerator | AntialiasedGenerator | VAE, n: int, seed: int = 0, batch_size: int = 64
) -> np.ndarray:
    """Draw ``n`` images from a GAN generator or a VAE decoder with ``z ~ N(0, I)``.

    Args:
        model: a :class:`DCGANGenerator`, an :class:`AntialiasedGenerator` or a :class:`VAE`.
        n: number of images.
        seed: seed of the latent draws.
        batch_size: images per forward pass.

    Returns:
        uint8 ``(n, S, S, 3)``.
    """
    if not isinstance(model, SAMPLED):
        raise TypeError(f"sample() needs one of {[c.__name__ for c in SAMPLED]}, got {type(model).__name__}")
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    decode = model.decode if isinstance(model, VAE) else model
    outs = []
    for i in range(0, n, batch_size):
        z = torch.randn(min(batch_size, n - i), model.latent_dim, generator=gen).to(_device(model))  # (b, D)
        outs.append(to_uint8(decode(z)))  # (b, S, S, 3)
    return np.concatenate(outs) if outs else np.zeros((0, model.size, model.size, 3), np.uint8)


def generate(
    model: nn.Module, *, patches_uint8: np.ndarray | None = None, n: int | None = None, seed: int = 0
) -> np.ndarray:
    """Make fakes: reconstruct ``patches_uint8`` with an autoencoder, or sample ``n`` from a GAN/VAE.

    Args:
        model: :class:`UpsamplingAutoencoder` (needs ``patches_uint8``), a sampled model (:data:`SAMPLED`)
            :class:`VAE` (need ``n``).
        patches_uint8: uint8 ``(N, H, W, 3)`` real patches to reconstruct.
        n: number of samples.
        seed: latent seed for sampling.

    Returns:
        uint8 ``(N or n, H, W, 3)``.
    """
    if isinstance(model, SAMPLED):
        if n is None:
            raise ValueError(f"generate() with a {type(model).__name__} needs n (number of samples)")
        return sample(model, n, seed=seed)
    if patches_uint8 is None:
        raise ValueError(f"generate() with a {type(model).__name__} needs patches_uint8 to reconstruct")
    return reconstruct(model, patches_uint8)
