"""Checkpoints: safetensors weights + JSON, written atomically; loading never unpickles.

Layout of a run folder::

    run/
      config.yaml                 resolved run config
      model.safetensors           final weights            ┐ what `trustvis predict/eval` load
      model.json                  method, preset, config,  ┘ version, step
      metrics.jsonl               one JSON record per log/eval event
      checkpoints/
        latest                    name of the newest complete checkpoint (written last, atomically)
        step-000200/
          model.safetensors
          optim.safetensors       every tensor of every optimiser state (+ RNG states)
          state.json              method, config, version, step, optimiser param groups and scalars

Every read failure is a :class:`CheckpointError` whose one-line message names the file: a truncated or
foreign tensors file (a pickle or ``torch.save`` file under a ``.safetensors`` name is recognised and
never unpickled), corrupt JSON, weights of another shape (the first mismatching key and both shapes).
:func:`load_method` also refuses weights that hold NaN/inf (a broken model must not answer at all).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file, save_model

import trustvis
from trustvis.atomic import atomic_dir, atomic_write_json, atomic_write_text

FORMAT = "trustvis-checkpoint/1"

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete, or belongs to another method."""


def _sniff(path: Path) -> str:
    """What a file that failed to parse as safetensors looks like: a hint for the error message."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return ""
    if head[:1] == b"\x80":
        return " (it is a Python pickle; trustvis never unpickles: convert trusted weights to safetensors)"
    if head[:2] == b"PK":
        return (
            " (it is a torch.save/zip file; trustvis never unpickles: convert trusted weights to safetensors)"
        )
    return ""


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of the safetensors file ``path`` on the CPU; a one-line CheckpointError naming it otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No weights file at {path}")
    try:
        return load_file(str(path), device="cpu")
    except SafetensorError as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(
            f"{path} is not a readable safetensors file (truncated or another format): {reason}{_sniff(path)}"
        ) from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the weights file: {e.strerror or e}") from None


def read_json(path: str | Path, what: str = "checkpoint") -> dict[str, Any]:
    """A JSON object from ``path``; a one-line CheckpointError naming the file when it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing: the {what} is incomplete") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is not valid JSON ({what} damaged): {e}") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__} ({what} damaged)")
    return data


def first_nonfinite(module: torch.nn.Module) -> str | None:
    """The name of the first parameter or floating buffer of ``module`` holding NaN/inf, or None.

    A 0-dim floating buffer may be NaN: that is an unset scalar (e.g. an anomaly method's threshold before
    validation), which the method checks before use; inf is never allowed.
    """
    for name, t in module.state_dict(keep_vars=False).items():
        if not t.is_floating_point() and not t.is_complex():
            continue
        if t.dim() == 0 and torch.isnan(t).all():
            continue
        if not torch.isfinite(t).all():
            return name
    return None


