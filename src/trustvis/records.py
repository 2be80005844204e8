"""JSON-able records (one dict per row) as CSV text, for the trainer's ``metrics.csv`` and ``predict --csv``."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["records_csv"]


def _json_cell(v: Any) -> Any:
    return json.dumps(v) if isinstance(v, list | dict) else v


def records_csv(
    records: Sequence[dict[str, Any]], columns: Sequence[str] = (), cell: Callable[[Any], Any] = _json_cell
) -> tuple[str, list[str]]:
    """(CSV text, its columns) of ``records``: the union of their keys in first-seen order (after ``columns``),
    one row per record, an empty cell where a record lacks a key or holds None; ``cell`` turns a value into
    what the CSV writer gets (default: lists and dicts as JSON)."""
    keys: dict[str, None] = dict.fromkeys(columns)
    for r in records:
        keys.update(dict.fromkeys(r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(keys), lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: cell(v) for k, v in r.items()})
    return buf.getvalue(), list(keys)
