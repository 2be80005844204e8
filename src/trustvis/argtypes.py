"""argparse value types shared by the command line and the bench table (torch-free, no trustvis import):
a bad value is one ``argument --flag: ...`` line naming what was expected."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def names(text: str | None) -> list[str] | None:
    """``a,b,,c`` -> ``["a", "b", "c"]``; nothing -> None (the caller's default)."""
    return [v.strip() for v in text.split(",") if v.strip()] or None if text else None


def int_at_least(lo: int) -> Callable[[str], int]:
    """An integer >= ``lo``."""

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


def csv_of(kind: type, *, positive: bool = False) -> Callable[[str], list]:
    """A comma-separated list of ``kind`` values (finite and > 0 with ``positive``)."""

    def parse(text: str) -> list:
        values = []
        for item in names(text) or []:
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
