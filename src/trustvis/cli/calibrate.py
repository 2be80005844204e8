"""``trustvis calibrate``: fit post-hoc calibrators to logits (a ``.npz`` file or a trained run's); the
logic is :mod:`trustvis.tasks.calibration`'s."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from trustvis.cli.common import RAW, UsageError, int_at_least, table

log = logging.getLogger("trustvis")

EPILOG_CALIBRATE = """\
Fits on the calibration logits and scores on the held-out test logits (never on test labels).
Temperatures are constrained positive; ECE uses 15 equal-width bins.

examples:
  trustvis calibrate --logits my_logits.npz                       # every calibrator, CE vs SCTL loss
  trustvis calibrate --logits my_logits.npz --method sctl --calibrator cts --out cal/cts_sctl
  trustvis calibrate --run runs/classifier --out cal/run          # a trained classifier: val -> test
  trustvis calibrate --run results/detect-quick/runs/cnndet       # detector: seen family -> unseen

make the .npz with numpy:  np.savez("my_logits.npz", cal_logits=..., cal_labels=..., test_logits=...,
test_labels=...)   (pickled logits files, e.g. NN_calibration's, are never loaded: convert them once)
"""


def cmd_calibrate(args: argparse.Namespace) -> int:
    from trustvis.atomic import atomic_write_json
    from trustvis.tasks import calibration as C

    if bool(args.logits) == bool(args.run):
        raise UsageError("give exactly one of --logits FILE.npz or --run RUN_DIR")
    try:
        data = (
            C.read_logits_npz(args.logits, args.inputs_are_logits)
            if args.logits
            else C.run_logits(args.run, args.device)
        )
    except C.CalibrationInputError as e:
        raise UsageError(str(e)) from None
    if data["test"] is None:
        log.warning(
            "no test_logits: scoring on the calibration set itself (optimistic; pass held-out test logits)"
        )
        data["test"], data["test_y"] = data["cal"], data["cal_y"]
    out = Path(args.out) if args.out else None
    if args.method == "all":
        rows = C.calibrate_logits(data["cal"], data["cal_y"], data["test"], data["test_y"], args.max_iter)
        diagrams = rows.pop("_diagrams")
    else:
        try:
            method, rows, diagrams = C.calibrate_one(args.method, args.calibrator, data, args.max_iter)
        except C.CalibrationInputError as e:
            raise UsageError(str(e)) from None
        if out is not None:
            from trustvis.config import RunConfig, to_dict
            from trustvis.engine.checkpoint import save_final

            save_final(method, out, to_dict(RunConfig(method=method.method_name, model=method.config)), 0)
    header = ["calibrator + loss", "acc", "ECE %", "cw-ECE %", "MCE %", "NLL", "Brier", "argmax changed"]
    rows_t = [[n, m["acc"], 100 * m["ece"], 100 * m["cw_ece"], 100 * m["mce"], m["nll"], m["brier"],
               m.get("argmax_changed", "")] for n, m in rows.items()]  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2, default=float))
    else:
        print(table(header, rows_t))
    if out is not None:
        from trustvis.report.plots import plot_reliability

        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "calibration.json", rows)
        panels = {n: {**diagrams[n], "ece": rows[n]["ece"]} for n in list(diagrams)[:12]}
        plot_reliability(panels, out / "reliability.png", title="Reliability on the test logits")
        print(f"wrote {out / 'calibration.json'} and {out / 'reliability.png'}"
              + (f"; the fitted calibrator loads with trustvis.engine.load_method('{out}')" if args.method != "all" else ""))  # fmt: skip
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from trustvis import registry

    calibrators = [m["name"] for m in registry.catalog()["methods"] if m["task"] == "calibrate"]
    s = sub.add_parser("calibrate", help="fit post-hoc calibrators (TS, CTS, ETS, PTS, SCTL) to logits",
                       formatter_class=RAW, epilog=EPILOG_CALIBRATE)  # fmt: skip
    s.add_argument("--logits", help=".npz with cal_logits (N,K) or (N,) binary, cal_labels (N,), and optionally "
                   "test_logits, test_labels (aliases: val_logits/val_labels, logits/labels)")  # fmt: skip
    s.add_argument("--run", help="a trained classifier run (val -> test) or SynthBench detector run "
                   "(training family's val -> unseen families' test)")  # fmt: skip
    s.add_argument("--method", default="all", choices=["all", *calibrators],
                   help="one calibrator, or all of them with the CE and the SCTL loss (default all)")  # fmt: skip
    s.add_argument("--calibrator", help="with --method sctl: the calibrator it fits (ts|cts|ets|pts; default: "
                   "the SCTL method's own, TS)")  # fmt: skip
    s.add_argument(
        "--out", help="folder for calibration.json, reliability.png and (one method) the fitted calibrator"
    )
    s.add_argument("--max-iter", type=int_at_least(1),
                   help="optimiser iterations per calibrator (default 1000, the official budget)")  # fmt: skip
    s.add_argument("--device", default="cpu")
    s.add_argument("--json", action="store_true")
    s.add_argument("--inputs-are-logits", action="store_true",
                   help="the --logits arrays are logits even though they look like probabilities (values in [0, 1], "
                   "rows summing to 1); without it such a file is refused")  # fmt: skip
    s.set_defaults(fn=cmd_calibrate)
