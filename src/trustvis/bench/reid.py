"""``trustvis bench reid``: rolling-back fine-tuning against plain fine-tuning and torchreid's fixbase, at equal
budget, on two offline retrieval sets.

Protocol::

    for set in (vtest: pedestrian tracks of OpenCV's vtest.avi — one real camera, time windows as "cameras";
                photoreid: real photos as identities, each seen through synthetic cameras)
      for method in (finetune, fixbase, rollback) — same ImageNet MobileNetV2 (pip weights), 128x64, batch 32,
                                                   same number of steps
        for seed in seeds
          train on the training identities ──► runs/<set>/<method>/seed<k> (a finished run is reused)
          test identities (never trained on): query vs gallery, flip-averaged L2-normalised features, cosine,
          Market-1501 rules ──► CMC rank-1/5/10, mAP
      mean ± std over seeds
    figures: CMC per set; mean squared gradient per layer group during training (the paper's analysis, seed 0);
             retrieval examples (a query and its top 5, correct ones framed green)
    results.json, results.md, report.html
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from trustvis.bench.common import (
    check_methods,
    mean_std,
    payload_header,
    pm,
    run_line,
    seed_run,
    seed_verdict,
    train_or_reuse,
    write_results,
)
from trustvis.bench.options import BenchOptions

log = logging.getLogger(__name__)

METHODS = ("finetune", "fixbase", "rollback")
DATASETS = ("vtest", "photoreid")
SEEDS = (0, 1, 2)
MEASURES = ("rank1", "rank5", "rank10", "map")


def run_reid_bench(
    opts: BenchOptions,
    methods: list[str] | None = None,
    datasets: list[str] | None = None,
    seeds: list[int] | None = None,
    size: str | None = None,
) -> Path:
    """Run the re-identification protocol; returns the output folder. ``opts.preset``/``opts.overrides`` apply to
    every method (the tests use ``tiny``); ``size`` is the photoreid size (default quick with --quick, else full)."""
    from trustvis.tasks import get_task
    from trustvis.tasks.reid import load_reid_splits, retrieval_metrics

    t_start = time.perf_counter()
    task = get_task("reid")
    methods = list(methods or METHODS)
    datasets = list(datasets or DATASETS)
    seeds = list(seeds if seeds is not None else SEEDS)
    check_methods(methods, "reid", "a re-identification method")
    preset = opts.preset or ("quick" if opts.quick else "default")
    size = size or opts.mode
    out = opts.output("reid")
    results: dict[str, dict[str, Any]] = {}
    sets: dict[str, dict[str, Any]] = {}
    figures: list[dict[str, str]] = []
    cmc: dict[str, dict[str, list[float]]] = {}
    grads: dict[str, dict[str, dict[str, list[tuple[int, float]]]]] = {}
    examples: dict[str, Any] = {}
    for ds in datasets:
        results[ds], cmc[ds], grads[ds] = {}, {}, {}
        data = {"name": ds, "size": size}
        for name in methods:
            per_seed = []
            for seed in seeds:
                run = seed_run(name, preset, opts, seed, data)
                task.prepare(run, set())
                run_dir = out / "runs" / ds / name / f"seed{seed}"
                log.info("%s / %s / seed %d", ds, name, seed)
                method, info = train_or_reuse(run, run_dir, task.datasets)
                splits = load_reid_splits(run.data)
                m = retrieval_metrics(method, splits, batch_size=128)
                per_seed.append({"seed": seed, **{k: float(m[k]) for k in MEASURES}, "cmc": m["cmc"],
                                 "train_seconds": float(info.get("train_seconds", float("nan"))),
                                 "train_steps": int(info.get("train_steps", 0)),
                                 "images_per_second": m["images_per_second"]})  # fmt: skip
                if seed == seeds[0]:
                    grads[ds][name] = _gradient_curves(run_dir)
                    if name == methods[-1]:
                        examples[ds] = (method, splits)
            sets[ds] = _set_info(splits)
            results[ds][name] = _over_seeds(per_seed)
            cmc[ds][name] = results[ds][name]["cmc"]
    figures += _figures(out, cmc, grads, examples)
    payload = {
        **payload_header("reid", opts.command_or("reid"), opts.device),
        "data": {"name": ", ".join(datasets), "size": size},
        "sets": sets,
        "seeds": seeds,
        "methods": methods,
        "results": results,
        "figures": figures,
        "bench_seconds": time.perf_counter() - t_start,
    }
    return write_results(out, payload, results_markdown)


def _set_info(splits: Any) -> dict[str, Any]:
    return {
        "train_images": len(splits.train),
        "train_identities": len(splits.train.identities),
        "query_images": len(splits.query),
        "gallery_images": len(splits.gallery),
        "test_identities": len(set(splits.query.identities) | set(splits.gallery.identities)),
        "notes": splits.notes,
    }


def _gradient_curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """``{group: [(step, mean squared gradient)]}`` from a run's metrics.jsonl (``grad_<group>`` records)."""
    curves: dict[str, list[tuple[int, float]]] = {}
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return curves
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec.get("split") != "train":
            continue
        for k, v in rec.items():
            if k.startswith("grad_") and isinstance(v, (int, float)) and math.isfinite(v) and v > 0:
                curves.setdefault(k[len("grad_") :], []).append((int(rec["step"]), float(v)))
    return curves


