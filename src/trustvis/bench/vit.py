"""``trustvis bench vit``: Vision Transformers on small data — AAL against the plain ViT and DeiT-style distillation,
at the same budget, with the fine-tuned CNN teacher as the reference a ViT is trying to reach.

Protocol::

    for setting in (fmnist-1k: Fashion-MNIST 100 images per class; fmnist-5k: 500 per class; digits: OpenCV's
                    digits.png, 3,000 training images; stamps: the Tux Paint stamps, 10 categories, 448 images)
      for seed in seeds
        cnn        ImageNet MobileNetV2 (pip weights) fine-tuned at the teacher's input size ─► runs/<set>/cnn/seed<k>
        vit        the small ViT from scratch                                             ─► .../vit/seed<k>
        deit-hard  + distillation token, hard labels of the frozen cnn run                ─► .../deit-hard/seed<k>
        deit-soft  + distillation token, soft KL (τ = 3) to the frozen cnn run            ─► .../deit-soft/seed<k>
        aal        + attention links to the frozen ImageNet MobileNetV2                   ─► .../aal/seed<k>
        aal-adv    the advanced module: the strongest links of that seed's aal run, retrained ─► .../aal-adv/seed<k>
        every ViT: same network, steps, batch, schedule; validation accuracy every eval_every steps (50 images
        per class of the val split); test top-1 on the test split (at most 200 images per class, fixed)
      mean ± std over seeds; steps to reach the plain ViT's final validation accuracy (same seed)
    figures: top-1 per setting; top-1 against Fashion-MNIST training images; validation curves; AAL's link
             matrix (first run and kept links); attention maps beside the CNN's maps
    results.json, results.md, report.html

A finished run with the same config is reused, so a second call only redraws.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trustvis.bench.common import (
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

#: setting -> the classify task's data values (every key explicit: the cnn run and the ViTs see the same images)
SETTINGS: dict[str, dict[str, Any]] = {
    "fmnist-1k": {"name": "fashion-mnist", "max_images": 100},
    "fmnist-5k": {"name": "fashion-mnist", "max_images": 500},
    "digits": {"name": "opencv-digits", "max_images": 0},
    "stamps": {"name": "tuxpaint-stamps", "max_images": 0},
}
#: condition -> (registered method, model values); deit-* take the cnn run as teacher, aal-adv the aal run's links
CONDITIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "cnn": ("classifier", {}),
    "vit": ("vit", {}),
    "deit-hard": ("deit", {"distill": "hard"}),
    "deit-soft": ("deit", {"distill": "soft"}),
    "aal": ("aal", {}),
    "aal-adv": ("aal", {}),
}
#: the run a condition needs first
NEEDS = {"deit-hard": "cnn", "deit-soft": "cnn", "aal-adv": "aal"}
SEEDS = (0, 1, 2)
VAL_PER_CLASS = 50
TEST_PER_CLASS = 200
#: the CNN teacher's fine-tuning budget per preset (its model: the ViT presets' teacher fields)
TEACHER_TRAIN = {
    "quick": {"lr": 1e-3, "weight_decay": 5e-4, "batch_size": 32, "steps": 150, "schedule": "cosine",
              "warmup_steps": 15, "eval_every": 50},
    "default": {"lr": 1e-3, "weight_decay": 5e-4, "batch_size": 64, "steps": 1000, "schedule": "cosine",
                "warmup_steps": 100, "eval_every": 100},
}  # fmt: skip


def conditions_with_needs(conditions: list[str]) -> list[str]:
    """``conditions`` in protocol order, with the runs they need (a teacher, a first AAL run) added."""
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise ValueError(f"unknown condition(s) {unknown}; choose from {list(CONDITIONS)}")
    wanted = set(conditions) | {NEEDS[c] for c in conditions if c in NEEDS}
    return [c for c in CONDITIONS if c in wanted]


def teacher_model(preset: str) -> dict[str, Any]:
    """The ``classifier`` values of the CNN teacher: the backbone, weights and input size of the ViT methods'
    ``preset`` teacher fields, so that a deit run accepts the cnn run as its teacher."""
    from trustvis import registry

    t = registry.get("deit").make_config(preset)
    return {"backbone": t.teacher_backbone, "weights": t.teacher_weights, "input_size": t.teacher_input_size}


def run_vit_bench(
    opts: BenchOptions,
    conditions: list[str] | None = None,
    settings: list[str] | None = None,
    seeds: list[int] | None = None,
) -> Path:
    """Run the small-data ViT protocol; returns the output folder. ``opts.preset``/``opts.overrides`` apply to
    every method (the tests use ``tiny``)."""
    from trustvis.data.classification import ClassificationDataset
    from trustvis.tasks import get_task
    from trustvis.tasks.classify import (
        cap_per_class,
        class_logits,
        classifier_val_metrics,
        load_classification_split,
    )

    t_start = time.perf_counter()
    task = get_task("classify")
    conds = conditions_with_needs(list(conditions or CONDITIONS))
    settings = list(settings or SETTINGS)
    bad = [s for s in settings if s not in SETTINGS]
    if bad:
        raise ValueError(f"unknown setting(s) {bad}; choose from {list(SETTINGS)}")
    seeds = list(seeds if seeds is not None else SEEDS)
    preset = opts.preset or ("quick" if opts.quick else "default")
    out = opts.output("vit")

    def datasets(run: Any, method: Any) -> tuple[Any, Any]:
        train, val = task.datasets(run, method)
        return train, ClassificationDataset(cap_per_class(val.data, VAL_PER_CLASS), val.transform)

    results: dict[str, dict[str, Any]] = {}
    set_info: dict[str, Any] = {}
    kept: dict[str, Any] = {}  # seed-0 methods of the first setting, for the figures
    for setting in settings:
        data = SETTINGS[setting]
        test = None  # the test split of the first run's data (its root, when --set data.root names one)
        per: dict[str, list[dict[str, Any]]] = {c: [] for c in conds}
        for seed in seeds:
            dirs: dict[str, Path] = {}
            for cond in conds:
                name, model = CONDITIONS[cond]
                model, train = dict(model), {}
                if cond == "cnn":
                    model.update(teacher_model(preset))
                    train = TEACHER_TRAIN.get(preset, {})
                if cond in NEEDS:
                    key = "teacher" if NEEDS[cond] == "cnn" else "links_from"
                    model[key] = str(dirs[NEEDS[cond]].resolve())
                run = seed_run(name, preset, opts, seed, data, model=model, train=train)
                task.prepare(run, set())
                dirs[cond] = out / "runs" / setting / cond / f"seed{seed}"
                log.info("%s / %s / seed %d", setting, cond, seed)
                method, info = train_or_reuse(run, dirs[cond], datasets, classifier_val_metrics)
                if test is None:
                    test = cap_per_class(load_classification_split(run, "test"), TEST_PER_CLASS)
                logits = class_logits(method, ClassificationDataset(test, method.make_transform(False)))
                top1 = float((logits["logits"].argmax(1) == logits["label"]).mean())
                per[cond].append({"seed": seed, "top1": top1, "val_curve": _val_curve(dirs[cond]),
                                  "train_seconds": float(info.get("train_seconds", float("nan"))),
                                  "train_steps": int(info.get("train_steps", run.train.steps)),
                                  "trainable_parameters": method.num_parameters(trainable_only=True)})  # fmt: skip
                if seed == seeds[0] and setting == settings[0]:
                    kept[cond], kept["test"] = method, test
        train_set = load_classification_split(run, "train")
        set_info[setting] = {"data": data, "train_images": len(train_set), "classes": train_set.num_classes,
                             "test_images": len(test)}  # fmt: skip
        results[setting] = {c: _over_seeds(per[c], per.get("vit")) for c in conds}
    figures = _figures(out, results, set_info, kept, setting=settings[0])
    payload = {
        **payload_header("vit", opts.command_or("vit"), opts.device),
        "data": {"settings": settings, "preset": preset},
        "sets": set_info,
        "seeds": seeds,
        "conditions": conds,
        "results": results,
        "figures": figures,
        "bench_seconds": time.perf_counter() - t_start,
    }
    return write_results(out, payload, results_markdown)


def _val_curve(run_dir: Path) -> list[tuple[int, float]]:
    """``[(step, val_acc)]`` of a run's metrics.jsonl."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    curve = []
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec.get("split") == "val" and isinstance(rec.get("val_acc"), (int, float)):
            curve.append((int(rec["step"]), float(rec["val_acc"])))
    return sorted(dict(curve).items())


