"""PostgreSQL reads through libpq: statements prepared once per connection, values sent as text
parameters that read back exactly as given, the server's errors as psycopg's exceptions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uprof.store.pgreads import PreparedReads, numbered

T = TypeVar("T")

# Any text the domain lets through (no NUL, no lone surrogate), and what an array literal or a
# placeholder would get wrong if quoted naively.
_TEXT = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30
) | st.sampled_from(['"', "\\", '\\"', "{", "}", ",", "NULL", "null", " ", "", "%s", "$1", "😀"])


Body = Callable[[psycopg.AsyncConnection[Any], PreparedReads], Awaitable[T]]


def _run(url: str, body: Body[T]) -> T:
    async def main() -> T:
        conn = await psycopg.AsyncConnection.connect(url.replace("+psycopg", ""), autocommit=True)
        try:
            return await body(conn, PreparedReads())
        finally:
            await conn.close()

    return asyncio.run(main())


def test_placeholders_are_numbered_once_per_name() -> None:
    text, names = numbered("SELECT %(a)s, %(b)s, %(a)s, '%%' LIKE 'x%%'")
    assert text == "SELECT $1, $2, $1, '%' LIKE 'x%'"
    assert names == ("a", "b")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    texts=st.lists(_TEXT | st.none(), max_size=6),
    one=_TEXT | st.none(),
    n=st.integers(-(2**63), 2**63 - 1),
)
def test_any_value_reads_back_exactly_as_given(
    postgres_url: str, texts: list[str | None], one: str | None, n: int
) -> None:
    async def body(conn: psycopg.AsyncConnection[Any], reads: PreparedReads) -> Any:
        return await reads.fetch(
            conn,
            "SELECT CAST(%(xs)s AS VARCHAR[]), CAST(%(one)s AS VARCHAR), CAST(%(n)s AS BIGINT), "
            "CAST(%(flag)s AS BOOLEAN)",
            {"xs": texts, "one": one, "n": n, "flag": True},
        )

    assert _run(postgres_url, body) == [(texts, one, n, True)]


def test_a_statement_is_prepared_once_per_connection(postgres_url: str) -> None:
    async def body(conn: psycopg.AsyncConnection[Any], reads: PreparedReads) -> Any:
        first = [await reads.fetch(conn, "SELECT %(i)s::int + 1", {"i": i}) for i in range(3)]
        listed = await reads.fetch(
            conn,
            "SELECT name, statement FROM pg_prepared_statements WHERE name LIKE %(p)s "
            "ORDER BY name",
            {"p": "uprof\\_%"},
        )
        return first, listed

    first, listed = _run(postgres_url, body)
    assert first == [[(1,)], [(2,)], [(3,)]]
    assert [name for name, _ in listed] == ["uprof_0", "uprof_1"]
    assert listed[0][1] == "SELECT $1::int + 1"


def test_the_servers_errors_are_psycopgs_exceptions_and_the_connection_goes_on(
    postgres_url: str,
) -> None:
    async def body(conn: psycopg.AsyncConnection[Any], reads: PreparedReads) -> Any:
        with pytest.raises(psycopg.errors.DivisionByZero):
            await reads.fetch(conn, "SELECT 1 / CAST(%(z)s AS INT)", {"z": 0})
        with pytest.raises(psycopg.errors.SyntaxError):
            await reads.fetch(conn, "SELEC %(z)s", {"z": 0})
        with pytest.raises(psycopg.DataError):  # refused before it is sent, as psycopg does
            await reads.fetch(conn, "SELECT CAST(%(t)s AS TEXT)", {"t": "a\x00b"})
        return (
            await reads.fetch(conn, "SELECT 1 / CAST(%(z)s AS INT)", {"z": 1}),
            await reads.fetch(conn, "SELECT CAST(%(t)s AS TEXT)", {"t": "ok"}),
        )

    assert _run(postgres_url, body) == ([(1,)], [("ok",)])


def test_a_lost_connection_raises_operational_error(postgres_url: str) -> None:
    async def body(conn: psycopg.AsyncConnection[Any], reads: PreparedReads) -> Any:
        await reads.fetch(conn, "SELECT %(i)s::int", {"i": 1})
        pid = conn.info.backend_pid
        other = await psycopg.AsyncConnection.connect(
            postgres_url.replace("+psycopg", ""), autocommit=True
        )
        async with other:
            await other.execute("SELECT pg_terminate_backend(%s)", [pid])
        with pytest.raises(psycopg.OperationalError):
            await reads.fetch(conn, "SELECT %(i)s::int", {"i": 1})

    _run(postgres_url, body)


def test_a_result_in_many_pieces_registers_the_reader_once(postgres_url: str) -> None:
    # ~2 MB of rows: PostgreSQL sends it in 8 KiB writes and libpq reads at most its buffer's
    # room at a time, so it arrives in many pieces; each is read in the reader's callback,
    # not by a task woken (and a reader registered again) for every piece.
    async def body(conn: psycopg.AsyncConnection[Any], reads: PreparedReads) -> Any:
        loop = asyncio.get_running_loop()
        registered = 0
        add_reader = loop.add_reader

        def counting(fd: Any, callback: Any, *args: Any) -> None:
            nonlocal registered
            registered += 1
            add_reader(fd, callback, *args)

        loop.add_reader = counting  # type: ignore[method-assign,assignment]
        await reads.fetch(conn, "SELECT %(n)s::int", {"n": 0})  # prepared beforehand
        registered = 0
        rows = await reads.fetch(
            conn,
            "SELECT i, repeat('x', 1000) FROM generate_series(1, %(n)s::int) AS i",
            {"n": 2000},
        )
        return rows, registered

    rows, registered = _run(postgres_url, body)
    assert [i for i, _ in rows] == list(range(1, 2001))
    assert all(len(x) == 1000 for _, x in rows)
    assert registered <= 2  # its prepare, its result; a piece at a time was dozens
