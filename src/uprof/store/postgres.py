"""PostgreSQL: queries and write batches on the event loop (point reads coalesced), other
units of work in threads."""

from __future__ import annotations

import asyncio
import contextlib
import re
import select
import time
import weakref
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from anyio import CapacityLimiter, to_thread
from psycopg.pq import Escaping, TransactionStatus
from psycopg.pq.abc import PGresult
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool
from sqlalchemy.util import await_, greenlet_spawn

from uprof.config import DEFAULT_SLOW_WRITE_MS
from uprof.store.compiled import Query, deferred_sql, deferring
from uprof.store.database import SlowWrites, normalize_url, settle, spawn
from uprof.store.database import storage_error as _storage_error
from uprof.store.pgcoalesce import BUSY_POLL, CoalescedReads
from uprof.store.pgreads import (
    PLACEHOLDER,
    PreparedReads,
    raise_failed,
    refuse_nul,
    rows_of,
    wait_for_results,
)
from uprof.store.profiles import lock_profiles

T = TypeVar("T")
_MAX_BATCH = 512
_LANES = 2  # fewer batches, larger ones: see ``write``
_RETRIES = 3
# What another transaction can make a batch fail with, that running it again fixes.
_RETRYABLE = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
_STORAGE_ERRORS = (
    exc.OperationalError,
    exc.TimeoutError,
    exc.InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


def _is_storage_error(e: BaseException) -> bool:
    """The database is unreachable or busy (529), not the job at fault."""
    return isinstance(e, _STORAGE_ERRORS)


# Every session of uprof's: no JIT compilation. uprof's statements are short (a point read, a
# page, a write), but a coalesced read's generic plan cannot know how many reads it holds,
# and PostgreSQL's estimate of it crosses ``jit_above_cost``: the JIT then took 6-26 ms of
# a statement that runs in 0.3 ms (measured).
# And no sequential scan where an index can serve (decisions O23): every statement uprof
# serves with reaches its rows through an index (a profile by id, a page by its keyset), but
# the planner prices an index by its pages, and a small table whose index kept the pages of
# many deleted rows (churn: ~480k rows created and deleted beside 1k live) got a generic plan
# that read the whole table and sorted it for every page of a list (0.5 ms against 0.03).
# Statements with no index to use still scan; migrations turn it back on (``migrate``).
_SESSION_SETUP = (
    "SELECT set_config('jit', 'off', false), set_config('enable_seqscan', 'off', false)"
)


# A pooled connection is pinged before use only if it has idled longer than this (HikariCP's
# ``aliveBypassWindowMs``, at the same 500 ms) or if the server has sent it something since
# its last use. Under load every connection is used within milliseconds, and a ping is a round
# trip of every batch (measured: 10% of a batch's wall time). A server that closes a
# connection (a restart, pg_terminate_backend, an idle timeout) first sends it a FATAL error or
# at least an end of stream, which makes the idle socket readable: a poll of the socket, with
# no round trip, tells (the check go-sql-driver/mysql makes of its idle connections).
_TRUSTED_FOR = 0.5
_LAST_USED = "uprof.last_used"
_now = time.monotonic  # the clock of that rule (tests move it)


def _driver(dbapi_conn: Any) -> Any:
    """psycopg's connection under a DBAPI connection: itself, or the asynchronous connection
    SQLAlchemy's adapter wraps (the write batches' engine)."""
    return getattr(dbapi_conn, "driver_connection", dbapi_conn)


def _heard_from_server(dbapi_conn: Any) -> bool:
    """Whether the server has sent an idle connection anything (it has nothing to say to one
    it keeps), or the connection is closed on this side."""
    try:
        fd = _driver(dbapi_conn).pgconn.socket
    except psycopg.OperationalError:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def _configure_sync(dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
    with dbapi_conn.cursor() as cursor:
        cursor.execute(_SESSION_SETUP)
    dbapi_conn.commit()
    record.info[_LAST_USED] = _now()


def _used(_dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
    record.info[_LAST_USED] = _now()


def _ping_if_stale(engine: Engine, dbapi_conn: Any, info: dict[Any, Any]) -> None:
    """Ping a connection before its use if the rule above says it may be stale (``info``: its
    pool record's, where its last use is kept); ``DisconnectionError`` if the ping fails."""
    recent = _now() - info.get(_LAST_USED, 0.0) <= _TRUSTED_FOR
    if recent and not _heard_from_server(dbapi_conn):
        return
    try:
        engine.dialect.do_ping(dbapi_conn)
    except Exception as e:
        raise exc.DisconnectionError(str(e)) from e


def _ping_if_idle(engine: Engine) -> Callable[[Any, ConnectionPoolEntry, Any], None]:
    def checkout(dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        # A DisconnectionError: the pool drops it and checks out another (or connects).
        _ping_if_stale(engine, dbapi_conn, record.info)

    return checkout


async def _configure_async(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute(_SESSION_SETUP)


_Write = tuple[Callable[[Connection], Any], asyncio.Future[Any], str | None]


def lane_of(key: str) -> int:
    """The lane every write of the profile ``key`` goes into (``PostgresDatabase.write``)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % _LANES


def _postgres_parts() -> str:
    """Where a slow batch's time went (``SlowWrites``): one wait on the loop covers it all."""
    return "its statements and COMMIT on PostgreSQL"


class _Lane:
    """Writes waiting for the next batch of one lane, whether its batch is running, and the
    connection its batches run on with its quoting (``held``), kept from one batch to the
    next."""

    __slots__ = ("held", "queue", "retired", "running", "scheduled", "shared")

    def __init__(self, shared: list[_Write]) -> None:
        self.queue: list[_Write] = []
        # The writes without a key waiting, shared by the loop's lanes: the next batch to
        # start takes them (see ``PostgresDatabase.write``).
        self.shared = shared
        self.running = False
        self.scheduled = False
        self.held: tuple[Connection, _Literals] | None = None
        self.retired = False  # the database stopped: the lane's connection goes back after use


def _driver_error(e: BaseException) -> BaseException:
    """psycopg's exception, whether SQLAlchemy wrapped it or a raw cursor raised it."""
    return e.orig if isinstance(e, exc.DBAPIError) and e.orig is not None else e


def _loses_the_transaction(e: BaseException) -> bool:
    """The batch's whole transaction is lost (the server is unreachable, or another
    transaction won), not one job at fault: the batch runs again or fails as a whole."""
    return _is_storage_error(e) or isinstance(_driver_error(e), _RETRYABLE)


# --- one batch's transaction --------------------------------------------------------------
#
# A batch's round trips are what its wall time is made of, and each costs this process CPU in
# psycopg (measured: of a batch of updates, its flush 32%, its locking read 30%, its COMMIT
# 24%, the pool's ping 10%). psycopg would send BEGIN in a round trip of its own before the
# first statement and COMMIT in another after the last: instead the batch opens and closes its
# transaction itself, in the round trips it makes anyway. BEGIN goes with the locking read (one
# simple-protocol message of two statements) or, in a batch that locks nothing and ran no
# statement before its end (new profiles), with the flush; the flush and COMMIT go out as one
# simple-protocol message too, the rows' values bound into its text as literals (O11).
# A batch of creates is one round trip, a batch of updates two.
#
# A batch runs in a greenlet on the event loop (see "group commit" below): ``dbapi`` is the
# DBAPI connection SQLAlchemy holds (transaction control), its adapter of psycopg's
# asynchronous connection, whose calls wait on the loop from the greenlet; ``raw`` is that
# psycopg connection itself (``dbapi.driver_connection``: its libpq connection, its encoding).

Raw = psycopg.AsyncConnection[Any]


def _in_transaction(raw: Raw) -> bool:
    return raw.pgconn.transaction_status != TransactionStatus.IDLE


def _simple(raw: Raw, sql: str, encoding: str) -> list[PGresult]:
    """Send ``sql`` (statements with their values bound into the text) as one simple-protocol
    message and wait for its results on the event loop (the caller is a greenlet that
    ``await_`` suspends, as SQLAlchemy's adapter waits). Raises the first statement's error as
    psycopg's exception of its SQLSTATE.

    psycopg's cursor costs ~30 µs of this process's CPU a statement beyond libpq's own work
    (measured: ``SELECT 1`` 50 µs through ``execute``, 16 µs so), and its pipeline more: a
    batch's two messages go through libpq directly (psycopg's documented ``pq`` layer)."""
    pgconn = raw.pgconn
    pgconn.send_query(sql.encode(encoding))
    results = await_(wait_for_results(pgconn))
    raise_failed(results, encoding)
    return results


class _Literals:
    """Values as SQL literals for one connection: text quoted by libpq itself
    (``PQescapeLiteral``, through psycopg's documented ``pq`` layer: right for the connection's
    encoding and ``standard_conforming_strings``), numbers and NULL as such, a list as
    ``ARRAY[...]``; any other value as psycopg's client-side binding renders it. Made once for
    the connection a lane holds, with its encoding read once (``conn.info.encoding`` asks
    libpq every time).

    psycopg's own binding (``ClientCursor.mogrify``) parses a statement's placeholders and
    adapts every value in Python: measured, 8-10 µs a row of a new profile, against 1.7 µs so;
    a list of ids 59 µs, against 8."""

    __slots__ = ("_escape", "_mogrify", "encoding", "raw")

    def __init__(self, raw: Raw) -> None:
        self.raw = raw
        self._escape = Escaping(raw.pgconn).escape_literal
        self.encoding = raw.info.encoding
        self._mogrify = psycopg.AsyncClientCursor(raw).mogrify

    def literal(self, value: Any) -> str:
        if isinstance(value, str):
            return self._escape(refuse_nul(value).encode(self.encoding)).decode(self.encoding)
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value) if value >= 0 else f" {value}"  # never "--", a comment
        if isinstance(value, list) and value:
            return "ARRAY[" + ", ".join([self.literal(v) for v in value]) + "]"
        return self._mogrify("%s", [value])

    def bind(self, text: str, params: dict[str, Any]) -> str:
        def placeholder(match: re.Match[str]) -> str:
            name = match.group(1)
            return "%" if name is None else self.literal(params[name])

        return PLACEHOLDER.sub(placeholder, text)


def _opening(literals: _Literals) -> Callable[[Connection, Query[T]], T]:
    """How the batch's first statement runs: after a BEGIN, in the same message."""
    raw = literals.raw

    def run_first(conn: Connection, query: Query[T]) -> T:
        text, params = query.sql(conn.dialect)
        results = _simple(raw, "BEGIN;\n" + literals.bind(text, params), literals.encoding)
        return query.statement.result(rows_of(raw, results[-1]))

    return run_first


def _flush_and_commit(conn: Connection, literals: _Literals) -> None:
    """The deferred writes and the COMMIT in one message (and the BEGIN, if nothing opened the
    transaction yet: no locking read, and no job ran a statement of its own, which psycopg
    opens a transaction for, the connection being out of autocommit)."""
    opened = _in_transaction(literals.raw)
    statements = [] if opened else ["BEGIN"]
    statements += deferred_sql(conn, literals)
    statements.append("COMMIT")
    _simple(literals.raw, ";\n".join(statements), literals.encoding)


def _close(conn: Connection, dbapi: Any) -> None:
    """Roll back what a failed batch left open, and end the transaction SQLAlchemy began if a
    job ran a statement through it (the batch's COMMIT, or that rollback, ended the server's).
    ``dbapi``: the connection's DBAPI connection, taken when the batch began (once SQLAlchemy
    has invalidated a connection whose server went away, ``conn.connection`` raises)."""
    try:
        if _in_transaction(dbapi.driver_connection):
            dbapi.rollback()
        if conn.in_transaction():
            conn.rollback()
    except Exception as e:  # the connection is broken: the pool must not hand it out again
        conn.invalidate()
        raise psycopg.OperationalError(f"the connection broke ending a batch: {e}") from e


def _run_together(
    conn: Connection,
    fns: list[Callable[[Connection], Any]],
    keys: list[str],
    literals: _Literals,
) -> list[tuple[Any, Any]] | None:
    """The batch as one transaction: its profiles locked and read in one statement before its
    first job, what its jobs insert or change written together at its end (``deferring``,
    ``lock_profiles``). None if a job or the flush failed: the batch is rolled back, and the
    replay finds the job at fault.

    The transaction is the batch's own: its BEGIN goes out in its first message and its COMMIT
    in its last, with no SQLAlchemy transaction around them (beginning and committing one cost
    this process a switch of greenlets and a psycopg coroutine each, for no message)."""
    dbapi: Any = conn.connection.dbapi_connection
    outcomes: list[tuple[Any, Any]] = []
    with deferring(conn):
        try:
            lock_profiles(conn, keys, _opening(literals))
            for fn in fns:
                try:
                    result = fn(conn)
                except Exception as e:  # the job's own error (a 404, a 400) or a statement's
                    if _loses_the_transaction(e):
                        raise
                    return None
                outcomes.append((result, None))
            try:
                _flush_and_commit(conn, literals)
            except Exception as e:
                if _loses_the_transaction(e):
                    raise
                return None
        finally:
            _close(conn, dbapi)
    return outcomes


def _replay(conn: Connection, fns: list[Callable[[Connection], Any]]) -> list[tuple[Any, Any]]:
    """The batch again, each job in a SAVEPOINT of its own and every statement run at once, so
    that a failing job is undone alone."""
    outcomes: list[tuple[Any, Any]] = []
    with conn.begin():
        for fn in fns:
            savepoint = conn.begin_nested()
            try:
                result = fn(conn)
            except Exception as e:
                if _loses_the_transaction(e):
                    raise
                savepoint.rollback()
                outcomes.append((None, e))
            else:
                savepoint.commit()
                outcomes.append((result, None))
    return outcomes


def _lane_connection(lane: _Lane, engine: Engine) -> tuple[Connection, _Literals]:
    """The connection the lane's batches run on, and its quoting. A lane holds its connection
    from one batch to the next: a checkout and a checkin a batch (the pool's events, SQLAlchemy's
    ``Connection`` and the reset on return, a psycopg rollback through a greenlet) cost this
    process more CPU than the batch's own messages (decisions O24). A held connection is pinged
    before a batch by the checkout's rule (``_ping_if_stale``) and replaced if that fails; a new
    one is checked out when the lane holds none."""
    if lane.held is not None and not lane.held[0].invalidated:
        record = lane.held[0].connection
        try:
            _ping_if_stale(engine, record.dbapi_connection, record.info)
            return lane.held
        except exc.DisconnectionError:  # the pool must not hand it out again
            lane.held[0].invalidate()
    _release(lane)  # a connection found broken (or none held)
    conn = engine.connect()  # its checkout pings a connection the pool kept, as needed
    lane.held = conn, _Literals(_driver(conn.connection.dbapi_connection))
    return lane.held


def _release(lane: _Lane, *, discard: bool = False) -> None:
    """Give the lane's connection back to the pool (which discards it if it is broken), or
    close it (``discard``: the database stopped, and its pool may be gone)."""
    held, lane.held = lane.held, None
    if held is not None:
        conn = held[0]
        with contextlib.suppress(Exception):  # broken: the pool has invalidated it
            if discard:
                conn.invalidate()
            conn.close()


class PostgresDatabase:
    """Queries and write batches run on the event loop; other units of work in worker threads,
    one thread hop each.

    ``query`` (the API's reads: a profile, a page) runs on an asynchronous psycopg connection
    from a pool of its own, in autocommit mode: one round trip, no thread, no BEGIN/COMMIT;
    point reads made in the same loop iteration share one statement (see ``_coalesced``).
    A read that fails because the server closed its connection (a restart, an idle timeout)
    runs once more on a fresh one; reads change nothing, so that is safe, and it is why the
    pool need not ping a connection before every use.

    Writes (``write``) run in batches on the event loop, each on a connection of the write
    engine's (asynchronous) pool: see "group commit" below.

    Other units of work (``read``: operator commands) run in worker threads limited to the
    synchronous pool's size, so a unit never waits for a connection and the pool never opens
    one beyond its size (a new PostgreSQL connection is a new server process: opening and
    closing them under load costs more than the queries).
    """

    dialect = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        query_pool_size: int = 8,
        busy_poll: float = BUSY_POLL,
        slow_write: float = DEFAULT_SLOW_WRITE_MS / 1000,
    ):
        self.url = normalize_url(url)
        self._slow = SlowWrites(slow_write)
        self._pool_size = pool_size
        self._query_pool_size = query_pool_size
        self._query_pool_of: tuple[asyncio.AbstractEventLoop, AsyncConnectionPool] | None = None
        self._reads = PreparedReads()
        self._opening: asyncio.Lock | None = None
        self._opening_loop: asyncio.AbstractEventLoop | None = None
        self.engine = create_engine(
            self.url,
            poolclass=QueuePool,
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=10,
        )
        event.listens_for(self.engine, "connect")(_configure_sync)
        event.listens_for(self.engine, "checkin")(_used)
        event.listens_for(self.engine, "checkout")(_ping_if_idle(self.engine))
        # The same pool, with connections in autocommit mode while they serve a read.
        self._read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._limiter_of: tuple[asyncio.AbstractEventLoop, CapacityLimiter] | None = None
        # Reads made in one loop iteration share a statement (``uprof.store.pgcoalesce``);
        # through a lambda, so that ``_fetch`` is looked up at each call.
        self._coalesced = CoalescedReads(
            lambda text, params: self._fetch(text, params),
            self.engine.dialect,
            busy_poll=busy_poll,
        )
        # The write batches committing (``spawn`` keeps them alive while they run).
        self._tasks: set[asyncio.Task[None]] = set()
        # Each event loop's lanes of writes (see ``write``), and the engine their batches run
        # on (its connections belong to the loop that opened them) with the psycopg connections
        # it opened, to close them if the loop ends without ``stop`` (``_abandon``).
        self._lanes: dict[asyncio.AbstractEventLoop, list[_Lane]] = {}
        self._write_engines: dict[
            asyncio.AbstractEventLoop, tuple[AsyncEngine, weakref.WeakSet[Any]]
        ] = {}

    def _run(self, fn: Callable[[Connection], T], engine: Engine | None = None) -> T:
        try:
            with (engine or self.engine).begin() as conn:
                return fn(conn)
        except Exception as e:
            if _is_storage_error(e):
                raise _storage_error(e) from e
            raise

    def _read(self, fn: Callable[[Connection], T]) -> T:
        return self._run(fn, self._read_engine)

    def read_sync(self, fn: Callable[[Connection], T]) -> T:
        return self._run(fn)

    def write_sync(self, fn: Callable[[Connection], T]) -> T:
        return self._run(fn)

    def _limiter(self) -> CapacityLimiter:
        # One per event loop (a limiter belongs to the loop it was made on).
        loop = asyncio.get_running_loop()
        if self._limiter_of is None or self._limiter_of[0] is not loop:
            self._limiter_of = (loop, CapacityLimiter(self._pool_size))
        return self._limiter_of[1]

    async def read(self, fn: Callable[[Connection], T]) -> T:
        return await to_thread.run_sync(self._read, fn, limiter=self._limiter())

    # --- group commit -------------------------------------------------------------------------
    #
    # The writes waiting at one moment run as one transaction: one pool checkout, one COMMIT
    # for all of them, instead of a checkout (with its ping), a BEGIN and a COMMIT each. No
    # write is acknowledged before its COMMIT returns.
    #
    # A batch runs on the event loop, not in a worker thread: its jobs are synchronous code
    # (SQLAlchemy Core on a ``Connection``), run in a greenlet (SQLAlchemy's ``greenlet_spawn``,
    # as its ``AsyncConnection.run_sync`` runs them) whose every wait for the server (its two
    # messages, a replay's statements, a ping, a connect, a rollback) suspends it and serves
    # the loop (SQLAlchemy's asyncio support over psycopg's asynchronous connections). In a
    # worker thread, each of a batch's waits ended in a wait for the interpreter's lock, which
    # the loop holds while it serves: a hop into the thread and back took 0.3 ms at the median
    # and 4-7 ms at the 90th percentile, beside PostgreSQL's 1.35 ms for the batch
    # (docs/performance.md, rounds 13 and 20; decisions O19).
    #
    # Writes go into _LANES lanes, each running one batch at a time on a connection of its own,
    # held from one batch to the next (``_lane_connection``), so one batch's round trips
    # overlap another's. A write names what it locks (``key``: the
    # profile) and every write of one key goes into the same lane: two batches of this process
    # never wait for each other's row locks, and so never deadlock each other (measured on a
    # store of 1,000 profiles, batches free to lock the same rows waited up to the 1 s deadlock
    # timeout). Writes without a key (new profiles) wait in one queue the lanes share, taken
    # by the next batch to start: a lane idle at the end of the iteration, or else the first
    # to finish. Until round 29 each went into a lane chosen as it arrived, with both lanes
    # running the first one, so a create could wait for that lane's batch while the other
    # finished and sat idle: one queue served create 1.09x at 1M, its p99 10.8 -> 10.0 ms in
    # alternating runs (docs/performance.md, "Round 29").
    # Two lanes: one batch's round trips overlap the other's, and each batch carries as many
    # writes as it can. Measured in alternating pairs at 64 connections (round 13): update
    # +17% at 1M and +26% at 1k against four lanes, create the same; one lane cost create 8%
    # (nothing overlaps its round trips), eight cost update 21% (PostgreSQL's work a
    # transaction, the locking read and the commit's WAL flush, spread over fewer writes).
    #
    # A job that fails makes its batch roll back and run again with a SAVEPOINT per job, so its
    # failure is undone alone (jobs are functions of the database state: running one again is
    # safe); a deadlock or serialization failure against another instance's transaction runs
    # the batch again, up to _RETRIES times.

    async def write(self, fn: Callable[[Connection], T], key: str | None = None) -> T:
        loop = asyncio.get_running_loop()
        lanes = self._lanes.get(loop)
        if lanes is None:
            shared: list[_Write] = []
            lanes = self._lanes[loop] = [_Lane(shared) for _ in range(_LANES)]
        future: asyncio.Future[T] = loop.create_future()
        if key is None:
            # Into the lanes' shared queue, which the next batch to start takes: a lane that is
            # idle at the end of this iteration, or else the first to finish its batch.
            lanes[0].shared.append((fn, future, key))
            for lane in lanes:
                if lane.scheduled:
                    break
                if not lane.running:
                    self._schedule(loop, lane)
                    break
        else:
            lane = lanes[lane_of(key)]
            lane.queue.append((fn, future, key))
            self._schedule(loop, lane)
        return await future

    def _schedule(self, loop: asyncio.AbstractEventLoop, lane: _Lane) -> None:
        # At the end of this iteration, so that the writes it makes share the batch.
        if (lane.queue or lane.shared) and not lane.scheduled and not lane.running:
            lane.scheduled = True
            loop.call_soon(self._start_batch, loop, lane)

    def _start_batch(self, loop: asyncio.AbstractEventLoop, lane: _Lane) -> None:
        lane.scheduled = False
        if not (lane.queue or lane.shared) or lane.running:
            return
        batch = lane.queue[:_MAX_BATCH]
        del lane.queue[:_MAX_BATCH]
        if len(batch) < _MAX_BATCH and lane.shared:
            room = _MAX_BATCH - len(batch)
            batch += lane.shared[:room]
            del lane.shared[:room]
        lane.running = True
        spawn(loop, self._commit_batch(loop, lane, batch), self._tasks)

    async def _commit_batch(
        self, loop: asyncio.AbstractEventLoop, lane: _Lane, batch: list[Any]
    ) -> None:
        started = time.monotonic()
        try:
            try:
                # One greenlet a batch: its jobs, on the lane's connection (checked out
                # here when the lane holds none, ``_lane_connection``).
                outcomes = await greenlet_spawn(
                    self._write_batch,
                    lane,
                    self._write_engine(loop).sync_engine,
                    [fn for fn, _, _ in batch],
                    [key for _, _, key in batch if key is not None],
                )
                # Its statements and COMMIT, waited for on the loop (PostgreSQL's locks and
                # WAL flush, and the loop's other work while they were out).
                self._slow.report(time.monotonic() - started, len(batch), _postgres_parts)
            except Exception as e:
                failure = _storage_error(e) if _is_storage_error(e) else e
                outcomes = [(None, failure)] * len(batch)
            settle(
                (future, result, error)
                for (_fn, future, _key), (result, error) in zip(batch, outcomes, strict=True)
            )
        finally:
            lane.running = False
            self._schedule(loop, lane)

    def _write_engine(self, loop: asyncio.AbstractEventLoop) -> AsyncEngine:
        """The engine of ``loop``'s write batches: a connection a lane, the pool's rules as
        the synchronous engine's (a session without JIT, a ping only when it may be needed)."""
        found = self._write_engines.get(loop)
        if found is None:
            for ended in [other for other in self._write_engines if other.is_closed()]:
                self._abandon(ended)
            engine = create_async_engine(
                self.url, pool_size=_LANES, max_overflow=0, pool_timeout=10
            )
            sync = engine.sync_engine
            opened: weakref.WeakSet[Any] = weakref.WeakSet()

            def connected(dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
                opened.add(_driver(dbapi_conn))
                _configure_sync(dbapi_conn, record)

            event.listens_for(sync, "connect")(connected)
            event.listens_for(sync, "checkin")(_used)
            event.listens_for(sync, "checkout")(_ping_if_idle(sync))
            found = self._write_engines[loop] = (engine, opened)
        return found[0]

    def _abandon(self, loop: asyncio.AbstractEventLoop) -> None:
        """Drop the write engine and lanes of a loop that ended without ``stop`` (a script's or
        a test's ``asyncio.run``), closing its connections without the loop: libpq's
        ``PQfinish``."""
        lanes = self._lanes.pop(loop, [])  # held until their connections are finished below
        for lane in lanes:
            if lane.held is not None:  # out of the pool's hands, which cannot close it here
                with contextlib.suppress(Exception):
                    lane.held[0].connection.detach()
        _engine, opened = self._write_engines.pop(loop)
        for conn in opened:
            if not conn.closed:
                conn.pgconn.finish()

    def _write_batch(
        self,
        lane: _Lane,
        engine: Engine,
        fns: list[Callable[[Connection], Any]],
        keys: list[str],
    ) -> list[tuple[Any, Any]]:
        """Run the jobs in one transaction on the lane's connection; each job's (result,
        error). ``keys``: the profiles they name, locked up front."""
        conn, literals = _lane_connection(lane, engine)
        try:
            for attempt in range(_RETRIES):
                try:
                    return self._run_jobs(conn, fns, keys, literals)
                except Exception as e:
                    if attempt + 1 < _RETRIES and isinstance(_driver_error(e), _RETRYABLE):
                        continue  # another instance's transaction won: run the batch again
                    raise
            raise AssertionError("unreachable")
        except BaseException:
            _release(lane)  # whatever failed the batch, the next one starts on a checkout
            raise
        finally:
            if lane.held is not None:
                lane.held[0].connection.info[_LAST_USED] = _now()
                if lane.retired:  # ``stop`` came while the batch ran
                    _release(lane, discard=True)

    @staticmethod
    def _run_jobs(
        conn: Connection,
        fns: list[Callable[[Connection], Any]],
        keys: list[str],
        literals: _Literals,
    ) -> list[tuple[Any, Any]]:
        """Every job's (result, error) after one COMMIT: the batch together, or, if a job
        failed there (the batch was rolled back), again with a SAVEPOINT a job."""
        outcomes = _run_together(conn, fns, keys, literals)
        return _replay(conn, fns) if outcomes is None else outcomes

    async def _query_pool(self) -> AsyncConnectionPool:
        # One per event loop: its connections and tasks belong to the loop that opened it.
        loop = asyncio.get_running_loop()
        if self._query_pool_of is not None and self._query_pool_of[0] is loop:
            return self._query_pool_of[1]
        if self._opening is None or self._opening_loop is not loop:
            self._opening, self._opening_loop = asyncio.Lock(), loop
        async with self._opening:
            if self._query_pool_of is None or self._query_pool_of[0] is not loop:
                pool = AsyncConnectionPool(
                    self.engine.url.set(drivername="postgresql").render_as_string(
                        hide_password=False
                    ),
                    min_size=1,
                    max_size=self._query_pool_size,
                    kwargs={"autocommit": True},
                    configure=_configure_async,
                    timeout=10,
                    open=False,
                )
                try:
                    await pool.open(wait=True, timeout=10)
                except (psycopg.Error, PoolTimeout) as e:
                    raise _storage_error(e) from e
                self._query_pool_of = (loop, pool)
            return self._query_pool_of[1]

    async def _fetch(self, text: str, params: dict[str, Any]) -> list[Any]:
        pool = await self._query_pool()
        for attempt in (1, 2):
            try:
                async with pool.connection() as conn:
                    return await self._reads.fetch(conn, text, params)
            except PoolTimeout as e:
                raise _storage_error(e) from e
            except (psycopg.OperationalError, psycopg.InterfaceError) as e:
                if attempt == 2:
                    raise _storage_error(e) from e
                # The pool has dropped the broken connection; the others idle in it were most
                # likely closed by the same restart: drop those too before the second try.
                await pool.check()
        raise AssertionError("unreachable")

    async def query(self, query: Query[T]) -> T:
        statement = query.statement
        if statement.batch is not None:
            return await self._coalesced.read(query)
        rows = await self._fetch(*query.sql(self.engine.dialect))
        return statement.result(rows)

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        for lane in self._lanes.pop(loop, []):
            lane.retired = True  # a batch still running closes its connection as it ends
            if not lane.running:
                await greenlet_spawn(_release, lane)  # closed with the engine, below
        found = self._write_engines.pop(loop, None)
        if found is not None:
            await found[0].dispose()
        if self._query_pool_of is not None:
            loop, pool = self._query_pool_of
            self._query_pool_of = None
            if loop is asyncio.get_running_loop():
                await pool.close()

    def close(self) -> None:
        for loop in list(self._write_engines):  # loops that ended without ``stop``
            self._abandon(loop)
        self.engine.dispose()