def _save_model_atomic(module: torch.nn.Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_model(module, tmp, metadata=metadata)  # handles shared tensors
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_weights(module: torch.nn.Module, path: str | Path) -> None:
    """Load safetensors weights into ``module`` (strict); errors list missing/unexpected keys."""
    path = Path(path)
    state = read_tensors(path)
    own = module.state_dict()
    # save_model drops aliases of shared tensors; restore them from their twin
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if unexpected or missing:
        still_missing = []
        for k in missing:
            twin = next((j for j, v in own.items() if j in state and v.data_ptr() == own[k].data_ptr()), None)
            if twin is None:
                still_missing.append(k)
        if unexpected or still_missing:
            raise CheckpointError(
                f"{path}: weights do not fit this model; missing {still_missing[:8]}, unexpected {unexpected[:8]}"
            )
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            n = sum(tuple(w.shape) != tuple(own[j].shape) for j, w in state.items())
            raise CheckpointError(
                f"{path}: weights do not fit this model: {k} has shape {tuple(v.shape)} in the file, "
                f"{tuple(own[k].shape)} in the model ({n} tensor(s) differ; saved with another config?)"
            )
    module.load_state_dict(state, strict=False)


# ----------------------------------------------------------------------------------------------------
# final model


def save_final(method: torch.nn.Module, run_dir: str | Path, run_config: dict[str, Any], step: int) -> Path:
    """Write ``model.safetensors`` + ``model.json`` into ``run_dir`` (each atomically)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _save_model_atomic(
        method, run_dir / "model.safetensors", {"format": FORMAT, "method": run_config["method"]}
    )
    meta = {
        "format": FORMAT,
        "trustvis_version": trustvis.__version__,
        "method": run_config["method"],
        "preset": run_config.get("preset", "default"),
        "step": step,
        "config": run_config,
    }
    atomic_write_json(run_dir / "model.json", meta)
    return run_dir / "model.json"


def read_meta(run_dir: str | Path) -> dict[str, Any]:
    """The ``model.json`` of a run folder, with a clear error when it is not one."""
    run_dir = Path(run_dir)
    meta_path = run_dir / "model.json" if run_dir.is_dir() else run_dir
    if not meta_path.is_file():
        raise CheckpointError(
            f"{run_dir} is not a trained run: no model.json (train one with `trustvis train METHOD --out DIR`)"
        )
    meta = read_json(meta_path, "run's model.json")
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{meta_path}: unknown checkpoint format {meta.get('format')!r}, expected {FORMAT!r}"
        )
    if not isinstance(meta.get("method"), str) or not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{meta_path} lacks its 'method' or 'config' entry (model.json damaged)")
    return meta


TRAINABLE = ("all", "heads")


def build_method(run: Any, pretrained: bool = True) -> Any:
    """The method of ``run`` as its training starts.

    Built from ``run.model``; then initialised from ``run.train.init_from`` (a finished run of the same
    method); then restricted: ``run.train.trainable == "heads"`` freezes all but the classification heads
    (a linear probe), ``run.lora.r > 0`` injects LoRA adapters (``Method.configure_trainable``).
    ``pretrained=False`` reads no weight file at all (a checkpoint is about to overwrite every weight).
    """
    from trustvis import registry
    from trustvis.nn.backbones import no_pretrained

    if run.train.trainable not in TRAINABLE:
        raise ValueError(f"Unknown train.trainable {run.train.trainable!r}; choose from {list(TRAINABLE)}")
    if run.train.trainable != "all" and run.lora.r:
        raise ValueError("train.trainable=heads and LoRA exclude each other (LoRA already trains the heads)")
    init_from = run.train.init_from if pretrained else ""
    with no_pretrained() if (init_from or not pretrained) else contextlib.nullcontext():
        weights = getattr(run.model, "weights", None) if pretrained and not init_from else None
        try:
            method = registry.get(run.method).cls(run.model)
        except (pickle.UnpicklingError, SafetensorError, EOFError, RuntimeError) as e:
            # a weights file of the method's config (model.weights=FILE) that torch.load (weights_only)
            # or safetensors refused; nothing in it ran
            if not isinstance(weights, str) or not weights:
                raise
            raise CheckpointError(f"model.weights={weights}: cannot load it: {_load_reason(e)}") from None
    if init_from:
        meta = read_meta(init_from)
        if meta["method"] != run.method:
            raise CheckpointError(
                f"train.init_from={init_from} holds a {meta['method']!r} run, not {run.method!r}"
            )
        load_weights(method, Path(init_from) / "model.safetensors")
    method.configure_trainable(run.lora, run.train.trainable)
    return method


def _load_reason(e: BaseException) -> str:
    """One line out of a (multi-line) torch.load / safetensors error."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    if isinstance(e, pickle.UnpicklingError):
        why = next((ln for ln in lines if "GLOBAL" in ln or "Unsupported" in ln or "unsupported" in ln), "")
        return (
            "it is a pickle that holds more than tensors"
            + (f" ({why})" if why else "")
            + "; it was not unpickled (trustvis loads tensors only: convert trusted weights to safetensors)"
        )
    return lines[0] if lines else type(e).__name__


def load_method(run_dir: str | Path, expect_method: str | None = None, device: str = "cpu") -> Any:
    """Rebuild the method saved in ``run_dir`` and load its final weights (no unpickling).

    Raises:
        CheckpointError: no run, a damaged file, weights of another shape, or weights that hold NaN/inf.
    """
    from trustvis.config import run_config_from_dict
    from trustvis.engine.distributed import resolve_device

    target = resolve_device(str(device))  # an unknown or missing device fails before any loading
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    if expect_method is not None and meta["method"] != expect_method:
        raise CheckpointError(f"{run_dir} holds a {meta['method']!r} checkpoint, not {expect_method!r}")
    run = run_config_from_dict(meta["config"])
    method = build_method(run, pretrained=False)  # the checkpoint holds every weight (and any adapters)
    load_weights(method, run_dir / "model.safetensors")
    bad = first_nonfinite(method)
    if bad is not None:
        raise CheckpointError(
            f"{run_dir / 'model.safetensors'}: the weights hold NaN or inf (first: {bad}); this model is broken "
            "and cannot score anything (retrain it, e.g. with a lower train.lr)"
        )
    method.to(target)
    method.eval()
    method.run_config = run
    return method


# ----------------------------------------------------------------------------------------------------
# resumable checkpoints


def _flatten_optimizers(optimizers: dict[str, torch.optim.Optimizer]) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for idx, st in sd["state"].items():
            for key, val in st.items():
                if torch.is_tensor(val):
                    tensors[f"{name}/{idx}/{key}"] = val.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(idx), {})[key] = val
        meta[name] = {"param_groups": sd["param_groups"], "scalars": scalars}
    return tensors, meta


