"""Engine: the generic Trainer, batched inference, checkpoints and torchrun helpers."""

from trustvis.engine.checkpoint import CheckpointError, load_method, save_final
from trustvis.engine.inference import predict_dataset
from trustvis.engine.trainer import Trainer, seed_everything

__all__ = ["CheckpointError", "Trainer", "load_method", "predict_dataset", "save_final", "seed_everything"]
