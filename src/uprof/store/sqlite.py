"""SQLite: reads inline on the event loop in a per-iteration snapshot; writes group-committed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from uprof.config import DEFAULT_SLOW_WRITE_MS, DEFAULT_SQLITE_WAL_LIMIT_MIB
from uprof.store import sqlite_driver as driver
from uprof.store.compiled import Lateral, Query
from uprof.store.database import SlowWrites, log, settle, spawn, sqlite_path
from uprof.store.database import storage_error as _storage_error
from uprof.store.turnstile import Turnstile

T = TypeVar("T")
_MAX_BATCH = 512
# The WAL's catch-up (``SqliteDatabase._catch_up``): passes while writes go on, at most this
# many, until one leaves fewer new frames than this behind; then at most this long holding
# writes back for what is left.
_CATCH_UP_PASSES = 8
_CATCH_UP_FRAMES = 1000
_LAST_STEP_WAIT_MS = 200
# A last step that holds writes back longer than this is logged (it usually takes ~20 ms).
_SLOW_LAST_STEP_MS = 100
# How many of its intervals the checkpoint thread waits for a batch to take ``due``.
_DUE_PATIENCE = 5


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(
        self,
        url: str,
        *,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 10_000,
        mmap_mib: int = 0,
        wal_limit_mib: int = DEFAULT_SQLITE_WAL_LIMIT_MIB,
        slow_write: float = DEFAULT_SLOW_WRITE_MS / 1000,
    ):
        path = sqlite_path(url)
        # The database file (None in memory): the catch-up syncs it (``_copy_back``).
        self._file = path if path is not None and str(path) not in ("", ":memory:") else None
        if self._file is not None:
            self._file.parent.mkdir(parents=True, exist_ok=True)
        # The descriptor the catch-up syncs the database file through, opened once and closed
        # with the store (``_sync_file``).
        self._file_fd: int | None = None
        self._file_fd_lock = threading.Lock()
        self.url = url
        self._synchronous = synchronous
        # In WAL mode only FULL and EXTRA sync the WAL at every COMMIT.
        self._commit_syncs = synchronous.upper() in ("FULL", "EXTRA")
        self._busy_timeout_ms = busy_timeout_ms
        self._mmap_bytes = max(0, mmap_mib) * 1024 * 1024
        self._wal_limit_bytes = max(1, wal_limit_mib) * 1024 * 1024
        # Reads: one connection per thread. Synchronous reads run in autocommit mode (each
        # SELECT its own snapshot); the event loop's reads share a snapshot per iteration.
        self.engine = self._engine(SingletonThreadPool, begin="BEGIN")
        self._dialect = self.engine.dialect
        # Operator writes (migrations, keys): every transaction takes the write lock first, so
        # read-then-write units never fail with "database is locked" half-way.
        self._write_engine = self._engine(SingletonThreadPool, begin="BEGIN IMMEDIATE")
        # API writes: one connection whose transactions the group commit drives itself.
        self._batch_engine = self._engine(StaticPool, begin=None)
        self._batch_conn: Connection | None = None
        self._batch_lock = threading.Lock()
        self._turnstile = Turnstile(self._file)
        self._checkpointer = _Checkpointer(
            self._engine(StaticPool, begin=None),
            self._wal_limit_bytes,
            wal=None if self._file is None else Path(f"{self._file}-wal"),
        )
        # The catch-up's own connections (``_catch_up``: once per limit of WAL, one at a time).
        self._catch_up_engine = self._engine(StaticPool, begin=None)
        self._closed = False
        self._local = threading.local()
        self._queues: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        self._flushers: set[asyncio.Task[None]] = set()
        self._slow = SlowWrites(slow_write)

    def _engine(self, poolclass: Any, *, begin: str | None) -> Engine:
        engine = create_engine(
            self.url,
            module=driver.dbapi,
            poolclass=poolclass,
            connect_args={"check_same_thread": False},
        )

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={self._synchronous}")
            cur.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            cur.execute("PRAGMA foreign_keys=ON")
            # A deleted profile's bytes are overwritten in the file, not left in free space
            # until reused: what Debian's build does by default, made explicit (O14).
            cur.execute("PRAGMA secure_delete=ON")
            # Reads from a mapping of the file instead of a pread() and a copy per page
            # (docs/decisions.md O6); 0 turns it off.
            cur.execute(f"PRAGMA mmap_size={self._mmap_bytes}")
            # The WAL file is cut back to this size when a writer starts it over (see
            # ``_Checkpointer``); without it the file keeps the largest size it ever reached.
            cur.execute(f"PRAGMA journal_size_limit={self._wal_limit_bytes}")
            cur.close()

        if begin is not None:

            @event.listens_for(engine, "begin")
            def _begin(conn: Connection) -> None:
                # A read snapshot of the event loop's iteration may already be open.
                if not conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
                    conn.exec_driver_sql(begin)

        return engine

    def _conn(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self.engine.connect()
            self._local.conn = conn
            self._local.raw = raw = conn.connection.driver_connection
            # One cursor for every read statement of this thread: a cursor per statement is
            # an allocation per point read.
            self._local.cursor = raw.cursor()  # type: ignore[union-attr]
            self._local.pages = {}  # the pages read in the open snapshot (``query``)
        return conn

    def read_sync(self, fn: Callable[[Connection], T]) -> T:
        # No BEGIN: in autocommit mode each statement is its own snapshot, and every read the
        # services make is a single statement. Anything that did open a transaction is ended.
        conn = self._conn()
        try:
            return fn(conn)
        except (exc.OperationalError, driver.OperationalError) as e:
            raise _storage_error(e) from e
        finally:
            if conn.in_transaction():
                conn.rollback()

    def _snapshot(self) -> tuple[Connection, Any]:
        """This thread's read connection and its DBAPI connection, inside the event-loop
        iteration's read snapshot (begun here if none is open)."""
        conn = self._conn()
        raw = self._local.raw
        if not raw.in_transaction:
            raw.execute("BEGIN")
            self._local.pages = {}
            asyncio.get_running_loop().call_soon(self._end_snapshot, conn)
        return conn, raw

    async def query(self, query: Query[T]) -> T:
        """Run a read statement on the loop thread inside the iteration's read snapshot
        (see ``read``): straight on the driver's connection, nothing else in between.

        A page's rows are kept until the snapshot ends: an equal page asked for in the same
        iteration (clients walking the same pages, or polling the first) would read the same
        rows from the same snapshot, and gets them without the statement, in a list of its
        own (decisions O7 says the same of PostgreSQL's pages)."""
        conn, _raw = self._snapshot()
        statement = query.statement
        key: Any = None
        batch = statement.batch
        if isinstance(batch, Lateral):
            key = (statement, batch.read_key(query.params))
            rows = self._local.pages.get(key)
            if rows is not None:
                return statement.result(rows)
        compiled = statement.compiled(self._dialect)
        try:
            rows = self._local.cursor.execute(compiled.text, compiled.bind(query.params)).fetchall()
        except driver.OperationalError as e:
            self._end_snapshot(conn)
            raise _storage_error(e) from e
        if key is not None:
            self._local.pages[key] = rows
        return statement.result(rows)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` on the loop thread inside the iteration's read snapshot.

        Starting and ending a read transaction is most of a point lookup's cost in WAL mode
        (two ``fcntl`` calls on the shared-memory index and a header check: ~6 of ~13 us
        measured). The reads made in one event-loop iteration therefore share one snapshot,
        begun by the first of them and ended by a callback that runs before the loop next
        polls for I/O. That keeps read-after-write: a request whose client saw a write
        acknowledged was received after that write's COMMIT returned, in a poll that came
        after every snapshot begun earlier had ended."""
        conn, _raw = self._snapshot()
        try:
            return fn(conn)
        except (exc.OperationalError, driver.OperationalError) as e:
            self._end_snapshot(conn)
            raise _storage_error(e) from e

    def _end_snapshot(self, conn: Connection) -> None:
        self._local.pages = {}  # what they read is of the snapshot ending
        if conn.closed:
            return
        if conn.in_transaction():
            conn.rollback()  # SQLAlchemy's own bookkeeping, if a unit of work used it
        raw = conn.connection.driver_connection
        if raw.in_transaction:  # type: ignore[union-attr]
            raw.execute("COMMIT")  # type: ignore[union-attr]

    def write_sync(self, fn: Callable[[Connection], T]) -> T:
        with self._write_engine.connect() as conn:
            try:
                with conn.begin():
                    return fn(conn)
            except (exc.OperationalError, driver.OperationalError) as e:
                raise _storage_error(e) from e

    # --- group commit ---------------------------------------------------------------------------
    #
    # Writes that arrive while a batch is being committed wait in the loop's queue and go out
    # together in the next one: one transaction, one COMMIT (one fsync) for all of them; one
    # failing write does not fail the others (see ``_run_jobs``). The jobs run on the
    # event loop thread: a thread of their own would fight the loop for the GIL at every
    # SQLite call (measured: 80 us per job instead of 16). Only what blocks goes to a thread:
    # waiting for the write lock while another process holds it, and a COMMIT that syncs
    # (FULL, EXTRA). No write is acknowledged before its COMMIT returns.

    async def write(self, fn: Callable[[Connection], T], key: str | None = None) -> T:
        # One batch at a time holds SQLite's one write lock: ``key`` (what the write locks)
        # changes nothing here.
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = []
            spawn(loop, self._flush(loop, queue), self._flushers)
        queue.append((fn, future))
        return await future

    async def _flush(self, loop: asyncio.AbstractEventLoop, queue: list[Any]) -> None:
        try:
            while queue:
                batch = queue[:_MAX_BATCH]
                del queue[:_MAX_BATCH]
                await self._run_batch(loop, batch)
        finally:
            del self._queues[loop]

    def _batch_connection(self) -> Connection:
        if self._batch_conn is None or self._batch_conn.closed:
            self._batch_conn = self._batch_engine.connect()
            # Waiting for the write lock is done by ``_begin``, off the event loop.
            self._batch_conn.exec_driver_sql("PRAGMA busy_timeout=0")
            # Checkpoints run in a thread of their own, not inside a batch's COMMIT.
            self._batch_conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
            self._checkpointer.start()
        return self._batch_conn

    def _begin(self, wait: bool) -> Connection | None:
        """Take the batch lock, a turn at the store's write lock (``Turnstile``: the other
        processes serving it take turns with this one) and SQLite's write lock (``BEGIN
        IMMEDIATE``) for a batch.

        With ``wait`` false (on the event loop) this never blocks: it returns None if any of
        them is taken, by a batch of another event loop or by another process. With ``wait``
        (in a worker thread) it retries for up to the busy timeout, then raises."""
        if not self._batch_lock.acquire(blocking=wait):
            return None
        try:
            conn = self._batch_connection()
            raw: Any = conn.connection.driver_connection
            deadline = time.monotonic() + self._busy_timeout_ms / 1000
            entered = self._wait_for(self._turnstile.try_enter, wait, deadline)
            try:
                began = entered and self._wait_for(lambda: _began(raw), wait, deadline)
            finally:
                if entered:
                    self._turnstile.leave()  # holding the lock, or not waiting for it
        except BaseException:
            self._batch_lock.release()
            raise
        if not began:
            self._batch_lock.release()
            return None
        return conn

    @staticmethod
    def _wait_for(attempt: Callable[[], bool], wait: bool, deadline: float) -> bool:
        """Whether ``attempt`` succeeded: once, or with ``wait`` again and again until the
        deadline (then SQLite's "database is locked"). The pauses stay short: the writer
        ahead is one batch of another process, a few milliseconds, and the lock stands idle
        from its COMMIT to the next attempt (each attempt costs a few microseconds)."""
        pause = 0.0001
        while not attempt():
            if not wait:
                return False
            if time.monotonic() >= deadline:
                raise driver.OperationalError("database is locked")
            time.sleep(pause)
            pause = min(pause * 2, 0.001)
        return True

    def _commit(self, conn: Connection) -> None:
        conn.connection.driver_connection.execute("COMMIT")  # type: ignore[union-attr]

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, batch: list[Any]) -> None:
        started = time.monotonic()
        try:
            # Usually free (one process, one loop): taken here without a thread hop.
            conn = self._begin(wait=False) or await loop.run_in_executor(None, self._begin, True)
            assert conn is not None
        except (exc.DBAPIError, driver.Error) as e:
            busy = _storage_error(e)
            settle((future, None, busy) for _fn, future in batch)
            return
        raw = conn.connection.driver_connection
        try:
            locked = time.monotonic()
            outcomes = self._run_jobs(conn, raw, batch, savepoints=False)
            if outcomes is None:
                # A job failed after it had changed rows: undo the whole batch and run it again,
                # each job in its own SAVEPOINT. Jobs are functions of the database state
                # (values computed beforehand, reads inside), so running one again is safe.
                raw.execute("ROLLBACK")  # type: ignore[union-attr]
                raw.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
                outcomes = self._run_jobs(conn, raw, batch, savepoints=True)
                assert outcomes is not None
            ran = time.monotonic()
            if self._commit_syncs:
                await loop.run_in_executor(None, self._commit, conn)  # fsync: off the loop
            else:
                self._commit(conn)  # appends to the WAL, no fsync: cheaper than a thread hop
            committed = time.monotonic()
            self._slow.report(
                committed - started,
                len(batch),
                lambda: (
                    f"the write lock {(locked - started) * 1000:.1f} ms, "
                    f"the jobs {(ran - locked) * 1000:.1f} ms, "
                    f"COMMIT {(committed - ran) * 1000:.1f} ms"
                ),
            )
        except BaseException as e:
            with contextlib.suppress(Exception):
                raw.execute("ROLLBACK")  # type: ignore[union-attr]
            failure: BaseException = e
            if isinstance(e, (exc.DBAPIError, driver.Error)):
                failure = _storage_error(e)
            else:
                log.exception("write batch failed")
            outcomes = [(future, None, failure) for _fn, future in batch]
        finally:
            # Jobs that went through SQLAlchemy opened its logical transaction; the database
            # transaction is already over, so this only resets SQLAlchemy's bookkeeping.
            if conn.in_transaction():
                conn.rollback()
            self._batch_lock.release()
        settle(outcomes)
        checkpointer = self._checkpointer
        if checkpointer.due and not checkpointer.catching_up and not self._closed:
            # The WAL is past its limit (see ``_Checkpointer``): caught up in a thread of
            # normal priority while batches go on; only its last step holds them back.
            checkpointer.catching_up = True
            checkpointer.due = False
            loop.run_in_executor(None, self._catch_up)

    def _catch_up(self) -> None:
        """Copy the WAL back until little is left, then the rest with writes held back: the
        next batch begins with every frame copied and starts the WAL over.

        Passes at normal priority copy several times faster than the niced checkpoint thread,
        so each one leaves fewer new frames behind than the one before; the last step (a FULL
        checkpoint, under this process's batch lock and SQLite's write lock, which other
        processes' writers wait for) copies only what came during the last pass. A RESTART
        checkpoint, which also waits until no reader uses the WAL, held writes back for up to
        its whole wait (0.2 s) where a FULL one took ~20 ms (docs/performance.md "Round 11");
        a reader still in the WAL when the next batch begins only puts the restart off to the
        checkpoint thread's next request."""
        try:
            with self._catch_up_engine.connect() as conn:
                self._copy_back(conn.connection.driver_connection)
        except Exception as e:  # the checkpoint thread will ask again; the writes go on
            log.warning("checkpoint failed: %s", e)
        finally:
            self._checkpointer.catching_up = False

    def _copy_back(self, raw: Any) -> None:
        # The last step waits this long at most, holding writes back, for readers of older
        # snapshots and another process's writer; past it, the checkpoint thread asks again.
        raw.execute(f"PRAGMA busy_timeout={_LAST_STEP_WAIT_MS}")
        before = -1
        for _ in range(_CATCH_UP_PASSES):
            _busy, frames, _copied = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if 0 <= before <= frames < before + _CATCH_UP_FRAMES or self._closed:
                break  # few frames came during the last pass
            before = frames
        # The passes left the pages they copied in the database file's page cache, unsynced:
        # SQLite syncs the file only after a pass that reaches the WAL's end, which none does
        # under steady writes, and the kernel writes dirty pages back after ~30 s. The last
        # step's sync wrote all of them with writes held back (92-300 ms at 1M profiles,
        # docs/performance.md "Round 12"); synced here first, it has one pass's pages left.
        self._sync_file()
        if self._batch_lock.acquire(timeout=_LAST_STEP_WAIT_MS / 1000):
            try:
                if not self._closed:
                    started = time.monotonic()
                    busy, frames, copied = raw.execute("PRAGMA wal_checkpoint(FULL)").fetchone()
                    held_ms = (time.monotonic() - started) * 1000
                    _report_last_step(busy, frames, copied, held_ms)
            finally:
                self._batch_lock.release()

    def _sync_file(self) -> None:
        """fsync the database file (nothing to sync in memory).

        Through one descriptor kept open until the store closes: closing a descriptor drops
        every POSIX lock the process holds on the file, whichever descriptor took it, and in
        WAL mode each SQLite connection holds a shared lock on the database file for as long
        as it is open. Without it, another process that opened and closed the store took the
        exclusive lock on its way out, judged itself the last user and deleted the WAL and
        its index under this server (SQLite 3.40, Debian's library): the writes acknowledged
        after that went to a file no other process could see, lost at a restart
        (docs/decisions.md O28)."""
        if self._file is None:
            return
        with self._file_fd_lock:
            if self._closed:
                return
            if self._file_fd is None:
                # Not inherited by a child process: os.open makes it so itself (PEP 446).
                self._file_fd = os.open(self._file, os.O_RDONLY)
            os.fsync(self._file_fd)

    @staticmethod
    def _run_jobs(
        conn: Connection, raw: Any, batch: list[Any], *, savepoints: bool
    ) -> list[tuple[asyncio.Future[Any], Any, BaseException | None]] | None:
        """Run each job; their outcomes, or None if one failed after changing rows (only
        possible without savepoints). A job that fails before writing anything, the usual
        404 or 400, leaves nothing to undo: that needs no SAVEPOINT, which would cost two
        statements per job on every batch."""
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        for fn, future in batch:
            if savepoints:
                raw.execute("SAVEPOINT uprof_job")
            changes = raw.total_changes
            try:
                result = fn(conn)
            except BaseException as e:  # the job's own error, e.g. a 404 or a 400
                if savepoints:
                    raw.execute("ROLLBACK TO uprof_job")
                    raw.execute("RELEASE uprof_job")
                elif raw.total_changes != changes or isinstance(e, (driver.Error, exc.DBAPIError)):
                    return None  # it wrote, or a statement of it failed part-way: undo
                outcomes.append((future, None, e))
            else:
                if savepoints:
                    raw.execute("RELEASE uprof_job")
                outcomes.append((future, result, None))
        return outcomes

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def close(self) -> None:
        self._closed = True
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._checkpointer.stop()
        # A catch-up still running ends at its next step (``_closed``); the lock it takes
        # for its last one is not waited for long: a batch may be holding it on this thread.
        if self._batch_lock.acquire(timeout=1):
            self._batch_lock.release()
        self._catch_up_engine.dispose()
        if self._batch_conn is not None:
            self._batch_conn.close()
        self._turnstile.close()
        self.engine.dispose()
        self._write_engine.dispose()
        self._batch_engine.dispose()
        # Last: closing it drops this process's locks on the file (``_sync_file``).
        with self._file_fd_lock:
            fd, self._file_fd = self._file_fd, None
        if fd is not None:
            os.close(fd)


def _began(raw: Any) -> bool:
    """Whether ``BEGIN IMMEDIATE`` took SQLite's write lock (False: another writer holds it)."""
    try:
        raw.execute("BEGIN IMMEDIATE")
    except driver.OperationalError as e:
        if e.sqlite_errorcode != driver.SQLITE_BUSY:
            raise
        return False
    return True


def _report_last_step(busy: int, frames: int, copied: int, held_ms: float) -> None:
    """Log a catch-up's last step that held writes back long or did not finish: every write
    of the process waited for it, and one that did not finish leaves the WAL past its limit,
    so the next batch starts another catch-up (a stall that repeats). Readers of an older
    snapshot, here or in another process, are what a FULL checkpoint waits for."""
    if busy:
        log.warning(
            "WAL catch-up: writes held back %.0f ms and the WAL still in use by a reader of "
            "an older snapshot (%d of %d frames copied); it starts over at a later catch-up",
            held_ms,
            copied,
            frames,
        )
    elif held_ms > _SLOW_LAST_STEP_MS:
        log.warning("WAL catch-up: writes held back %.0f ms (%d frames copied)", held_ms, copied)


class _Checkpointer:
    """Copies committed pages from the WAL back into the database file, in a thread, and
    tells the group commit when the WAL should start over.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold (1,000
    pages): that batch's writers, and every write queued behind it, wait for pages to be
    copied and the database file to be synced. Here the group-commit connection turns the
    automatic checkpoint off and this thread runs a PASSIVE checkpoint every ``interval``
    seconds: it copies what no reader still needs and takes no lock writers wait for.
    Durability is unchanged: a write is durable once its COMMIT is in the WAL.

    Passes alone never let the WAL start over under steady writes: a writer goes back to the
    start of the file only if, when its transaction begins, every frame has been copied (and
    no reader is still reading frames), and with a batch committing every few milliseconds
    some frames are always newer than the last pass. The file grew by every page ever
    written (5.3 GB in a 7-minute soak at 1M profiles, docs/performance.md "Round 11"), and
    the WAL's index and each pass's buffers with it. So once the WAL holds ``limit_bytes``,
    this thread sets ``due``; the group commit takes it after its next batch and catches up
    in a thread of normal priority (``SqliteDatabase._catch_up``): passes while writes go
    on, then a FULL checkpoint with writes held back for what came during the last one.
    The next batch writes from the start of the file, which ``journal_size_limit`` cuts back
    to ``limit_bytes``. This thread makes no pass meanwhile (two checkpoints cannot run at
    once), and goes on with its passes if no batch takes ``due`` within a second.
    """

    def __init__(
        self, engine: Engine, limit_bytes: int, interval: float = 0.2, wal: Path | None = None
    ) -> None:
        self._engine = engine
        self._limit_bytes = limit_bytes
        self._interval = interval
        self._wal = wal
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # ``due``: set here when the WAL is past its limit, taken by the group commit, which
        # sets ``catching_up`` while it catches up (``SqliteDatabase._catch_up``).
        self.due = False
        self.catching_up = False

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="uprof-sqlite-checkpoint", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        _lower_this_threads_priority()
        with self._engine.connect() as conn:
            raw: Any = conn.connection.driver_connection
            waited = 0
            while not self._stopping.wait(self._interval):
                if self.catching_up:
                    continue  # two checkpoints cannot run at once: the catch-up's is the one
                if not self.due and self._wal_past_limit():
                    # Asked from the file's size, not from what a pass saw: niced, this thread
                    # gets almost no CPU while other work fills the machine's cores, and a pass
                    # over a long WAL could then take minutes, while the catch-up runs at normal
                    # priority (the WAL grew to 357 MB in 3 s of steady writes with two busy
                    # processes beside them when a pass had to see it first).
                    self.due = True
                if self.due and waited < _DUE_PATIENCE:
                    waited += 1  # the group commit takes it at its next batch
                    continue
                self.due = False  # no batch came to take it: passes go on meanwhile
                waited = 0
                try:
                    raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except driver.Error as e:  # busy or failing disk: the next pass tries again
                    log.warning("checkpoint failed: %s", e)
            # A last pass on the way out, so a stopped server leaves a short WAL behind.
            with contextlib.suppress(driver.Error):
                raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _wal_past_limit(self) -> bool:
        """Whether the WAL file holds more than the limit, from its size alone. The file is
        cut back to the limit when the WAL starts over (``journal_size_limit``) and grows past
        it only when its frames do."""
        if self._wal is None:
            return False
        try:
            return self._wal.stat().st_size > self._limit_bytes
        except OSError:  # not there (yet, or any more): nothing to copy back
            return False

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._engine.dispose()


def _lower_this_threads_priority() -> None:
    """The calling thread at the lowest priority (nice 19) where threads have their own (Linux).

    A checkpoint copies every page the last interval changed into the database file: under
    updates spread over a large store, thousands of pages a pass. On the core the event loop
    runs on, that work preempted the loop, and every request in flight waited for it: niced, it
    runs when the loop has nothing to do (update at 1M, p99 13.7 and 17.5 ms -> 10.1 and 8.8 ms
    in alternating harness runs, docs/performance.md "Round 9"). Checkpoints are not on any
    request's path (a write is durable once its COMMIT is in the WAL), so running later costs a
    longer WAL, not a slower write."""
    if sys.platform != "linux":  # elsewhere the call would name a process, not this thread
        return
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
