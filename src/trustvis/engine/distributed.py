"""Process-group helpers for ``torchrun`` (DDP). A single process is world size 1, rank 0."""

from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> the local CUDA device if there is one (per LOCAL_RANK under torchrun), else CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
        return torch.device("cpu")
    choices = "['auto', 'cpu', 'cuda', 'cuda:N', 'mps']"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"Unknown device {name!r}; choose from {choices}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available; use 'auto' or 'cpu'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(
                f"device {name!r} requested but this PyTorch build has no MPS; use 'auto' or 'cpu'"
            )
    elif device.type != "cpu":
        raise ValueError(f"Unknown device {name!r}; choose from {choices}")
    return device


def init_if_needed(device: torch.device) -> bool:
    """Initialise the default process group when launched by torchrun; returns True if distributed."""
    if not launched_by_torchrun():
        return False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
        # leave the group before the interpreter tears down: a gloo group still alive at exit can abort the
        # process ("terminate called without an active exception", exit -6) after a finished run
        atexit.register(_destroy)
    return True


def _destroy() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(value: float) -> float:
    """Average a python scalar over processes (identity when not distributed)."""
    if world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return float(t.item() / world_size())


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every process (what DDP does when it wraps a module)."""
    if world_size() == 1:
        return
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, src=0)


def all_reduce_gradients(params: list[torch.Tensor]) -> None:
    """Average the ``.grad`` of ``params`` over processes (missing gradients count as zero)."""
    n = world_size()
    if n == 1:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad.div_(n)
