"""``trustvis bench active``: VaB-AL against random, entropy, margin, core-set and BALD, on balanced and
imbalanced pools, with the same classifier, initial labels and budgets.

Protocol::

    for pool in (balanced: the train split as it is; dominant: class data.dominant whole, the others at 10 %)
      for strategy in (random, entropy, margin, coreset, bald, vabal)
        for seed in seeds                                  (the seed draws the initial labels: shared by all)
          the loop of trustvis.tasks.active ──► runs/<pool>/<strategy>/seed<k>   (a finished loop is reused,
          an interrupted one resumes)   initial labels, then rounds x (train from scratch ──► test ──► query)
      per strategy, mean ± std over seeds: test accuracy, balanced accuracy and macro-F1 per round, their area
      under the learning curve (AULC), and the class make-up of every query
    figures: learning curves per pool (accuracy, balanced accuracy); queries per class per pool
    results.json, results.md, report.html

The test split is balanced and never used to choose anything.
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
    write_results,
)
from trustvis.bench.options import BenchOptions
from trustvis.config import to_dict

log = logging.getLogger(__name__)

METHODS = ("random", "entropy", "margin", "coreset", "bald", "vabal")
POOLS = ("balanced", "dominant")
SEEDS = (0, 1, 2)
MEASURES = ("acc", "balanced_acc", "macro_f1")


def run_active_bench(
    opts: BenchOptions,
    methods: list[str] | None = None,
    pools: list[str] | None = None,
    seeds: list[int] | None = None,
    dataset: str = "fashion-mnist",
) -> Path:
    """Run the active-learning protocol; returns the output folder. ``opts.preset``/``opts.overrides`` apply to
    every strategy (the tests use ``tiny``)."""
    from trustvis.tasks import get_task
    from trustvis.tasks.active import POOLS as VALID_POOLS

    t_start = time.perf_counter()
    task = get_task("active")
    methods = list(methods or METHODS)
    pools = list(pools or POOLS)
    seeds = list(seeds if seeds is not None else SEEDS)
    check_methods(methods, "active", "a query strategy")
    for p in pools:
        if p not in VALID_POOLS:
            raise ValueError(f"unknown pool {p!r}; choose from {list(VALID_POOLS)}")
    preset = opts.preset or ("quick" if opts.quick else "default")
    out = opts.output("active")
    results: dict[str, dict[str, Any]] = {}
    pool_info: dict[str, Any] = {}
    for pool in pools:
        results[pool] = {}
        for name in methods:
            per_seed = []
            for seed in seeds:
                run = seed_run(name, preset, opts, seed, {"name": dataset, "pool": pool})
                task.prepare(run, set())
                run_dir = out / "runs" / pool / name / f"seed{seed}"
                log.info("%s pool / %s / seed %d", pool, name, seed)
                state = loop_or_reuse(run, run_dir)
                per_seed.append(_seed_record(state, seed))
                pool_info[pool] = {"size": state["pool_size"], "per_class": state["pool_per_class"],
                                   "classes": state["classes"], "test_size": state["test_size"],
                                   "initial": run.data.initial, "budget": run.data.budget,
                                   "rounds": run.data.rounds, "steps_per_round": run.train.steps,
                                   "dominant": run.data.dominant if pool == "dominant" else None}  # fmt: skip
            results[pool][name] = _over_seeds(per_seed)
    figures = _figures(out, results, pool_info)
    payload = {
        **payload_header("active", opts.command_or("active"), opts.device),
        "data": {"name": dataset, "preset": preset},
        "pools": pool_info,
        "seeds": seeds,
        "methods": methods,
        "results": results,
        "figures": figures,
        "bench_seconds": time.perf_counter() - t_start,
    }
    return write_results(out, payload, results_markdown)


def loop_or_reuse(run: Any, run_dir: Path) -> dict[str, Any]:
    """The finished loop state of ``run`` in ``run_dir``: reused when the folder holds the same finished loop,
    resumed when it holds the same unfinished one, (re)run otherwise."""
    import shutil

    from trustvis.tasks.active import read_state, run_loop

    run_dict = to_dict(run)
    state = read_state(run_dir) if run_dir.is_dir() else None
    same = False
    if state is not None:
        from trustvis.config import load_yaml

        cfg = run_dir / "config.yaml"
        same = cfg.is_file() and load_yaml(cfg) == json.loads(json.dumps(run_dict))
        if same and (run_dir / "model.json").is_file():
            log.info("reusing the finished loop in %s", run_dir)
            return state
        if not same:
            log.info("config of %s changed; running the loop again", run_dir)
            shutil.rmtree(run_dir)
    run_loop(run, run_dir, resume=same)
    state = read_state(run_dir)
    assert state is not None
    return state


def _seed_record(state: dict[str, Any], seed: int) -> dict[str, Any]:
    from trustvis.metrics.active import learning_curve_area

    rounds = [r for r in state["rounds"] if r.get("test")]
    labels = [r["labels"] for r in rounds]
    curves = {k: [r["test"][k] for r in rounds] for k in MEASURES}
    queried = np.sum(
        [r.get("queried_per_class", [0] * len(state["classes"])) for r in state["rounds"]], axis=0
    )
    return {
        "seed": seed,
        "labels": labels,
        "curves": curves,
        "aulc": {k: learning_curve_area(labels, v) for k, v in curves.items()},
        "final": {k: v[-1] for k, v in curves.items()},
        "queried_per_class": [int(c) for c in queried],
        "train_seconds": float(sum(r.get("train_seconds", 0.0) for r in state["rounds"])),
        "query_seconds": float(sum(r.get("query_seconds", 0.0) for r in state["rounds"])),
    }


def _over_seeds(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "labels": per_seed[0]["labels"],
        "curves": {
            k: {
                "mean": np.mean([s["curves"][k] for s in per_seed], 0).tolist(),
                "std": (
                    np.std([s["curves"][k] for s in per_seed], 0, ddof=1).tolist()
                    if len(per_seed) > 1
                    else [math.nan] * len(per_seed[0]["labels"])
                ),
            }
            for k in MEASURES
        },  # fmt: skip
        "aulc": {k: mean_std([s["aulc"][k] for s in per_seed]) for k in MEASURES},
        "final": {k: mean_std([s["final"][k] for s in per_seed]) for k in MEASURES},
        "queried_per_class": np.sum([s["queried_per_class"] for s in per_seed], 0).tolist(),
        "train_seconds": float(np.mean([s["train_seconds"] for s in per_seed])),
        "query_seconds": float(np.mean([s["query_seconds"] for s in per_seed])),
        "seeds": per_seed,
    }


def _figures(out: Path, results: dict[str, Any], pools: dict[str, Any]) -> list[dict[str, str]]:
    from trustvis.report.plots.active import plot_learning_curves, plot_query_classes

    figs: list[dict[str, str]] = []
    for pool, by in results.items():
        for key, name in (("acc", "test accuracy"), ("balanced_acc", "balanced accuracy")):
            curves = {m: {"labels": r["labels"], **r["curves"][key]} for m, r in by.items()}
            figs.append({"file": f"fig_curve_{key}_{pool}.png",
                         "caption": f"{name} against labels, {pool} pool (mean ± std over seeds)"})  # fmt: skip
            plot_learning_curves(curves, out / figs[-1]["file"], ylabel=name, title=f"{name}, {pool} pool")
        info = pools[pool]
        figs.append({"file": f"fig_queries_{pool}.png", "caption": f"share of each class among the queried images, "
                     f"{pool} pool (black: the pool's own share)"})  # fmt: skip
        plot_query_classes({m: r["queried_per_class"] for m, r in by.items()}, info["classes"],
                           out / figs[-1]["file"], reference=info["per_class"], title=f"queries per class, {pool} pool")  # fmt: skip
    return figs


def results_markdown(res: dict[str, Any]) -> str:
    """The Markdown summary of an active bench ``results.json`` payload."""
    from trustvis.report.tables import markdown_table

    seeds = res.get("seeds", [])
    lines = [f"# Active-learning bench ({res['data']['name']}, {res['data']['preset']} preset)", "",
             f"Command: `{res['command']}`  ", f"{run_line(res)}  ",
             f"Test metrics in % on the balanced test split, mean ± std over {len(seeds)} seed(s) ({seeds}); AULC = "
             "area under the learning curve (test metric against labels, normalised). Every strategy starts from "
             "the same random labels and trains the same classifier for the same steps each round.", ""]  # fmt: skip
    for pool, by in res["results"].items():
        info = res["pools"][pool]
        dom = info.get("dominant")
        desc = (
            f"class {dom} ({info['classes'][dom]}) whole, the others at 10 %"
            if dom is not None
            else "as it is"
        )
        n_lab = info["initial"] + info["rounds"] * info["budget"]
        lines += [f"## {pool} pool: {info['size']} images ({desc})", "",
                  f"{info['initial']} random labels, then {info['rounds']} rounds of {info['budget']} queries "
                  f"({n_lab} labels at the end); {info['steps_per_round']} training steps per round; "
                  f"{info['test_size']} test images.", ""]  # fmt: skip
        rows = []
        for name, r in by.items():
            q = np.asarray(r["queried_per_class"], float)
            share = (
                f"{100 * q[dom] / max(q.sum(), 1):.0f}"
                if dom is not None
                else f"{100 * q.max() / max(q.sum(), 1):.0f}"
            )
            rows.append([name, pm(r["final"]["acc"]), pm(r["final"]["balanced_acc"]), pm(r["final"]["macro_f1"]),
                         pm(r["aulc"]["acc"]), pm(r["aulc"]["balanced_acc"]), share,
                         f"{r['train_seconds'] + r['query_seconds']:.0f}"])  # fmt: skip
        share_head = (
            "dominant class share of queries %" if dom is not None else "largest class share of queries %"
        )
        lines += [markdown_table(["strategy", "final acc", "final balanced acc", "final macro-F1", "AULC acc",
                                  "AULC balanced acc", share_head, "loop s"], rows), ""]  # fmt: skip
        if "vabal" in by:
            for other in ("entropy", "coreset", "random"):
                if other in by:
                    lines.append("- " + seed_verdict(by["vabal"]["aulc"]["balanced_acc"], by[other]["aulc"]["balanced_acc"],
                                                     "vabal", other, "AULC of balanced accuracy") + ".")  # fmt: skip
        lines.append("")
    lines += [f"Total bench time: {res['bench_seconds']:.0f} s. Figures: "
              + ", ".join(f["file"] for f in res["figures"]) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"