def _unflatten_optimizers(
    optimizers: dict[str, torch.optim.Optimizer], tensors: dict[str, torch.Tensor], meta: dict
) -> None:
    for name, opt in optimizers.items():
        if name not in meta:
            raise CheckpointError(f"checkpoint has no state for optimiser {name!r}; it has {sorted(meta)}")
        state: dict[int, dict[str, Any]] = {}
        for key, val in tensors.items():
            oname, idx, skey = key.split("/", 2)
            if oname == name:
                state.setdefault(int(idx), {})[skey] = val
        for idx, sc in meta[name]["scalars"].items():
            state.setdefault(int(idx), {}).update(sc)
        opt.load_state_dict({"state": state, "param_groups": meta[name]["param_groups"]})


def save_checkpoint(
    run_dir: str | Path,
    method: torch.nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    run_config: dict[str, Any],
    step: int,
    extra: dict[str, Any] | None = None,
    keep: int = 2,
) -> Path:
    """Write a resumable checkpoint folder atomically, then point ``checkpoints/latest`` at it."""
    ckpt_root = Path(run_dir) / "checkpoints"
    name = f"step-{step:07d}"
    with atomic_dir(ckpt_root / name) as tmp:
        save_model(method, str(tmp / "model.safetensors"))
        tensors, opt_meta = _flatten_optimizers(optimizers)
        tensors["rng/torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            for i, s in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng/cuda{i}"] = s
        save_file(tensors, str(tmp / "optim.safetensors"))
        state = {
            "format": FORMAT,
            "trustvis_version": trustvis.__version__,
            "method": run_config["method"],
            "config": run_config,
            "step": step,
            "optimizers": opt_meta,
            "extra": extra or {},
        }
        (tmp / "state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
    atomic_write_text(ckpt_root / "latest", name + "\n")
    old = sorted(p for p in ckpt_root.glob("step-*") if p.is_dir() and p.name != name)
    for p in old[: max(0, len(old) - (keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return ckpt_root / name


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder of a run, or None."""
    ckpt_root = Path(run_dir) / "checkpoints"
    pointer = ckpt_root / "latest"
    if not pointer.is_file():
        return None
    name = pointer.read_text(encoding="utf-8", errors="replace").strip()
    path = ckpt_root / name
    if name.startswith("step-") and "/" not in name and (path / "state.json").is_file():
        return path
    # the pointer is damaged or names a removed folder: the newest complete checkpoint instead
    found = sorted(p for p in ckpt_root.glob("step-*") if (p / "state.json").is_file())
    if found:
        log.warning("%s names no complete checkpoint (%r); using %s", pointer, name, found[-1].name)
        return found[-1]
    return None


def load_checkpoint(
    path: str | Path,
    method: torch.nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    expect_method: str,
) -> dict[str, Any]:
    """Restore weights, optimiser and RNG states from a checkpoint folder; returns its state.json."""
    path = Path(path)
    state_path = path / "state.json"
    state = read_json(state_path, "checkpoint")
    if state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown checkpoint format {state.get('format')!r}")
    missing = [k for k in ("method", "step", "optimizers") if k not in state]
    if missing:
        raise CheckpointError(f"{state_path} lacks {missing} (checkpoint damaged)")
    if state["method"] != expect_method:
        raise CheckpointError(f"{path} is a checkpoint of method {state['method']!r}, not {expect_method!r}")
    load_weights(method, path / "model.safetensors")
    optim_path = path / "optim.safetensors"
    tensors = read_tensors(optim_path)
    if "rng/torch" not in tensors:
        raise CheckpointError(f"{optim_path} lacks the RNG state 'rng/torch' (checkpoint damaged)")
    opt_tensors = {k: v for k, v in tensors.items() if not k.startswith("rng/")}
    try:
        _unflatten_optimizers(optimizers, opt_tensors, state["optimizers"])
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{optim_path}: the optimiser state does not fit this run: {reason}") from None
    torch.set_rng_state(tensors["rng/torch"])
    return state
