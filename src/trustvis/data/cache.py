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


# ----------------------------------------------------------------------------------------------------
# manifests of built sets (SynthBench, RecaptureBench, PhotoReID, the vtest.avi tracks)


def read_manifest(root: str | Path, what: str) -> dict:
    """``manifest.json`` of the build folder ``root`` (or the file itself); ``what`` names the set in errors.

    Raises:
        FileNotFoundError: no manifest there.
        ValueError: the manifest is not valid JSON.
    """
    import json

    p = Path(root)
    if p.is_dir():
        p = p / "manifest.json"
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"Corrupt {what} manifest {p}: {e}") from e


def verify_manifest(
    root: str | Path, version: str, what: str, check_hashes: bool = False, progress: bool = False
) -> list[str]:
    """Problems of a build folder against its manifest, one line each (empty when complete): the version, and
    every listed file present (``check_hashes``: and with its sha256; ``progress``: a bar while hashing)."""
    from tqdm.auto import tqdm

    root = Path(root)
    try:
        man = read_manifest(root, what)
    except (OSError, ValueError) as e:
        return [f"manifest: {e}"]
    problems = (
        [] if man.get("version") == version else [f"manifest version {man.get('version')!r} != {version!r}"]
    )
    files = man.get("files") or {}
    if not files:
        problems.append("manifest lists no files")
    bar = tqdm(files.items(), desc=f"verify {what}", disable=not (check_hashes and progress), leave=False)
    for rel, digest in bar:
        f = root / rel
        if not f.is_file():
            problems.append(f"missing file {rel}")
        elif check_hashes and sha256_file(f) != digest:
            problems.append(f"hash mismatch {rel}")
    return problems


def reusable_build(target: Path, version: str, what: str, expect: dict, verify=None) -> bool:
    """Can the build in ``target`` be used as it is: a manifest of ``version`` whose entries equal ``expect``
    (``{"config": ..., "photos": ...}``; a key mapped to None is not compared), and no problem found by
    ``verify(target)`` (default :func:`verify_manifest`)? Logs why a build is not reused."""
    import logging

    log = logging.getLogger(__name__)
    if not (target / "manifest.json").is_file():
        return False
    try:
        man = read_manifest(target, what)
    except (OSError, ValueError) as e:
        log.warning("Rebuilding %s: %s", target, e)
        return False
    if man.get("version") != version:
        log.info("Rebuilding %s: built by version %r", target, man.get("version"))
        return False
    for key, want in expect.items():
        if want is not None and man.get(key) != want:
            log.info("Rebuilding %s: its %s differs from this one's", target, key)
            return False
    problems = verify(target) if verify is not None else verify_manifest(target, version, what)
    if problems:
        log.warning("Rebuilding %s: %d problem(s), first: %s", target, len(problems), problems[0])
        return False
    return True
