"""The method contract every registered method follows.

A *method* owns its model(s) and its objective; the engine only runs loops. ::

    batch (dict) ──► Method.training_step ──► {"loss": scalar, **scalars}     (trainable methods)
    loader       ──► Method.fit                                                (fit-only methods)
    batch (dict) ──► Method.predict       ──► {documented keys of the task}    (every method)

Batches are dicts with one name per concept: ``image (B,3,H,W)`` float in [0,1], ``label``, ``mask``,
``depth``, ``pid``, ``camid``, ``audio``, ``path``.

``Method.forward`` is ``training_step`` so that a method wrapped in DistributedDataParallel synchronises
its gradients through the usual ``ddp(batch)`` call.

Methods with several optimisers (GANs, adversarial training) set ``manual_optimization = True`` and
take their steps inside ``training_step`` through one hook, :meth:`Method.optimizer_step`::

    def training_step(self, batch):
        loss_d = ...;  self.optimizer_step("disc", loss_d)     # zero_grad, backward, step of "disc" only
        loss_g = ...;  self.optimizer_step("gen", loss_g)
        return {"loss": loss_c.detach(), "loss_d": loss_d.detach(), ...}

``optimizer_step(name, loss)`` back-propagates ``loss`` into the parameters of optimiser ``name`` only
(``backward(inputs=...)``: no other module's gradients are touched), clips them, averages them over
processes under ``torchrun`` and steps. The trainer installs the AMP grad scaler and the process
group behind it; outside the trainer (a test calling ``training_step`` directly) it runs plainly.
Such methods are not wrapped in DistributedDataParallel: their parameters are broadcast from rank 0
once, gradients are all-reduced per step, and BatchNorm statistics stay per process.

``trustvis export`` (:mod:`trustvis.engine.export`) turns the network behind ``predict`` into an ONNX or
TorchScript graph through one hook, :meth:`Method.export_module`::

    image (N,3,H,W) float in [0,1] ──► Method.export_module() ──► (the task's EXPORT_OUTPUTS keys of predict)

The default wraps ``predict`` (:class:`PredictGraph`); a method whose ``predict`` branches on a buffer's value
or runs an op no exporter handles overrides it, and a method with no image network refuses with
:class:`NotExportable` (``not_exportable`` says why).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from trustvis.config import LoraConfig, TrainConfig

Batch = dict[str, Any]

#: the ``predict`` keys an exported graph returns, in order, per registry task (``trustvis export``)
EXPORT_OUTPUTS: dict[str, tuple[str, ...]] = {
    "detect": ("score", "logits"),
    "anomaly": ("score", "anomaly_map"),
    "classify": ("logits", "probs"),
    "augment": ("logits", "probs"),
    "adapt": ("logits", "probs"),
    "active": ("logits", "probs"),
    "reid": ("embedding",),
}

#: why the methods of a task with no image -> score graph are not exported
_NOT_EXPORTED_TASKS = {
    "codec": "a codec's output is a bitstream written by an entropy coder (constriction) outside the network",
    "calibrate": "a post-hoc calibrator rescales another model's logits; export the classifier run it calibrates",
    "antispoof": "an RGB + depth method takes two inputs (image and depth); trustvis export writes single-image graphs",
}


class NotExportable(ValueError):
    """A method's ``predict`` path cannot become an exported graph; the message names the method and why."""


class PredictGraph(nn.Module):
    """``image -> tuple(predict({"image": image})[k] for k in keys)``: the default
    :meth:`Method.export_module`, traced by TorchScript and ``torch.export`` (ONNX)."""

    def __init__(self, method: Method, keys: Sequence[str]) -> None:
        super().__init__()
        self.method = method
        self.keys = tuple(keys)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.method.predict({"image": image})
        return tuple(out[k].float() for k in self.keys)


