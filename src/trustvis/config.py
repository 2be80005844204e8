"""Typed dataclass configs: composition, YAML files and ``--set a.b=c`` overrides.

Every component owns a dataclass config with defaults. A run config composes them::

    RunConfig
      method: str, preset: str
      model:  <the method's config dataclass>
      train:  TrainConfig
      data:   <the task's data config> (trustvis.tasks: DetectData, ClassifyData, AnomalyData, ...)
      lora:   LoraConfig   (r = 0: no adapters; see trustvis.nn.lora)

Values from YAML and from the command line are type-checked against the dataclass field types;
unknown keys raise and name the valid keys. The resolved config is saved with every run.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config value or key is invalid; the message says which and what is allowed."""


@dataclass
class TrainConfig:
    """Generic training-loop settings, shared by every trainable method. Budgets are in steps."""

    steps: int = 1000  # optimiser steps in total
    batch_size: int = 32  # per process
    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 0.0  # max global grad norm; 0 disables
    schedule: str = "constant"  # learning-rate schedule over `steps`: constant | cosine (to 0)
    warmup_steps: int = 0  # linear warm-up from 0 to lr over these first steps
    eval_every: int = 0  # steps between validations; 0 = only at the end
    log_every: int = 20
    ckpt_every: int = 200  # steps between resumable checkpoints; 0 = only at the end
    amp: bool = False  # autocast (bf16 on CPU, fp16 on CUDA); opt-in
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_workers: int = 0
    progress: bool = True
    init_from: str = ""  # a finished run folder of the same method whose weights start this run
    trainable: str = "all"  # all | heads (linear probe: only the classification heads train)
    tensorboard: bool = False  # also log the metrics to TensorBoard in OUT/tensorboard (pip tensorboard)
    metrics_csv: bool = False  # also write OUT/metrics.csv: the metrics.jsonl records as CSV rows


#: fields of the one data config every run had before each task declared its own (runs saved before the
#: task layer): a saved run's ``data`` section may hold them; those its task does not know are dropped
LEGACY_DATA_KEYS = frozenset(
    {"name", "root", "category", "size", "train_family", "max_images", "imbalance", "dominant"}
)


@dataclass
class LoraConfig:
    """Low-rank adapters injected into a method's backbone(s) (``trustvis train M --lora r=8,...``).

    Field names follow PEFT's ``LoraConfig`` where one exists (``r``, ``alpha`` = ``lora_alpha``,
    ``dropout`` = ``lora_dropout``, ``targets`` = ``target_modules``, ``exclude`` = ``exclude_modules``,
    ``train_modules`` = ``modules_to_save``, ``rank_pattern``, ``alpha_pattern``, ``rslora`` =
    ``use_rslora``); matching rules are PEFT's (see :mod:`trustvis.nn.lora`).
    """

    r: int = 0  # rank; 0 = no LoRA
    alpha: float = 0.0  # scaling = alpha / r (alpha / sqrt(r) with rslora); 0 = alpha equal to r
    dropout: float = 0.0  # dropout on the input of the LoRA branch
    # a string is a full-match regex on module names; a list holds names or name suffixes;
    # None = every Linear, Conv2d (groups = 1) and MultiheadAttention of the method's backbones
    targets: str | list[str] | None = None
    exclude: str | list[str] | None = None  # same rules as targets
    train_modules: list[str] | None = None  # trained in full (PEFT modules_to_save); None = the heads
    init: str = "kaiming"  # A init: kaiming (PEFT/loralib default) | gaussian (the paper; std 1/r)
    rank_pattern: dict[str, int] = field(default_factory=dict)  # module-name regex -> rank
    alpha_pattern: dict[str, float] = field(default_factory=dict)  # module-name regex -> alpha
    rslora: bool = False


@dataclass
class RunConfig:
    """Everything that defines a training run; saved as ``config.yaml`` in the run directory."""

    method: str = ""
    preset: str = "default"
    model: Any = None
    train: TrainConfig = field(default_factory=TrainConfig)
    data: Any = None  # the data config dataclass of the method's task
    lora: LoraConfig = field(default_factory=LoraConfig)


# ----------------------------------------------------------------------------------------------------
# conversion


