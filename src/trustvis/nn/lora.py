"""LoRA for vision models: layers, injection by PEFT's rules, merge/unmerge, PEFT adapter files.

Paper: Hu, Shen, Wallis, Allen-Zhu, Li, Wang, Wang, Chen. "LoRA: Low-Rank Adaptation of Large Language
Models". ICLR 2022. arXiv 2106.09685. Spec: ``shared/specs/lora.md``.

A frozen layer with weight W0 gets a trainable low-rank update::

    h = W0 x + s · B A dropout(x),    s = alpha / r   (alpha / sqrt(r) with rslora),   B = 0 at init

so an adapter is a no-op until it is trained. Layers (the in-memory layout mirrors PEFT's, so that state
dict keys map one-to-one onto PEFT's adapter files)::

    LoraLinear(nn.Linear(in, out))      lora_A: Linear(in, r)             (r, in)
                                        lora_B: Linear(r, out)            (out, r)
    LoraConv2d(nn.Conv2d(in, out, k))   lora_A: Conv2d(in, r, k, the base's stride, padding, dilation,
                                                padding mode)             (r, in, kh, kw)
                                        lora_B: Conv2d(r, out, 1)         (out, r, 1, 1)
                                        ΔW[o,i,:,:] = s · Σ_j B[o,j] A[j,i,:,:]   (exact: 1x1 after kxk)
    LoraMultiheadAttention(nn.MultiheadAttention(E, heads))  (torchvision's ViT attention)
                                        lora_A: Linear(E, r), lora_B: Linear(r, 3E) on the packed
                                        q/k/v input projection; out_proj becomes a LoraLinear
    every wrapper keeps the original layer as ``base_layer``.

Injection (:func:`inject_lora`) matches module names the way PEFT's ``check_target_module_exists`` does:
``targets`` as a string is a ``re.fullmatch`` on the full dotted name; as a list, an entry matches a name
that equals it or ends with ``"." + entry``; ``exclude`` follows the same rules; names under a module to
save (``train_modules``, PEFT's ``modules_to_save``) are never adapted. ``rank_pattern``/``alpha_pattern``
keys are regexes matched like PEFT's ``get_pattern_key`` (``(.*\\.)?(key)$``). Two additions, the same in
Python and on the command line (``--lora targets=...``):

  * ``re:REGEX`` marks a full-match regex, as a string (``targets="re:.*conv[12]"``, the same as PEFT's
    plain string) or as one entry of a list (``targets=["fc", "re:.*layer4\\.[01]\\.conv1"]``);
  * a target that names a **container** (a module LoRA cannot wrap itself, e.g. a ResNet's ``layer3``, a
    ViT encoder block) selects every layer LoRA supports inside it — ``nn.Linear``, ``nn.Conv2d`` with
    groups = 1 and ``nn.MultiheadAttention`` — the way a prefix would; grouped/depthwise convs inside it
    are skipped, as in the default target set. ``exclude`` works on containers the same way (excluding
    ``layer4.2`` excludes the layers inside it). A container with nothing LoRA supports inside, a plain
    layer of another type (BatchNorm, LayerNorm, ...) named as a target, or targets that select nothing
    raise ``ValueError`` naming the target and the valid names.

After injection the network is frozen as PEFT's ``get_peft_model`` leaves it: only the LoRA factors and the
modules to save have ``requires_grad`` (``freeze=False`` leaves every flag as it was; trustvis methods use
that and freeze only their adapted backbones, :func:`trustvis.methods.adapt.lora.apply_lora`).

Files (:func:`save_adapter` / :func:`load_adapter`): ``adapter_config.json`` + ``adapter_model.safetensors``
with keys ``base_model.model.<module path>.lora_A.weight`` / ``.lora_B.weight`` and the modules to save
under their plain names (``base_model.model.<name>.<param>``), safetensors metadata ``{"format": "pt"}``.
``peft.PeftModel.from_pretrained(base, dir)`` loads them onto the same base network and reproduces the
outputs; adapters written by PEFT load here (tests/test_lora.py checks both directions).

PEFT and nn.MultiheadAttention: PEFT 0.21.2 adds the out_proj update twice, in its forward and in
``merge_and_unload`` alike: W_out + 2·s·B A instead of W_out + s·B A (the in_proj update is counted once;
``MultiheadAttention.merge`` adds the update to out_proj's weight, then calls out_proj's own merge, which
adds it again). Upstream pull request huggingface/peft #3774 (open) fixes it; other releases were not
checked, hence the probe. trustvis computes W_out + s·B A. So that a file means the same in
both libraries, :func:`peft_mha_out_proj_factor` probes the installed PEFT once with a tiny numeric test
(k = 1 or 2 applications; 1 without PEFT) and:

    save_adapter:  out_proj lora_B is stored as B / k, and k is recorded in the safetensors metadata
                   (``trustvis.mha_out_proj_factor``), so PEFT here runs k · (B / k) = B;
    load_adapter:  a trustvis file: B = stored · (its recorded k), exactly the trained adapter (a warning
                   when the installed PEFT's k differs: PEFT here would not reproduce it);
                   a file without the record (written by PEFT): B = stored · k of the installed PEFT,
                   i.e. the update PEFT here runs with it (without PEFT: k of the file's
                   ``peft_version`` where trustvis has probed it, else 1 and a warning).

Dividing and multiplying by 2 is exact in floating point, so both round trips are bit-exact.

Deviations from PEFT 0.21 (documented choices):
  * container targets and ``re:`` list entries (above): PEFT refuses a container target ("Target module
    ... is not supported") and reads a list entry ``re:...`` as a literal name; the adapter files list the
    adapted layers by their exact names, so PEFT reads them all the same;
  * the Conv2d ``lora_A`` also takes the base's **dilation** and ``padding_mode`` (PEFT forwards neither and
    crashes on dilated convs, spec §2.1); adapters on dilated convs therefore load here but not in PEFT;
  * grouped and depthwise convs are refused with a clear error when targeted explicitly and skipped by the
    default target set (their low-rank update cannot be merged into a grouped weight; PEFT warns and
    fails at merge time);
  * MultiheadAttention: the update is added to the projection weights inside a functional forward
    (differentiable, no merge/unmerge around each call as PEFT does); no dropout on its LoRA branch
    (PEFT's merged forward applies none either); the out_proj update is applied once, where PEFT 0.21.2
    applies it twice — the files compensate (see above), so a trustvis file whose out_proj lora_B was
    halved for such a PEFT holds half the update for a PEFT with the fix (its metadata says so, and
    trustvis itself reads it back exactly whatever PEFT is installed);
  * loading refuses what would change the meaning of a file silently: PEFT initialisations that rewrite
    the base weights (PiSSA, OLoRA, LoftQ, CorDA, ...; ``init_lora_weights`` True, False and "gaussian"
    are read), ``target_parameters``, ``layer_replication``, trainable tokens, and non-finite or
    non-float adapter tensors;
  * DoRA, LoRA biases, embeddings and multiple named adapters per layer are not implemented; loading a
    PEFT file that uses them raises.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trustvis.config import LoraConfig

log = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."
INITS = ("kaiming", "gaussian")
MHA_FACTOR_KEY = "trustvis.mha_out_proj_factor"  # safetensors metadata: see the module docstring
PEFT_VERSION_KEY = "trustvis.peft_version"

# ----------------------------------------------------------------------------------------------------
# layers


class LoraLayer(nn.Module):
    """Shared state of the LoRA wrappers: rank, scaling, merged flag, enable switch."""

    base_layer: nn.Module
    lora_A: nn.Module
    lora_B: nn.Module

    def __init__(self, base_layer: nn.Module, r: int, alpha: float, rslora: bool) -> None:
        super().__init__()
        if r < 1:
            raise ValueError(f"LoRA rank r must be >= 1, got {r}")
        self.base_layer = base_layer
        self.r = int(r)
        self.alpha = float(alpha) if alpha else float(r)
        self.scaling = self.alpha / (math.sqrt(r) if rslora else r)
        self.merged = False
        self.enabled = True  # False: the base layer alone (PEFT's disable_adapter)

    def reset_lora(self, init: str = "kaiming") -> None:
        """A: kaiming-uniform(a=√5) (PEFT/loralib) or N(0, 1/r²) (PEFT's "gaussian"); B: zeros."""
        if init == "kaiming":
            nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        elif init == "gaussian":
            nn.init.normal_(self.lora_A.weight, std=1.0 / self.r)
        else:
            raise ValueError(f"Unknown LoRA init {init!r}; choose from {list(INITS)}")
        nn.init.zeros_(self.lora_B.weight)

    @property
    def weight(self) -> torch.Tensor:  # code that reads layer.weight (init loops, MHA) sees the base's
        return self.base_layer.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base_layer.bias

    def delta_weight(self) -> torch.Tensor:
        """s · B A in the base weight's shape."""
        raise NotImplementedError

    def _base_weight(self) -> nn.Parameter:
        return self.base_layer.weight

    @torch.no_grad()
    def merge(self) -> None:
        """W ← W0 + s·BA; the forward then runs the base layer alone. A no-op when already merged."""
        if not self.merged:
            w = self._base_weight()
            w += self.delta_weight().to(w.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """W ← W − s·BA (restores W0 up to rounding). A no-op when not merged."""
        if self.merged:
            w = self._base_weight()
            w -= self.delta_weight().to(w.dtype)
            self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}, scaling={self.scaling:g}, merged={self.merged}"


class LoraLinear(LoraLayer):
    """``nn.Linear`` + low-rank update; (..., in) -> (..., out)."""

    def __init__(self, base: nn.Linear, r: int, alpha: float = 0.0, dropout: float = 0.0,
                 init: str = "kaiming", rslora: bool = False) -> None:  # fmt: skip
        super().__init__(base, r, alpha, rslora)
        dev, dt = base.weight.device, base.weight.dtype
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.lora_A = nn.Linear(base.in_features, r, bias=False, device=dev, dtype=dt)  # (r, in)
        self.lora_B = nn.Linear(r, base.out_features, bias=False, device=dev, dtype=dt)  # (out, r)
        self.reset_lora(init)

    def delta_weight(self) -> torch.Tensor:  # (out, in)
        return (self.lora_B.weight @ self.lora_A.weight) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(x)
        if self.merged or not self.enabled:
            return out
        return out + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling


class LoraConv2d(LoraLayer):
    """``nn.Conv2d`` + low-rank update (PEFT's factorisation, dilation kept); (B,in,H,W) -> (B,out,H',W')."""

    def __init__(self, base: nn.Conv2d, r: int, alpha: float = 0.0, dropout: float = 0.0,
                 init: str = "kaiming", rslora: bool = False) -> None:  # fmt: skip
        if base.groups != 1:
            raise ValueError(
                f"LoRA on a grouped/depthwise Conv2d (groups={base.groups}) is not supported: its low-rank "
                "update cannot be merged into the grouped weight. Exclude it, or target the pointwise convs."
            )
        super().__init__(base, r, alpha, rslora)
        dev, dt = base.weight.device, base.weight.dtype
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.lora_A = nn.Conv2d(
            base.in_channels,
            r,
            base.kernel_size,
            base.stride,
            base.padding,
            base.dilation,
            bias=False,
            padding_mode=base.padding_mode,
            device=dev,
            dtype=dt,
        )  # (r, in, kh, kw)  fmt: skip
        self.lora_B = nn.Conv2d(r, base.out_channels, 1, bias=False, device=dev, dtype=dt)  # (out, r, 1, 1)
        self.reset_lora(init)

    def delta_weight(self) -> torch.Tensor:  # (out, in, kh, kw)
        b = self.lora_B.weight.flatten(1)  # (out, r)
        return torch.einsum("or,rihw->oihw", b, self.lora_A.weight) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(x)
        if self.merged or not self.enabled:
            return out
        pad = getattr(self.base_layer, "pad_input", None)  # convs that pad in forward (TF "SAME")
        xa = pad(x) if pad is not None else x
        return out + self.lora_B(self.lora_A(self.lora_dropout(xa))) * self.scaling


class LoraMultiheadAttention(LoraLayer):
    """``nn.MultiheadAttention`` (packed q/k/v) with LoRA on the input and output projections.

    in_proj: ΔW_in = s·B A, (3E, E); out_proj: a :class:`LoraLinear` inside ``base_layer``. The forward is
    ``F.multi_head_attention_forward`` with W_in0 + ΔW_in and W_out0 + ΔW_out, so gradients reach A and B.
    """

    def __init__(self, base: nn.MultiheadAttention, r: int, alpha: float = 0.0, dropout: float = 0.0,
                 init: str = "kaiming", rslora: bool = False) -> None:  # fmt: skip
        if not base._qkv_same_embed_dim:
            raise ValueError(
                "LoRA supports MultiheadAttention with packed q/k/v only (kdim == vdim == embed_dim)"
            )
        super().__init__(base, r, alpha, rslora)
        e = base.embed_dim
        dev, dt = base.in_proj_weight.device, base.in_proj_weight.dtype
        self.lora_A = nn.Linear(e, r, bias=False, device=dev, dtype=dt)  # (r, E)
        self.lora_B = nn.Linear(r, 3 * e, bias=False, device=dev, dtype=dt)  # (3E, r)
        self.reset_lora(init)
        base.out_proj = LoraLinear(base.out_proj, r, alpha, 0.0, init, rslora)  # type: ignore[assignment]

    def _base_weight(self) -> nn.Parameter:
        return self.base_layer.in_proj_weight

    def delta_weight(self) -> torch.Tensor:  # (3E, E)
        return (self.lora_B.weight @ self.lora_A.weight) * self.scaling

    def merge(self) -> None:
        super().merge()
        self.base_layer.out_proj.merge()

    def unmerge(self) -> None:
        super().unmerge()
        self.base_layer.out_proj.unmerge()

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None, need_weights: bool = True,
                attn_mask: torch.Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:  # fmt: skip
        m = self.base_layer
        out_proj: LoraLinear = m.out_proj  # type: ignore[assignment]
        if self.merged or not self.enabled:
            out_proj.enabled = self.enabled
            return m(query, key, value, key_padding_mask=key_padding_mask, need_weights=need_weights,
                     attn_mask=attn_mask, average_attn_weights=average_attn_weights, is_causal=is_causal)  # fmt: skip
        w_in = m.in_proj_weight + self.delta_weight()  # (3E, E)
        w_out = out_proj.base_layer.weight + out_proj.delta_weight()  # (E, E)
        if m.batch_first:  # (B,L,E) -> (L,B,E) as the functional form expects
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        out, weights = F.multi_head_attention_forward(
            query, key, value, m.embed_dim, m.num_heads, w_in, m.in_proj_bias, m.bias_k, m.bias_v,
            m.add_zero_attn, m.dropout, w_out, out_proj.base_layer.bias, training=self.training,
            key_padding_mask=key_padding_mask, need_weights=need_weights, attn_mask=attn_mask,
            average_attn_weights=average_attn_weights, is_causal=is_causal,
        )  # fmt: skip
        if m.batch_first:
            out = out.transpose(0, 1)
        return out, weights


_WRAPPERS: dict[type, type[LoraLayer]] = {
    nn.Linear: LoraLinear,
    nn.Conv2d: LoraConv2d,
    nn.MultiheadAttention: LoraMultiheadAttention,
}


def _wrapper_for(module: nn.Module) -> type[LoraLayer] | None:
    for cls, wrapper in _WRAPPERS.items():
        if isinstance(module, cls):
            return wrapper
    return None


# ----------------------------------------------------------------------------------------------------
# matching (PEFT's rules)


RE_PREFIX = "re:"  # marks a full-match regex in a target/exclude string or list entry


def _entry_matches(name: str, entry: str) -> bool:
    """One list entry: ``re:REGEX`` is a full match, anything else the name or a dotted suffix of it."""
    if entry.startswith(RE_PREFIX):
        return re.fullmatch(entry[len(RE_PREFIX) :], name) is not None
    return name == entry or name.endswith("." + entry)


def name_matches(name: str, rule: str | Sequence[str] | None) -> bool:
    """PEFT's rule: a string is a full-match regex (``re:`` in front is allowed and dropped); a list entry
    equals ``name``, is a dotted suffix of it, or is a ``re:REGEX`` that fully matches it."""
    if rule is None:
        return False
    if isinstance(rule, str):
        return re.fullmatch(rule.removeprefix(RE_PREFIX), name) is not None
    return any(_entry_matches(name, t) for t in rule)


def _rule_error(rule: str | Sequence[str] | None) -> str | None:
    """Why a targets/exclude value is malformed (a bad regex, a non-string entry), or None."""
    if rule is None:
        return None
    if isinstance(rule, str):
        entries = [RE_PREFIX + rule.removeprefix(RE_PREFIX)]
    elif isinstance(rule, Sequence) and all(isinstance(t, str) for t in rule):
        entries = [t for t in rule if t.startswith(RE_PREFIX)]
    else:
        return f"{rule!r} is neither a regex string nor a list of module names"
    for t in entries:
        try:
            re.compile(t[len(RE_PREFIX) :])
        except re.error as e:
            return f"{t!r} is not a valid regex ({e})"
    return None


def _under(name: str, modules: Iterable[str]) -> bool:
    """``name`` is one of ``modules`` or inside one (PEFT's modules_to_save exclusion)."""
    return any(re.match(rf"(^|.*\.){re.escape(m)}($|\..*)", name) for m in modules)


def pattern_value(patterns: dict[str, Any], name: str, default: Any) -> Any:
    """PEFT's ``get_pattern_key``: the first key k with ``(.*\\.)?(k)$`` matching ``name``."""
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", name):
            return value
    return default


def lora_layers(root: nn.Module) -> Iterator[tuple[str, LoraLayer]]:
    """(name, wrapper) of every LoRA layer under ``root``, outermost first (MHA before its out_proj)."""
    for name, module in root.named_modules():
        if isinstance(module, LoraLayer):
            yield name, module


SUPPORTED = "nn.Linear, nn.Conv2d (groups=1) and nn.MultiheadAttention"


def _refusal(module: nn.Module) -> str | None:
    """Why a layer of a type LoRA wraps cannot take an adapter (checked before anything is replaced)."""
    if isinstance(module, nn.Conv2d) and module.groups != 1:
        return (
            f"LoRA on a grouped/depthwise Conv2d (groups={module.groups}) is not supported: its low-rank "
            "update cannot be merged into the grouped weight. Exclude it, or target the pointwise convs."
        )
    if isinstance(module, nn.MultiheadAttention) and not module._qkv_same_embed_dim:
        return "LoRA supports MultiheadAttention with packed q/k/v only (kdim == vdim == embed_dim)"
    return None


def _ancestors(name: str) -> Iterator[str]:
    """``"a.b.c"`` -> ``"a"``, ``"a.b"``, ``"a.b.c"``."""
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        yield ".".join(parts[:i])


def _valid_names(modules: dict[str, nn.Module], scope: Sequence[str]) -> str:
    """The names a user can target: adaptable layers and the top-level containers holding them."""
    layers = [n for n, m in modules.items() if n and _wrapper_for(m) is not None and _refusal(m) is None]
    layers = [n for n in layers if not isinstance(modules.get(n.rpartition(".")[0]), nn.MultiheadAttention)]
    roots = [p for p in scope if p in modules] or [""]
    blocks = []
    for r in roots:
        for child, m in modules[r].named_children():
            full = f"{r}.{child}" if r else child
            if _wrapper_for(m) is None and any(n.startswith(full + ".") for n in layers):
                blocks.append(full)
    more = f" ... ({len(layers)} in all)" if len(layers) > 12 else ""
    return f"adaptable layers: {layers[:12]}{more}; containers holding them: {blocks[:16]}"


def inject_lora(
    root: nn.Module,
    cfg: LoraConfig,
    scope: Sequence[str] = ("",),
    train_modules: Sequence[str] = (),
    freeze: bool = True,
) -> list[str]:
    """Replace the matching layers of ``root`` by LoRA wrappers in place; returns their names.

    Targets follow PEFT's matching rules plus ``re:`` entries and containers (module docstring): naming a
    container such as ``layer3`` adapts every ``nn.Linear``, ``nn.Conv2d`` (groups = 1) and
    ``nn.MultiheadAttention`` inside it. ``root`` is left untouched when anything is refused.

    Args:
        root: the network (or method) to adapt; names are relative to it.
        cfg: rank, alpha, targets, exclude, patterns, init, dropout.
        scope: module-name prefixes searched when ``cfg.targets`` is None ("" = all of ``root``);
            the default target set is every Linear, Conv2d with groups = 1 and MultiheadAttention there.
        train_modules: modules trained in full (heads); never adapted.
        freeze: as PEFT's ``get_peft_model``: afterwards only the LoRA factors and ``train_modules`` of
            ``root`` require gradients (:func:`mark_only_lora_trainable`). False: no flag is changed.

    Raises:
        ValueError: nothing matched; a matched module cannot be adapted (a layer of another type, a
            container with no adaptable layer inside, a grouped conv, the out_proj of an attention layer);
            or the config is invalid. The message names the target and the valid names.
    """
    if cfg.r < 1:
        raise ValueError(f"LoRA rank r must be >= 1, got {cfg.r}")
    if cfg.init not in INITS:
        raise ValueError(f"Unknown LoRA init {cfg.init!r}; choose from {list(INITS)}")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"LoRA dropout must be in [0, 1), got {cfg.dropout}")
    for key in ("targets", "exclude"):
        bad = _rule_error(getattr(cfg, key))
        if bad:
            raise ValueError(f"LoRA {key}: {bad}")
    if any(isinstance(m, LoraLayer) for m in root.modules()):
        raise ValueError("this network already holds LoRA layers; inject once (or merge_and_unload first)")
    modules = dict(root.named_modules())

    def skipped(name: str) -> bool:  # a module to save, or excluded (itself or a container holding it)
        return _under(name, train_modules) or any(name_matches(a, cfg.exclude) for a in _ancestors(name))

    def in_attention(name: str) -> bool:  # the out_proj of an attention layer: adapted with it
        return isinstance(modules.get(name.rpartition(".")[0]), nn.MultiheadAttention)

    def inside(container: str) -> list[str]:  # what a container target selects
        return [
            n
            for n, m in modules.items()
            if n.startswith(container + ".")
            and _wrapper_for(m) is not None
            and _refusal(m) is None
            and not in_attention(n)
            and not skipped(n)
        ]

    chosen: set[str] = set()
    for name, module in modules.items():
        if not name or skipped(name):
            continue
        if in_attention(name):
            parent = name.rpartition(".")[0]
            if (
                cfg.targets is not None
                and name_matches(name, cfg.targets)
                and not name_matches(parent, cfg.targets)
            ):
                raise ValueError(
                    f"{name} is the out_proj of a MultiheadAttention, whose forward never calls it; "
                    f"target the attention module {parent!r} instead (it adapts in_proj and out_proj)"
                )
            continue  # adapted together with its attention module
        if cfg.targets is None:
            in_scope = any(p == "" or name == p or name.startswith(p + ".") for p in scope)
            if in_scope and _wrapper_for(module) is not None and _refusal(module) is None:
                chosen.add(name)  # the default set skips grouped/depthwise convs (module docstring)
            continue
        if not name_matches(name, cfg.targets):
            continue
        if _wrapper_for(module) is not None:
            refusal = _refusal(module)
            if refusal:
                raise ValueError(f"Target module {name}: {refusal}")
            chosen.add(name)
            continue
        selected = inside(name)
        if not selected:
            if any(True for _ in module.children()):
                why = (
                    f"a container that holds no layer LoRA adapts ({SUPPORTED}; grouped/depthwise convs and "
                    "excluded layers do not count)"
                )
            else:
                why = f"LoRA adapts {SUPPORTED} layers, or the ones inside a container it is given"
            raise ValueError(
                f"Target module {name} ({type(module).__name__}) matched by targets={cfg.targets!r} is not "
                f"supported: {why}; {_valid_names(modules, scope)}"
            )
        chosen.update(selected)
    if not chosen:
        raise ValueError(
            f"LoRA: no module matched targets={cfg.targets!r} (exclude={cfg.exclude!r}, scope={list(scope)}); "
            f"{_valid_names(modules, scope)}"
        )
    order = [n for n in modules if n in chosen]  # named_modules order
    for name in order:
        module = modules[name]
        r = int(pattern_value(cfg.rank_pattern, name, cfg.r))
        alpha = float(pattern_value(cfg.alpha_pattern, name, cfg.alpha or r))
        wrapper = _wrapper_for(module)(module, r, alpha, cfg.dropout, cfg.init, cfg.rslora)  # type: ignore[misc]
        parent_name, _, child = name.rpartition(".")
        setattr(root.get_submodule(parent_name) if parent_name else root, child, wrapper)
    if freeze:
        mark_only_lora_trainable(root, train_modules)
    log.info("LoRA: adapted %d layers (r=%d)", len(order), cfg.r)
    return order


