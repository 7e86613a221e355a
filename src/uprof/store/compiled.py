"""Core statements compiled once per dialect and run on the driver's cursor.

SQLAlchemy's execution path (statement construction, cache key, result wrapping) costs about
ten times a point lookup itself on SQLite. The queries stay written in SQLAlchemy Core, against
the one schema in ``tables``; only their execution skips the layers a hot path does not need.
Parameters are named (``:name`` on SQLite, ``%(name)s`` on psycopg), so one dict serves both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from sqlalchemy import Connection, bindparam, cast, column, func, values
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import Executable, TableValuedAlias, Values
from sqlalchemy.types import TypeEngine

_SQLITE_NAMED = sqlite.dialect(paramstyle="named")

T = TypeVar("T")


class Literals(Protocol):
    """The database's client-side binding: values as SQL literals, quoted as its driver
    quotes them for the connection they go out on."""

    def literal(self, value: Any) -> str:
        """``value`` as an SQL literal."""
        ...

    def bind(self, text: str, params: dict[str, Any]) -> str:
        """``text`` (``%(name)s`` placeholders) with ``params`` bound as literals."""
        ...


class Compiled:
    """SQL text plus the values of the constants the statement binds itself (literals, and
    SQLite's ``OFFSET 0`` that comes with a bound LIMIT)."""

    __slots__ = ("constants", "derive", "text")

    def __init__(
        self,
        stmt: Executable,
        dialect: Dialect,
        derive: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        target = _SQLITE_NAMED if dialect.name == "sqlite" else dialect
        compiled = stmt.compile(dialect=target)  # type: ignore[attr-defined]
        self.text: str = str(compiled)
        self.constants: dict[str, Any] = {k: v for k, v in compiled.params.items() if v is not None}
        self.derive = derive

    def bind(self, params: dict[str, Any]) -> dict[str, Any]:
        """Every parameter the statement binds: the caller's, those its form derives from
        them (``SqliteForm``), and its own constants."""
        if self.derive is not None:
            bound = self.derive(params)  # a new dict: the constants join it, no second copy
            bound.update(self.constants)
            return bound
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

    def read_key(self, params: dict[str, Any]) -> tuple[Any, ...]:
        """What makes two reads of the statement equal (the same rows from one snapshot):
        their values of ``params``, in order (decisions O7)."""
        return tuple([params[name] for name in self.params])


class Many(NamedTuple):
    """How the deferred rows of one write run as one statement (PostgreSQL): ``build`` makes it
    over ``written`` (a VALUES list of one row, a column per name in ``params``), and the row
    is repeated once per deferred row when it runs, every value bound into the text
    (``ManyText``). The rows must name distinct rows of the table: an UPDATE ... FROM changes a
    row once however many of the list's rows match it."""

    params: tuple[str, ...]
    build: Callable[[], Executable]


def written(params: tuple[tuple[str, TypeEngine[Any]], ...]) -> Values:
    """The relation of a ``Many`` form: a VALUES list whose one row binds each parameter by
    name (``ManyText`` repeats it per row)."""
    return values(*(column(name, type_) for name, type_ in params), name="written").data(
        [tuple(bindparam(name) for name, _ in params)]
    )


class ManyText:
    """A ``Many`` form's text, cut around its one VALUES row, to be repeated per row with the
    row's values as literals (``Literals``), so that the statement goes out as text in one
    simple-protocol message with the rest of its transaction (decisions O11: against the rows
    sent as binary arrays through psycopg's cursor and pipeline, a third of the CPU)."""

    __slots__ = ("head", "names", "tail")

    def __init__(self, text: str, names: tuple[str, ...]) -> None:
        one_row = "(" + ", ".join(f"%({name})s" for name in names) + ")"
        head, found, tail = text.partition(one_row)
        if not found or "%(" in head + tail:
            raise ValueError(f"not a statement over one VALUES row of {names}: {text}")
        # Bound here: the text around the row holds no parameter, and its percent signs are
        # doubled (the driver's paramstyle).
        self.head, self.tail = head.replace("%%", "%"), tail.replace("%%", "%")
        self.names = names

    def sql(self, rows: list[dict[str, Any]], literals: Literals) -> str:
        literal, names = literals.literal, self.names
        listed = "), (".join(", ".join([literal(row[name]) for name in names]) for row in rows)
        return f"{self.head}({listed}){self.tail}"


def unnested(
    params: tuple[tuple[str, TypeEngine[Any]], ...], name: str = "reads"
) -> TableValuedAlias:
    """The relation of a ``Lateral`` form: one row per read, a column per parameter (bound as
    an array of that name and type) and ``ordinal``, the row's place from 1."""
    arrays = (cast(bindparam(name), ARRAY(type_)) for name, type_ in params)
    return (
        func.unnest(*arrays)
        .table_valued(*(name for name, _ in params), with_ordinality="ordinal")
        .render_derived(name=name)
    )


class SqliteForm(NamedTuple):
    """A statement's own form on SQLite, where the schema alone cannot say it (a row's rowid,
    decisions O20): ``build`` makes it, and ``derive`` returns the caller's parameters with
    the ones it binds beyond them (a new dict). The other dialects run the statement's
    ``build``."""

    build: Callable[[], Executable]
    derive: Callable[[dict[str, Any]], dict[str, Any]]


class Statement(Generic[T]):
    """One statement of the store and how its rows become a result; built from SQLAlchemy Core
    on first use and compiled once per dialect (``build`` runs at most once a dialect)."""

    __slots__ = ("_build", "_compiled", "_many_text", "batch", "many", "name", "result", "sqlite")

    def __init__(
        self,
        name: str,
        build: Callable[[], Executable],
        result: Callable[[list[Any]], T] = _no_result,  # type: ignore[assignment]
        batch: Batch | Lateral | None = None,
        many: Many | None = None,
        sqlite: SqliteForm | None = None,
    ) -> None:
        self.name = name
        self._build = build
        self.result = result
        self.batch = batch
        self.many = many
        self.sqlite = sqlite
        self._compiled: dict[str, Compiled] = {}
        self._many_text: dict[str, ManyText] = {}

    def compiled(self, dialect: Dialect) -> Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            form = self.sqlite if dialect.name == "sqlite" else None
            if form is None:
                found = Compiled(self._build(), dialect)
            else:
                found = Compiled(form.build(), dialect, form.derive)
            self._compiled[dialect.name] = found
        return found

    def compiled_batch(self, dialect: Dialect) -> Compiled:
        """The statement that runs many of these reads at once (``batch``)."""
        assert self.batch is not None, f"{self.name} has no batch form"
        return self._form(dialect, "batch", self.batch.build)

    def many_text(self, dialect: Dialect) -> ManyText:
        """The statement that writes many deferred rows at once (``many``)."""
        assert self.many is not None, f"{self.name} has no form for many rows"
        found = self._many_text.get(dialect.name)
        if found is None:
            compiled = self._form(dialect, "many", self.many.build)
            if compiled.constants:
                raise ValueError(f"{self.name}: a form for many rows binds constants")
            found = self._many_text[dialect.name] = ManyText(compiled.text, self.many.params)
        return found

    def _form(self, dialect: Dialect, form: str, build: Callable[[], Executable]) -> Compiled:
        key = f"{dialect.name}/{form}"
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = Compiled(build(), dialect)
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
    holds). The DBAPI connection, not the driver's: under an asynchronous engine it is
    SQLAlchemy's adapter, whose calls wait on the event loop from the unit's greenlet."""
    text, params = query.sql(conn.dialect)
    raw: Any = conn.connection.dbapi_connection
    return query.statement.result(raw.execute(text, params).fetchall())


@contextlib.contextmanager
def _driver_cursor(conn: Connection) -> Iterator[Any]:
    """A cursor of the DBAPI connection under ``conn`` (as ``run``), closed after use."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
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


def execute_many(conn: Connection, statement: Statement[Any], rows: list[dict[str, Any]]) -> None:
    """Run a write once per row (``executemany``) on the DBAPI connection under ``conn``."""
    compiled = statement.compiled(conn.dialect)
    with _driver_cursor(conn) as cursor:
        cursor.executemany(compiled.text, [compiled.bind(row) for row in rows])


# Where a unit of work's deferred writes wait (``deferring``), in ``Connection.info``; the rows
# its transaction locked up front, as a store module keeps them; what runs before the flush.
_DEFERRED = "uprof.deferred_writes"
_KNOWN = "uprof.known_rows"
_BEFORE_FLUSH = "uprof.before_flush"


def execute_deferrable(conn: Connection, statement: Statement[Any], params: dict[str, Any]) -> None:
    """Run a write nothing in its transaction reads back and whose outcome is only success or
    failure (the INSERT of a new profile): at once, or, inside ``deferring``, together with the
    other deferred writes of its statement when ``deferred_sql`` renders them."""
    pending: dict[Statement[Any], list[dict[str, Any]]] | None = conn.info.get(_DEFERRED)
    if pending is None:
        execute(conn, statement, params)
    else:
        pending.setdefault(statement, []).append(params)


@contextlib.contextmanager
def deferring(conn: Connection) -> Iterator[None]:
    """Defer the deferrable writes made on ``conn`` until ``deferred_sql``; whatever is not
    flushed by the end is dropped (the transaction it belonged to is being rolled back)."""
    # The dict itself, held from here: ``conn.info`` raises once the connection was lost and
    # invalidated inside the transaction, and that would hide why the batch failed.
    info = conn.info
    info[_DEFERRED] = {}
    info[_KNOWN] = {}
    info[_BEFORE_FLUSH] = {}
    try:
        yield
    finally:
        for key in (_DEFERRED, _KNOWN, _BEFORE_FLUSH):
            info.pop(key, None)


def known_rows(conn: Connection) -> dict[Any, Any] | None:
    """Inside ``deferring``: where a store module keeps the rows the transaction has locked
    and what its jobs made of them, by key, so that its later reads and writes of those rows
    need no statement (written back by a ``before_flush`` function); None outside it."""
    return conn.info.get(_KNOWN)


def before_flush(conn: Connection, fn: Callable[[Connection], None]) -> None:
    """Inside ``deferring``: run ``fn`` once when ``deferred_sql`` starts (it may defer
    writes of its own)."""
    conn.info[_BEFORE_FLUSH][fn] = None


def deferred_sql(conn: Connection, literals: Literals) -> list[str]:
    """The deferred writes as statements with their values bound into the text: the
    rows of a statement with a form for many rows (``Many``) as one statement, the others one
    statement a row. The caller sends them, in order, with its COMMIT (PostgreSQL's batch)."""
    for fn in conn.info.get(_BEFORE_FLUSH) or ():
        fn(conn)
    pending: dict[Statement[Any], list[dict[str, Any]]] = conn.info.get(_DEFERRED) or {}
    texts: list[str] = []
    for statement, rows in pending.items():
        if statement.many is not None:
            texts.append(statement.many_text(conn.dialect).sql(rows, literals))
        else:
            compiled = statement.compiled(conn.dialect)
            texts.extend(literals.bind(compiled.text, compiled.bind(row)) for row in rows)
    pending.clear()
    return texts
