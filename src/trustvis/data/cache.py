"""Cache location, and what the built benchmarks (SynthBench, RecaptureBench) share to build into it.

Everything trustvis builds (SynthBench, RecaptureBench, caches of other data) lives under :func:`home`:
``$TRUSTVIS_HOME`` if set, else ``~/.cache/trustvis``. Writes into it go through
:mod:`trustvis.atomic`: a reader either sees the old file/folder or the complete new one;
:func:`build_lock` serialises two processes building the same folder, :func:`hash_tree` gives the
checksums a build's manifest records.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
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


@contextlib.contextmanager
def build_lock(target: Path) -> Iterator[None]:
    """Serialise builders of one cache folder across processes (POSIX ``flock``; no-op elsewhere)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(target.parent / f".{target.name}.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def hash_tree(root: Path, progress: bool) -> dict[str, str]:
    """sha256 of every file under ``root`` (relative POSIX path -> hex; not the build's own ``.*`` state
    files at the top); hard links are hashed once."""
    from tqdm.auto import tqdm

    paths = sorted(
        p for p in root.rglob("*") if p.is_file() and not p.relative_to(root).as_posix().startswith(".")
    )
    by_inode: dict[tuple[int, int], str] = {}
    out: dict[str, str] = {}
    for p in tqdm(paths, desc="hash files", disable=not progress, leave=False):
        st = p.stat()
        key = (st.st_dev, st.st_ino)
        if key not in by_inode:
            by_inode[key] = sha256_file(p)
        out[p.relative_to(root).as_posix()] = by_inode[key]
    return out


def library_versions() -> dict[str, str]:
    """Versions of what a build's bytes depend on (Python, torch, numpy, Pillow), for its manifest."""
    import sys

    import numpy as np
    import PIL
    import torch

    return {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
            "Pillow": PIL.__version__}  # fmt: skip