def mark_only_lora_trainable(root: nn.Module, train_modules: Sequence[str] = ()) -> None:
    """Freeze every parameter of ``root`` but the LoRA factors and those of ``train_modules``."""
    for name, p in root.named_parameters():
        p.requires_grad_(".lora_A." in f".{name}" or ".lora_B." in f".{name}" or _under(name, train_modules))


def lora_parameter_count(root: nn.Module) -> dict[str, int | float]:
    """Trainable and total parameter counts (PEFT's print_trainable_parameters, as numbers)."""
    trainable = sum(p.numel() for p in root.parameters() if p.requires_grad)
    total = sum(p.numel() for p in root.parameters())
    lora = sum(
        p.numel() for n, p in root.named_parameters() if ".lora_A." in f".{n}" or ".lora_B." in f".{n}"
    )
    return {
        "trainable": trainable,
        "total": total,
        "lora": lora,
        "percent": 100.0 * trainable / max(total, 1),
    }


def describe(root: nn.Module) -> str:
    """One line: ``trainable params: 1,234 || all params: 5,678 || trainable%: 21.73 (LoRA: 1,000)``."""
    c = lora_parameter_count(root)
    return (
        f"trainable params: {c['trainable']:,} || all params: {c['total']:,} || "
        f"trainable%: {c['percent']:.4f} (LoRA factors: {c['lora']:,}; {sum(1 for _ in lora_layers(root))} layers)"
    )


