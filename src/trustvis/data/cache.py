"""Cache location.

Everything trustvis builds (SynthBench, caches of other data) lives under :func:`home`:
``$TRUSTVIS_HOME`` if set, else ``~/.cache/trustvis``. Writes into it go through
:mod:`trustvis.atomic`: a reader either sees the old file/folder or the complete new one.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def home() -> Path:
    """The trustvis cache root (created on first use)."""
    root = Path(os.environ.get("TRUSTVIS_HOME") or Path.home() / ".cache" / "trustvis").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