def to_dict(cfg: Any) -> Any:
    """Dataclass (nested) -> plain dict of JSON/YAML-safe values."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, tuple | list):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check/convert ``value`` to type annotation ``tp``; raise ConfigError naming ``where``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where}: {value!r} does not match {tp}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin in (tuple, list):
        if isinstance(value, str):
            value = (
                yaml.safe_load(value) if value.strip().startswith("[") else [v for v in value.split(",") if v]
            )
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        out = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip() else {}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return {_coerce(k, kt, where): _coerce(v, vt, f"{where}[{k!r}]") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


def from_dict(cls: type, values: dict[str, Any], where: str = "") -> Any:
    """Build dataclass ``cls`` from ``values``; unknown keys and wrong types raise ConfigError."""
    if values is None:
        values = {}
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"Unknown config key(s) {[prefix + k for k in unknown]}; valid keys: {names}")
    kwargs = {}
    for name in names:
        if name in values:
            kwargs[name] = _coerce(values[name], hints[name], f"{where}.{name}" if where else name)
    return cls(**kwargs)


def set_path(cfg: Any, dotted: str, raw: Any) -> None:
    """Set ``cfg.a.b = raw`` (type-checked). Used for ``--set a.b=c``."""
    parts = dotted.split(".")
    obj = cfg
    for i, p in enumerate(parts):
        if not dataclasses.is_dataclass(obj):
            raise ConfigError(f"{'.'.join(parts[:i])} is not a config section; cannot set {dotted!r}")
        names = [f.name for f in dataclasses.fields(obj)]
        if p not in names:
            raise ConfigError(f"Unknown config key {'.'.join(parts[: i + 1])!r}; valid keys here: {names}")
        if i == len(parts) - 1:
            tp = typing.get_type_hints(type(obj))[p]
            if tp is Any and getattr(obj, p) is not None and dataclasses.is_dataclass(getattr(obj, p)):
                raise ConfigError(f"{dotted!r} is a section; set one of its keys")
            if isinstance(raw, str) and typing.get_origin(tp) not in (tuple, list) and tp is not str:
                parsed = yaml.safe_load(raw) if raw != "" else raw
                union_list = typing.get_origin(tp) in (typing.Union, types.UnionType) and isinstance(
                    parsed, list
                )
                raw = parsed if not isinstance(parsed, dict | list) or union_list else raw  # "[a, b]": a list
            setattr(obj, p, _coerce(raw, tp, dotted))
        else:
            obj = getattr(obj, p)


def apply_overrides(cfg: Any, overrides: list[str]) -> Any:
    """Apply ``["a.b=c", ...]`` to a (nested) dataclass config in place and return it."""
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"Override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        set_path(cfg, key.strip(), raw.strip())
    return cfg


def merge_dict(cfg: Any, values: dict[str, Any], where: str = "") -> Any:
    """Recursively apply a (partial) dict of values, e.g. from YAML, onto a dataclass config."""
    for key, val in (values or {}).items():
        dotted = f"{where}.{key}" if where else key
        names = [f.name for f in dataclasses.fields(cfg)]
        if key not in names:
            raise ConfigError(f"Unknown config key {dotted!r}; valid keys here: {names}")
        cur = getattr(cfg, key)
        if isinstance(val, dict) and dataclasses.is_dataclass(cur):
            merge_dict(cur, val, dotted)
        else:
            tp = typing.get_type_hints(type(cfg))[key]
            setattr(cfg, key, _coerce(val, tp, dotted))
    return cfg


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping (empty file -> {}); safe-loaded, so tags such as ``!!python/object`` never run.

    Raises:
        ConfigError: the file is unreadable, not UTF-8, not valid YAML (the message names the line) or
            not a mapping.
        FileNotFoundError: there is no such file.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {path} does not exist") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        if "constructor for the tag" in problem:
            problem += " (YAML tags are not allowed in a config file; nothing was executed)"
        raise ConfigError(f"{path}: {where}not a valid YAML config: {problem}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a text (UTF-8) file: {e.reason} at byte {e.start}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file: {e.strerror or e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: a config file must hold a mapping (key: value), got {type(data).__name__}"
        )
    return data


def dump_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def make_run_config(
    method: str,
    preset: str = "default",
    yaml_files: list[str] | None = None,
    overrides: list[str] | None = None,
    base: dict[str, Any] | None = None,
    *,
    model: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    lora: dict[str, Any] | None = None,
) -> RunConfig:
    """Compose a run config: method preset (model, train, data) -> ``base`` dict -> the typed ``model``,
    ``train``, ``data`` and ``lora`` values of the caller (a bench's own settings) -> YAML files -> ``--set``
    overrides, so a user's file and ``--set`` win. Every value is type-checked (:func:`merge_dict`) and an
    unknown key is an error. ``run.data`` is the data config of the method's task."""
    from trustvis import registry

    spec = registry.get(method)
    if preset not in spec.presets:
        raise ConfigError(f"Unknown preset {preset!r} for {method!r}; choose from {sorted(spec.presets)}")
    run = RunConfig(method=method, preset=preset, model=spec.make_config(preset),
                    data=registry.data_config(spec.task)())  # fmt: skip
    merge_dict(run, spec.presets[preset].run_values())
    base = dict(base or {})
    if isinstance(base.get("data"), dict):  # a saved run's config.yaml (--resume)
        base["data"] = _known_data(type(run.data), base["data"])
    merge_dict(run, base)
    typed = {"model": model, "train": train, "data": data, "lora": lora}
    merge_dict(run, {section: values for section, values in typed.items() if values})
    for f in yaml_files or []:
        values = load_yaml(f)
        if "method" in values and values["method"] != method:
            raise ConfigError(f"{f} is a config for method {values['method']!r}, not {method!r}")
        merge_dict(run, {k: v for k, v in values.items() if k not in ("method", "preset")})
    apply_overrides(run, overrides or [])
    validate_run(run, trainable=bool(getattr(spec.cls, "trainable", True)))
    return run


#: ``train.lr`` above this is refused as a typo: no optimiser trustvis builds trains with a larger step
MAX_LR = 10.0


def validate_run(run: RunConfig, trainable: bool = True) -> None:
    """Refuse train/data settings no run can work with; the message names the key and its valid range.

    Args:
        run: the composed run config.
        trainable: False for fit-only methods (PaDiM), which take no gradient step (``train.steps=0``).

    Raises:
        ConfigError: the first invalid value, e.g. ``train.steps=-5 is invalid; it must be an integer >= 1``.
    """
    t, d = run.train, run.data

    def check(ok: bool, key: str, value: Any, valid: str) -> None:
        if not ok:
            raise ConfigError(f"{key}={value!r} is invalid; it must be {valid}")

    min_steps = 1 if trainable else 0
    check(t.steps >= min_steps, "train.steps", t.steps, f"an integer >= {min_steps}")
    check(t.batch_size >= 1, "train.batch_size", t.batch_size, "an integer >= 1")
    check(math.isfinite(t.lr) and 0 < t.lr <= MAX_LR, "train.lr", t.lr, f"a number in (0, {MAX_LR:g}]")
    check(
        math.isfinite(t.weight_decay) and t.weight_decay >= 0,
        "train.weight_decay",
        t.weight_decay,
        "a number >= 0",
    )
    for i, b in enumerate(t.betas):
        check(math.isfinite(b) and 0 <= b < 1, f"train.betas[{i}]", b, "a number in [0, 1)")
    check(
        math.isfinite(t.grad_clip) and t.grad_clip >= 0,
        "train.grad_clip",
        t.grad_clip,
        "a number >= 0 (0 = off)",
    )
    for key in ("warmup_steps", "eval_every", "log_every", "ckpt_every", "num_workers"):
        value = getattr(t, key)
        check(value >= 0, f"train.{key}", value, "an integer >= 0")
    if hasattr(d, "check"):  # each task's data config checks its own fields
        d.check()


def _known_data(cls: type, saved: dict[str, Any]) -> dict[str, Any]:
    """``saved`` without the legacy data keys that ``cls`` does not have (other unknown keys still raise)."""
    known = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in saved.items() if k in known or k not in LEGACY_DATA_KEYS}


def run_config_from_dict(values: dict[str, Any]) -> RunConfig:
    """Rebuild a saved RunConfig (e.g. from a checkpoint's JSON)."""
    from trustvis import registry

    spec = registry.get(values["method"])
    run = RunConfig(method=values["method"], preset=values.get("preset", "default"))
    run.model = from_dict(spec.config, values.get("model") or {}, "model")  # strict: it shapes the weights
    run.lora = from_dict(LoraConfig, values.get("lora") or {}, "lora")  # strict: it shapes the weights
    data_cls = registry.data_config(spec.task)
    for section, cls in (("train", TrainConfig), ("data", data_cls)):
        saved = dict(values.get(section) or {})
        if section == "data":
            saved = _known_data(cls, saved)
        known = {f.name for f in dataclasses.fields(cls)}
        dropped = sorted(set(saved) - known)
        if dropped:  # a run saved by another trustvis version; these keys do not affect the model
            logging.getLogger(__name__).warning(
                "ignoring unknown %s keys of a saved run: %s", section, dropped
            )
        setattr(run, section, from_dict(cls, {k: v for k, v in saved.items() if k in known}, section))
    return run