def set_lora_enabled(root: nn.Module, enabled: bool) -> None:
    """Switch every adapter on or off (off = the base network's output; merged layers are unmerged)."""
    for _, layer in lora_layers(root):
        if not enabled:
            layer.unmerge()
        layer.enabled = enabled


def merge_lora(root: nn.Module) -> None:
    """Fold every adapter into its base weight (inference at the base network's cost)."""
    for _, layer in lora_layers(root):  # an attention layer merges its out_proj too
        layer.merge()


def unmerge_lora(root: nn.Module) -> None:
    """Undo :func:`merge_lora`."""
    for _, layer in lora_layers(root):
        layer.unmerge()


def merge_and_unload(root: nn.Module) -> nn.Module:
    """Merge, then put the plain base layers back: a network with no LoRA code left (returns ``root``)."""
    for _, layer in lora_layers(root):
        layer.merge()
    return unload(root)


def unload(root: nn.Module) -> nn.Module:
    """Put the base layers back as they are (merged adapters stay merged, others are dropped)."""
    for name, layer in reversed(list(lora_layers(root))):  # innermost first: an MHA's out_proj before the MHA
        parent_name, _, child = name.rpartition(".")
        setattr(root.get_submodule(parent_name) if parent_name else root, child, layer.base_layer)
    return root


