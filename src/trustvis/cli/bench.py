"""``trustvis bench BENCH``: the benchmark protocols (each writes results.json, results.md, figures and
report.html).

One sub-command per entry of :data:`trustvis.bench.options.BENCHES`, with the shared flags the bench takes
and its own; the bench's module is imported only when it runs (``--help`` imports no torch).
"""

from __future__ import annotations

import argparse

from trustvis.bench.options import BENCHES, BenchEntry, add_option_arguments, options_from
from trustvis.cli.common import RAW, command_line


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
