"""PostgreSQL reads on the event loop through libpq directly: prepared once per connection,
values sent as text parameters, results loaded by psycopg's loaders.

psycopg's asynchronous cursor cost this process 60-110 µs of CPU more a coalesced read than
libpq alone (its query conversion, its prepared-statement bookkeeping, its waiting machinery;
measured in ``docs/performance.md``, round 9), and every loop iteration that reads makes at
least one such statement. The reads go through psycopg's
documented ``pq`` layer instead, as the batches' writes do since O11, but in the extended
protocol: each statement is parsed and planned by the server once per connection (what
psycopg's automatic preparation gave, and a simple-protocol statement would lose), and its
values travel as parameters, never in the text.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import DiagnosticField, ExecStatus
from psycopg.pq.abc import PGconn, PGresult

STATEMENT_OK = (ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK)

# psycopg's paramstyle, as SQLAlchemy compiles for it: ``%(name)s``, and ``%%`` for ``%``.
PLACEHOLDER = re.compile(r"%(?:\((\w+)\)s|%)")


def error_of(result: PGresult, encoding: str) -> psycopg.Error:
    """A failed result as psycopg's exception of its SQLSTATE (what its cursor would raise)."""
    message = (result.error_message or b"").decode(encoding, "replace").strip()
    code = result.error_field(DiagnosticField.SQLSTATE)
    if result.status != ExecStatus.FATAL_ERROR or code is None:
        return psycopg.InterfaceError(f"unexpected result {result.status!r}: {message}")
    try:
        cls = psycopg.errors.lookup(code.decode("ascii"))
    except KeyError:
        cls = psycopg.DatabaseError
    return cls(message)


def raise_failed(results: list[PGresult], encoding: str) -> None:
    """Raise the first failed result of a command as psycopg's exception of its SQLSTATE."""
    for result in results:
        if result.status not in STATEMENT_OK:
            raise error_of(result, encoding)


def rows_of(conn: psycopg.BaseConnection[Any], result: PGresult) -> list[tuple[Any, ...]]:
    """A result's rows as psycopg's loaders for ``conn`` make them (``fetchall``'s tuples)."""
    loader = Transformer(conn)
    loader.set_pgresult(result)
    return loader.load_rows(0, result.ntuples, tuple)


def refuse_nul(value: str) -> str:
    """``value``, or psycopg's own error for a text holding NUL (PostgreSQL's text cannot)."""
    if "\x00" in value:
        raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    return value


def numbered(text: str) -> tuple[str, tuple[str, ...]]:
    """``text`` with its ``%(name)s`` placeholders as ``$1``, ``$2``, ... (a name used twice
    is one parameter) and the names in the order of their numbers."""
    names: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return PLACEHOLDER.sub(placeholder, text), tuple(names)