# ----------------------------------------------------------------------------------------------------
# PEFT adapter files


def adapter_state_dict(root: nn.Module, train_modules: Sequence[str] = ()) -> dict[str, torch.Tensor]:
    """PEFT-named tensors: the LoRA factors and the modules to save (plain names)."""
    out: dict[str, torch.Tensor] = {}
    for name, layer in lora_layers(root):
        for part in ("lora_A", "lora_B"):
            out[f"{PEFT_PREFIX}{name}.{part}.weight"] = getattr(layer, part).weight.detach()
    for m in train_modules:
        for key, t in root.get_submodule(m).state_dict().items():
            out[f"{PEFT_PREFIX}{m}.{key}"] = t.detach()
    return {k: v.cpu().contiguous() for k, v in out.items()}


def save_adapter(
    root: nn.Module,
    directory: str | Path,
    cfg: LoraConfig,
    train_modules: Sequence[str] = (),
    base_model_name_or_path: str | None = None,
) -> Path:
    """Write ``adapter_config.json`` + ``adapter_model.safetensors`` (PEFT's format) for ``root``.

    ``target_modules`` lists the adapted layers by exact name, ranks that differ from ``cfg.r`` go to
    ``rank_pattern`` (anchored names), so PEFT rebuilds exactly these layers.
    """
    from safetensors.torch import save_file

    from trustvis.atomic import atomic_write_json

    layers = [(n, m) for n, m in lora_layers(root) if not _inside_lora_mha(root, n)]
    if not layers:
        raise ValueError("save_adapter: the network holds no LoRA layers")
    if any(layer.merged for _, layer in layers):
        raise ValueError("save_adapter: unmerge the adapters first (unmerge_lora)")
    for name, layer in layers:
        if isinstance(layer, LoraConv2d) and layer.base_layer.dilation != (1, 1):
            log.warning("%s is a dilated conv: PEFT 0.21 cannot run LoRA on it (trustvis can)", name)
    r0 = cfg.r
    rank_pattern = {re.escape(n): m.r for n, m in layers if m.r != r0}
    alpha_pattern = {re.escape(n): m.alpha for n, m in layers if m.alpha != (cfg.alpha or r0)}
    config = {
        "peft_type": "LORA",
        "task_type": None,
        "base_model_name_or_path": base_model_name_or_path,
        "revision": None,
        "inference_mode": True,
        "r": r0,
        "lora_alpha": cfg.alpha or r0,
        "lora_dropout": cfg.dropout,
        "target_modules": sorted(n for n, _ in layers),
        "exclude_modules": None,
        "modules_to_save": list(train_modules) or None,
        "bias": "none",
        "fan_in_fan_out": False,
        "init_lora_weights": True if cfg.init == "kaiming" else "gaussian",
        "use_rslora": cfg.rslora,
        "use_dora": False,
        "rank_pattern": rank_pattern,
        "alpha_pattern": alpha_pattern,
        "layers_to_transform": None,
        "layers_pattern": None,
        "lora_bias": False,
    }
    directory = Path(directory)
    state = adapter_state_dict(root, train_modules)
    metadata = {"format": "pt"}
    mha = _mha_out_proj_names(root)
    if mha:  # PEFT may apply these updates twice (module docstring): store B / k, record k
        version, k = peft_mha_out_proj_factor()
        for name in mha:
            state[f"{PEFT_PREFIX}{name}.lora_B.weight"] = state[f"{PEFT_PREFIX}{name}.lora_B.weight"] / k
        metadata[MHA_FACTOR_KEY] = str(k)
        if version is not None:
            metadata[PEFT_VERSION_KEY] = version
        if k != 1:
            log.info(
                "%s: attention out_proj lora_B stored divided by %d for PEFT %s, which applies it %d times",
                directory, k, version, k,
            )  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{ADAPTER_WEIGHTS}.tmp"
    save_file(state, str(tmp), metadata=metadata)
    tmp.replace(directory / ADAPTER_WEIGHTS)
    atomic_write_json(directory / ADAPTER_CONFIG, config)
    return directory


