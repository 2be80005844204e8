"""``trustvis demo`` (``make demo``): the detection benchmark in miniature, with a first result in minutes.

What it shows, on real photos and generators trained here, offline and on a CPU::

    SynthBench demo (real photo patches + fakes of 7 small generator families; about 1.5 min to build)
      └─► a strong baseline (``cnndet``) and a seed method (``d4``), trained briefly on ONE family
      └─► tested on the six families they never saw ──► mean AP / accuracy per detector
      └─► ``predict`` on photos no detector saw and on fakes of unseen families ──► p(fake) per image
      └─► results.json, results.md, samples.csv, figures, report.html

It is :func:`trustvis.bench.detect.run_detect_bench` on the ``demo`` SynthBench size with a short step
budget, without the degraded test sets, the artifact compression maps and the adversarial table (``make
bench-detect`` runs the whole quick protocol: 40 min to 2.5 hours on 2 cores). A second run reuses the
trained detectors and the built data. Its numbers come from fewer images and steps than the quick bench's,
so read them as a demonstration, not as the benchmark.

Choices:
    - ``d4`` trains its full-spectrum model for a third of the steps and its ensemble for the rest, as in
      its quick preset (250 + 500), whatever ``steps`` is.
    - The sample images are whole test-split photos reduced to 512 px on their long side (the detectors
      saw patches of photos reduced to 768 px, and score a large image by a full-resolution centre crop)
      and fakes of unseen families from the demo build's test split: images no detector trained on.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: the detectors of the demo: a strong baseline and the seed method that beat it in the quick bench
DEMO_METHODS = ("cnndet", "d4")
#: training steps per detector (batch 32): about 1.5 min each on 2 cores
DEMO_STEPS = 300
#: the share of d4's steps that train its full-spectrum model before the saliency partition (the quick
#: preset's 250 of 750); the rest train the ensemble
D4_SALIENCY_SHARE = 1 / 3
#: the photos' long side in the sample folder
SAMPLE_SIDE = 512


def _sample_images(root: Path, out: Path, n_photos: int, families: list[str]) -> list[tuple[Path, str]]:
    """Copy ``n_photos`` test photos and one fake of each family in ``families`` to ``out``; (file, truth)."""
    import numpy as np
    from PIL import Image

    from trustvis.data.io import load_image, save_png
    from trustvis.data.photos import list_photos, split_photos

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    samples: list[tuple[Path, str]] = []
    for photo in split_photos(list_photos())["test"][:n_photos]:
        img = Image.fromarray(load_image(photo.path))
        img.thumbnail((SAMPLE_SIDE, SAMPLE_SIDE), Image.Resampling.LANCZOS)
        dst = out / f"real_{Path(photo.name).stem}.png"
        save_png(dst, np.asarray(img))
        samples.append((dst, "real"))
    for family in families:
        src = sorted((root / "test" / family / "1_fake").glob("*.png"))[0]
        dst = out / f"fake_{family}_{src.name}"
        shutil.copyfile(src, dst)
        samples.append((dst, "fake"))
    return samples


def run_demo(
    out_dir: str | Path = "results/demo",
    methods: list[str] | None = None,
    steps: int = DEMO_STEPS,
    device: str = "auto",
    seed: int = 0,
    photos: int = 3,
    progress: bool = True,
    command: str = "trustvis demo",
) -> dict[str, Any]:
    """Run the demo. Returns what ``trustvis demo`` prints: ``out``, ``title``, ``headline`` and ``samples``
    (each ``(header, rows)``), ``files`` (report, results, samples) and ``seconds``."""
    import csv
    import json

    from trustvis.bench.detect import run_detect_bench
    from trustvis.bench.options import BenchOptions
    from trustvis.data.synthbench import FAMILIES, TRAIN_FAMILY, synthbench_path
    from trustvis.engine.checkpoint import load_method
    from trustvis.tasks import get_task
    from trustvis.tasks.base import PredictOptions

    t0 = time.perf_counter()
    methods = list(methods or DEMO_METHODS)
    opts = BenchOptions(quick=True, out_dir=out_dir, steps=steps, device=device, seed=seed, command=command,
                        progress=progress)  # fmt: skip
    log.info("trustvis demo: %s trained on the %s family for %d steps, tested on the six others", " and ".join(methods),
             TRAIN_FAMILY, steps)  # fmt: skip
    own = {"d4": [f"model.saliency_steps={max(1, round(steps * D4_SALIENCY_SHARE))}"]}
    out = run_detect_bench(opts, methods=methods, acm_steps=0, attack_images=0, synthbench="demo", robustness=False,
                           method_overrides=own)  # fmt: skip

    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    unseen = [f for f in FAMILIES if f != TRAIN_FAMILY]

    task = get_task("detect")
    samples = _sample_images(synthbench_path("demo"), out / "samples", photos, unseen[-3:])
    scores: dict[str, dict[str, dict[str, Any]]] = {}
    for name in methods:
        method = load_method(out / "runs" / name, device="cpu")
        pred = task.predict(
            method, [p for p, _ in samples], PredictOptions(threshold=0.5), out / "runs" / name
        )
        scores[name] = {r["path"]: r for r in pred.records}

    rows = []
    for path, truth in samples:
        rows.append(
            [path.name, truth, *[scores[n].get(str(path), {}).get("score", float("nan")) for n in methods]]
        )
    with open(out / "samples.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["image", "truth", *[f"{n} p(fake)" for n in methods]], *rows])

    m = res["methods"]
    return {
        "out": out,
        "title": f"trustvis demo: detectors trained on one generator family ({TRAIN_FAMILY}), tested on "
        f"{len(unseen)} they never saw (SynthBench demo, {res['data']['image_size']} px patches, one seed)",
        "headline": (
            ["detector", "kind", "train steps", "train s", "mean AP unseen", "mean acc unseen"],
            [
                [
                    n,
                    "seed method" if m[n]["seed_method"] else "baseline",
                    m[n]["train_steps"],
                    m[n]["train_seconds"],
                    m[n]["mean_unseen"]["ap"],
                    m[n]["mean_unseen"]["acc"],
                ]
                for n in methods
            ],
        ),  # fmt: skip
        "samples": (["image", "truth", *[f"{n} p(fake)" for n in methods]], rows),
        "files": {
            "report": out / "report.html",
            "results": out / "results.md",
            "samples": out / "samples.csv",
        },
        "seconds": time.perf_counter() - t0,
    }
