"""EQLINR: COOL-CHIC + a local enhancement CNN + SGA quantisation + a Gaussian context model (seed method).

Paper: Zhang, Zhang, Tang. "Enhanced Quantified Local Implicit Neural Representation for Image
Compression". IEEE Signal Processing Letters 30:1742-1746, 2023. https://ieeexplore.ieee.org/document/10323534.
No code or accessible full text is published; spec ``shared/specs/codec.md`` §1 gives the published
descriptions ("a CNN-based post-filter ... and an SGA-based quantization close to C3's soft-round") and the
proposal implemented here on the COOL-CHIC machinery of :mod:`~trustvis.methods.codec.coolchic`.

    latents ──► [uniform noise for the first 30 % of the main phase, then SGA with τ annealed 0.5 → 0.05]
      ──► up-sampling ──► synthesis MLP ──► LEM: y ← y + ReLU(conv3×3(y)), y ← y + conv3×3(y) ──► x̂
      ──► Gaussian ARM: p(ŷ) = Φ((ŷ+½−μ)/σ) − Φ((ŷ−½−μ)/σ)
    loss = MSE + λ·R/(H·W) + λ·γ·(1 − τ/τ_max)·Σ(y − round y)²/(H·W)      (SGA phase only)
    then STE rounding for the last 10 % of the iterations, and the same bitstream as COOL-CHIC.

Deviations / documented choices (everything below is unpublished in EQLINR; config fields):
  * LEM = Cool-chic v2's two residual 3×3 layers on the 3 output channels (``3-3-residual-relu,
    3-3-residual-none``), zero-initialised so it starts as the identity; replicate padding;
  * enhanced quantisation: uniform noise, then SGA (NeurIPS 2020) with SGA's exponential schedule
    expressed over the SGA phase (held 10 %, then 0.5 → 0.05), then straight-through rounding;
  * "dynamic temperature regularisation" read as a penalty on the distance of the latents to the integer
    lattice whose weight grows as the temperature falls, ``γ·(1 − τ/τ_max)`` (γ = ``temp_reg`` = 1,
    in units of λ: a latent half-way between integers costs a quarter bit at the end of the annealing),
    so that the final hard rounding changes little;
  * the ARM is COOL-CHIC's (12 causal neighbours, 12-12 hidden) with a Gaussian instead of a Laplace.
"""

from __future__ import annotations

from dataclasses import dataclass

from trustvis.methods.codec.coolchic import TINY, CoolChicConfig, OverfitCodecMethod
from trustvis.registry import Paper, register


@dataclass
class EQLINRConfig(CoolChicConfig):
    """COOL-CHIC's settings with EQLINR's defaults: LEM, SGA proxy, Gaussian ARM, temperature penalty."""

    distribution: str = "gaussian"
    lem_layers: int = 2
    proxy: str = "sga"
    noise_fraction: float = 0.3
    tau_max: float = 0.5
    tau_min: float = 0.05
    tau_hold: float = 0.1
    temp_reg: float = 1.0


@register(
    "eqlinr",
    task="codec",
    config=EQLINRConfig,
    presets={"default": {}, "quick": {"iterations": 1500}, "tiny": {**TINY, "lem_layers": 1}},
    paper=Paper(
        "Enhanced Quantified Local Implicit Neural Representation for Image Compression",
        "Zhang et al., IEEE SPL 2023",
        "https://ieeexplore.ieee.org/document/10323534",
    ),
    summary="COOL-CHIC + local enhancement CNN + SGA quantisation with annealed temperature + Gaussian ARM",
)
class EQLINR(OverfitCodecMethod):
    """EQLINR as specified above; encoding and decoding are COOL-CHIC's."""