def _inside_lora_mha(root: nn.Module, name: str) -> bool:
    parent = name.rpartition(".")[0]  # "<mha>.base_layer"
    return parent.endswith("base_layer") and isinstance(
        root.get_submodule(parent.rpartition(".")[0]) if "." in parent else root, LoraMultiheadAttention
    )


MAX_CONFIG_BYTES = 16 * 2**20  # an adapter_config.json is a few kB; refuse to read a larger one
KNOWN_PEFT_MHA_FACTORS = {"0.21.2": 2}  # measured by the probe; used only where PEFT is not installed


def _read_config_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a PEFT/trustvis adapter folder")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ValueError(f"{path}: {size:,} bytes is not an adapter config (at most {MAX_CONFIG_BYTES:,})")
    try:
        c = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(c, dict):
        raise ValueError(f"{path}: expected a JSON object, got a {type(c).__name__}")
    return c


def _check_rule(path: Path, key: str, value: Any) -> None:
    """A ``target_modules``-like value: None, a regex string or a list of names."""
    if value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return
    if isinstance(value, str):
        try:
            re.compile(value)
        except re.error as e:
            raise ValueError(f"{path}: {key}={value!r} is not a valid regex ({e})") from e
        return
    raise ValueError(f"{path}: {key} must be a regex string or a list of module names, got {value!r}")


