"""Connections and transactions for the two dialects.

Services hand a unit of work (a function of one Connection) to ``read`` or ``write``; this module
decides where it runs:

* SQLite: reads run inline on the event loop thread (a lookup costs microseconds; a thread hop
  costs more than the query). Writes go to one writer thread that groups every write waiting at
  that moment into one ``BEGIN IMMEDIATE`` transaction, each in its own SAVEPOINT, and commits
  once: ``synchronous=FULL`` durability at a multiple of its commit rate.
* PostgreSQL: both run in a worker thread on a pooled connection (one hop per unit of work);
  PostgreSQL groups concurrent commits itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import psycopg
from anyio import to_thread
from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.pool import QueuePool, SingletonThreadPool

from uprof.domain.errors import ApiError, Overloaded

T = TypeVar("T")
log = logging.getLogger("uprof.store")

Work = Callable[[Connection], T]


class Database(Protocol):
    dialect: str
    engine: Engine

    async def read(self, fn: Callable[[Connection], T]) -> T: ...
    async def write(self, fn: Callable[[Connection], T]) -> T: ...
    def read_sync(self, fn: Callable[[Connection], T]) -> T: ...
    def write_sync(self, fn: Callable[[Connection], T]) -> T: ...
    def start(self) -> None: ...
    def close(self) -> None: ...


def _storage_error(e: Exception) -> ApiError:
    # A busy or unreachable database is overload, not a bug: 529 tells the SDKs to retry.
    log.warning("storage error: %s", e)
    return Overloaded("The storage backend is busy or unavailable; retry shortly")


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


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(self, url: str, *, synchronous: str = "FULL", busy_timeout_ms: int = 10_000):
        path = sqlite_path(url)
        if path is not None and str(path) not in ("", ":memory:"):
            path.parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        # Reads: one connection per thread, autocommit (each SELECT its own snapshot).
        self.engine = self._engine(begin="BEGIN")
        # Writes: the writer thread's connection; every transaction takes the write lock first,
        # so read-then-write units never fail with "database is locked" half-way.
        self._write_engine = self._engine(begin="BEGIN IMMEDIATE")
        self._local = threading.local()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None

    def _engine(self, *, begin: str) -> Engine:
        engine = create_engine(
            self.url, poolclass=SingletonThreadPool, connect_args={"check_same_thread": False}
        )

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see "begin" below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={self._synchronous}")
            cur.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql(begin)

        return engine

    def _conn(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self.engine.connect()
            self._local.conn = conn
        return conn

    def read_sync(self, fn: Callable[[Connection], T]) -> T:
        # No BEGIN: in autocommit mode each statement is its own snapshot, and every read the
        # services make is a single statement. Anything that did open a transaction is ended.
        conn = self._conn()
        try:
            return fn(conn)
        except (exc.OperationalError, sqlite3.OperationalError) as e:
            raise _storage_error(e) from e
        finally:
            if conn.in_transaction():
                conn.rollback()

    async def read(self, fn: Callable[[Connection], T]) -> T:
        return self.read_sync(fn)

    def write_sync(self, fn: Callable[[Connection], T]) -> T:
        with self._write_engine.connect() as conn:
            try:
                with conn.begin():
                    return fn(conn)
            except (exc.OperationalError, sqlite3.OperationalError) as e:
                raise _storage_error(e) from e

    async def write(self, fn: Callable[[Connection], T]) -> T:
        if self._writer is None:
            return self.write_sync(fn)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, future, loop))
        return await future

    def start(self) -> None:
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_loop, name="uprof-writer", daemon=True
            )
            self._writer.start()

    def close(self) -> None:
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(timeout=30)
            self._writer = None
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self.engine.dispose()
        self._write_engine.dispose()

    # --- the group-commit writer ---------------------------------------------------------------

    def _write_loop(self) -> None:
        conn = self._write_engine.connect()
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch = [first]
                stop = False
                while len(batch) < 512:
                    try:
                        job = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        stop = True
                        break
                    batch.append(job)
                self._run_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _run_batch(self, conn: Connection, batch: list[Any]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            with conn.begin():  # BEGIN IMMEDIATE
                # Savepoints on the driver cursor: SQLAlchemy's begin_nested costs more than
                # the write it protects. One failing job rolls back to its savepoint only.
                cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
                for fn, future, _loop in batch:
                    cursor.execute("SAVEPOINT uprof_job")
                    try:
                        result = fn(conn)
                    except BaseException as e:  # the job's own error, e.g. a 404 or a 400
                        cursor.execute("ROLLBACK TO uprof_job")
                        cursor.execute("RELEASE uprof_job")
                        outcomes.append((future, None, e))
                    else:
                        cursor.execute("RELEASE uprof_job")
                        outcomes.append((future, result, None))
                cursor.close()
        except (exc.DBAPIError, sqlite3.Error) as e:
            error = _storage_error(e)
            outcomes = [(future, None, error) for _fn, future, _loop in batch]
        except BaseException as e:  # never leave a caller waiting
            log.exception("write batch failed")
            outcomes = [(future, None, e) for _fn, future, _loop in batch]
        # Only now, after the COMMIT, is any write acknowledged.
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for (_fn, _future, loop), outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(loop, []).append(outcome)
        for loop, items in by_loop.items():
            # RuntimeError: the loop has closed; nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, items)


def _resolve(items: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in items:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class PostgresDatabase:
    dialect = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 10):
        self.url = normalize_url(url)
        self.engine = create_engine(
            self.url,
            poolclass=QueuePool,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            pool_timeout=10,
        )

    def _run(self, fn: Callable[[Connection], T]) -> T:
        try:
            with self.engine.begin() as conn:
                return fn(conn)
        except (
            exc.OperationalError,
            exc.TimeoutError,
            exc.InterfaceError,
            psycopg.OperationalError,
            psycopg.InterfaceError,
        ) as e:
            raise _storage_error(e) from e

    read_sync = _run
    write_sync = _run

    async def read(self, fn: Callable[[Connection], T]) -> T:
        return await to_thread.run_sync(self._run, fn)

    async def write(self, fn: Callable[[Connection], T]) -> T:
        return await to_thread.run_sync(self._run, fn)

    def start(self) -> None:
        pass

    def close(self) -> None:
        self.engine.dispose()


def open_database(url: str, *, sqlite_synchronous: str = "FULL") -> Database:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        return SqliteDatabase(url, synchronous=sqlite_synchronous)
    if url.startswith("postgresql"):
        return PostgresDatabase(url)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://...")
