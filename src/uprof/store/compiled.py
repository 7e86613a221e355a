"""Core statements compiled once per dialect and run on the driver's cursor.

SQLAlchemy's execution path (statement construction, cache key, result wrapping) costs about
ten times a point lookup itself on SQLite. The queries stay written in SQLAlchemy Core, against
the one schema in ``tables``; only their execution skips the layers a hot path does not need.
Parameters are named (``:name`` on SQLite, ``%(name)s`` on psycopg), so one dict serves both.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

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


class StatementCache:
    """Compiled SQL by (dialect, variant); the statement is built only on a miss."""

    def __init__(self) -> None:
        self._sql: dict[tuple[str, Hashable], Compiled] = {}

    def sql(self, conn: Connection, variant: Hashable, build: Callable[[], Executable]) -> Compiled:
        key = (conn.dialect.name, variant)
        found = self._sql.get(key)
        if found is None:
            found = self._sql[key] = Compiled(build(), conn.dialect)
        return found


def fetch_all(conn: Connection, sql: Compiled, params: dict[str, Any]) -> list[Any]:
    """Run on the DBAPI connection under ``conn`` (inside whatever transaction it holds)."""
    if sql.constants:
        params = {**sql.constants, **params}
    raw: Any = conn.connection.driver_connection
    rows: list[Any] = raw.execute(sql.text, params).fetchall()
    return rows


def execute(conn: Connection, sql: Compiled, params: dict[str, Any]) -> int:
    """Run a write on the DBAPI connection under ``conn``; the number of rows it touched."""
    if sql.constants:
        params = {**sql.constants, **params}
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql.text, params)
        return int(cursor.rowcount)
    finally:
        cursor.close()
