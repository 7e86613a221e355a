"""PostgreSQL: queries on the event loop (point reads coalesced), units of work in threads."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import psycopg
from anyio import CapacityLimiter, to_thread
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import Connection, Engine, create_engine, exc
from sqlalchemy.pool import QueuePool

from uprof.store.compiled import Query
from uprof.store.database import normalize_url
from uprof.store.database import storage_error as _storage_error

T = TypeVar("T")


class PostgresDatabase:
    """Queries run on the event loop; units of work in worker threads, one thread hop each.

    ``query`` (the API's reads: a profile, a page) runs on an asynchronous psycopg connection
    from a pool of its own, in autocommit mode: one round trip, no thread, no BEGIN/COMMIT.
    A read that fails because the server closed its connection (a restart, an idle timeout)
    runs once more on a fresh one; reads change nothing, so that is safe, and it is why the
    pool need not ping a connection before every use.

    Units of work (``read``/``write``: the writes, operator commands) run in worker threads
    limited to the synchronous pool's size, so a unit never waits for a connection and the
    pool never opens one beyond its size (a new PostgreSQL connection is a new server
    process: opening and closing them under load costs more than the queries).
    """

    dialect = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 10, query_pool_size: int = 8):
        self.url = normalize_url(url)
        self._pool_size = pool_size
        self._query_pool_size = query_pool_size
        self._query_pool_of: tuple[asyncio.AbstractEventLoop, AsyncConnectionPool] | None = None
        self._opening: asyncio.Lock | None = None
        self._opening_loop: asyncio.AbstractEventLoop | None = None
        self.engine = create_engine(
            self.url,
            poolclass=QueuePool,
            pool_size=pool_size,
            max_overflow=0,
            pool_pre_ping=True,
            pool_timeout=10,
        )
        # The same pool, with connections in autocommit mode while they serve a read.
        self._read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._limiter_of: tuple[asyncio.AbstractEventLoop, CapacityLimiter] | None = None

    def _run(self, fn: Callable[[Connection], T], engine: Engine | None = None) -> T:
        try:
            with (engine or self.engine).begin() as conn:
                return fn(conn)
        except (
            exc.OperationalError,
            exc.TimeoutError,
            exc.InterfaceError,
            psycopg.OperationalError,
            psycopg.InterfaceError,
        ) as e:
            raise _storage_error(e) from e

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

    async def write(self, fn: Callable[[Connection], T]) -> T:
        return await to_thread.run_sync(self._run, fn, limiter=self._limiter())

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
                    timeout=10,
                    open=False,
                )
                try:
                    await pool.open(wait=True, timeout=10)
                except (psycopg.Error, PoolTimeout) as e:
                    raise _storage_error(e) from e
                self._query_pool_of = (loop, pool)
            return self._query_pool_of[1]

    async def query(self, query: Query[T]) -> T:
        text, params = query.sql(self.engine.dialect)
        pool = await self._query_pool()
        for attempt in (1, 2):
            try:
                async with pool.connection() as conn:
                    cursor = await conn.execute(text, params)
                    rows = await cursor.fetchall()
                return query.statement.result(rows)
            except PoolTimeout as e:
                raise _storage_error(e) from e
            except (psycopg.OperationalError, psycopg.InterfaceError) as e:
                if attempt == 2:
                    raise _storage_error(e) from e
                # The pool has dropped the broken connection; the others idle in it were most
                # likely closed by the same restart: drop those too before the second try.
                await pool.check()
        raise AssertionError("unreachable")

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        if self._query_pool_of is not None:
            loop, pool = self._query_pool_of
            self._query_pool_of = None
            if loop is asyncio.get_running_loop():
                await pool.close()

    def close(self) -> None:
        self.engine.dispose()
