"""The method contract every registered method follows.

A *method* owns its model(s) and its objective; the engine only runs loops. ::

    batch (dict) ──► Method.training_step ──► {"loss": scalar, **scalars}     (trainable methods)
    loader       ──► Method.fit                                                (fit-only methods)
    batch (dict) ──► Method.predict       ──► {documented keys of the task}    (every method)

Batches are dicts with one name per concept: ``image (B,3,H,W)`` float in [0,1], ``label``, ``mask``,
``depth``, ``pid``, ``camid``, ``audio``, ``path``.

``Method.forward`` is ``training_step`` so that a method wrapped in DistributedDataParallel synchronises
its gradients through the usual ``ddp(batch)`` call.

Methods with several optimisers (GANs, adversarial training) set ``manual_optimization = True``:
the trainer then hands them ``self.optimizers`` (the dict from ``configure_optimizers``) and leaves
``zero_grad``/``backward``/``step`` to ``training_step``, which still returns the dict of scalars.
Such methods train in a single process for now: the trainer refuses them under torchrun, because DDP
cannot synchronise optimiser steps taken inside ``training_step``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from trustvis.config import TrainConfig

Batch = dict[str, Any]


class Method(nn.Module):
    """Base class of every trustvis method (one level of inheritance, no mixins)."""

    method_name: ClassVar[str] = ""  # set by registry.register
    task: ClassVar[str] = ""  # set by registry.register
    manual_optimization: ClassVar[bool] = False
    #: preset -> partial run config ({"train": {...}, "data": {...}}) suggested for that preset
    run_defaults: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    # --- training -------------------------------------------------------------------------------
    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        return self.training_step(batch)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One step on ``batch``; returns ``{"loss": scalar tensor, **other scalars}``."""
        raise NotImplementedError(f"{type(self).__name__} is not trainable by gradient steps; use fit()")

    def configure_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        """Default: one Adam(W) over all trainable parameters with the run's lr/betas/weight decay."""
        params = [p for p in self.parameters() if p.requires_grad]
        opt_cls = torch.optim.AdamW if train.weight_decay > 0 else torch.optim.Adam
        return {
            "main": opt_cls(params, lr=train.lr, betas=tuple(train.betas), weight_decay=train.weight_decay)
        }

    # --- data -----------------------------------------------------------------------------------
    def make_transform(self, train: bool) -> Callable[[np.ndarray], torch.Tensor]:
        """uint8 (H,W,3) image -> model input tensor (3,H,W). Train transforms may be random."""
        from trustvis.data.transforms import to_tensor

        return to_tensor

    # --- inference ------------------------------------------------------------------------------
    def predict(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Inference on ``batch``; returns the documented keys of the method's task."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
