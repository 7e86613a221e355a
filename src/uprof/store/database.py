"""Connections and transactions, as the services see them.

Services hand a store's ``Query`` to ``query``, or a unit of work (a function of one
Connection) to ``read`` or ``write``; the database of the deployment's dialect decides where it
runs (``uprof.store.sqlite``, ``uprof.store.postgres``):

* SQLite: reads run inline on the event loop thread (a lookup costs microseconds; a thread hop
  costs more than the query), and the reads of one event-loop iteration share one read
  snapshot. Writes are grouped: every write waiting at that moment goes into one
  ``BEGIN IMMEDIATE`` transaction, committed once, a job's failure undone alone:
  ``synchronous=FULL`` durability at a multiple of its commit rate.
* PostgreSQL: queries run on an asynchronous connection on the event loop, point reads of one
  iteration coalesced into one statement; units of work in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine

from uprof.config import (
    DEFAULT_PG_BUSY_POLL_US,
    DEFAULT_SLOW_WRITE_MS,
    DEFAULT_SQLITE_WAL_LIMIT_MIB,
    Settings,
)
from uprof.domain.errors import ApiError, Overloaded
from uprof.store.compiled import Query

T = TypeVar("T")
log = logging.getLogger("uprof.store")


class Database(Protocol):
    dialect: str
    engine: Engine

    async def query(self, query: Query[T]) -> T: ...
    async def read(self, fn: Callable[[Connection], T]) -> T: ...
    async def write(self, fn: Callable[[Connection], T], key: str | None = None) -> T:
        """Run ``fn`` in a transaction with the writes of the same moment; ``key`` names what
        it locks (a profile id), for a database that runs several batches at once."""
        ...

    def read_sync(self, fn: Callable[[Connection], T]) -> T: ...
    def write_sync(self, fn: Callable[[Connection], T]) -> T: ...
    def start(self) -> None: ...
    async def stop(self) -> None: ...
    def close(self) -> None: ...


def storage_error(e: Exception) -> ApiError:
    # A busy or unreachable database is overload, not a bug: 529 tells the SDKs to retry.
    log.warning("storage error: %s", e)
    return Overloaded("The storage backend is busy or unavailable; retry shortly")


def settle(outcomes: Iterable[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    """Hand each waiting write of a batch its outcome: its result, or its error. A write whose
    caller stopped waiting (a cancelled request) is skipped."""
    for future, result, error in outcomes:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class SlowWrites:
    """Logs the write batches that took longer than ``threshold`` seconds (0: none).

    A write is acknowledged only once its batch has committed, so a batch's time is what each
    of its writes waited beyond its own work, and what the writes queued behind it waited too.
    A batch that takes long is nearly always its COMMIT waiting for the disk's sync (or
    PostgreSQL's WAL flush): a line says how long, how many writes waited, and where the time
    went (``parts``). At most ``per_second`` lines a second; the batches past that are counted
    into the next line, so a disk that stalls over and over cannot flood the log."""

    def __init__(
        self,
        threshold: float,
        *,
        per_second: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self._per_second = per_second
        self._clock = clock
        self._second = float("-inf")  # when the current second of lines began
        self._lines = 0  # lines logged in it
        self._unlogged = 0  # slow batches not logged since the last line, and the longest
        self._unlogged_longest = 0.0

    def report(self, seconds: float, writes: int, parts: Callable[[], str]) -> None:
        """Note a batch of ``writes`` that took ``seconds``; ``parts`` describes its time and
        is called only for a batch that is logged."""
        if self.threshold <= 0 or seconds < self.threshold:
            return
        now = self._clock()
        if now - self._second >= 1:
            self._second, self._lines = now, 0
        if self._lines >= self._per_second:
            self._unlogged += 1
            self._unlogged_longest = max(self._unlogged_longest, seconds)
            return
        self._lines += 1
        more = ""
        if self._unlogged:
            more = (
                f"; {self._unlogged} more since the last line, "
                f"the longest {self._unlogged_longest * 1000:.1f} ms"
            )
            self._unlogged, self._unlogged_longest = 0, 0.0
        log.warning(
            "slow write batch: %.1f ms, %d write%s (%s)%s",
            seconds * 1000,
            writes,
            "" if writes == 1 else "s",
            parts(),
            more,
        )


def spawn(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None], tasks: set[Any]
) -> asyncio.Task[None]:
    """Run ``coro`` as a task of ``loop``, kept in ``tasks`` until it is done: the loop holds
    its tasks only weakly."""
    task = loop.create_task(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task


def sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    return None


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use psycopg 3 for them."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def open_database(
    url: str,
    *,
    sqlite_synchronous: str = "FULL",
    sqlite_mmap_mib: int = 0,
    sqlite_wal_limit_mib: int = DEFAULT_SQLITE_WAL_LIMIT_MIB,
    pg_busy_poll_us: int = DEFAULT_PG_BUSY_POLL_US,
    slow_write_ms: int = DEFAULT_SLOW_WRITE_MS,
) -> Database:
    from uprof.store.postgres import PostgresDatabase
    from uprof.store.sqlite import SqliteDatabase

    url = normalize_url(url)
    if url.startswith("sqlite"):
        return SqliteDatabase(
            url,
            synchronous=sqlite_synchronous,
            mmap_mib=sqlite_mmap_mib,
            wal_limit_mib=sqlite_wal_limit_mib,
            slow_write=slow_write_ms / 1000,
        )
    if url.startswith("postgresql"):
        return PostgresDatabase(
            url, busy_poll=pg_busy_poll_us / 1e6, slow_write=slow_write_ms / 1000
        )
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://...")


def open_store(settings: Settings) -> Database:
    """The database of ``settings``, opened with every store setting: the server and the CLI's
    commands alike (a command's write may be the one that starts the SQLite WAL over, O15)."""
    return open_database(
        settings.database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        sqlite_mmap_mib=settings.sqlite_mmap_mib,
        sqlite_wal_limit_mib=settings.sqlite_wal_limit_mib,
        pg_busy_poll_us=settings.pg_busy_poll_us,
        slow_write_ms=settings.slow_write_ms,
    )