def _over_seeds(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        **{k: mean_std([s[k] for s in per_seed]) for k in MEASURES},
        "cmc": [float(x) for x in np.mean([s["cmc"] for s in per_seed], axis=0)],
        "train_seconds": float(np.mean([s["train_seconds"] for s in per_seed])),
        "train_steps": per_seed[0]["train_steps"],
        "seeds": per_seed,
    }


def _figures(out: Path, cmc: dict, grads: dict, examples: dict) -> list[dict[str, str]]:
    from trustvis.metrics.retrieval import cosine_distance, ranked_gallery
    from trustvis.report import plots
    from trustvis.tasks.reid import embeddings

    figs: list[dict[str, str]] = []
    for ds in cmc:
        figs.append({"file": f"fig_cmc_{ds}.png", "caption": f"CMC on {ds} (mean over seeds)"})
        plots.plot_cmc(cmc[ds], out / figs[-1]["file"], title=f"CMC, {ds}")
        if any(grads[ds].values()):
            figs.append({"file": f"fig_grad_{ds}.png", "caption": f"Mean squared gradient per layer group while "
                         f"training on {ds} (g0 = stem ... g4 = last stage; seed 0): the paper's analysis"})  # fmt: skip
            plots.plot_gradient_norms(grads[ds], out / figs[-1]["file"], title=f"gradients, {ds}")
    for ds, (method, splits) in examples.items():
        q = embeddings(method, splits.query)
        g = embeddings(method, splits.gallery)
        dist = cosine_distance(q["embedding"], g["embedding"])
        rows = []
        for qi in np.linspace(0, len(splits.query) - 1, min(4, len(splits.query))).astype(int):
            ranked = ranked_gallery(
                dist, int(qi), g["pid"], g["camid"], int(q["pid"][qi]), int(q["camid"][qi]), k=5
            )
            if not ranked:
                continue
            rows.append({"query": splits.query.image(int(qi)), "gallery": [splits.gallery.image(j) for j, _ in ranked],
                         "correct": [c for _, c in ranked], "caption": f"query {splits.query.names[int(qi)]}"})  # fmt: skip
        if rows:
            figs.append({"file": f"fig_examples_{ds}.png", "caption": f"{method.method_name} on {ds}: queries and their "
                         "top 5 (green: same identity, red: another)"})  # fmt: skip
            plots.plot_retrieval_examples(rows, out / figs[-1]["file"], title=f"retrieval, {ds}")
    return figs


def results_markdown(res: dict[str, Any]) -> str:
    """The Markdown summary of a reid bench ``results.json`` payload."""
    from trustvis.report.tables import markdown_table

    seeds = res.get("seeds", [])
    lines = [f"# Re-identification bench ({res['data']['size']})", "", f"Command: `{res['command']}`  ",
             f"{run_line(res)}  ", f"Rank-k and mAP in %, Market-1501 rules, mean ± std over {len(seeds)} seed(s) "
             f"({seeds}); every method trains for the same number of steps.", ""]  # fmt: skip

    rows = []
    for ds, by in res["results"].items():
        for name, r in by.items():
            rows.append(
                [
                    ds,
                    name,
                    pm(r["rank1"]),
                    pm(r["rank5"]),
                    pm(r["map"]),
                    r["train_steps"],
                    f"{r['train_seconds']:.0f}",
                ]
            )
    lines += [markdown_table(["set", "method", "rank-1", "rank-5", "mAP", "steps", "train s"], rows), ""]
    info = res.get("sets", {})
    for ds, s in info.items():
        lines.append(f"- {ds}: {s['train_identities']} training identities ({s['train_images']} images); "
                     f"{s['test_identities']} test identities, {s['query_images']} queries, {s['gallery_images']} gallery images.")  # fmt: skip
    for ds, by in res["results"].items():
        if "rollback" not in by:
            continue
        a = by["rollback"]["map"]
        for name, r in by.items():
            if name == "rollback":
                continue
            verdict = seed_verdict(a, r["map"], "rollback", name, "mAP")
            lines.append(f"- {ds}: {verdict}.")
    lines += ["", f"Total bench time: {res['bench_seconds']:.0f} s. Figures: "
              + ", ".join(f["file"] for f in res["figures"]) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"
