"""``RUN/.lock``: at most one training writes a run folder at a time.

The lock file holds the owner's pid, host, start time and a token, and is created atomically (O_EXCL). A
second training on the same folder fails at once with :class:`RunLockError`, naming the lock and its owner;
a lock whose pid no longer runs on this host (a killed run) is taken over with a warning; a lock of another
host is respected (its pid cannot be checked from here).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
#: a lock file that cannot be parsed is treated as being written for this long, then as stale
_UNREADABLE_LOCK_GRACE_S = 10.0
_HELD: set[str] = set()  # run-folder locks held by this process


class RunLockError(RuntimeError):
    """Another training is writing the same run folder (its ``.lock`` names the owner)."""


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a process of another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def read_lock(path: str | Path) -> tuple[str, dict[str, Any] | None]:
    """The raw text of a lock file and its parsed owner (``None`` when it is not a lock record)."""
    try:
        raw = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "", None
    try:
        owner = json.loads(raw)
    except json.JSONDecodeError:
        return raw, None
    if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int):
        return raw, None
    return raw, owner


def lock_owner_alive(path: str | Path) -> tuple[bool, dict[str, Any] | None]:
    """``(held, owner)`` for the lock file ``path``: held is False when it is absent or stale.

    A lock is stale when its pid no longer runs on this host, when it names this very process but this
    process does not hold it (a killed run whose pid was reused), or when it cannot be parsed and is
    older than a few seconds. A lock of another host counts as held: its pid cannot be checked from here.
    """
    path = Path(path)
    raw, owner = read_lock(path)
    if not raw and owner is None and not path.exists():
        return False, None
    if owner is None:
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return False, None
        return age < _UNREADABLE_LOCK_GRACE_S, None
    if owner.get("host") != socket.gethostname():
        return True, owner
    if owner["pid"] == os.getpid():
        return str(path.resolve()) in _HELD, owner
    return _pid_alive(owner["pid"]), owner


def lock_error(path: str | Path, owner: dict[str, Any] | None) -> RunLockError:
    """The one-line error for a run folder whose lock ``path`` is held by ``owner``."""
    who = (
        f"pid {owner['pid']} on {owner.get('host', '?')} since {owner.get('started', '?')}"
        if owner
        else "a process that is writing it"
    )
    return RunLockError(
        f"{path} is held by {who}: another training is writing this run folder; wait for it to end, "
        "choose another --out, or delete the lock file if that process is gone"
    )


class RunLock:
    """``RUN/.lock``: at most one training writes a run folder at a time (see the module docstring)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self._token: str | None = None

    def acquire(self) -> None:
        """Take the lock atomically (O_EXCL), taking over a stale one; raises :class:`RunLockError`.

        Re-entrant within a process: taking a lock this process already holds (``trustvis train`` holds
        it around :meth:`Trainer.fit`) is a no-op, and so is the matching :meth:`release`.
        """
        if str(self.path.resolve()) in _HELD:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "token": uuid.uuid4().hex,
        }
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                held, owner = lock_owner_alive(self.path)
                if held:
                    raise lock_error(self.path, owner) from None
                raw, _ = read_lock(self.path)
                log.warning(
                    "taking over the stale lock %s (%s)",
                    self.path,
                    f"pid {owner['pid']} no longer runs" if owner else "unreadable lock file",
                )
                if read_lock(self.path)[0] == raw:  # nobody took it over meanwhile
                    try:
                        self.path.unlink()
                    except FileNotFoundError:
                        pass
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            self._token = record["token"]
            _HELD.add(str(self.path.resolve()))
            return
        raise lock_error(self.path, read_lock(self.path)[1])

    def release(self) -> None:
        """Remove the lock if it is still this process's own (idempotent)."""
        if self._token is None:
            return
        _HELD.discard(str(self.path.resolve()))
        _, owner = read_lock(self.path)
        if owner is not None and owner.get("token") == self._token:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        self._token = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
