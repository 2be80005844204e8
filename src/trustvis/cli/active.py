"""``trustvis active query | label | status``: a person as the oracle of an active-learning loop; the logic is
:mod:`trustvis.tasks.active`'s."""

from __future__ import annotations

import argparse
from pathlib import Path

from trustvis.cli.common import RAW, int_at_least, table

EPILOG_ACTIVE = """\
A loop with a person as the oracle:
  trustvis train entropy --data labelled/ --set data.oracle=user --out runs/al   # round 0 on labelled/<class>/*
  trustvis active query runs/al --pool unlabelled/ --k 50      # -> runs/al/queries/round-01.csv (label column empty)
  (fill the label column with class names)
  trustvis active label runs/al runs/al/queries/round-01.csv   # adds them, trains round 1, scores it
  trustvis active status runs/al                                # rounds, labels, test metrics

Simulated loops (the pool's own labels: every round runs in `trustvis train`) are compared by
`trustvis bench active`; `trustvis active status` reads them too.
"""


def cmd_query(args: argparse.Namespace) -> int:
    from trustvis.tasks.active import user_query

    res = user_query(Path(args.run_dir), Path(args.pool), args.k, Path(args.csv) if args.csv else None)
    for line in res["skipped"]:
        print(f"skipped (unreadable): {line}")
    rows = [[r["rank"], r["path"], r["predicted"]] for r in res["queried"]]
    print(table(["rank", "image", "predicted"], rows[:20]))
    if len(rows) > 20:
        print(f"... and {len(rows) - 20} more")
    print(
        f"wrote {res['csv']}: fill its label column, then `trustvis active label {args.run_dir} {res['csv']}`"
    )
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    from trustvis.tasks.active import user_label

    res = user_label(Path(args.run_dir), Path(args.csv))
    for line in res.lines:
        print(line)
    print(f"trained the next round in {res.summary['train_seconds']:.0f} s -> {args.run_dir}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from trustvis.tasks.active import read_state

    state = read_state(Path(args.run_dir))
    if state is None:
        from trustvis.tasks import TaskError

        raise TaskError(f"{args.run_dir} is not an active-learning run (no active.json)")
    rows = []
    for r in state["rounds"]:
        t = r.get("test") or {}
        rows.append([r["round"], r["labels"], t.get("acc", ""), t.get("balanced_acc", ""), t.get("macro_f1", ""),
                     " ".join(str(c) for c in r.get("queried_per_class", [])) or r.get("added", "")])  # fmt: skip
    print(f"{state['method']} ({state['oracle']} oracle), classes: {', '.join(state['classes'])}")
    print(table(["round", "labels", "acc", "balanced acc", "macro-F1", "queried per class / added"], rows))
    if state.get("pending"):
        print(f"waiting for labels: {state['pending']['csv']}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("active", help="active learning with a person as the oracle (query, label, status)",
                       formatter_class=RAW, epilog=EPILOG_ACTIVE)  # fmt: skip
    asub = p.add_subparsers(dest="active_command", required=True, metavar="COMMAND")
    q = asub.add_parser("query", help="write the CSV of the pool images to label next", formatter_class=RAW,
                        epilog=EPILOG_ACTIVE)  # fmt: skip
    q.add_argument("run_dir", help="a run trained with --set data.oracle=user")
    q.add_argument("--pool", required=True, help="folder of unlabelled images (searched recursively)")
    q.add_argument("--k", type=int_at_least(1), default=50, help="images to ask for (default 50)")
    q.add_argument("--csv", help="where to write the CSV (default RUN/queries/round-NN.csv)")
    q.set_defaults(fn=cmd_query)
    lab = asub.add_parser("label", help="add a labelled CSV and train the next round", formatter_class=RAW,
                          epilog=EPILOG_ACTIVE)  # fmt: skip
    lab.add_argument("run_dir")
    lab.add_argument("csv", help="the query CSV with its label column filled (class names or indices)")
    lab.set_defaults(fn=cmd_label)
    st = asub.add_parser("status", help="rounds, labels and test metrics of a loop", formatter_class=RAW)
    st.add_argument("run_dir")
    st.set_defaults(fn=cmd_status)
