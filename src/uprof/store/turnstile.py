"""Turns at SQLite's one write lock for the servers that share a store (``--workers``).

SQLite gives its write lock to whoever asks while it is free, and a process that finds it
taken can only ask again later. A server's group commit begins its next batch as soon as the
last one committed whenever writes are waiting, so under steady writes the lock was free only
for the moment between the two, and another worker, asking every few milliseconds, got it
rarely: its writes waited up to a second at the 99th percentile (docs/performance.md, "Round
21"). A turnstile in front of the lock makes them take turns: a writer passes the turnstile
(an exclusive ``flock`` of a file beside the store) before it asks for the write lock and
leaves it once it holds the lock. One that has to wait for the lock waits inside the
turnstile, so the holder, when it comes back for its next batch, finds the turnstile taken
and waits behind it: the lock goes to the one that waited.

Only uprof's group commit passes the turnstile; other writers (operator commands, a second
program) ask SQLite as before. Where ``flock`` does not exist, or for a store in memory, the
turnstile is always open.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # not on POSIX: no turnstile
    fcntl = None  # type: ignore[assignment]


class Turnstile:
    """The turnstile of the store at ``database`` (None: in memory)."""

    def __init__(self, database: Path | None) -> None:
        self._path = None if database is None or fcntl is None else Path(f"{database}-writers")
        # This process's descriptor: a lock belongs to an open file, and a forked worker that
        # used its parent's would share the parent's turn.
        self._fd: int | None = None
        self._pid = -1

    def try_enter(self) -> bool:
        """Pass the turnstile if no other writer is in it; never blocks."""
        fd = self._descriptor()
        if fd is None:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def leave(self) -> None:
        fd = self._fd
        if fd is not None and self._pid == os.getpid():
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None and self._pid == os.getpid():
            os.close(fd)

    def _descriptor(self) -> int | None:
        if self._path is None:
            return None
        pid = os.getpid()
        if self._fd is None or self._pid != pid:
            if self._fd is not None:  # the parent's, in a forked worker: the parent keeps its own
                os.close(self._fd)
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = pid
        return self._fd