def steps_to(curve: list[tuple[int, float]], target: float) -> int | None:
    """The first step whose validation accuracy reaches ``target``; None when none does."""
    return next((s for s, acc in curve if acc >= target - 1e-12), None)


def _over_seeds(per_seed: list[dict[str, Any]], vit: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Mean ± std over seeds of a condition; steps to the plain ViT's final val accuracy of the same seed."""
    reach = []
    for rec in per_seed:
        ref = next((v for v in vit or [] if v["seed"] == rec["seed"] and v["val_curve"]), None)
        rec["steps_to_vit"] = steps_to(rec["val_curve"], ref["val_curve"][-1][1]) if ref else None
        reach.append(rec["steps_to_vit"])
    steps = sorted({s for rec in per_seed for s, _ in rec["val_curve"]})
    curves = [dict(rec["val_curve"]) for rec in per_seed]
    val = {"steps": steps, "mean": [float(np.mean([c[s] for c in curves if s in c])) for s in steps],
           "std": [float(np.std([c[s] for c in curves if s in c], ddof=1)) if len(curves) > 1 else 0.0
                   for s in steps]}  # fmt: skip
    hit = [s for s in reach if s is not None]
    return {
        "top1": mean_std([r["top1"] for r in per_seed]),
        "steps_to_vit": {**mean_std(hit), "reached": len(hit), "of": len(reach)},
        "val_curve": val,
        "train_seconds": float(np.mean([r["train_seconds"] for r in per_seed])),
        "train_steps": per_seed[0]["train_steps"],
        "trainable_parameters": per_seed[0]["trainable_parameters"],
        "seeds": per_seed,
    }


def _figures(
    out: Path, results: dict, sets: dict, kept: dict[str, Any], setting: str
) -> list[dict[str, str]]:
    from trustvis.report.plots import plot_metric_bars
    from trustvis.report.plots.active import plot_learning_curves

    figs: list[dict[str, str]] = []
    table = {
        s: {c: (r["top1"]["mean"], r["top1"]["std"]) for c, r in by.items()} for s, by in results.items()
    }
    figs.append({"file": "fig_top1.png", "caption": "Test top-1 per setting (mean ± std over seeds)"})
    plot_metric_bars(table, "acc", out / figs[-1]["file"], title="test top-1 per small-data setting")
    sizes = [s for s in results if sets[s]["data"]["name"] == "fashion-mnist"]
    if len(sizes) > 1:
        curves = {c: {"labels": [sets[s]["train_images"] for s in sizes],
                      "mean": [results[s][c]["top1"]["mean"] for s in sizes],
                      "std": [results[s][c]["top1"]["std"] for s in sizes]} for c in results[sizes[0]]}  # fmt: skip
        figs.append(
            {"file": "fig_top1_size.png", "caption": "Fashion-MNIST: test top-1 against training images"}
        )
        plot_learning_curves(curves, out / figs[-1]["file"], ylabel="test top-1", xlabel="training images",
                             legend="method", title="Fashion-MNIST: top-1 against data size")  # fmt: skip
    for s, by in results.items():
        curves = {c: {"labels": r["val_curve"]["steps"], "mean": r["val_curve"]["mean"], "std": r["val_curve"]["std"]}
                  for c, r in by.items() if len(r["val_curve"]["steps"]) > 1}  # fmt: skip
        if curves:
            figs.append({"file": f"fig_val_{s}.png", "caption": f"{s}: validation accuracy during training "
                         "(convergence speed; mean ± std over seeds)"})  # fmt: skip
            plot_learning_curves(curves, out / figs[-1]["file"], ylabel="val accuracy", xlabel="training step",
                                 legend="method", title=f"{s}: validation accuracy against steps")  # fmt: skip
    if "aal" in kept:
        figs += _aal_figures(out, kept, setting)
    return figs


def _aal_figures(out: Path, kept: dict[str, Any], setting: str) -> list[dict[str, str]]:
    from trustvis.data.classification import ClassificationDataset
    from trustvis.report.plots.vit import plot_attention_maps, plot_link_matrix

    aal = kept["aal"]
    groups = [(f"tap {t} ({c})", c) for t, c in zip(aal.config.teacher_taps, aal.map_channels)]
    links = aal.link_matrix()  # (C, N·M)
    mats = {"aal: learned links": links.numpy()}
    if "aal-adv" in kept:
        mats["aal-adv: kept links (retrained)"] = kept["aal-adv"].link_matrix().numpy()
    figs = [{"file": "fig_links.png", "caption": f"AAL link matrix |w| (CNN map x ViT head), {setting}, seed 0; "
             "the advanced module keeps the strongest links of each CNN map"}]  # fmt: skip
    plot_link_matrix(mats, out / figs[-1]["file"], heads_per_block=aal.config.heads, map_groups=groups)
    images = kept["test"]
    idx = [int(np.flatnonzero(images.labels == c)[0]) for c in range(min(4, images.num_classes))]
    dataset = ClassificationDataset(images, aal.make_transform(False))
    x = torch.stack([dataset[i]["image"] for i in idx]).to(aal.device)  # (4,3,H,W)
    c = int(links.sum(1).argmax())  # the CNN map with the strongest links
    aug, cnn = aal.augmented_maps(x)[:, c], aal.cnn_maps(x)[:, c]
    cols, maps = [], []
    for cond in ("vit", "aal"):
        if cond in kept:
            cols.append(f"{cond}: CLS attention, last block")
            maps.append(kept[cond].attention(x)[:, -1].mean(1))  # (4,P,P)
    cols += [f"aal A+ (map {c})", f"CNN map {c}"]
    maps += [aug, cnn]
    rows = [{"image": images.images[i], "caption": images.classes[int(images.labels[i])],
             "maps": [m[r].cpu().numpy() for m in maps]} for r, i in enumerate(idx)]  # fmt: skip
    figs.append({"file": "fig_attention.png", "caption": f"{setting} test images: CLS attention (mean over heads) "
                 f"of the plain ViT and of AAL, AAL's linked map A+ and the frozen CNN's map {c} (seed 0)"})  # fmt: skip
    plot_attention_maps(rows, cols, out / figs[-1]["file"])
    return figs


def results_markdown(res: dict[str, Any]) -> str:
    """The Markdown summary of a vit bench ``results.json`` payload."""
    from trustvis.report.tables import markdown_table

    seeds = res.get("seeds", [])
    lines = [f"# Small-data ViT bench ({res['data']['preset']} preset)", "", f"Command: `{res['command']}`  ",
             f"{run_line(res)}  ", f"Test top-1 in %, mean ± std over {len(seeds)} seed(s) ({seeds}). Every ViT "
             "(vit, deit-*, aal, aal-adv) trains the same network for the same steps; cnn is the ImageNet CNN "
             "fine-tuned on the same images (the DeiT teacher and the reference). 'steps to ViT' = first validation "
             "step at which a run reaches the plain ViT's final validation accuracy of the same seed (reached/seeds).",
             ""]  # fmt: skip
    rows = []
    for s, by in res["results"].items():
        for c, r in by.items():
            st = r["steps_to_vit"]
            reach = f"{st['mean']:.0f} ({st['reached']}/{st['of']})" if st["reached"] else f"– (0/{st['of']})"
            rows.append([s, c, pm(r["top1"]), reach, r["train_steps"], f"{r['train_seconds']:.0f}",
                         f"{r['trainable_parameters']:,}"])  # fmt: skip
    lines += [markdown_table(["setting", "method", "top-1", "steps to ViT", "steps", "train s", "trained params"],
                             rows), ""]  # fmt: skip
    for s, i in res.get("sets", {}).items():
        lines.append(f"- {s}: {i['train_images']} training images in {i['classes']} classes; {i['test_images']} test "
                     f"images ({i['data']}).")  # fmt: skip
    lines.append("")
    for s, by in res["results"].items():
        for a, b in (("aal", "vit"), ("aal", "deit-hard"), ("aal", "deit-soft"), ("aal-adv", "aal"),
                     ("deit-hard", "vit"), ("vit", "cnn")):  # fmt: skip
            if a in by and b in by:
                lines.append(f"- {s}: {seed_verdict(by[a]['top1'], by[b]['top1'], a, b, 'test top-1')}.")
    secs = res.get("bench_seconds", float("nan"))
    lines += ["", f"Total bench time: {secs:.0f} s." if math.isfinite(secs) else "",
              "Figures: " + ", ".join(f["file"] for f in res["figures"]) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"
