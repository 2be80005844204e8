"""``trustvis bench multimodal``: the cross-modal VAE's associators against a joint multimodal VAE and a latent
regressor, as the paired fraction grows.

Protocol::

    data: OpenCV digit images (split by image) and spoken digits (real Tux Paint + Asterisk voices, synthetic
          espeak-ng + flite voices; split by speaker, a held-out voice speaks a language heard in training)
    judges: logistic regressions on the training split (real images; every training clip), fitted once
    for seed in seeds
      vaes:  xmodal stage 1 only (each modality's VAE on its unpaired pool) ──► runs/seed<k>/vaes
      for fraction in fractions (share of the training clips paired with an image of their digit)
        xmodal     the VAEs above (vaes_from, frozen) + Gaussian associators on the pairs
        latentreg  the same VAEs + least-squares MLP maps on the pairs
        jmvae      JMVAE-kl from scratch: the pairs + the unpaired pools, its preset's steps (matched by compute: the
                   VAEs' steps plus a quarter of the associators', whose steps run small MLPs on frozen encoders)
        ──► test split: speech → image and image → speech accuracy (judged), R@1 both ways; real and synthetic
            test speech apart
      + a third modality (the digit label as a one-hot) added to the seed's VAEs at the middle fraction: its VAE and
        the associators train, the image and speech VAEs are checked bit-identical to the first run's
    mean ± std over seeds; figures: accuracy and R@1 against the paired fraction, images generated from the
    spoken digits of unseen speakers (real and synthetic)
    results.json, results.md, report.html
"""

from __future__ import annotations

import logging
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

METHODS = ("xmodal", "latentreg", "jmvae")
FRACTIONS = (0.01, 0.05, 0.1, 1.0)
SEEDS = (0, 1, 2)
MEASURES = (
    "acc_speech_to_image", "acc_speech_to_image_real", "acc_speech_to_image_synthetic", "acc_image_to_speech",
    "r1_speech_to_image", "r1_speech_to_image_real", "r1_speech_to_image_synthetic", "r1_image_to_speech",
)  # fmt: skip
#: the data of every run (all keys set: a preset's data values never leak in)
DATA = {"name": "digits", "root": "", "images": "opencv-digits", "sources": ["tuxpaint", "asterisk", "espeak-ng", "flite"],
        "languages": [], "pair_seed": 0, "seconds": 1.0}  # fmt: skip


