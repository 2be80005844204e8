"""Plain-text tables shared by the Markdown and HTML reports.

:func:`format_cell` is the single number format of every report: floats with 3 decimals, integers as
they are, ``nan``/``None`` as an en dash. :func:`markdown_table` renders GitHub-flavoured Markdown
(numeric columns right-aligned), which the benches write to ``results.md``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MISSING", "as_dict", "as_float", "format_cell", "is_number", "markdown_table"]

MISSING = "\u2013"  # en dash, shown for nan / None


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` as a dict, or ``{}`` when it is not a mapping (results.json read defensively)."""
    return dict(value) if isinstance(value, Mapping) else {}


def as_float(value: Any) -> float:
    """``value`` as a float, or nan when it is None or not a number."""
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def is_number(value: Any) -> bool:
    """True for real numbers (int, float, numpy scalars), excluding bools."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def format_cell(value: Any, digits: int = 3) -> str:
    """Format one table cell.

    Args:
        value: any value; floats get ``digits`` decimals (non-zero floats that would round to 0 use
            scientific notation, ``1.00e-04``), integers stay integers, ``None`` and ``nan`` become an
            en dash, everything else goes through ``str``.
        digits: decimals for floats.

    Returns:
        The cell text.
    """
    if value is None:
        return MISSING
    if is_number(value):
        if isinstance(value, numbers.Integral):
            return str(int(value))
        f = float(value)
        if math.isnan(f):
            return MISSING
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        if f != 0 and abs(f) < 0.5 * 10**-digits:  # e.g. learning rates: 1e-4 -> "1.00e-04", not "0.000"
            return f"{f:.2e}"
        return f"{f:.{digits}f}"
    return str(value)


def _md_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]], digits: int = 3) -> str:
    """Render a GitHub-flavoured Markdown table.

    Args:
        header: column titles.
        rows: one list per row, each as long as ``header``; cells are formatted with
            :func:`format_cell` (floats to ``digits`` decimals, nan as an en dash).
        digits: decimals for floats.

    Returns:
        The table, lines joined by ``\\n``, with a trailing newline. Columns whose cells are all numbers
        (or missing) are right-aligned.

    Raises:
        ValueError: if the header is empty or a row's length differs from the header's.
    """
    if len(header) == 0:
        raise ValueError("markdown_table needs at least one column.")
    for i, r in enumerate(rows):
        if len(r) != len(header):
            raise ValueError(f"Row {i} has {len(r)} cells but the header has {len(header)}: {list(r)!r}")
    numeric = [bool(rows) and all(is_number(r[j]) or r[j] is None for r in rows) for j in range(len(header))]
    lines = [
        "| " + " | ".join(_md_escape(format_cell(h, digits)) for h in header) + " |",
        "|" + "|".join("---:" if num else "---" for num in numeric) + "|",
    ]
    for r in rows:
        lines.append("| " + " | ".join(_md_escape(format_cell(c, digits)) for c in r) + " |")
    return "\n".join(lines) + "\n"
