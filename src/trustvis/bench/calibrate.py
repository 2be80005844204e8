"""``trustvis bench calibrate``: TS / CTS / ETS / PTS fitted with the CE loss and with SCTL, side by side.

Protocol::

    classifiers (the classification recipe, resnet8) on Fashion-MNIST:
        balanced, long-tailed ratio 10 (LT10) and ratio 100 (LT100) train/val  ──► runs/<setting>
        logits of the val split (calibration set, same distribution as training)
        logits of the test split (balanced t10k; the usual long-tailed protocol)
    binary detectors (cnndet by default, or every run of a `bench detect` folder):
        logits of the training family's val split (calibration set, seen generator)
        logits of the *unseen* families' test splits (the out-of-distribution complaint)
    for each setting: uncalibrated, then {ts, cts, ets, pts} × {CE loss, SCTL loss} fitted on the
    calibration set ──► test acc, ECE, class-wise ECE, MCE, NLL, Brier; predictions whose argmax
    changed (TS, ETS and PTS must change none); fit report (converged, SCTL alpha/beta)
    results.json, results.md, reliability diagrams, ECE bars, report.html

The calibrators never see a test label. The long-tailed subsets are fixed by the data set (seed 0).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from trustvis.bench.common import payload_header, run_line, train_or_reuse, write_results
from trustvis.bench.options import BenchOptions
from trustvis.config import make_run_config
from trustvis.data.classification import ClassificationDataset
from trustvis.engine import load_method
from trustvis.methods.calibrate.temperature import CALIBRATORS
from trustvis.tasks.calibration import calibrate_logits
from trustvis.tasks.classify import class_logits, classification_datasets, load_classification_split
from trustvis.tasks.detect import detector_logits

log = logging.getLogger(__name__)

#: long-tail ratios of the classification settings (1 = the balanced data set)
IMBALANCES = (1.0, 10.0, 100.0)
STEPS = {"quick": 800, "full": 4000}
#: calibrators whose argmax is the raw one by construction (positive temperatures, probability mixing)
ARGMAX_PRESERVING = ("ts", "ets", "pts")


def run_calibrate_bench(
    opts: BenchOptions,
    detect_dir: str | Path | None = None,
    dataset: str = "fashion-mnist",
    imbalances: tuple[float, ...] = IMBALANCES,
    detectors: bool = True,
    calibrator_iters: int | None = None,
) -> Path:
    """Run the calibration protocol end to end; returns the output folder.

    ``dataset`` (a classification data set) is trained balanced and long-tailed with each ratio of
    ``imbalances``. ``detect_dir``: a ``trustvis bench detect`` folder whose trained detectors
    (``runs/*``) are calibrated; without it a quick ``cnndet`` is trained here. ``detectors=False``
    skips that part; that quick ``cnndet`` takes ``opts.steps``, seed and device, not ``opts.preset`` nor
    ``opts.overrides``. ``calibrator_iters`` overrides the calibrators' optimiser budget (tests).
    """
    from trustvis.data.synthbench import FAMILIES, TRAIN_FAMILY, build_synthbench
    from trustvis.report import plots
    from trustvis.tasks.detect import detection_datasets

    quick, mode, seed, device = opts.quick, opts.mode, opts.seed, opts.device
    preset = opts.preset or ("quick" if quick else "default")
    if any(r < 1 for r in imbalances):
        raise ValueError(f"imbalance ratios must be >= 1, got {list(imbalances)}")
    out = opts.output("calibrate")
    t_start = time.perf_counter()
    results: dict[str, Any] = {}
    info: dict[str, Any] = {}

    # ---- classifiers on balanced and long-tailed Fashion-MNIST --------------------------------------
    for ratio in imbalances:
        setting = dataset if ratio == 1 else f"{dataset}-LT{ratio:g}"
        run = make_run_config("classifier", preset, overrides=opts.overrides,
                              train={"seed": seed, "device": device, "steps": opts.steps or STEPS[mode],
                                     "progress": opts.progress},
                              data={"name": dataset, "imbalance": ratio})  # fmt: skip
        log.info("calibration bench: classifier on %s", setting)
        method, tinfo = train_or_reuse(run, out / "runs" / setting, classification_datasets)
        val = load_classification_split(run, "val")
        test = load_classification_split(run, "test")
        cal = class_logits(method, ClassificationDataset(val, method.make_transform(False)), 500)
        tst = class_logits(method, ClassificationDataset(test, method.make_transform(False)), 500)
        results[setting] = calibrate_logits(
            cal["logits"], cal["label"], tst["logits"], tst["label"], calibrator_iters
        )
        info[setting] = {"kind": "classifier", "train_counts": load_classification_split(run, "train")
                         .class_counts().tolist(), "cal_counts": val.class_counts().tolist(),
                         "n_test": len(test), "train_seconds": tinfo.get("train_seconds")}  # fmt: skip

    # ---- binary detectors: calibrated on the seen family, tested on unseen ones ------------------
    if detectors:
        root = build_synthbench(mode, progress=opts.progress)
        unseen = [f for f in FAMILIES if f != TRAIN_FAMILY]
        trained: dict[str, Any] = {}
        if detect_dir:
            for run_dir in sorted(Path(detect_dir, "runs").glob("*/model.json")):
                trained[run_dir.parent.name] = load_method(
                    run_dir.parent, device="cpu" if device == "auto" else device
                )
            if not trained:
                raise FileNotFoundError(f"{detect_dir}/runs/*/model.json: no trained detector found")
        else:
            train = {"seed": seed, "device": device, "progress": opts.progress}
            if opts.steps:
                train["steps"] = opts.steps
            run = make_run_config(
                "cnndet", mode, train=train, data={"size": mode, "train_family": TRAIN_FAMILY}
            )
            trained["cnndet"], _ = train_or_reuse(run, out / "runs" / "detect-cnndet", detection_datasets)
        for name, method in trained.items():
            setting = f"detector {name}"
            cal_l, cal_y = detector_logits(method, root, [TRAIN_FAMILY], "val")
            tst_l, tst_y = detector_logits(method, root, unseen, "test")
            results[setting] = calibrate_logits(cal_l, cal_y, tst_l, tst_y, calibrator_iters)
            info[setting] = {"kind": "detector", "cal": f"{TRAIN_FAMILY}/val", "test": unseen,
                             "n_cal": len(cal_y), "n_test": len(tst_y)}  # fmt: skip

    # ---- figures ----------------------------------------------------------------------------------
    figures = []

    def fig(file: str, caption: str) -> Path:
        figures.append({"file": file, "caption": caption})
        return out / file

    for i, (setting, rows) in enumerate(results.items()):
        diag = rows["_diagrams"]
        pick = ["uncalibrated", "ts+ce", "ts+sctl", "cts+ce", "cts+sctl"]
        panels = {p: {**diag[p], "ece": rows[p]["ece"]} for p in pick}
        plots.plot_reliability(panels, fig(f"fig_reliability_{i}.png", f"Reliability diagrams on the test set: "
                               f"{setting}"), title=setting)  # fmt: skip
    for metric in ("ece", "cw_ece"):
        table = {
            s: {r: v[metric] for r, v in rows.items() if not r.startswith("_")} for s, rows in results.items()
        }
        plots.plot_metric_bars(table, metric, fig(f"fig_{metric}.png", f"Test {metric.upper().replace('_', '-')} "
                               "of every calibrator with the CE and the SCTL loss"))  # fmt: skip

    payload = {
        **payload_header("calibrate", opts.command_or("calibrate"), device),
        "data": {"name": f"{dataset}{' + synthbench' if detectors else ''}", "size": mode},
        "seed": seed,
        "settings": info,
        "results": {
            s: {r: v for r, v in rows.items() if not r.startswith("_")} for s, rows in results.items()
        },
        "figures": figures,
        "bench_seconds": time.perf_counter() - t_start,
    }
    return write_results(out, payload, results_markdown)


def results_markdown(res: dict[str, Any]) -> str:
    """The Markdown summary of a calibration bench ``results.json`` payload."""
    from trustvis.report.tables import markdown_table

    lines = [
        f"# Calibration bench ({res['data']['size']})",
        "",
        f"Command: `{res['command']}`  ",
        f"{run_line(res)} Training seed {res['seed']}.  ",
        "Calibrators are fitted on the calibration split and scored on the test split; ECE uses 15 "
        "equal-width bins. ECE, class-wise ECE and MCE in %. `argmax changed`: test predictions whose "
        "class differs from the uncalibrated model's (TS, ETS, PTS must change none).",
        "",
    ]
    for setting, rows in res["results"].items():
        si = res["settings"].get(setting, {})
        lines.append(f"## {setting}")
        lines.append("")
        if si.get("kind") == "classifier":
            lines.append(f"Train class counts {si['train_counts']}; calibration (val) class counts "
                         f"{si['cal_counts']}; balanced test set of {si['n_test']}.")  # fmt: skip
        else:
            lines.append(f"Calibrated on {si.get('cal')} ({si.get('n_cal')} images), tested on the unseen "
                         f"families {', '.join(si.get('test', []))} ({si.get('n_test')} images).")  # fmt: skip
        lines.append("")
        header = ["calibrator + loss", "acc %", "ECE %", "cw-ECE %", "MCE %", "NLL", "Brier", "argmax changed",
                  "SCTL α, β"]  # fmt: skip
        table = []
        for name, m in rows.items():
            fit = m.get("fit", {})
            ab = f"{fit['alpha']:.3f}, {fit['beta']:.3f}" if "alpha" in fit else ""
            table.append([name, f"{100 * m['acc']:.2f}", f"{100 * m['ece']:.2f}", f"{100 * m['cw_ece']:.2f}",
                          f"{100 * m['mce']:.2f}", f"{m['nll']:.4f}", f"{m['brier']:.4f}",
                          m.get("argmax_changed", ""), ab])  # fmt: skip
        lines += [markdown_table(header, table), ""]
        verdicts = []
        for cal in CALIBRATORS:
            ce, sc = rows.get(f"{cal}+ce"), rows.get(f"{cal}+sctl")
            if not ce or not sc:
                continue
            d = 100 * (sc["ece"] - ce["ece"])
            dcw = 100 * (sc["cw_ece"] - ce["cw_ece"])
            verdicts.append(f"- {cal.upper()}: SCTL {'lowers' if d < 0 else 'raises'} ECE by {abs(d):.2f} points "
                            f"({100 * ce['ece']:.2f} → {100 * sc['ece']:.2f}) and {'lowers' if dcw < 0 else 'raises'} "
                            f"class-wise ECE by {abs(dcw):.2f} points; NLL {ce['nll']:.4f} → {sc['nll']:.4f}.")  # fmt: skip
        bad = [n for n, m in rows.items() if n.split("+")[0] in ARGMAX_PRESERVING and m.get("argmax_changed")]
        verdicts.append("- Accuracy unchanged by TS/ETS/PTS: " + (f"**no** — {', '.join(bad)} changed predictions"
                        if bad else "yes (every test prediction keeps its class)") + ".")  # fmt: skip
        lines += [*verdicts, ""]
    lines += [f"Total bench time: {res['bench_seconds']:.0f} s. Figures: "
              + ", ".join(f["file"] for f in res["figures"]) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"
