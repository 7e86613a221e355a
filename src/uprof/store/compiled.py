"""Core statements compiled once per dialect and run on the driver's cursor.

SQLAlchemy's execution path (statement construction, cache key, result wrapping) costs about
ten times a point lookup itself on SQLite. The queries stay written in SQLAlchemy Core, against
the one schema in ``tables``; only their execution skips the layers a hot path does not need.
Parameters are named (``:name`` on SQLite, ``%(name)s`` on psycopg), so one dict serves both.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import Executable

_SQLITE_NAMED = sqlite.dialect(paramstyle="named")


class Compiled:
    """SQL text plus the values of the constants the statement binds itself (literals, and
    SQLite's ``OFFSET 0`` that comes with a bound LIMIT)."""

    __slots__ = ("constants", "text")

    def __init__(self, stmt: Executable, dialect: Dialect) -> None:
        target = _SQLITE_NAMED if dialect.name == "sqlite" else dialect
        compiled = stmt.compile(dialect=target)  # type: ignore[attr-defined]
        self.text: str = str(compiled)
        self.constants: dict[str, Any] = {k: v for k, v in compiled.params.items() if v is not None}

    def bind(self, params: dict[str, Any]) -> dict[str, Any]:
        """Every parameter the statement binds: the caller's and its own constants."""
        return {**self.constants, **params} if self.constants else params


class StatementCache:
    """Compiled SQL by (dialect, variant); the statement is built only on a miss."""

    def __init__(self) -> None:
        self._sql: dict[tuple[str, Hashable], Compiled] = {}

    def sql(self, conn: Connection, variant: Hashable, build: Callable[[], Executable]) -> Compiled:
        return self.for_dialect(conn.dialect, variant, build)

    def for_dialect(
        self, dialect: Dialect, variant: Hashable, build: Callable[[], Executable]
    ) -> Compiled:
        key = (dialect.name, variant)
        found = self._sql.get(key)
        if found is None:
            found = self._sql[key] = Compiled(build(), dialect)
        return found


T = TypeVar("T")


class Query(Generic[T]):
    """One read statement as a value: what to run and how its rows become the result.

    Store functions return these instead of running them, so the database decides where the
    statement runs: inline on the event loop for SQLite, on an asynchronous PostgreSQL
    connection without a thread hop, or inside a unit of work on a ``Connection`` (``run``).
    ``variant`` names the statement's shape in ``cache``; ``build`` makes it on a cache miss.
    """

    __slots__ = ("build", "cache", "params", "result", "variant")

    def __init__(
        self,
        cache: StatementCache,
        variant: Hashable,
        build: Callable[[], Executable],
        params: dict[str, Any],
        result: Callable[[list[Any]], T],
    ) -> None:
        self.cache = cache
        self.variant = variant
        self.build = build
        self.params = params
        self.result = result

    def sql(self, dialect: Dialect) -> tuple[str, dict[str, Any]]:
        """The statement's text for ``dialect`` and every parameter it binds."""
        compiled = self.cache.for_dialect(dialect, self.variant, self.build)
        return compiled.text, compiled.bind(self.params)


def run(conn: Connection, query: Query[T]) -> T:
    """Run a query on the DBAPI connection under ``conn`` (inside whatever transaction it
    holds)."""
    text, params = query.sql(conn.dialect)
    raw: Any = conn.connection.driver_connection
    return query.result(raw.execute(text, params).fetchall())


def execute(conn: Connection, sql: Compiled, params: dict[str, Any]) -> int:
    """Run a write on the DBAPI connection under ``conn``; the number of rows it touched."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql.text, sql.bind(params))
        return int(cursor.rowcount)
    finally:
        cursor.close()
