"""``trustvis bench antispoof``: mToFNet against RGB-only, Silent-Face, depth-only and early-fusion RGB-D
detectors on RecaptureBench, on display types never seen in training and on seen ones.

Protocol::

    RecaptureBench <size> (built once: real RGB-D crops of 4 real scenes; the same scenes on 9 simulated displays)
    for protocol in (unseen, seen)
      unseen: train / validate on reals + spoofs of the 4 training display types; test on the other 5 types
      seen:   train / validate on reals + spoofs of all 9 types; test on all 9
      for method in (mtofnet, rgbcnn, silentface, depthcnn, rgbdcnn) — same encoder, size, steps, data
        for seed in seeds
          train ──► runs/<protocol>/<method>/seed<k> (a finished run with the same config is reused)
          threshold = the validation split's EER point (APCER = BPCER; never the test labels)
          test split ──► per display: APCER (its attacks), BPCER (all reals), ACER, AUC, EER;
                         mean over displays, worst-display APCER (ISO/IEC 30107-3 system APCER)
      mean ± std over seeds
    figures: per-display ACER per protocol; real vs spoof azimuthal power spectra of RGB and ToF depth (the
             paper's frequency analysis); example pairs with mToFNet's p(spoof)
    results.json, results.md, fig_*.png, report.html
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

METHODS = ("mtofnet", "rgbcnn", "silentface", "depthcnn", "rgbdcnn")
SEEDS = (0, 1)
MEASURES = ("acer", "apcer", "bpcer", "auc", "eer", "apcer_max")


def run_antispoof_bench(
    opts: BenchOptions,
    methods: list[str] | None = None,
    protocols: list[str] | None = None,
    seeds: list[int] | None = None,
    recapturebench: str | None = None,
) -> Path:
    """Run the anti-spoofing protocol; returns the output folder. ``opts.preset``/``opts.overrides`` apply to
    every method (the tests use ``tiny``); ``recapturebench`` picks the data size (default quick with --quick,
    else full)."""
    from trustvis.config import to_dict
    from trustvis.data.pairs import PairDataset
    from trustvis.data.recapturebench import PROTOCOLS, TRAIN_DISPLAYS, build_recapturebench, protocol_pairs
    from trustvis.engine.checkpoint import save_final
    from trustvis.metrics.antispoof import pad_metrics, per_medium_metrics
    from trustvis.tasks.antispoof import antispoof_datasets, antispoof_outputs, set_threshold

    t_start = time.perf_counter()
    methods = list(methods or METHODS)
    protocols = list(protocols or PROTOCOLS)
    seeds = list(seeds if seeds is not None else SEEDS)
    check_methods(methods, "antispoof", "an anti-spoofing method")
    for p in protocols:
        if p not in PROTOCOLS:
            raise ValueError(f"Unknown protocol {p!r}; choose from {list(PROTOCOLS)}")
    size = recapturebench or opts.mode
    preset = opts.preset or "default"
    out = opts.output("antispoof")
    root = build_recapturebench(size, progress=opts.progress)

    results: dict[str, dict[str, Any]] = {}
    outputs: dict[str, dict[str, Any]] = {}  # protocol -> method -> seed-0 test outputs (figures)
    for protocol in protocols:
        results[protocol], outputs[protocol] = {}, {}
        test = protocol_pairs(root, "test", protocol)
        for name in methods:
            per_seed = []
            for seed in seeds:
                run = seed_run(
                    name, preset, opts, seed, {"name": "recapturebench", "size": size, "protocol": protocol}
                )
                run_dir = out / "runs" / protocol / name / f"seed{seed}"
                log.info("%s displays / %s / seed %d", protocol, name, seed)
                method, info = train_or_reuse(run, run_dir, antispoof_datasets)
                _, val = antispoof_datasets(run, method)
                thr = set_threshold(method, val)
                save_final(
                    method, run_dir, to_dict(run), int(info.get("train_steps", 0))
                )  # with the threshold
                o = antispoof_outputs(method, PairDataset(test, method.make_transform(False)), batch_size=128)
                m = per_medium_metrics(o["label"], o["score"], list(o["medium"]), thr)
                overall = pad_metrics(o["label"], o["score"], thr)
                per_seed.append({"seed": seed, "threshold": thr, **m, "overall_auc": overall["auc"],
                                 "train_seconds": float(info.get("train_seconds", float("nan"))),
                                 "images_per_second": float(o["images_per_second"])})  # fmt: skip
                if seed == seeds[0]:
                    outputs[protocol][name] = o
            results[protocol][name] = _over_seeds(per_seed)
    figures = _figures(out, root, results, outputs, protocols)
    payload = {
        **payload_header("antispoof", opts.command_or("antispoof"), opts.device),
        "data": {"name": "recapturebench", "size": size, "root": str(root)},
        "train_displays": list(TRAIN_DISPLAYS),
        "seeds": seeds,
        "methods": methods,
        "protocols": protocols,
        "threshold_rule": "validation EER point (APCER = BPCER on the validation split)",
        "results": results,
        "figures": figures,
        "bench_seconds": time.perf_counter() - t_start,
    }
    return write_results(out, payload, results_markdown)


def _over_seeds(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std over seeds of the display-averaged measures; per-display means; the per-seed records."""
    mean = {k: mean_std([s["mean"][k] if k in s["mean"] else s.get(k) for s in per_seed]) for k in MEASURES}
    media = per_seed[0]["per_medium"].keys()
    per_medium = {
        d: {
            k: float(np.nanmean([s["per_medium"][d][k] for s in per_seed]))
            for k in ("apcer", "bpcer", "acer", "auc", "eer")
        }
        for d in media
    }
    return {
        "mean": mean,
        "per_medium": per_medium,
        "train_seconds": float(np.nanmean([s["train_seconds"] for s in per_seed])),
        "images_per_second": float(np.nanmean([s["images_per_second"] for s in per_seed])),
        "seeds": per_seed,
    }


