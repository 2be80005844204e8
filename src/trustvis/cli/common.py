"""What every command shares: the one-line usage error, tables and argparse value types."""

from __future__ import annotations

import argparse
from typing import Any

from trustvis.argtypes import csv_of, int_at_least

__all__ = ["RAW", "UsageError", "command_line", "csv_of", "fmt", "int_at_least", "table"]


class UsageError(Exception):
    """A user error the CLI reports in one line (exit code 2)."""


RAW = argparse.RawDescriptionHelpFormatter


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return "–" if v != v else f"{v:.3f}"
    return str(v)


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A plain-text table: columns padded to their widest cell, a dashed line under the header."""
    cells = [header] + [[fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def command_line(args: argparse.Namespace) -> str:
    """The command as typed (recorded in results.json)."""
    return "trustvis " + " ".join(getattr(args, "_argv", []))
