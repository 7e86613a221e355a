"""SQLite's unit-of-work machinery: group commit outcomes and the per-iteration read snapshot."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection

from uprof.domain.errors import NotFound
from uprof.store.database import SqliteDatabase


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteDatabase]:
    database = SqliteDatabase(f"sqlite:///{tmp_path / 'db.sqlite'}")
    database.write_sync(lambda c: c.exec_driver_sql("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)"))
    yield database
    database.close()


def _put(k: str, v: str = "x"):  # type: ignore[no-untyped-def]
    def work(conn: Connection) -> str:
        conn.connection.driver_connection.execute("INSERT INTO t VALUES (?, ?)", (k, v))  # type: ignore[union-attr]
        return k

    return work


def _put_then_fail(k: str):  # type: ignore[no-untyped-def]
    def work(conn: Connection) -> str:
        _put(k)(conn)
        raise NotFound(f"{k} wrote a row, then failed")

    return work


def _fail_first(conn: Connection) -> str:
    raise NotFound("failed before writing")


def _keys(db: SqliteDatabase) -> set[str]:
    return {r[0] for r in db.read_sync(lambda c: c.exec_driver_sql("SELECT k FROM t").all())}


async def _together(db: SqliteDatabase, *jobs):  # type: ignore[no-untyped-def]
    # Queued in the same loop iteration, so they share one batch (one transaction).
    return await asyncio.gather(*(db.write(j) for j in jobs), return_exceptions=True)


def test_jobs_of_one_batch_fail_alone(db: SqliteDatabase) -> None:
    outcomes = asyncio.run(
        _together(db, _put("a"), _fail_first, _put("b"), _put_then_fail("c"), _put("d"))
    )
    assert outcomes[0] == "a" and outcomes[2] == "b" and outcomes[4] == "d"
    assert isinstance(outcomes[1], NotFound) and isinstance(outcomes[3], NotFound)
    # c's row was undone with its failure; everyone else's was committed
    assert _keys(db) == {"a", "b", "d"}


def test_a_statement_failing_part_way_fails_only_its_job(db: SqliteDatabase) -> None:
    db.write_sync(_put("taken"))
    outcomes = asyncio.run(_together(db, _put("e"), _put("taken"), _put("f")))
    assert outcomes[0] == "e" and outcomes[2] == "f"
    assert isinstance(outcomes[1], Exception)
    assert _keys(db) == {"taken", "e", "f"}


def test_reads_see_every_acknowledged_write(db: SqliteDatabase) -> None:
    async def scenario() -> list[set[str]]:
        seen = []
        read = lambda c: {r[0] for r in c.exec_driver_sql("SELECT k FROM t").all()}  # noqa: E731
        seen.append(await db.read(read))  # begins this iteration's snapshot
        await db.write(_put("g"))
        seen.append(await db.read(read))
        await _together(db, _put("h"), _put("i"))
        seen.append(await db.read(read))
        return seen

    assert asyncio.run(scenario()) == [set(), {"g"}, {"g", "h", "i"}]


def test_a_read_snapshot_ends_with_its_loop_iteration(db: SqliteDatabase) -> None:
    async def scenario() -> tuple[bool, bool]:
        await db.read(lambda c: c.exec_driver_sql("SELECT count(*) FROM t").scalar())
        raw = db._conn().connection.driver_connection
        during = raw.in_transaction  # type: ignore[union-attr]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return during, raw.in_transaction  # type: ignore[union-attr]

    assert asyncio.run(scenario()) == (True, False)


def test_a_write_from_another_connection_is_seen_in_the_next_iteration(
    db: SqliteDatabase, tmp_path: Path
) -> None:
    other = SqliteDatabase(f"sqlite:///{tmp_path / 'db.sqlite'}")

    async def scenario() -> tuple[int, int]:
        count = lambda c: c.exec_driver_sql("SELECT count(*) FROM t").scalar()  # noqa: E731
        before = await db.read(count)
        other.write_sync(_put("elsewhere"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return before, await db.read(count)

    try:
        assert asyncio.run(scenario()) == (0, 1)
    finally:
        other.close()