def run_multimodal_bench(
    opts: BenchOptions,
    methods: list[str] | None = None,
    fractions: list[float] | None = None,
    seeds: list[int] | None = None,
    images: str = "opencv-digits",
    third_modality: bool = True,
) -> Path:
    """Run the protocol above; returns the output folder. ``opts.preset``/``opts.overrides`` apply to every run (the
    tests use ``tiny``); ``--steps`` sets the associators' steps (the VAEs keep the preset's ``vae_steps``, jmvae its
    preset's steps)."""
    from trustvis import registry
    from trustvis.tasks import get_task
    from trustvis.tasks.multimodal import Judges, crossmodal_metrics, image_size_of, load_split

    t_start = time.perf_counter()
    task = get_task("multimodal")
    methods = list(methods or METHODS)
    fractions = sorted(float(f) for f in (fractions or FRACTIONS))
    seeds = list(seeds if seeds is not None else SEEDS)
    check_methods(methods, "multimodal", "an image ↔ speech method")
    if not all(0.0 < f <= 1.0 for f in fractions):
        raise ValueError(f"paired fractions {fractions} must be in (0, 1]")
    preset = opts.preset or ("quick" if opts.quick else "default")
    out = opts.output("multimodal")
    data = {**DATA, "images": images}
    base = seed_run("xmodal", preset, opts, seeds[0] if seeds else 0, {**data, "fraction": 0.0})
    task.prepare(base, set())
    vae_steps = int(base.model.vae_steps)
    spec = registry.get("xmodal").presets[preset]
    assoc_steps = int(opts.steps or max(1, int(spec.train.get("steps", vae_steps + 1)) - vae_steps))
    train_split, test = load_split(base.data, "train"), load_split(base.data, "test")
    judges = Judges(train_split, image_size_of(base.data))
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        m: {str(f): [] for f in fractions} for m in methods
    }
    third: list[dict[str, Any]] = []
    vae_seconds: list[float] = []
    judge_scores: dict[str, float] = {}
    examples: dict[str, Any] = {}
    mid = fractions[len(fractions) // 2]
    for seed in seeds:
        vae_dir = out / "runs" / f"seed{seed}" / "vaes"
        need_vaes = any(m in ("xmodal", "latentreg") for m in methods) or third_modality
        if need_vaes:
            run = seed_run(
                "xmodal", preset, opts, seed, {**data, "fraction": 0.0}, train={"steps": vae_steps}
            )
            task.prepare(run, set())
            log.info("seed %d: the VAEs (stage 1, %d steps)", seed, vae_steps)
            vae_seconds.append(
                float(train_or_reuse(run, vae_dir, task.datasets)[1].get("train_seconds", float("nan")))
            )
        for f in fractions:
            for name in methods:
                if name == "jmvae":  # its preset's steps
                    model, train = (
                        {},
                        {"steps": int(registry.get(name).presets[preset].train.get("steps", 1))},
                    )
                else:
                    model, train = {"vaes_from": str(vae_dir)}, {"steps": assoc_steps}
                run = seed_run(name, preset, opts, seed, {**data, "fraction": f}, model=model, train=train)
                task.prepare(run, set())
                log.info("seed %d, fraction %g: %s", seed, f, name)
                method, info = train_or_reuse(
                    run, out / "runs" / f"seed{seed}" / f"f{f:g}" / name, task.datasets
                )
                m = crossmodal_metrics(method, test, judges)
                judge_scores = {
                    k: v for k, v in m.items() if k.startswith("judge_")
                }  # the same for every run
                pairs = int(round(f * len(train_split.speech)))
                results[name][str(f)].append({"seed": seed, "pairs": pairs, **{k: m[k] for k in MEASURES},
                                              "train_seconds": float(info.get("train_seconds", float("nan"))),
                                              "train_steps": int(info.get("train_steps", 0))})  # fmt: skip
                if seed == seeds[0] and f == mid:
                    examples[name] = method
        if third_modality and need_vaes:
            third.append(
                _third_modality(opts, preset, seed, data, mid, vae_dir, assoc_steps, out, test, judges)
            )
    summary = {name: {fr: _over_seeds(rows) for fr, rows in by.items()} for name, by in results.items()}
    figures = _figures(out, summary, fractions, examples, test)
    syn = test.synthetic
    payload = {
        **payload_header("multimodal", opts.command_or("multimodal"), opts.device),
        "data": {
            **data,
            "train_images": len(train_split.images),
            "train_clips": len(train_split.speech),
            "train_clips_synthetic": int(train_split.synthetic.sum()),
            "test_images": len(test.images),
            "test_clips_real": int((~syn).sum()),
            "test_clips_synthetic": int(syn.sum()),
            "train_speakers": _speakers(train_split),
            "test_speakers": _speakers(test),
        },  # fmt: skip
        "judges": judge_scores,
        "preset": preset,
        "vae_steps": vae_steps,
        "vae_seconds": float(np.mean(vae_seconds)) if vae_seconds else float("nan"),
        "assoc_steps": assoc_steps,
        "seeds": seeds,
        "fractions": fractions,
        "methods": methods,
        "results": summary,
        "per_seed": results,
        "third_modality": _third_summary(third, mid) if third else {},
        "figures": figures,
        "bench_seconds": time.perf_counter() - t_start,
    }
    return write_results(out, payload, results_markdown)


def _speakers(data: Any) -> dict[str, list[str]]:
    return {"real": sorted({c.speaker for c in data.clips if not c.synthetic}),
            "synthetic": sorted({c.speaker for c in data.clips if c.synthetic})}  # fmt: skip


def _third_modality(opts: BenchOptions, preset: str, seed: int, data: dict[str, Any], fraction: float, vae_dir: Path,
                    assoc_steps: int, out: Path, test: Any, judges: Any) -> dict[str, Any]:  # fmt: skip
    """Add the label modality to the seed's image and speech VAEs; the metrics and whether those VAEs stayed
    bit-identical."""
    from safetensors.torch import load_file

    from trustvis.tasks import get_task
    from trustvis.tasks.multimodal import crossmodal_metrics

    task = get_task("multimodal")
    label_steps = max(1, seed_run("xmodal", preset, opts, seed, data).model.vae_steps // 3)
    run = seed_run("xmodal", preset, opts, seed, {**data, "fraction": fraction},
                   model={"modalities": ["image", "speech", "label"], "vaes_from": str(vae_dir), "vae_steps": label_steps},
                   train={"steps": label_steps + assoc_steps})  # fmt: skip
    task.prepare(run, set())
    run_dir = out / "runs" / f"seed{seed}" / f"f{fraction:g}" / "xmodal-label"
    method, _ = train_or_reuse(run, run_dir, task.datasets)
    before, after = (
        load_file(str(vae_dir / "model.safetensors")),
        load_file(str(run_dir / "model.safetensors")),
    )
    keys = [k for k in before if k.startswith(("vaes.image.", "vaes.speech.")) or k.startswith("speech_")]
    same = all(
        k in after and bool((before[k] == after[k]).all()) and before[k].shape == after[k].shape for k in keys
    )
    m = crossmodal_metrics(method, test, judges)
    return {"seed": seed, "vaes_identical": same, "tensors_compared": len(keys),
            **{k: m[k] for k in ("acc_speech_to_label", "acc_image_to_label", "acc_speech_to_image")}}  # fmt: skip


def _third_summary(rows: list[dict[str, Any]], fraction: float) -> dict[str, Any]:
    return {"fraction": fraction, "vaes_identical": all(r["vaes_identical"] for r in rows),
            **{k: mean_std([r[k] for r in rows]) for k in ("acc_speech_to_label", "acc_image_to_label",
                                                           "acc_speech_to_image")}, "seeds": rows}  # fmt: skip


def _over_seeds(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {**{k: mean_std([r[k] for r in rows]) for k in MEASURES}, "pairs": rows[0]["pairs"] if rows else 0,
            "train_seconds": float(np.mean([r["train_seconds"] for r in rows])) if rows else float("nan"),
            "train_steps": rows[0]["train_steps"] if rows else 0}  # fmt: skip


def _figures(
    out: Path, summary: dict, fractions: list[float], examples: dict, test: Any
) -> list[dict[str, str]]:
    import torch

    from trustvis.report.plots.active import plot_learning_curves
    from trustvis.report.plots.multimodal import plot_generated_grid
    from trustvis.tasks.multimodal import latents

    figs: list[dict[str, str]] = []
    x = [100 * f for f in fractions]
    for key, label in (("acc_speech_to_image", "speech → image accuracy"), ("acc_image_to_speech",
                       "image → speech accuracy"), ("r1_speech_to_image", "speech → image R@1")):  # fmt: skip
        curves = {name: {"labels": x, "mean": [by[str(f)][key]["mean"] for f in fractions],
                         "std": [np.nan_to_num(by[str(f)][key]["std"]) for f in fractions]}
                  for name, by in summary.items()}  # fmt: skip
        figs.append({"file": f"fig_{key}.png", "caption": f"{label} on the test split against the paired fraction "
                     "(mean ± std over seeds; chance 10 %)"})  # fmt: skip
        plot_learning_curves(curves, out / figs[-1]["file"], ylabel=label, xlabel="paired training clips (%)",
                                   legend="method", logx=True)  # fmt: skip
    if examples:
        # up to one clip per digit of the real test voices, then of the synthetic ones
        syn = test.synthetic
        picks = []
        for kind in (False, True):
            for d in range(10):
                idx = np.flatnonzero((syn == kind) & (test.speech_labels == d))
                if len(idx):
                    picks.append(int(idx[0]))
        rows = {}
        for name, method in examples.items():
            sub = type(test)(test.images[:1], test.image_labels[:1], test.speech[picks], test.speech_labels[picks],
                             [test.clips[i] for i in picks])  # fmt: skip
            z = latents(method, sub)["speech_to_image"]
            with torch.no_grad():
                rows[name] = method.decode("image", torch.as_tensor(z))[:, 0].numpy()
        cols = [f"{test.clips[i].digit}\n{'syn' if test.clips[i].synthetic else 'real'}" for i in picks]
        figs.append({"file": "fig_generated.png", "caption": "Images generated from spoken digits of speakers unseen "
                     "in training (columns: the spoken digit; real voices first, then synthetic), seed 0, middle "
                     "paired fraction"})  # fmt: skip
        plot_generated_grid(rows, cols, out / figs[-1]["file"], title="images generated from held-out speech")
    return figs


def _jmvae_steps(res: dict[str, Any]) -> Any:
    by = res["results"].get("jmvae", {})
    return next(iter(by.values()))["train_steps"] if by else "–"


def results_markdown(res: dict[str, Any]) -> str:
    """The Markdown summary of a multimodal bench ``results.json`` payload."""
    from trustvis.report.tables import markdown_table

    d = res["data"]
    lines = [f"# Image ↔ speech bench ({res['preset']} preset)", "", f"Command: `{res['command']}`  ",
             f"{run_line(res)}  ",
             f"Test split: {d['test_images']} images, {d['test_clips_real']} real clips "
             f"({', '.join(d['test_speakers']['real'])}) and {d['test_clips_synthetic']} synthetic clips "
             f"({len(d['test_speakers']['synthetic'])} espeak-ng / flite voices), speakers unseen in training. "
             f"Training: {d['train_images']} images, {d['train_clips']} clips ({d['train_clips_synthetic']} synthetic). "
             f"Accuracy and R@1 in %, mean ± std over seeds {res['seeds']}; chance is 10 %. xmodal and latentreg share "
             f"each seed's VAEs ({res['vae_steps']} steps, no pairs, {res.get('vae_seconds', float('nan')):.0f} s once per "
             f"seed) and fit their maps for {res['assoc_steps']} steps; jmvae trains {_jmvae_steps(res)} steps on the "
             "pairs and the unpaired pools (budgets matched by compute: a map step runs small MLPs on frozen "
             "encoders). `train s`: each run's own training time.", ""]  # fmt: skip
    j = res.get("judges", {})
    if j:
        lines += [f"Judges on the real test data: images {pm(mean_std([j['judge_image_acc']]))} %; real speech "
                  f"{pm(mean_std([j['judge_speech_acc_real']]))} %, synthetic speech "
                  f"{pm(mean_std([j['judge_speech_acc_synthetic']]))} %.", ""]  # fmt: skip
    head = ["method", "paired", "pairs", "speech→image", "… real voices", "… synthetic", "image→speech",
            "R@1 s→i", "R@1 i→s", "train s"]  # fmt: skip
    rows = []
    for name, by in res["results"].items():
        for fr, r in by.items():
            rows.append([name, f"{100 * float(fr):g} %", r["pairs"], pm(r["acc_speech_to_image"]),
                         pm(r["acc_speech_to_image_real"]), pm(r["acc_speech_to_image_synthetic"]),
                         pm(r["acc_image_to_speech"]), pm(r["r1_speech_to_image"]), pm(r["r1_image_to_speech"]),
                         f"{r['train_seconds']:.0f}"])  # fmt: skip
    lines += [markdown_table(head, rows), ""]
    if "xmodal" in res["results"]:
        for other in res["results"]:
            if other == "xmodal":
                continue
            for fr in res["results"]["xmodal"]:
                for key, what in (("acc_speech_to_image", "speech → image accuracy"),
                                  ("acc_image_to_speech", "image → speech accuracy")):  # fmt: skip
                    v = seed_verdict(res["results"]["xmodal"][fr][key], res["results"][other][fr][key], "xmodal",
                                     other, what)  # fmt: skip
                    lines.append(f"- paired {100 * float(fr):g} %: {v}.")
    t = res.get("third_modality") or {}
    if t:
        lines += ["", f"Adding the label as a third modality (at {100 * t['fraction']:g} % pairs, the image and speech "
                  f"VAEs loaded and frozen): bit-identical afterwards: {'yes' if t['vaes_identical'] else 'NO'}; "
                  f"speech → label {pm(t['acc_speech_to_label'])} %, image → label {pm(t['acc_image_to_label'])} %, "
                  f"speech → image {pm(t['acc_speech_to_image'])} %."]  # fmt: skip
    lines += ["", f"Total bench time: {res['bench_seconds']:.0f} s. Figures: "
              + ", ".join(f["file"] for f in res["figures"]) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"
