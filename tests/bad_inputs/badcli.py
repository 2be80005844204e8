"""Helpers for the bad-input corpus (issue 18): every case ends in a correct result or a clear error.

A *clear error* is exit code 2 (or 1 for "nothing could be done") with exactly one ``trustvis: error:`` line
on stderr, no Python traceback, and the message names the file (or flag) and the problem. Memory cases run
the command line in a child process and bound its peak resident memory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from trustvis.cli import main


@dataclass
class CliResult:
    code: int
    out: str
    err: str
    peak_mb: float = float("nan")


def run_cli(argv: list[str], capsys) -> CliResult:
    """``trustvis ARGV`` in-process; argparse exits become exit codes."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse: bad flag values
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return CliResult(code, out, err)


def assert_clear_error(res: CliResult, *needles: str, code: int = 2) -> str:
    """One ``trustvis: error:`` line (argparse's own ``error:`` line counts too) naming every needle."""
    assert res.code == code, f"exit {res.code}, expected {code}\nstdout: {res.out}\nstderr: {res.err}"
    assert "Traceback" not in res.err and "Traceback" not in res.out, res.err
    lines = [ln for ln in res.err.splitlines() if "error:" in ln]
    assert len(lines) == 1, f"expected one error line, got:\n{res.err}"
    msg = lines[0]
    for n in needles:
        assert str(n) in msg, f"{n!r} not named in: {msg}"
    return msg


def run_cli_subprocess(
    argv: list[str], *, cwd: Path, timeout: float = 300, env: dict | None = None
) -> CliResult:
    """``trustvis ARGV`` in a child process; ``peak_mb`` is its own peak resident memory (VmHWM, MiB)."""
    full_env = {**os.environ, **(env or {})}
    code = (
        "import resource, sys\n"
        "from trustvis.cli import main\n"
        "try:\n"
        "    rc = main(sys.argv[1:])\n"
        "except SystemExit as e:\n"
        "    rc = int(e.code or 0)\n"
        "sys.stdout.flush()\n"
        "try:\n"  # VmHWM: this process's own peak (ru_maxrss also counts the parent's pages at fork/exec)
        "    peak = next(int(ln.split()[1]) for ln in open('/proc/self/status') if ln.startswith('VmHWM'))\n"
        "except (OSError, StopIteration):\n"
        "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(f'\\n__PEAK_KB__ {peak}', file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, *map(str, argv)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    err_lines = p.stderr.splitlines()
    peak = float("nan")
    kept = []
    for ln in err_lines:
        if ln.startswith("__PEAK_KB__"):
            peak = int(ln.split()[1]) / 1024
        else:
            kept.append(ln)
    return CliResult(p.returncode, p.stdout, "\n".join(kept), peak)


__all__ = ["CliResult", "run_cli", "assert_clear_error", "run_cli_subprocess"]
