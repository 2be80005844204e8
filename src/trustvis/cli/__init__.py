"""The ``trustvis`` command line: ``main(argv) -> exit code`` (testable in-process).

trustvis --version                          the installed version
trustvis demo                               a first result in minutes (detectors on unseen generators)
trustvis list [--task detect]               registered methods, with their papers
trustvis info METHOD                        paper, summary, presets and every config field
trustvis data status                        which real-data sources are installed
trustvis data build synthbench [--quick]    build the synthetic-image benchmark (cached)
trustvis train METHOD [--preset P] [--set k=v ...] [--out DIR] [--resume]
trustvis eval RUN_DIR --data ROOT           metrics of a run on a folder in its task's layout
trustvis predict RUN_DIR PATH...            score / classify images or folders
trustvis calibrate --logits F.npz | --run D fit TS/CTS/ETS/PTS with the CE and the SCTL loss
trustvis active query|label|status RUN     active learning with a person as the oracle
trustvis bench TASK ...                     benchmark protocols (`make demo` runs detect --quick)
trustvis codec encode|decode|info           the neural codecs on single images
trustvis export RUN --format onnx|torchscript   the run's network as one file (+ FILE.json)
trustvis report DIR                         self-contained HTML page for a run or bench folder

One module per group of commands (info, run, calibrate, active, codec, bench), each with ``add_parsers`` and its
``cmd_*`` functions; they parse, call the task layer (:mod:`trustvis.tasks`) or a bench, and print.
Building the parser imports neither torch nor a method module (``--help``, ``list`` and ``info`` stay fast).
"""

from __future__ import annotations

import argparse
import logging
import sys

from trustvis import __version__
from trustvis.cli import active, bench, calibrate, codec, export, info, run
from trustvis.cli.common import UsageError

__all__ = ["UsageError", "build_parser", "entry", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="trustvis",
        description="trustvis: detect generated, recaptured and anomalous images; train, adapt, calibrate "
        "and compress the models involved.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="run `trustvis COMMAND --help` for the options and an example of each command",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info.add_parsers(sub)  # list, info, data, report
    run.add_parsers(sub)  # train, eval, predict
    calibrate.add_parsers(sub)
    active.add_parsers(sub)
    bench.add_parsers(sub)
    bench.add_demo_parser(sub)
    codec.add_parsers(sub)
    export.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args._argv = argv
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.fn(args) or 0)
    except Exception as e:
        if not isinstance(e, _user_errors()):
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"trustvis: error: {msg}", file=sys.stderr)
        return 2


def _user_errors() -> tuple[type, ...]:
    """The exceptions reported in one line (exit 2). The engine's are looked up only if the engine was
    imported (an error of a module never imported cannot have been raised), so ``list`` stays torch-free."""
    from trustvis.config import ConfigError

    kinds: list[type] = [UsageError, ConfigError, FloatingPointError, KeyError, FileNotFoundError, ValueError]
    for module, name in (
        ("trustvis.engine.checkpoint", "CheckpointError"),
        ("trustvis.engine.runlock", "RunLockError"),
    ):
        if module in sys.modules:
            kinds.append(getattr(sys.modules[module], name))
    return tuple(kinds)


def entry() -> None:
    sys.exit(main())
