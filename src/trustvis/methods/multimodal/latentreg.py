"""Direct latent regressor (``latentreg``, baseline): the cross-modal VAE's frozen VAEs, joined by plain regressors.

The baseline the issue asks for, "a direct supervised regressor between latent spaces trained on the pairs only":
the same stage 1 as :mod:`trustvis.methods.multimodal.xmodal` (or the same VAEs through ``model.vaes_from``), then for
each ordered pair of modalities an MLP f_ab (the associator's network, its mean output only) fitted by least squares
on the pairs' posterior means::

    min  || f_ab(μ_a(x_a)) − μ_b(x_b) ||²      (summed over latent dimensions, averaged over pairs)
    inference:  x_a ─► μ_a ─► f_ab ─► decoder_b ─► x̂_b

It isolates what the variational associator adds over a point estimate: no posterior variance on either side, no
sampled input. Shapes and config: those of ``xmodal`` (``assoc_rec`` and ``assoc_sample`` are not used).
"""

from __future__ import annotations

import torch

from trustvis.methods.multimodal.xmodal import XModal, XModalConfig, xmodal_presets
from trustvis.nn.vae import Associator
from trustvis.registry import Paper, register


@register(
    "latentreg",
    task="multimodal",
    config=XModalConfig,
    presets=xmodal_presets(),
    paper=Paper(
        "Cross-modal Variational Auto-encoder with Distributed Latent Spaces and Associators (its VAEs; "
        "the least-squares map is the issue's baseline)",
        "Jo et al., arXiv 2019",
        "https://arxiv.org/abs/1905.12867",
    ),  # fmt: skip
    summary="the xmodal VAEs joined by least-squares MLP regressors between posterior means (baseline)",
    seed_method=False,
)
class LatentRegressor(XModal):
    """Frozen per-modality VAEs + deterministic latent regressors fitted on the pairs."""

    def pair_loss(self, assoc: Associator, post_a: tuple, post_b: tuple, x_b: torch.Tensor,
                  b: str) -> torch.Tensor:  # fmt: skip
        return (assoc(post_a[0])[0] - post_b[0]).pow(2).sum(1).mean()
