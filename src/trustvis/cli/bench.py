"""``trustvis bench BENCH``: the benchmark protocols (each writes results.json, results.md, figures and
report.html).

One sub-command per entry of :data:`trustvis.bench.options.BENCHES`, with the shared flags the bench takes
and its own; the bench's module is imported only when it runs (``--help`` imports no torch).
"""

from __future__ import annotations

import argparse

from trustvis.argtypes import int_at_least, names
from trustvis.bench.options import BENCHES, BenchEntry, add_option_arguments, options_from
from trustvis.cli.common import RAW, command_line, table


def _epilog() -> str:
    """What each bench measures, then how to start."""
    lines = ["benchmarks (each writes results.json, results.md, figures and report.html to --out):"]
    for name, entry in BENCHES.items():
        about = entry.about.splitlines()
        lines += [f"  {name:<10} {about[0]}", *(f"  {'':<10} {line}" for line in about[1:])]
    lines += [
        "",
        "examples:",
        *(f"  {entry.examples[0]}" for entry in BENCHES.values() if entry.examples),
        "  trustvis bench BENCH --help        # the flags and more examples of one bench",
    ]
    return "\n".join(lines) + "\n"


def _sub_epilog(entry: BenchEntry) -> str:
    return "examples:\n" + "".join(f"  {e}\n" for e in entry.examples) if entry.examples else ""


def cmd_bench(args: argparse.Namespace) -> int:
    entry = BENCHES[args.bench]
    opts = options_from(args, entry, command=command_line(args), quiet=args.quiet)
    out = entry.load()(opts, **entry.kwargs(args))
    print(f"results: {out / 'results.md'}\nreport:  {out / 'report.html'}")
    print((out / "results.md").read_text(encoding="utf-8"))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("bench", help="run a benchmark protocol end to end", formatter_class=RAW,
                       description="Run a benchmark protocol end to end.", epilog=_epilog())  # fmt: skip
    benches = s.add_subparsers(dest="bench", required=True, metavar="BENCH", title="benches")
    for name, entry in BENCHES.items():
        b = benches.add_parser(name, help=entry.help, formatter_class=RAW, epilog=_sub_epilog(entry),
                               description=f"trustvis bench {name}: {entry.about}")  # fmt: skip
        entry.add_arguments(b.add_argument_group(f"{name} flags"))
        add_option_arguments(b.add_argument_group("shared flags"), name, entry)
        b.set_defaults(fn=cmd_bench)


DEMO_EPILOG = """\
what it does (about 6 min on 2 cores after set-up; a second run reuses the data and the detectors):
  builds SynthBench demo (real photo patches + fakes of 7 small generator families), trains a strong
  baseline (cnndet) and a seed method (d4) on one family, tests both on the six families they never saw,
  scores a few unseen photos and fakes with `predict`, and writes report.html

examples:
  trustvis demo
  trustvis demo --out results/my-demo --steps 500
  make bench-detect        # the whole quick detection benchmark (40 min to 2.5 hours on 2 cores)
"""


def cmd_demo(args: argparse.Namespace) -> int:
    from trustvis.bench.demo import DEMO_METHODS, run_demo

    res = run_demo(args.out, methods=args.methods or list(DEMO_METHODS), steps=args.steps, device=args.device,
                   progress=not args.quiet, command=command_line(args))  # fmt: skip
    print(res["title"], "", table(*res["headline"]), "", "p(fake) on images no detector saw (>= 0.5: fake):", "",
          table(*res["samples"]), "", sep="\n")  # fmt: skip
    files = res["files"]
    print(f"report:  {files['report']}  (per-family AP, ROC curves, the generators' spectra)")
    print(f"tables:  {files['results']}, {files['samples']}")
    print(f"demo time: {res['seconds'] / 60:.1f} min. The whole quick benchmark: make bench-detect")
    return 0


def add_demo_parser(sub: argparse._SubParsersAction) -> None:
    from trustvis.bench.demo import DEMO_STEPS

    s = sub.add_parser("demo", help="a first result in minutes: two detectors, unseen generators, a report",
                       formatter_class=RAW, description="trustvis demo: the detection benchmark in miniature.",
                       epilog=DEMO_EPILOG)  # fmt: skip
    s.add_argument("--out", default="results/demo", help="output folder (default results/demo)")
    s.add_argument("--steps", type=int_at_least(1), default=DEMO_STEPS,
                   help=f"training steps per detector (default {DEMO_STEPS})")  # fmt: skip
    s.add_argument("--methods", type=names, help="comma-separated detectors (default cnndet,d4)")
    s.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    s.set_defaults(fn=cmd_demo)
