"""Point reads made in one event-loop iteration: on PostgreSQL they share one statement per
organization; on both stores every read gets exactly its own profile, or none."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from uprof.domain.errors import Overloaded
from uprof.domain.model import Profile
from uprof.domain.timefmt import from_us
from uprof.store import profiles as store
from uprof.store.database import Database, open_database
from uprof.store.migrate import migrate
from uprof.store.postgres import PostgresDatabase

ORGS = ("org_coalesce_a", "org_coalesce_b")


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = open_database(database_url)
    migrate(database)

    def seed(conn: Any) -> None:
        from sqlalchemy import text

        for org in ORGS:
            conn.execute(
                text(
                    "INSERT INTO organizations (id, name, created_at) VALUES (:i, :i, 1) "
                    "ON CONFLICT DO NOTHING"
                ),
                {"i": org},
            )
        conn.execute(
            text("DELETE FROM user_profiles WHERE org_id IN (:a, :b)"), {"a": ORGS[0], "b": ORGS[1]}
        )
        profiles = [
            Profile(
                id=f"uprof_co_{org[-1]}_{i}",
                org_id=org,
                created_at=from_us(i),
                updated_at=from_us(i),
                name=f"{org} {i}",
            )
            for org in ORGS
            for i in range(30)
        ]
        store.insert_many(conn, profiles)

    database.write_sync(seed)
    try:
        yield database
    finally:
        database.close()


def _run(db: Database, work: Any) -> Any:
    """Run ``work`` on a loop of its own, closing what the database opened on that loop."""

    async def main() -> Any:
        try:
            return await work
        finally:
            await db.stop()

    return asyncio.run(main())


def _name(text: Any) -> str | None:
    return None if text is None else msgspec.json.decode(text.name)


def test_reads_of_one_iteration_each_get_their_own_profile(db: Database) -> None:
    statements: list[str] = []
    if isinstance(db, PostgresDatabase):
        fetch = db._fetch

        async def counting(text: str, params: dict[str, Any]) -> list[Any]:
            statements.append(text)
            return await fetch(text, params)

        db._fetch = counting  # type: ignore[method-assign]

    # Both organizations, duplicates, a profile of the other organization, and missing ids.
    wanted = [
        (ORGS[0], "uprof_co_a_1"),
        (ORGS[0], "uprof_co_a_1"),
        (ORGS[0], "uprof_co_a_2"),
        (ORGS[1], "uprof_co_b_1"),
        (ORGS[1], "uprof_co_a_1"),  # org a's id asked by org b: not found
        (ORGS[0], "uprof_co_missing"),
        *((ORGS[0], f"uprof_co_a_{i}") for i in range(3, 30)),
    ]

    async def read_all() -> list[Any]:
        return await asyncio.gather(
            *(db.query(store.profile_text_by_id(org, pid)) for org, pid in wanted)
        )

    got = _run(db, read_all())
    for (org, pid), text in zip(wanted, got, strict=True):
        if pid.startswith(f"uprof_co_{org[-1]}_") and pid != "uprof_co_missing":
            assert text is not None and text.decoded().id == pid and text.decoded().org_id == org
            assert _name(text) == f"{org} {pid.rsplit('_', 1)[1]}"
        else:
            assert text is None, (org, pid)
    if isinstance(db, PostgresDatabase):
        # one statement per organization, not one per read
        assert len(statements) == 2, statements
        assert all("ANY" in s for s in statements)


def test_a_lone_read_uses_the_plain_statement(db: Database) -> None:
    if not isinstance(db, PostgresDatabase):
        pytest.skip("only PostgreSQL coalesces")
    statements: list[str] = []
    fetch = db._fetch

    async def counting(text: str, params: dict[str, Any]) -> list[Any]:
        statements.append(text)
        return await fetch(text, params)

    db._fetch = counting  # type: ignore[method-assign]
    text = _run(db, db.query(store.profile_text_by_id(ORGS[1], "uprof_co_b_7")))
    assert text is not None and _name(text) == f"{ORGS[1]} 7"
    assert len(statements) == 1 and "ANY" not in statements[0]


def test_a_failing_batch_fails_every_read_in_it(db: Database) -> None:
    if not isinstance(db, PostgresDatabase):
        pytest.skip("only PostgreSQL coalesces")

    async def down(text: str, params: dict[str, Any]) -> list[Any]:
        raise Overloaded("the storage backend is busy or unavailable")

    db._fetch = down  # type: ignore[method-assign]

    async def read_all() -> list[Any]:
        return await asyncio.gather(
            *(db.query(store.profile_text_by_id(ORGS[0], f"uprof_co_a_{i}")) for i in range(5)),
            return_exceptions=True,
        )

    assert all(isinstance(r, Overloaded) for r in _run(db, read_all()))