class Method(nn.Module):
    """Base class of every trustvis method (one level of inheritance, no mixins)."""

    method_name: ClassVar[str] = ""  # set by registry.register
    task: ClassVar[str] = ""  # set by registry.register
    manual_optimization: ClassVar[bool] = False
    #: the batch keys ``predict`` (and ``fit``) read: images for most methods, ``("logits",)`` for the post-hoc
    #: calibrators, which fit on another model's logits
    inputs: ClassVar[tuple[str, ...]] = ("image",)
    #: False for fit-only methods (calibrators, PaDiM): the trainer takes no gradient step
    trainable: ClassVar[bool] = True
    #: True when the method estimates statistics of its training set: after the gradient steps (if any)
    #: the trainer calls ``fit(loader)`` once with an ordered, unshuffled loader over the whole set
    fits_statistics: ClassVar[bool] = False
    #: labels the training set may hold (None = all). FingerprintNet sets (0,): its data pipeline then
    #: never lists a generated image, because the method makes its own fakes from real ones.
    train_labels: ClassVar[tuple[int, ...] | None] = None
    #: module paths of the networks kept in eval mode while the method trains (the frozen backbones of a
    #: linear probe); set per instance by :meth:`configure_trainable` (``freeze_to_heads``)
    frozen_eval: Sequence[str] = ()
    #: module paths trained in full under LoRA or a linear probe (the backbones' heads, or LoRA's
    #: ``train_modules``); None until :meth:`configure_trainable` (or the ``lora`` method) sets them
    trained_heads: Sequence[str] | None = None
    #: why ``predict`` cannot be exported as a graph ("" = it can); ``trustvis export`` reports it in one line
    not_exportable: ClassVar[str] = ""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        #: installed by the trainer for manual-optimisation methods: (optimiser, loss) -> None
        self._step_fn: Callable[[torch.optim.Optimizer, torch.Tensor], None] | None = None

    # --- training -------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Method:
        """``nn.Module.train``, except that the networks in ``self.frozen_eval`` (frozen backbones of a
        linear probe) stay in eval mode — BatchNorm statistics and dropout frozen — but for the modules in
        ``self.trained_heads``."""
        super().train(mode)
        if mode:
            for name in self.frozen_eval:
                self.get_submodule(name).eval()
            for name in (self.trained_heads or ()) if self.frozen_eval else ():
                self.get_submodule(name).train()
        return self

    def configure_trainable(self, lora: LoraConfig, trainable: str = "all") -> None:
        """Restrict what trains as the run starts: ``lora.r > 0`` injects LoRA adapters into the
        method's backbones (:func:`trustvis.methods.adapt.lora.apply_lora`), ``trainable == "heads"``
        freezes all but their classification heads (a linear probe,
        :func:`trustvis.methods.adapt.lora.freeze_to_heads`); otherwise every parameter trains. The two
        exclude each other (checked by the caller, ``build_method``)."""
        if trainable == "heads" or lora.r:
            from trustvis.methods.adapt import lora as adapt_lora

            if lora.r:
                adapt_lora.apply_lora(self, lora)
            else:
                adapt_lora.freeze_to_heads(self)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        return self.training_step(batch)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One step on ``batch``; returns ``{"loss": scalar tensor, **other scalars}``."""
        raise NotImplementedError(f"{type(self).__name__} is not trainable by gradient steps; use fit()")

    def on_step_start(self, step: int) -> None:
        """Called by the trainer before each optimiser step (``step`` = steps done so far, also right after a
        resume). Default: nothing. A method with phases (:mod:`trustvis.engine.phases`: per-phase learning
        rates, groups rolled back to their pretrained weights) applies its schedule here."""

    def configure_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        """Default: one Adam(W) over all trainable parameters with the run's lr/betas/weight decay."""
        return {"main": self.run_optimizer(self.parameters(), train)}

    @staticmethod
    def run_optimizer(params, train: TrainConfig) -> torch.optim.Optimizer:
        """Adam (AdamW when ``train.weight_decay > 0``) over the trainable ``params`` with the run's settings."""
        params = [p for p in params if p.requires_grad]
        opt_cls = torch.optim.AdamW if train.weight_decay > 0 else torch.optim.Adam
        return opt_cls(params, lr=train.lr, betas=tuple(train.betas), weight_decay=train.weight_decay)

    def optimizer_step(self, name: str, loss: torch.Tensor) -> None:
        """Manual-optimisation hook: zero_grad, backward into optimiser ``name``'s parameters, step."""
        if name not in self.optimizers:
            raise KeyError(
                f"{type(self).__name__} has no optimiser {name!r}; it has {sorted(self.optimizers)}"
            )
        if self._step_fn is not None:
            self._step_fn(self.optimizers[name], loss)
            return
        opt = self.optimizers[name]
        params = [p for g in opt.param_groups for p in g["params"] if p.requires_grad]
        opt.zero_grad(set_to_none=True)
        loss.backward(inputs=params)
        opt.step()

    def backbone_heads(self) -> dict[str, list[str]]:
        """``{backbone module path: [its classification head paths]}`` — where ``--lora`` puts adapters
        and what a linear probe (``train.trainable=heads``) trains. Default: every network built by
        ``build_classifier`` (a ``Normalized`` wrapper ``w``: backbone ``w.net``, head ``w.net.<head_name>``).
        Methods whose networks are built otherwise override this."""
        from trustvis.nn.backbones import Normalized

        out = {}
        for name, m in self.named_modules():
            if isinstance(m, Normalized):
                net = f"{name}.net" if name else "net"
                out[net] = [f"{net}.{m.head_name}"] if m.head_name else []
        return out

    # --- data -----------------------------------------------------------------------------------
    def make_transform(self, train: bool) -> Callable[[np.ndarray], torch.Tensor]:
        """uint8 (H,W,3) image -> model input tensor (3,H,W). Train transforms may be random."""
        from trustvis.data.transforms import to_tensor

        return to_tensor

    # --- inference ------------------------------------------------------------------------------
    def predict(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Inference on ``batch``; returns the documented keys of the method's task."""
        raise NotImplementedError

    # --- export ---------------------------------------------------------------------------------
    def export_outputs(self) -> tuple[str, ...]:
        """The ``predict`` keys an exported graph returns, in order (:data:`EXPORT_OUTPUTS` of the task)."""
        return EXPORT_OUTPUTS.get(self.task, ())

    def export_module(self) -> nn.Module:
        """The network behind ``predict`` as a module for ``trustvis export`` (ONNX, TorchScript).

        It takes ``image (N,3,H,W)`` float in [0,1], as :meth:`make_transform` (eval) returns it, and returns
        a tuple of tensors: the :meth:`export_outputs` keys of ``predict``, in that order. Default:
        :class:`PredictGraph` over ``predict``.

        Raises:
            NotExportable: the method has no image network to export (``not_exportable``, a ``predict`` that
                reads something other than images, a task without an image -> score graph).
        """
        reason = self.not_exportable or _NOT_EXPORTED_TASKS.get(self.task, "")
        if not reason and tuple(self.inputs) != ("image",):
            reason = f"its predict reads {', '.join(self.inputs)} of another model, not images"
        if not reason and self.task not in EXPORT_OUTPUTS:
            reason = f"{self.task or 'untyped'} methods have no image -> score/logits graph"
        if reason:
            raise NotExportable(f"{self.method_name or type(self).__name__} cannot be exported: {reason}")
        return PredictGraph(self, self.export_outputs())

    def export_image_size(self) -> int | tuple[int, int] | None:
        """The square side (or (height, width)) the network must be given (its eval transform crops or resizes,
        or its statistics were fitted, at that size), or None when it reads any size."""
        for key in ("image_size", "crop_size"):
            v = getattr(self.config, key, 0)
            if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                return v
        return None

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
