"""Core statements compiled once per dialect and run on the driver's cursor.

SQLAlchemy's execution path (statement construction, cache key, result wrapping) costs about
ten times a point lookup itself on SQLite. The queries stay written in SQLAlchemy Core, against
the one schema in ``tables``; only their execution skips the layers a hot path does not need.
Parameters are named (``:name`` on SQLite, ``%(name)s`` on psycopg), so one dict serves both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, NamedTuple, TypeVar

from sqlalchemy import Connection, bindparam, cast, func
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import Executable, TableValuedAlias
from sqlalchemy.types import TypeEngine

_SQLITE_NAMED = sqlite.dialect(paramstyle="named")

T = TypeVar("T")


class Compiled:
    """SQL text plus the values of the constants the statement binds itself (literals, and
    SQLite's ``OFFSET 0`` that comes with a bound LIMIT)."""

    __slots__ = ("constants", "text")

    def __init__(self, stmt: Executable, dialect: Dialect, binary: tuple[str, ...] = ()) -> None:
        target = _SQLITE_NAMED if dialect.name == "sqlite" else dialect
        compiled = stmt.compile(dialect=target)  # type: ignore[attr-defined]
        text = str(compiled)
        for name in binary:  # psycopg sends a ``%(name)b`` parameter in the binary format
            text = text.replace(f"%({name})s", f"%({name})b")
        self.text: str = text
        self.constants: dict[str, Any] = {k: v for k, v in compiled.params.items() if v is not None}

    def bind(self, params: dict[str, Any]) -> dict[str, Any]:
        """Every parameter the statement binds: the caller's and its own constants."""
        return {**self.constants, **params} if self.constants else params


def _no_result(rows: list[Any]) -> None:
    return None


class Batch(NamedTuple):
    """How reads of one statement that differ only in ``key`` run as one statement: ``build``
    makes it; it binds the list of keys as ``keys`` and returns every row with its key first.
    A database that pays a round trip per statement (PostgreSQL) coalesces the reads of one
    event-loop iteration this way; SQLite runs each read as it comes."""

    key: str
    build: Callable[[], Executable]


class Lateral(NamedTuple):
    """How reads of one statement that differ in any of their parameters run as one statement
    (PostgreSQL): every read's parameters are one row of a relation (``unnested``) that the
    statement joins laterally. ``build`` makes it; it binds each of ``params`` as the array of
    the reads' values, in order, and returns every row with its read's ordinal (from 1) first,
    the rows of one read in that read's own order. SQLite runs each read as it comes."""

    params: tuple[str, ...]
    build: Callable[[], Executable]


class Many(NamedTuple):
    """How the deferred rows of one write run as one statement (PostgreSQL): ``build`` makes it
    over ``unnested``; it binds each of ``params`` as the array of the rows' values, sent in
    PostgreSQL's binary format (a text array would quote every quote of every JSON document:
    slower than one statement a row). The rows must name distinct rows of the table: an
    UPDATE ... FROM changes a row once however many of the arrays' rows match it."""

    params: tuple[str, ...]
    build: Callable[[], Executable]


def unnested(
    params: tuple[tuple[str, TypeEngine[Any]], ...], name: str = "reads"
) -> TableValuedAlias:
    """The relation of a ``Lateral`` or ``Many`` form: one row per read (or row to write), a
    column per parameter (bound as an array of that name and type) and ``ordinal``, the row's
    place from 1."""
    arrays = (cast(bindparam(name), ARRAY(type_)) for name, type_ in params)
    return (
        func.unnest(*arrays)
        .table_valued(*(name for name, _ in params), with_ordinality="ordinal")
        .render_derived(name=name)
    )


class Statement(Generic[T]):
    """One statement of the store and how its rows become a result; built from SQLAlchemy Core
    on first use and compiled once per dialect (``build`` runs at most once a dialect)."""

    __slots__ = ("_build", "_compiled", "batch", "many", "name", "result")

    def __init__(
        self,
        name: str,
        build: Callable[[], Executable],
        result: Callable[[list[Any]], T] = _no_result,  # type: ignore[assignment]
        batch: Batch | Lateral | None = None,
        many: Many | None = None,
    ) -> None:
        self.name = name
        self._build = build
        self.result = result
        self.batch = batch
        self.many = many
        self._compiled: dict[str, Compiled] = {}

    def compiled(self, dialect: Dialect) -> Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = Compiled(self._build(), dialect)
        return found

    def compiled_batch(self, dialect: Dialect) -> Compiled:
        """The statement that runs many of these reads at once (``batch``)."""
        assert self.batch is not None, f"{self.name} has no batch form"
        return self._form(dialect, "batch", self.batch.build)

    def compiled_many(self, dialect: Dialect) -> Compiled:
        """The statement that writes many deferred rows at once (``many``)."""
        assert self.many is not None, f"{self.name} has no form for many rows"
        return self._form(dialect, "many", self.many.build, self.many.params)

    def _form(
        self,
        dialect: Dialect,
        form: str,
        build: Callable[[], Executable],
        binary: tuple[str, ...] = (),
    ) -> Compiled:
        key = f"{dialect.name}/{form}"
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = Compiled(build(), dialect, binary)
        return found

    def __repr__(self) -> str:
        return f"Statement({self.name!r})"


class Query(NamedTuple, Generic[T]):
    """One read as a value: the statement and its parameters.

    Store functions return these instead of running them, so the database decides where the
    statement runs: inline on the event loop for SQLite, on an asynchronous PostgreSQL
    connection without a thread hop, or inside a unit of work on a ``Connection`` (``run``).
    """

    statement: Statement[T]
    params: dict[str, Any]

    def sql(self, dialect: Dialect) -> tuple[str, dict[str, Any]]:
        """The statement's text for ``dialect`` and every parameter it binds."""
        compiled = self.statement.compiled(dialect)
        return compiled.text, compiled.bind(self.params)


def run(conn: Connection, query: Query[T]) -> T:
    """Run a query on the DBAPI connection under ``conn`` (inside whatever transaction it
    holds)."""
    text, params = query.sql(conn.dialect)
    raw: Any = conn.connection.driver_connection
    return query.statement.result(raw.execute(text, params).fetchall())


@contextlib.contextmanager
def _driver_cursor(conn: Connection) -> Iterator[Any]:
    """A cursor of the DBAPI connection under ``conn``, closed after use."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    finally:
        cursor.close()


def execute(conn: Connection, statement: Statement[Any], params: dict[str, Any]) -> int:
    """Run a write on the DBAPI connection under ``conn``; the number of rows it touched."""
    compiled = statement.compiled(conn.dialect)
    with _driver_cursor(conn) as cursor:
        cursor.execute(compiled.text, compiled.bind(params))
        return int(cursor.rowcount)


# Where a unit of work's deferred writes wait (``deferring``), in ``Connection.info``; the rows
# its transaction locked up front, as a store module keeps them; what runs before the flush.
_DEFERRED = "uprof.deferred_writes"
_KNOWN = "uprof.known_rows"
_BEFORE_FLUSH = "uprof.before_flush"


def execute_deferrable(conn: Connection, statement: Statement[Any], params: dict[str, Any]) -> None:
    """Run a write nothing in its transaction reads back and whose outcome is only success or
    failure (the INSERT of a new profile): at once, or, inside ``deferring``, together with the
    other deferred writes of its statement when ``flush_deferred`` runs."""
    pending: dict[Statement[Any], list[dict[str, Any]]] | None = conn.info.get(_DEFERRED)
    if pending is None:
        execute(conn, statement, params)
    else:
        pending.setdefault(statement, []).append(params)


@contextlib.contextmanager
def deferring(conn: Connection) -> Iterator[None]:
    """Defer the deferrable writes made on ``conn`` until ``flush_deferred``; whatever is not
    flushed by the end is dropped (the transaction it belonged to is being rolled back)."""
    conn.info[_DEFERRED] = {}
    conn.info[_KNOWN] = {}
    conn.info[_BEFORE_FLUSH] = {}
    try:
        yield
    finally:
        for key in (_DEFERRED, _KNOWN, _BEFORE_FLUSH):
            conn.info.pop(key, None)


def known_rows(conn: Connection) -> dict[Any, Any] | None:
    """Inside ``deferring``: where a store module keeps the rows the transaction has locked
    and what its jobs made of them, by key, so that its later reads and writes of those rows
    need no statement (written back by a ``before_flush`` function); None outside it."""
    return conn.info.get(_KNOWN)


def before_flush(conn: Connection, fn: Callable[[Connection], None]) -> None:
    """Inside ``deferring``: run ``fn`` once when ``flush_deferred`` starts (it may defer
    writes of its own)."""
    conn.info[_BEFORE_FLUSH][fn] = None


def flush_deferred(conn: Connection) -> None:
    """Run the deferred writes: the rows of a statement with a form for many rows (``Many``)
    as one statement; the others in one ``executemany`` each. Either way one statement's
    messages for all of its rows, which go out in the pipeline the caller holds (PostgreSQL's
    batch sends them with its COMMIT)."""
    for fn in conn.info.get(_BEFORE_FLUSH) or ():
        fn(conn)
    pending: dict[Statement[Any], list[dict[str, Any]]] = conn.info.get(_DEFERRED) or {}
    for statement, rows in pending.items():
        with _driver_cursor(conn) as cursor:
            if statement.many is not None and len(rows) > 1:
                compiled = statement.compiled_many(conn.dialect)
                arrays = {name: [row[name] for row in rows] for name in statement.many.params}
                cursor.execute(compiled.text, compiled.bind(arrays))
            else:
                compiled = statement.compiled(conn.dialect)
                cursor.executemany(compiled.text, [compiled.bind(p) for p in rows])
    pending.clear()
