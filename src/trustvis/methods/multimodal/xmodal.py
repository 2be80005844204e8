"""Cross-modal VAE with distributed latent spaces and variational associators (``xmodal``, seed method).

Paper: Jo, Lee, Choi, Yoo, Choi. "Cross-modal Variational Auto-encoder with Distributed Latent Spaces and
Associators". arXiv 1905.12867, 2019. No official code; the paper's method section is not accessible, so the
algorithm is the reconstruction of ``../shared/specs/crossmodal.md`` §3::

    stage 1 (steps < vae_steps, unpaired pools):  for each modality m: max ELBO_m = E_q[log p_m(x_m|z_m)] − β·KL(q_m(z_m|x_m) ‖ N(0,I))
    stage 2 (the rest, pairs only, VAEs frozen):   for each ordered pair (a, b): associator A_ab, q(z_b|z_a) = N(μ_ab(z_a), diag σ²_ab(z_a))
        min  KL(q_b(z_b|x_b) ‖ q(z_b|z_a)) + assoc_rec · (−log p_b(x_b | z_b ~ q(z_b|z_a))),   z_a ~ q_a(z_a|x_a)
    inference:  x_a ─► μ_a(x_a) ─► μ_ab(μ_a) ─► decoder_b ─► x̂_b

Shapes (digits, defaults): image (B, 1, 20, 20) ─► z_image (B, 16); speech log-mel (B, 40, 101) ─► z_speech (B, 16);
label one-hot (B, 10) ─► z_label (B, 4); associator "a_to_b": (B, d_a) ─► (μ, log σ²) (B, d_b) each.

Adding a modality: ``model.vaes_from=RUN`` (a finished ``xmodal`` or ``latentreg`` run) loads that run's VAEs (and its
speech statistics) and freezes them — they stay bit-identical — so a run with ``modalities=[image,speech,label]``
trains only the label VAE in stage 1 and then the associators. With every VAE loaded, stage 1 is skipped and all
``train.steps`` fit associators. The same switch lets one set of VAEs serve every paired fraction.

Deviations (the paper's details are unpublished; each is a config field):
  * The associator's objective is the KL above (``assoc_rec`` = 0 by default adds no reconstruction term); its
    input during training is a sample of q_a (``assoc_sample``), at inference the mean.
  * The label VAE's KL weight is ``label_beta`` (0.1), not ``beta``: at 1 it encodes nothing (see the field).
  * MLP VAEs (two hidden layers of ``hidden``), Bernoulli likelihood for images and one-hot labels, Gaussian with a
    fixed σ (``speech_sigma``) for standardised log-mels; one reparameterised sample per step.
  * Associators are small (``assoc_hidden``, ``assoc_layers``) and always trained by the run: a run that loads VAEs
    refits every associator on its pairs (seconds), the VAEs are what is never retrained.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trustvis.config import ConfigError
from trustvis.methods.multimodal.base import (
    BATCH_KEYS,
    CrossModalMethod,
    ModalityConfig,
    check_modalities,
)
from trustvis.nn.backbones import pretrained_skipped
from trustvis.nn.vae import Associator, log_likelihood
from trustvis.registry import Paper, Preset, register

log = logging.getLogger(__name__)

#: methods whose runs ``vaes_from`` reads (their VAEs are laid out alike: ``vaes.<modality>.*``)
VAE_RUNS = ("xmodal", "latentreg")


@dataclass
class XModalConfig(ModalityConfig):
    """Per-modality VAEs, then associators between their latent spaces."""

    modalities: tuple[str, ...] = ("image", "speech")  # image | speech | label (digit one-hot), >= 2
    image_latent: int = 16
    speech_latent: int = 16
    label_latent: int = 4
    # KL weight of the label VAE: a one-hot of 10 classes carries at most ~3.3 nats (Bernoulli), about what a unit
    # KL costs to encode it, so at beta 1 the label VAE settles on its prior and decodes every class alike
    label_beta: float = 0.1
    # stage 1 (each modality's VAE on its unpaired pool) lasts vae_steps of train.steps; the rest is stage 2
    vae_steps: int = 3000
    assoc_hidden: int = 64  # associator MLP width (0: a linear map)
    assoc_layers: int = 2
    assoc_rec: float = 0.0  # weight of the associator's reconstruction term −log p_b(x_b | z_b ~ q(z_b|z_a))
    assoc_sample: bool = True  # train associators on z_a ~ q_a(z_a|x_a) (False: on its mean)
    # a finished xmodal / latentreg run whose VAEs (and speech statistics) are loaded and frozen
    vaes_from: str = ""


def xmodal_presets() -> dict[str, Preset]:
    """Presets shared by ``xmodal`` and ``latentreg`` (the same VAEs and budget; only the map differs)."""
    train = {"batch_size": 64, "lr": 1e-3, "eval_every": 0, "log_every": 100, "ckpt_every": 0}
    return {
        # stage 2 runs the small associators on frozen encoders: its steps cost a fraction of a VAE step each, and
        # the KL objective needs more of them than least squares (validation R@1 at 500 vs 1500 steps: 0.27 vs 0.46)
        "default": Preset(model={"vae_steps": 3000}, train={**train, "steps": 7000}),
        "quick": Preset(model={"vae_steps": 1500}, train={**train, "steps": 3500}),
        "tiny": Preset(
            model={
                "hidden": 16,
                "image_latent": 4,
                "speech_latent": 4,
                "label_latent": 2,
                "assoc_hidden": 8,
                "vae_steps": 1,
            },
            train={"steps": 2, "batch_size": 4, "lr": 1e-3},
        ),  # fmt: skip
    }


@register(
    "xmodal",
    task="multimodal",
    config=XModalConfig,
    presets=xmodal_presets(),
    paper=Paper(
        "Cross-modal Variational Auto-encoder with Distributed Latent Spaces and Associators",
        "Jo et al., arXiv 2019",
        "https://arxiv.org/abs/1905.12867",
    ),  # fmt: skip
    summary="one VAE per modality trained without pairs, Gaussian associators between latents fitted on few pairs",
)
class XModal(CrossModalMethod):
    """The cross-modal VAE: independent VAEs (stage 1), frozen, then associators (stage 2)."""

    manual_optimization = True

    def __init__(self, config: XModalConfig) -> None:
        check_modalities(tuple(config.modalities))
        if not {"image", "speech"} <= set(config.modalities):
            raise ConfigError(f"model.modalities={list(config.modalities)}: must include image and speech (label is "
                              "the optional third)")  # fmt: skip
        if (
            config.vae_steps < 0
            or config.label_beta < 0
            or config.assoc_rec < 0
            or config.assoc_layers < 0
            or config.assoc_hidden < 0
        ):
            raise ConfigError(f"model.vae_steps={config.vae_steps}, label_beta={config.label_beta}, assoc_rec={config.assoc_rec}, assoc_layers="
                              f"{config.assoc_layers}, assoc_hidden={config.assoc_hidden} must be >= 0")  # fmt: skip
        super().__init__(config)
        self.modalities = tuple(config.modalities)
        for m in self.modalities:
            if self.latent(m) < 1:
                raise ConfigError(f"model.{m}_latent={self.latent(m)} must be >= 1")
        self.vaes = nn.ModuleDict({m: self.make_vae(m, self.latent(m)) for m in self.modalities})
        self.associators = nn.ModuleDict({
            f"{a}_to_{b}": Associator(self.latent(a), self.latent(b), config.assoc_hidden, config.assoc_layers)
            for a in self.modalities for b in self.modalities if a != b
        })  # fmt: skip
        self.frozen_vaes: tuple[str, ...] = ()  # modalities whose VAE came from vaes_from
        self._step = 0
        if config.vaes_from and not pretrained_skipped():
            self._load_vaes(Path(config.vaes_from).expanduser())

    def latent(self, modality: str) -> int:
        return int(getattr(self.config, f"{modality}_latent"))

    # --- vaes_from --------------------------------------------------------------------------------------
    def _load_vaes(self, run: Path) -> None:
        from safetensors import SafetensorError, safe_open

        try:
            meta = json.loads((run / "model.json").read_text(encoding="utf-8"))
            method = meta.get("method") if isinstance(meta, dict) else None
            if method not in VAE_RUNS:
                raise ConfigError(
                    f"model.vaes_from={run}: holds a {method!r} run, not one of {list(VAE_RUNS)}"
                )
            theirs = meta["config"]["model"]
            with safe_open(str(run / "model.safetensors"), "pt") as f:
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as e:
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(
                f"model.vaes_from={run}: not a finished xmodal run ({type(e).__name__}: {e})"
            ) from None
        shared = tuple(m for m in self.modalities if m in theirs.get("modalities", ()))
        if not shared:
            raise ConfigError(f"model.vaes_from={run}: its modalities {theirs.get('modalities')} share none with "
                              f"model.modalities={list(self.modalities)}")  # fmt: skip
        mine = self.state_dict()
        load = {k: v for k, v in tensors.items() if any(k.startswith(f"vaes.{m}.") for m in shared)}
        if "speech" in shared:
            load.update(speech_mean=tensors["speech_mean"], speech_std=tensors["speech_std"])
        for k, v in load.items():
            if k not in mine or mine[k].shape != v.shape:
                got = tuple(mine[k].shape) if k in mine else "missing"
                raise ConfigError(f"model.vaes_from={run}: {k} is {tuple(v.shape)} there, {got} here (use the "
                                  "same hidden, latents, image_size, n_mels and frames)")  # fmt: skip
        self.load_state_dict(load, strict=False)
        for m in shared:
            self.vaes[m].requires_grad_(False)
        self.frozen_vaes = shared
        log.info("VAEs of %s loaded from %s and frozen", ", ".join(shared), run)

    def negative_elbo(self, modality: str, raw: torch.Tensor) -> torch.Tensor:
        """−ELBO per sample of one modality's VAE (β = ``label_beta`` for the label, ``beta`` otherwise)."""
        beta = self.config.label_beta if modality == "label" else self.config.beta
        return -self.vaes[modality].elbo(self.prepare(modality, raw), beta=beta)["elbo"]

    def set_speech_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """As the base class, except when the speech VAE came from ``vaes_from`` (its statistics came with it)."""
        if "speech" not in self.frozen_vaes:
            super().set_speech_stats(mean, std)

    # --- training ---------------------------------------------------------------------------------------
    def trained_vaes(self) -> list[str]:
        """The modalities whose VAE this run trains (all but those loaded by ``vaes_from``)."""
        return [m for m in self.modalities if m not in self.frozen_vaes]

    def stage1_steps(self) -> int:
        """Steps of stage 1: ``vae_steps``, or 0 when every VAE was loaded."""
        return self.config.vae_steps if self.trained_vaes() else 0

    def needs_pairs(self, total_steps: int) -> bool:
        """True when a run of ``total_steps`` fits associators (it then needs at least one pair)."""
        return total_steps > self.stage1_steps()

    def configure_optimizers(self, train: Any) -> dict[str, torch.optim.Optimizer]:
        opts = {"assoc": self.run_optimizer(self.associators.parameters(), train)}
        vae_params = [p for m in self.trained_vaes() for p in self.vaes[m].parameters()]
        if vae_params:
            opts["vae"] = self.run_optimizer(vae_params, train)
        return opts

    def on_step_start(self, step: int) -> None:
        self._step = step

    def training_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        if self._step < self.stage1_steps():
            parts = {m: self.negative_elbo(m, batch[BATCH_KEYS[m]]).mean() for m in self.trained_vaes()}
            loss = sum(parts.values())
            self.optimizer_step("vae", loss)
            return {"loss": loss.detach(), "stage": torch.tensor(1.0), **{f"nelbo_{m}": v.detach()
                                                                         for m, v in parts.items()}}  # fmt: skip
        if not bool(batch["paired"].any()):
            raise ValueError(f"{self.method_name}: stage 2 needs pairs and the batch holds none "
                             "(raise data.fraction)")  # fmt: skip
        loss = self.association_loss(batch)
        self.optimizer_step("assoc", loss)
        return {"loss": loss.detach(), "stage": torch.tensor(2.0)}

    def association_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """The summed loss of every associator on the batch's pairs (frozen posteriors as targets)."""
        keep = batch["paired"].bool()
        x = {m: self.prepare(m, batch[f"pair_{BATCH_KEYS[m]}"][keep]) for m in self.modalities}
        with torch.no_grad():
            post = {m: self.vaes[m].encode(x[m]) for m in self.modalities}
        losses = []
        for name, assoc in self.associators.items():
            a, b = name.split("_to_")
            losses.append(self.pair_loss(assoc, post[a], post[b], x[b], b))
        return torch.stack(losses).sum()

    def source_latent(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """The associator's training input from q_a: a sample (``assoc_sample``) or the mean."""
        if self.config.assoc_sample:
            return mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        return mu

    def pair_loss(self, assoc: Associator, post_a: tuple, post_b: tuple, x_b: torch.Tensor,
                  b: str) -> torch.Tensor:  # fmt: skip
        """KL(q_b(z_b|x_b) ‖ q(z_b|z_a)) (+ ``assoc_rec`` · the reconstruction of x_b through q(z_b|z_a))."""
        z_a = self.source_latent(*post_a)
        loss = assoc.loss(z_a, *post_b)
        if self.config.assoc_rec > 0:
            mu, logvar = assoc(z_a)
            vae = self.vaes[b]
            z_b = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
            rec = log_likelihood(x_b, vae.decode(z_b), vae.likelihood, vae.sigma)
            loss = loss - self.config.assoc_rec * rec.mean()
        return loss

    # --- inference --------------------------------------------------------------------------------------
    def translate(self, source: str, target: str, raw: torch.Tensor) -> torch.Tensor:
        if source == target:
            return self.encode(source, raw)
        return self.associators[f"{source}_to_{target}"](self.encode(source, raw))[0]
