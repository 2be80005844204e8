"""mToFNet: object anti-spoofing with the RGB photo and the phone's Time-of-Flight depth map.

Paper: Jeong, Kim, Lee, Hong, Hwang, Choi. "mToFNet: Object Anti-Spoofing with Mobile Time-of-Flight Data".
WACV 2022, pp. 38-47. arXiv 2110.04066. No official code; the dataset (mToF) is not public.

Implemented (the architecture from the abstract and a secondary summary; spec: antispoof.md §3): two
embedding models, each an encoder plus a generator that reconstructs the ToF map, and a spoof classifier
on their concatenated features::

    multi-modal model   [rgb; tof] (B,4,S,S) ──► E_mm ──► f_mm (B,D) ──► G_mm ──► tof_hat_mm (B,1,S,S)
    ToF model           tof (B,1,S,S)        ──► E_t  ──► f_t  (B,D) ──► G_t  ──► tof_hat_t  (B,1,S,S)
    classifier          [f_mm; f_t] (B,2D) ──► FC ─ ReLU ─ FC ──► logit (B,)  ──► sigmoid = p(spoof)

    L = w_rec · ( L1(tof_hat_mm, tof | real) + L1(tof_hat_t, tof) )
        + λ_sim · mean_real ‖f_mm − f_t‖² / D  +  λ_cls · BCE(logit, y)

The multi-modal model learns from real pairs only; the ToF model sees every ToF map; on real pairs the two
features are pulled together, so that a pair whose RGB and ToF disagree (an object's photo on a flat
screen) gives an abnormal pair of features. **A spoof pair reaches training only through its ToF map,
never through its RGB**: its RGB is replaced before any layer sees it (``spoof_rgb``), so the model cannot
memorise the moiré of the training screens.

Deviations (none of these constants is published; each is a config field):
  * ``spoof_rgb="real"``: the multi-modal encoder needs an RGB input for a spoof pair at training; it gets
    the RGB of a real pair of the same batch (so the classifier learns "this ToF does not belong to this
    RGB"); "gray" gives a constant mid-gray image instead. When a batch holds no real pair, gray is used.
    At test the pair's own RGB is used.
  * Losses as reconstructed in the spec: L1 reconstruction of the normalised ToF map (``w_rec`` = 1),
    ``lambda_sim`` = 1 on the mean squared feature distance per dimension, ``lambda_cls`` = 1; everything
    trains jointly from the start (the paper's schedule is not known); ``cls_detach`` stops the classifier's
    gradient at the features (a two-stage variant).
  * Encoders/generators: the family's small CNN (:mod:`trustvis.methods.antispoof.base`) at
    ``image_size`` (64 for the quick bench; the paper resizes to 180x180 and its backbone is not published).
  * ToF maps are normalised per map (depth / median − 1), as for every method of the family: the paper scales
    depth to 8 bits; a relative map removes the absolute distance, which differs between data sources.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from trustvis.methods.antispoof.base import (
    AntispoofConfig,
    AntispoofMethod,
    ConvDecoder,
    ConvEncoder,
    antispoof_presets,
    mlp_head,
)
from trustvis.methods.base import Batch
from trustvis.registry import Paper, register

SPOOF_RGB = ("real", "gray")


@dataclass
class MToFNetConfig(AntispoofConfig):
    """mToFNet: two embedding models (RGB+ToF, ToF) with ToF generators, and a classifier."""

    w_rec: float = 1.0  # weight of the two ToF reconstruction losses
    lambda_sim: float = 1.0  # weight of the real-pair feature agreement
    lambda_cls: float = 1.0  # weight of the spoof classification loss
    spoof_rgb: str = "real"  # what the multi-modal encoder sees instead of a spoof's RGB: real | gray
    cls_detach: bool = False  # classifier gradients stop at the features


@register(
    "mtofnet",
    task="antispoof",
    config=MToFNetConfig,
    presets=antispoof_presets({"default": {}, "tiny": {"image_size": 32, "width": 8, "embed_dim": 16}}),
    paper=Paper(
        "mToFNet: Object Anti-Spoofing with Mobile Time-of-Flight Data",
        "Jeong et al., WACV 2022",
        "https://arxiv.org/abs/2110.04066",
    ),
    summary="RGB + ToF embedding models whose features agree on real pairs; spoofs train through ToF only",
)
class MToFNet(AntispoofMethod):
    """mToFNet (seed method)."""

    config: MToFNetConfig

    def __init__(self, config: MToFNetConfig) -> None:
        if config.spoof_rgb not in SPOOF_RGB:
            raise ValueError(
                f"model.spoof_rgb={config.spoof_rgb!r} is invalid; choose from {list(SPOOF_RGB)}"
            )
        super().__init__(config)
        c = config
        self.enc_mm = ConvEncoder(4, c.width, c.embed_dim)
        self.gen_mm = ConvDecoder(c.embed_dim, c.width, c.image_size)
        self.enc_tof = ConvEncoder(1, c.width, c.embed_dim)
        self.gen_tof = ConvDecoder(c.embed_dim, c.width, c.image_size)
        self.classifier = mlp_head(2 * c.embed_dim, c.embed_dim, c.dropout)

    def features(self, image: torch.Tensor, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f_mm, f_t), each (B, D)."""
        return self.enc_mm(torch.cat([image, depth], dim=1)), self.enc_tof(depth)

    def classify(self, f_mm: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        z = torch.cat([f_mm, f_t], dim=1)  # (B, 2D)
        if self.config.cls_detach:
            z = z.detach()
        return self.classifier(z).squeeze(-1)

    def logits(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return self.classify(*self.features(image, depth))

    def training_rgb(self, image: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """The RGB the multi-modal encoder sees while training: a real pair's own RGB; for a spoof pair the RGB
        of a real pair of the batch (``spoof_rgb="real"``) or mid-gray. Rows are selected by indexing, so not
        one value of a spoof's RGB enters the computation (not even multiplied by 0)."""
        rgb = torch.full_like(image, 0.5)
        real_idx = torch.nonzero(real, as_tuple=False).squeeze(1)
        if len(real_idx):
            rgb[real_idx] = image[real_idx]
            spoof_idx = torch.nonzero(~real, as_tuple=False).squeeze(1)
            if self.config.spoof_rgb == "real" and len(spoof_idx):
                pick = real_idx[torch.randint(len(real_idx), (len(spoof_idx),), device=image.device)]
                rgb[spoof_idx] = image[pick]
        return rgb

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        cfg = self.config
        depth, label = batch["depth"], batch["label"]
        real = label == 0
        f_mm, f_t = self.features(self.training_rgb(batch["image"], real), depth)
        rec_t = F.l1_loss(self.gen_tof(f_t), depth)
        if real.any():
            rec_mm = F.l1_loss(self.gen_mm(f_mm[real]), depth[real])
            sim = (f_mm[real] - f_t[real]).pow(2).mean()
        else:  # no real pair: both terms are 0, but every parameter still takes part in the step (DDP)
            rec_mm = 0.0 * self.gen_mm(f_mm).sum()
            sim = depth.new_zeros(())
        out = self.bce(self.classify(f_mm, f_t), batch)
        out["loss"] = cfg.w_rec * (rec_mm + rec_t) + cfg.lambda_sim * sim + cfg.lambda_cls * out["loss"]
        out.update(loss_rec_mm=rec_mm.detach(), loss_rec_tof=rec_t.detach(), loss_sim=sim.detach())
        return out
