"""CUDA + AMP smoke check of every registered method (run by hand on a GPU machine; not part of CI).

    PYTHONPATH=src python scripts/gpu_smoke.py [--steps 4] [--methods d4,frepgan]

Builds each method's ``tiny`` preset, trains a few steps on a tiny generated ForenSynths folder with
``train.device=cuda`` and ``train.amp=true`` (fp16 autocast + gradient scaler, including the manual-
optimisation path), predicts, and prints one line per method. Exit code 1 if any method fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def make_folder(root: Path, n: int = 8, size: int = 32) -> Path:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    checker = ((yy + xx) % 2 * 2 - 1)[..., None] * 40.0
    for label, sub in ((0, "0_real"), (1, "1_fake")):
        d = root / "gen" / sub
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = np.kron(rng.normal(128, 30, (size // 4, size // 4, 3)), np.ones((4, 4, 1)))
            img = img + checker if label else img
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(d / f"{i:03d}.png")
    return root


def main() -> int:
    from trustvis import registry
    from trustvis.config import make_run_config
    from trustvis.data.forensynths import ForenSynthsDataset
    from trustvis.engine import Trainer, seed_everything

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--methods", help="comma-separated subset (default: all)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device")
        return 1
    names = args.methods.split(",") if args.methods else [s.name for s in registry.list_methods()]
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        root = make_folder(Path(tmp) / "data")
        for name in names:
            try:
                run = make_run_config(name, "tiny", overrides=[
                    f"train.steps={args.steps}", "train.batch_size=4", "train.progress=false",
                    "train.device=cuda", "train.amp=true"])  # fmt: skip
                seed_everything(0)
                method = registry.get(name).cls(run.model)
                ds = ForenSynthsDataset(
                    root, transform=method.make_transform(True), labels=method.train_labels
                )
                summary = Trainer(method, run, Path(tmp) / name).fit(ds)
                test = ForenSynthsDataset(root, transform=method.make_transform(False))
                batch = torch.utils.data.default_collate([test[i] for i in range(4)])
                batch = {k: v.cuda() if torch.is_tensor(v) else v for k, v in batch.items()}
                out = method.predict(batch)
                finite = all(torch.isfinite(v).all().item() for v in out.values())
                print(f"{name:16s} ok  steps={summary['steps']} last={summary['last']} finite={finite}")
                if not finite:
                    failed.append(name)
            except Exception:  # noqa: BLE001  (report every method, then fail)
                traceback.print_exc()
                print(f"{name:16s} FAILED")
                failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
