"""What every command shares: the one-line usage error, tables and argparse value types."""

from __future__ import annotations

import argparse
import math
from typing import Any


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


def csv_list(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def int_at_least(lo: int):
    """argparse type: an integer >= lo (a clear ``argument --flag: ...`` error otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lo}, got {text!r}") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, got {value}")
        return value

    parse.__name__ = f"integer >= {lo}"
    return parse


def csv_of(kind: type, *, positive: bool = False):
    """argparse type: a comma-separated list of ``kind`` values (finite and > 0 with ``positive``)."""

    def parse(text: str) -> list:
        values = []
        for item in csv_list(text) or []:
            try:
                v = kind(item)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{item!r} is not a {kind.__name__}") from None
            if positive and not (math.isfinite(v) and v > 0):
                raise argparse.ArgumentTypeError(f"{item!r} must be finite and > 0")
            values.append(v)
        if not values:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
        return values

    parse.__name__ = f"comma-separated {kind.__name__} list"
    return parse


def command_line(args: argparse.Namespace) -> str:
    """The command as typed (recorded in results.json)."""
    return "trustvis " + " ".join(getattr(args, "_argv", []))
