"""Batched inference over a dataset: ``method.predict`` on every batch, outputs gathered as numpy."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm


@torch.no_grad()
def predict_dataset(
    method: Any,
    dataset: Dataset,
    batch_size: int = 64,
    keys: tuple[str, ...] = ("score",),
    num_workers: int = 0,
    progress: bool = True,
    desc: str = "predict",
) -> dict[str, Any]:
    """Run ``method.predict`` over ``dataset``.

    Returns:
        ``{key: np.ndarray (N, ...)}`` for each requested prediction key, plus every non-image field
        of the items (``label``, ``path``, ``generator``, ...; not the model's inputs: image, depth) and ``seconds``/``images_per_second``
        for the forward passes alone (data loading excluded).
    """
    method.eval()
    device = method.device
    model_inputs = set(getattr(method, "inputs", ("image",))) | {"image"}  # not returned as fields
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    outputs: dict[str, list] = {k: [] for k in keys}
    fields: dict[str, list] = {}
    seconds = 0.0
    n = 0
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False, dynamic_ncols=True):
        inputs = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
        t0 = time.perf_counter()
        pred = method.predict(inputs)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds += time.perf_counter() - t0
        n += len(batch["image"])
        for k in keys:
            if k not in pred:
                raise KeyError(f"{type(method).__name__}.predict returned {sorted(pred)}; expected key {k!r}")
            outputs[k].append(pred[k].detach().float().cpu().numpy())
        for k, v in batch.items():
            if k in model_inputs:
                continue
            fields.setdefault(k, []).append(v.cpu().numpy() if torch.is_tensor(v) else np.asarray(list(v)))
    result: dict[str, Any] = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in outputs.items()}
    for k, v in fields.items():
        result[k] = np.concatenate(v)
    result["seconds"] = seconds
    result["images_per_second"] = n / seconds if seconds > 0 else float("nan")
    return result