class TextParams:
    """Values in PostgreSQL's text input form, as bytes for libpq (None for NULL).

    A parameter's type is the one the server infers from the statement (the casts SQLAlchemy
    compiles), and the text form is read by that type's input function, so one form serves
    every type: a number as its digits, text as itself, a list as an array literal with every
    text element quoted (``array_in``'s rules: a backslash escapes the next character). Any
    other value is rendered by psycopg's own text dumper."""

    __slots__ = ("_encoding", "_transformer")

    def __init__(self, conn: psycopg.AsyncConnection[Any], encoding: str) -> None:
        self._encoding = encoding
        self._transformer = Transformer(conn)

    def param(self, value: Any) -> bytes | None:
        if value is None:
            return None
        if isinstance(value, str):
            return refuse_nul(value).encode(self._encoding)
        if isinstance(value, list):
            return ("{" + ",".join([self._element(v) for v in value]) + "}").encode(self._encoding)
        if isinstance(value, bool):
            return b"t" if value else b"f"
        if isinstance(value, int):
            return str(value).encode("ascii")
        dumped = self._transformer.get_dumper(value, PyFormat.TEXT).dump(value)
        return None if dumped is None else bytes(dumped)

    def _element(self, value: Any) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "t" if value else "f"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, str):
            return '"' + refuse_nul(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
        raise TypeError(f"no array element form for {type(value).__name__}")


class _Prepared:
    """What one connection has prepared (statement text -> its name and its parameters), its
    encoding (read once: ``conn.info.encoding`` asks libpq every time) and its parameters'
    forms."""

    __slots__ = ("encoding", "params", "statements")

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.statements: dict[str, tuple[bytes, tuple[str, ...]]] = {}
        self.encoding = conn.info.encoding
        self.params = TextParams(conn, self.encoding)


class PreparedReads:
    """Runs read statements on pooled asynchronous connections, each prepared on a connection
    the first time it runs there."""

    def __init__(self) -> None:
        self._of: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], _Prepared] = (
            weakref.WeakKeyDictionary()
        )

    async def fetch(
        self, conn: psycopg.AsyncConnection[Any], text: str, params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        """``text``'s rows for ``params``, as ``fetchall`` would give them."""
        prepared = self._of.get(conn)
        if prepared is None:
            prepared = self._of[conn] = _Prepared(conn)
        pgconn = conn.pgconn
        encoding = prepared.encoding
        found = prepared.statements.get(text)
        if found is None:
            sql, names = numbered(text)
            # The names are uprof's own (psycopg's start with "_pg3_"): no collision.
            name = f"uprof_{len(prepared.statements)}".encode("ascii")
            pgconn.send_prepare(name, sql.encode(encoding))
            _check(await wait_for_results(pgconn), encoding)
            found = prepared.statements[text] = (name, names)
        name, names = found
        values = [prepared.params.param(params[n]) for n in names]
        pgconn.send_query_prepared(name, values)
        result = _check(await wait_for_results(pgconn), encoding)[-1]
        return rows_of(conn, result)


def _check(results: list[PGresult], encoding: str) -> list[PGresult]:
    raise_failed(results, encoding)
    if not results:
        raise psycopg.InterfaceError("the server sent no result")
    return results


async def wait_for_results(pgconn: PGconn) -> list[PGresult]:
    """Send what libpq holds and collect every result of the command, waiting on the event
    loop for the socket (psycopg's connections are non-blocking).

    PostgreSQL sends a result as it makes it, in 8 KiB writes, and one ``consume_input`` reads
    what libpq's 16 KiB buffer has room for: a page of profiles arrives in a few pieces, a
    coalesced read of many pages in dozens. Each piece is read in the reader's callback as it
    arrives, with the reader registered once a result: waking the waiting task for every piece,
    to read it and register again, cost a task step and two ``epoll_ctl`` calls a piece (1.5
    calls a list response, against 0.07; docs/performance.md, "Round 12")."""
    loop = asyncio.get_running_loop()
    fd = pgconn.socket
    if pgconn.flush():  # 1: not all sent yet
        await _until(loop, fd, lambda: not pgconn.flush(), write=True)
    results: list[PGresult] = []
    while True:
        if pgconn.is_busy():
            await _until(loop, fd, lambda: _received(pgconn), write=False)
        result = pgconn.get_result()
        if result is None:
            return results
        results.append(result)


def _received(pgconn: PGconn) -> bool:
    """Read what the socket holds; whether libpq now holds a whole result."""
    pgconn.consume_input()
    return not pgconn.is_busy()


async def _until(
    loop: asyncio.AbstractEventLoop, fd: int, finished: Callable[[], bool], *, write: bool
) -> None:
    """Wait until ``finished()``, called each time ``fd`` is ready (readable, or writable with
    ``write``), says so; what it raises (a broken connection) is raised here."""
    done: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if done.done():
            return
        try:
            if finished():
                done.set_result(None)
        except Exception as e:
            done.set_exception(e)

    if write:
        add, remove = loop.add_writer, loop.remove_writer
    else:
        add, remove = loop.add_reader, loop.remove_reader
    add(fd, ready)
    try:
        await done
    finally:
        remove(fd)