def _figures(
    out: Path, root: Path, results: dict, outputs: dict, protocols: list[str]
) -> list[dict[str, str]]:
    from trustvis.data.recapturebench import protocol_pairs
    from trustvis.metrics.spectrum import azimuthal_power_spectrum
    from trustvis.report import plots

    figures: list[dict[str, str]] = []

    def fig(file: str, caption: str) -> Path:
        figures.append({"file": file, "caption": caption})
        return out / file

    for protocol in protocols:
        per = {
            name: {d: r["per_medium"][d]["acer"] for d in r["per_medium"]}
            for name, r in results[protocol].items()
        }
        what = (
            "unseen display types (never in training)"
            if protocol == "unseen"
            else "every display type (all seen in training)"
        )
        plots.plot_per_medium(per, fig(f"fig_acer_{protocol}.png", f"ACER per display type on {what}; threshold "
                                       "from the validation split; mean over seeds"), metric="acer",
                              title=f"ACER per display, {protocol} displays")  # fmt: skip
    test = protocol_pairs(root, "test", "seen")
    real = [i for i, lab in enumerate(test.labels) if lab == 0]
    spoof = [i for i, lab in enumerate(test.labels) if lab == 1]
    spectra: dict[str, dict[str, np.ndarray]] = {"rgb": {}, "depth": {}}
    radii = None
    for key, idx in (("real", real), ("spoof", spoof)):
        radii, spectra["rgb"][key] = azimuthal_power_spectrum(np.stack([test.rgb[i] for i in idx]))
        _, spectra["depth"][key] = azimuthal_power_spectrum(
            np.stack([test.depth[i] for i in idx]), depth=True
        )
    plots.plot_power_spectra(spectra, radii, fig("fig_spectra.png", "Azimuthally averaged power spectra (log10) of "
                             "the test pairs, real vs spoof (all display types): RGB and ToF depth — the paper's "
                             "frequency analysis"), title="RecaptureBench test split")  # fmt: skip
    if "mtofnet" in outputs.get(protocols[0], {}):
        o = outputs[protocols[0]]["mtofnet"]
        pairs = protocol_pairs(root, "test", protocols[0])
        rows = []
        order = [int(i) for i in np.argsort(o["index"])]
        chosen: dict[str, int] = {}
        for j in order:
            k = int(o["index"][j])
            key = f"real · {pairs.media[k]}" if pairs.labels[k] == 0 else pairs.media[k]
            if key not in chosen:
                chosen[key] = j
        for key, j in list(chosen.items())[:12]:
            k = int(o["index"][j])
            rows.append({"rgb": pairs.rgb[k], "depth": pairs.depth[k],
                         "caption": f"{key} · p(spoof) {float(o['score'][j]):.2f}"})  # fmt: skip
        plots.plot_pair_examples(rows, fig("fig_examples.png", f"Test pairs of the {protocols[0]} protocol: one "
                                 "real pair per scene and one spoof per display type, with mToFNet's p(spoof) (seed 0)"),
                                 title="RecaptureBench test pairs")  # fmt: skip
    return figures


def results_markdown(res: dict[str, Any]) -> str:
    """The Markdown summary of an antispoof bench ``results.json`` payload."""
    from trustvis.report.tables import markdown_table

    seeds = res.get("seeds", [])
    lines = [f"# Anti-spoofing bench (RecaptureBench {res['data']['size']})", "", f"Command: `{res['command']}`  ",
             f"{run_line(res)}  ",
             f"Threshold: {res['threshold_rule']}. Rates in %, mean ± std over {len(seeds)} seed(s) ({seeds}); "
             "APCER, ACER, AUC and EER are means over the test display types; worst APCER = the largest APCER of "
             "one display type (ISO/IEC 30107-3's system APCER). Lower is better but for AUC.", ""]  # fmt: skip

    header = ["displays", "method", "ACER", "APCER", "BPCER", "AUC", "EER", "worst APCER", "train s"]
    rows = []
    for protocol, by in res["results"].items():
        for name, r in by.items():
            mm = r["mean"]
            rows.append([protocol, name, pm(mm["acer"]), pm(mm["apcer"]), pm(mm["bpcer"]), pm(mm["auc"]),
                         pm(mm["eer"]), pm(mm["apcer_max"]), f"{r['train_seconds']:.0f}"])  # fmt: skip
    lines += [markdown_table(header, rows), ""]
    for protocol, by in res["results"].items():
        media = list(next(iter(by.values()))["per_medium"])
        lines += [f"ACER per display type ({protocol} protocol), %:", ""]
        rows = [[name, *(f"{100 * r['per_medium'][d]['acer']:.1f}" for d in media)] for name, r in by.items()]
        lines += [markdown_table(["method", *media], rows), ""]
    for protocol, by in res["results"].items():
        if "mtofnet" not in by:
            continue
        a = by["mtofnet"]["mean"]["acer"]
        for name, r in by.items():
            if name == "mtofnet":
                continue
            verdict = seed_verdict(a, r["mean"]["acer"], "mToFNet", name, "mean ACER", lower_is_better=True)
            lines.append(f"- {protocol} displays: {verdict}.")
    lines += ["", f"Total bench time: {res['bench_seconds']:.0f} s. Figures: "
              + ", ".join(f["file"] for f in res["figures"]) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"
