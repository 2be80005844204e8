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
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file, save_model

import trustvis
from trustvis.data.cache import atomic_dir, atomic_write_json, atomic_write_text

FORMAT = "trustvis-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete, or belongs to another method."""


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
    if not path.is_file():
        raise CheckpointError(f"No weights file at {path}")
    state = load_file(str(path), device="cpu")
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
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{meta_path} is not valid JSON: {e}") from e
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{meta_path}: unknown checkpoint format {meta.get('format')!r}, expected {FORMAT!r}"
        )
    return meta


TRAINABLE = ("all", "heads")


def build_method(run: Any, pretrained: bool = True) -> Any:
    """The method of ``run`` as its training starts.

    Built from ``run.model``; then initialised from ``run.train.init_from`` (a finished run of the same
    method); then restricted: ``run.train.trainable == "heads"`` freezes all but the classification heads
    (a linear probe), ``run.lora.r > 0`` injects LoRA adapters (see ``trustvis.methods.adapt.lora``).
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
        method = registry.get(run.method).cls(run.model)
    if init_from:
        meta = read_meta(init_from)
        if meta["method"] != run.method:
            raise CheckpointError(
                f"train.init_from={init_from} holds a {meta['method']!r} run, not {run.method!r}"
            )
        load_weights(method, Path(init_from) / "model.safetensors")
    if run.train.trainable == "heads" or run.lora.r:
        from trustvis.methods.adapt import lora

        if run.lora.r:
            lora.apply_lora(method, run.lora)
        else:
            lora.freeze_to_heads(method)
    return method


def load_method(run_dir: str | Path, expect_method: str | None = None, device: str = "cpu") -> Any:
    """Rebuild the method saved in ``run_dir`` and load its final weights (no unpickling)."""
    from trustvis.config import run_config_from_dict

    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    if expect_method is not None and meta["method"] != expect_method:
        raise CheckpointError(f"{run_dir} holds a {meta['method']!r} checkpoint, not {expect_method!r}")
    run = run_config_from_dict(meta["config"])
    method = build_method(run, pretrained=False)  # the checkpoint holds every weight (and any adapters)
    load_weights(method, run_dir / "model.safetensors")
    method.to(device)
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
    path = ckpt_root / pointer.read_text(encoding="utf-8").strip()
    return path if (path / "state.json").is_file() else None


def load_checkpoint(
    path: str | Path,
    method: torch.nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    expect_method: str,
) -> dict[str, Any]:
    """Restore weights, optimiser and RNG states from a checkpoint folder; returns its state.json."""
    path = Path(path)
    state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    if state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown checkpoint format {state.get('format')!r}")
    if state["method"] != expect_method:
        raise CheckpointError(f"{path} is a checkpoint of method {state['method']!r}, not {expect_method!r}")
    load_weights(method, path / "model.safetensors")
    tensors = load_file(str(path / "optim.safetensors"), device="cpu")
    opt_tensors = {k: v for k, v in tensors.items() if not k.startswith("rng/")}
    _unflatten_optimizers(optimizers, opt_tensors, state["optimizers"])
    torch.set_rng_state(tensors["rng/torch"])
    return state
