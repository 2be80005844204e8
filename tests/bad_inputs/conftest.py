"""Fixtures of the bad-input corpus; the helpers live in ``badcli.py`` (``from badcli import ...``)."""

from __future__ import annotations

import pytest
from badcli import run_cli


@pytest.fixture
def cli(capsys):
    """``cli(argv) -> CliResult``: the command line in-process."""
    return lambda argv: run_cli(argv, capsys)