def _check_pattern(path: Path, key: str, value: Any, kind: type) -> dict[str, Any]:
    """``rank_pattern``/``alpha_pattern``: {regex: positive int (rank) or number (alpha)}."""
    value = value or {}
    if not isinstance(value, dict):
        raise ValueError(f"{path}: {key} must be an object {{module regex: value}}, got {value!r}")
    for k, v in value.items():
        _check_rule(path, f"{key} key", k)
        ok = (
            isinstance(v, (int, float))
            and not isinstance(v, bool)
            and (kind is float or float(v).is_integer())
        )
        if not ok or v <= 0:
            raise ValueError(f"{path}: {key}[{k!r}]={v!r}; expected a positive {kind.__name__}")
    return {k: kind(v) for k, v in value.items()}


def read_adapter_config(directory: str | Path) -> tuple[LoraConfig, list[str]]:
    """A PEFT ``adapter_config.json`` as (LoraConfig, modules_to_save).

    Raises:
        FileNotFoundError: no ``adapter_config.json`` in ``directory``.
        ValueError: not a JSON object, invalid values, or a feature trustvis does not implement (each
            message names the file and the field).
    """
    path = Path(directory) / ADAPTER_CONFIG
    c = _read_config_json(path)
    if c.get("peft_type", "LORA") != "LORA":
        raise ValueError(f"{path}: a {c.get('peft_type')} adapter, not LoRA")
    for key, ok in (("use_dora", False), ("fan_in_fan_out", False), ("lora_bias", False)):
        if c.get(key, ok) != ok:
            raise ValueError(f"{path}: {key}={c[key]!r} is not supported by trustvis (only plain LoRA)")
    for key in (
        "use_qalora",
        "use_bdlora",
        "target_parameters",
        "trainable_token_indices",
        "layer_replication",
    ):
        if c.get(key):
            raise ValueError(f"{path}: {key}={c[key]!r} is not supported by trustvis (only plain LoRA)")
    if c.get("bias", "none") != "none":
        raise ValueError(f"{path}: bias={c['bias']!r} is not supported (only 'none')")
    if c.get("layers_to_transform") or c.get("layers_pattern"):
        raise ValueError(f"{path}: layers_to_transform/layers_pattern are not supported; list target_modules")
    init = c.get("init_lora_weights", True)
    if not (init is True or init is False or init == "gaussian"):
        raise ValueError(
            f"{path}: init_lora_weights={init!r} is not supported (it rewrites the base weights when PEFT "
            f"loads the adapter); choose from [True, False, 'gaussian'], or save it with PEFT's "
            "path_initial_model_for_weight_conversion"
        )
    r = c.get("r", 8)
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"{path}: r={r!r}; the LoRA rank must be an integer >= 1")
    alpha = c.get("lora_alpha", 8)
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, (int, float))
        or not math.isfinite(alpha)
        or alpha <= 0
    ):
        raise ValueError(f"{path}: lora_alpha={alpha!r}; expected a positive number")
    dropout = c.get("lora_dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"{path}: lora_dropout={dropout!r}; expected a number in [0, 1)")
    for key in ("target_modules", "exclude_modules"):
        _check_rule(path, key, c.get(key))
    to_save = c.get("modules_to_save")
    if to_save is not None and not (isinstance(to_save, list) and all(isinstance(m, str) for m in to_save)):
        raise ValueError(f"{path}: modules_to_save must be a list of module names, got {to_save!r}")
    cfg = LoraConfig(
        r=r,
        alpha=float(alpha),
        dropout=float(dropout),
        targets=c.get("target_modules"),
        exclude=c.get("exclude_modules"),
        train_modules=to_save,
        init="gaussian" if init == "gaussian" else "kaiming",
        rank_pattern=_check_pattern(path, "rank_pattern", c.get("rank_pattern"), int),
        alpha_pattern=_check_pattern(path, "alpha_pattern", c.get("alpha_pattern"), float),
        rslora=bool(c.get("use_rslora", False)),
    )
    return cfg, list(to_save or [])


@functools.lru_cache(maxsize=1)
def peft_mha_out_proj_factor() -> tuple[str | None, int]:
    """(installed PEFT version, how many times it applies an ``nn.MultiheadAttention``'s out_proj update).

    A numeric probe, run once per process: a 4-dim one-head attention layer in float64 with a random
    out_proj adapter, PEFT's output compared with W_out + k·s·B A for k = 1, 2. The global RNG is left as it
    was. 1 = correct; 2 = PEFT 0.21.2's double count (module docstring). (None, 1) without PEFT;
    (version, 1) for a PEFT that cannot put LoRA on ``nn.MultiheadAttention`` at all (it refuses such
    files itself).

    Raises:
        ValueError: the installed PEFT applies the update in some other way.
    """
    try:
        import peft
    except ImportError:
        return None, 1
    version = str(getattr(peft, "__version__", "unknown"))
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        holder = nn.Module()
        holder.mha = nn.MultiheadAttention(4, 1, dtype=torch.float64)
        holder.eval()
        base = holder.mha
        w_in, b_in = base.in_proj_weight.clone(), base.in_proj_bias.clone()
        w_out, b_out = base.out_proj.weight.clone(), base.out_proj.bias.clone()
        try:
            peft.inject_adapter_in_model(peft.LoraConfig(r=1, lora_alpha=1, target_modules=["mha"]), holder)
        except Exception as e:  # a PEFT without LoRA for nn.MultiheadAttention
            log.debug("PEFT %s cannot adapt nn.MultiheadAttention: %s", version, e)
            return version, 1
        factors: dict[str, torch.Tensor] = {}
        for name, p in holder.named_parameters():
            if ".lora_A." in name or ".lora_B." in name:
                kind = ("out_" if ".out_proj." in name else "in_") + ("A" if ".lora_A." in name else "B")
                if kind == "in_B":
                    p.zero_()
                else:
                    p.copy_(torch.randn(p.shape, dtype=p.dtype))
                factors[kind] = p
        if set(factors) != {"in_B", "in_A", "out_A", "out_B"}:
            raise ValueError(
                f"PEFT {version}: unrecognised LoRA layout on nn.MultiheadAttention {sorted(factors)}"
            )
        delta = factors["out_B"] @ factors["out_A"]  # scaling 1
        x = torch.randn(3, 2, 4, dtype=torch.float64)  # (L, B, E)
        y = holder.mha(x, x, x, need_weights=False)[0]
        for k in (1, 2):
            ref = F.multi_head_attention_forward(
                x, x, x, 4, 1, w_in, b_in, None, None, False, 0.0, w_out + k * delta, b_out,
                training=False, need_weights=False,
            )[0]  # fmt: skip
            if torch.allclose(y, ref, atol=1e-9, rtol=1e-9):
                if k != 1:
                    log.info(
                        "PEFT %s applies the out_proj LoRA update of nn.MultiheadAttention %d times",
                        version,
                        k,
                    )
                return version, k
    raise ValueError(
        f"PEFT {version} applies the out_proj LoRA update of nn.MultiheadAttention neither once nor twice; "
        "trustvis cannot exchange attention adapters with it (use another PEFT version)"
    )


def _mha_out_proj_names(root: nn.Module) -> list[str]:
    """Names of the out_proj LoraLinear of every LoRA attention layer under ``root``."""
    return [
        f"{name}.base_layer.out_proj" if name else "base_layer.out_proj"
        for name, layer in lora_layers(root)
        if isinstance(layer, LoraMultiheadAttention)
    ]


def _file_mha_factor(weights: Path, metadata: dict[str, str], config: dict[str, Any]) -> int:
    """How many times the out_proj updates stored in ``weights`` are meant to be applied (module doc)."""
    recorded = metadata.get(MHA_FACTOR_KEY)
    if recorded is not None:  # written by trustvis for a PEFT that applies them `recorded` times
        if recorded not in ("1", "2"):
            raise ValueError(f"{weights}: metadata {MHA_FACTOR_KEY}={recorded!r}; expected '1' or '2'")
        k = int(recorded)
        try:
            version, installed = peft_mha_out_proj_factor()
        except ValueError as e:
            version, installed = None, k
            log.warning("%s", e)
        if version is not None and installed != k:
            log.warning(
                "%s was written for a PEFT that applies attention out_proj updates %d time(s); the installed "
                "PEFT %s applies them %d time(s), so PEFT here will not reproduce this adapter (trustvis "
                "does); re-export it with trustvis",
                weights, k, version, installed,
            )  # fmt: skip
        return k
    version, k = peft_mha_out_proj_factor()  # written by PEFT: what the installed PEFT runs with it
    writer = str(config.get("peft_version") or "").partition("@")[0]
    if version is None:
        if writer in KNOWN_PEFT_MHA_FACTORS:
            return KNOWN_PEFT_MHA_FACTORS[writer]
        log.warning(
            "%s: PEFT is not installed and the adapter's PEFT version %r is not one trustvis has probed; its "
            "attention out_proj updates are read as applied once (PEFT 0.21.2 applies them twice)",
            weights, writer or "unknown",
        )  # fmt: skip
    elif writer and writer != version:
        log.info("%s was written by PEFT %s; read as the installed PEFT %s runs it", weights, writer, version)
    return k


def load_adapter(root: nn.Module, directory: str | Path) -> LoraConfig:
    """Inject the adapter of a PEFT-format folder into ``root`` (built like its base) and load its weights.

    Only the tensors the network needs are read (after their names, shapes and dtypes were checked in the
    file's header). On any error ``root`` is left as it was (adapters injected here are removed again).
    When the adapters are injected here, ``root`` is then frozen as :func:`inject_lora` leaves it (only the
    LoRA factors and the modules to save require gradients); a network that already holds LoRA layers keeps
    its flags.

    Raises:
        FileNotFoundError: no ``adapter_config.json`` or ``adapter_model.safetensors`` in ``directory``.
        ValueError: a corrupt file, or one that does not fit the network (missing or unexpected tensors,
            wrong shapes, targets or modules to save that the network lacks, non-finite values).
    """
    from safetensors import SafetensorError, safe_open

    directory = Path(directory)
    cfg, train_modules = read_adapter_config(directory)
    config = _read_config_json(directory / ADAPTER_CONFIG)
    weights = directory / ADAPTER_WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} not found (trustvis reads safetensors adapters only)")
    names = dict(root.named_modules())
    lacking = [m for m in train_modules if m not in names]
    if lacking:
        raise ValueError(
            f"{directory / ADAPTER_CONFIG}: the adapter does not fit this network: modules_to_save {lacking} "
            "are not modules of it (was it saved for another base model?)"
        )
    try:
        with safe_open(str(weights), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            header = {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{weights}: not a readable safetensors file ({e})") from e
    injected = not any(isinstance(m, LoraLayer) for m in root.modules())
    if injected:
        try:
            inject_lora(root, cfg, train_modules=train_modules, freeze=False)  # frozen once loaded
        except ValueError as e:
            raise ValueError(f"{directory}: the adapter does not fit this network: {e}") from e
    try:
        _load_adapter_weights(root, weights, cfg, train_modules, header, metadata, config)
    except BaseException:
        if injected:
            unload(root)
        raise
    if injected:  # as inject_lora leaves a network (PEFT's get_peft_model)
        mark_only_lora_trainable(root, train_modules)
    return cfg


def _load_adapter_weights(
    root: nn.Module,
    weights: Path,
    cfg: LoraConfig,
    train_modules: list[str],
    header: dict[str, tuple[tuple[int, ...], str]],
    metadata: dict[str, str],
    config: dict[str, Any],
) -> None:
    from safetensors import SafetensorError, safe_open

    stored = {k.removeprefix(PEFT_PREFIX): k for k in header}
    full = root.state_dict()
    own = {k for k in full if ".lora_A." in f".{k}" or ".lora_B." in f".{k}"}
    own |= {f"{m}.{k}" for m in train_modules for k in root.get_submodule(m).state_dict()}
    missing, unexpected = sorted(own - set(stored)), sorted(set(stored) - own)
    if missing or unexpected:
        raise ValueError(
            f"{weights} does not fit this network: missing {missing[:6]}, unexpected {unexpected[:6]} "
            "(was it saved for another base model?)"
        )
    for key in sorted(own):
        shape, dtype = header[stored[key]]
        if tuple(full[key].shape) != shape:
            rank = (
                f" (adapter_config.json: r={cfg.r}; rank_pattern {cfg.rank_pattern})"
                if ".lora_" in key
                else ""
            )
            raise ValueError(
                f"{weights}: {key} has shape {shape}, the network {tuple(full[key].shape)}{rank}"
            )
        if full[key].is_floating_point() and dtype not in ("F64", "F32", "F16", "BF16"):
            raise ValueError(f"{weights}: {key} holds {dtype} values, not floating point")
    try:
        with safe_open(str(weights), framework="pt") as f:
            state = {key: f.get_tensor(stored[key]) for key in own}
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{weights}: not a readable safetensors file ({e})") from e
    for key, t in state.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise ValueError(f"{weights}: {key} holds non-finite values (NaN or inf)")
    mha = [f"{n}.lora_B.weight" for n in _mha_out_proj_names(root)]
    if mha:
        k = _file_mha_factor(weights, metadata, config)
        for key in mha:
            state[key] = state[key] * k  # exact: k is 1 or 2
    root.load_state_dict(state, strict=False)
