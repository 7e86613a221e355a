"""SQLite files a profile's row under its id's number (decisions O20) and looks it up there
first: every profile is still found, changed and deleted by its id alone, whether its row is
filed under its number, elsewhere because another row took the number, or elsewhere because it
was written before rows were numbered."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import Connection, insert, text

from uprof.domain.ids import random_id, row_number
from uprof.domain.model import Profile
from uprof.domain.timefmt import from_us
from uprof.store import profiles as store
from uprof.store.migrate import migrate
from uprof.store.sqlite import SqliteDatabase
from uprof.store.tables import user_profiles

ORG, OTHER = "org_numbered_a", "org_numbered_b"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteDatabase]:
    database = SqliteDatabase(f"sqlite:///{tmp_path / 'rows.sqlite'}")
    migrate(database)

    def orgs(conn: Connection) -> None:
        for org in (ORG, OTHER):
            conn.execute(
                text("INSERT INTO organizations (id, name, created_at) VALUES (:i, :i, 1)"),
                {"i": org},
            )

    database.write_sync(orgs)
    try:
        yield database
    finally:
        database.close()


def _profile(profile_id: str, org: str = ORG, name: str = "Ada") -> Profile:
    return Profile(
        id=profile_id, org_id=org, created_at=from_us(1), updated_at=from_us(1), name=name
    )


def _sharing_a_number(n: int) -> list[str]:
    """``n`` well-formed ids that all carry one number: the same millisecond and the same
    first three random characters, different after them."""
    head = random_id("uprof")[: len("uprof_") + 11]
    return [f"{head}{i:013d}".replace("0", "z") for i in range(n)]


def _rowid(db: SqliteDatabase, profile_id: str) -> int:
    found = db.read_sync(
        lambda c: c.execute(
            text("SELECT rowid FROM user_profiles WHERE id = :i"), {"i": profile_id}
        ).scalar_one()
    )
    return int(found)


def _insert(db: SqliteDatabase, *profiles: Profile) -> None:
    def work(conn: Connection) -> None:
        for p in profiles:
            store.insert_profile(conn, p)

    db.write_sync(work)


def _get(db: SqliteDatabase, org: str, profile_id: str) -> str | None:
    """The name of the profile as a retrieve reads it (on the event loop) and as a write's own
    read does (in a unit of work), which must agree."""

    async def retrieve() -> Any:
        return await db.query(store.profile_text_by_id(org, profile_id))

    found = asyncio.run(retrieve())
    locked = db.write_sync(lambda c: store.get_profile(c, org, profile_id, lock=True))
    assert (found is None) == (locked is None)
    if locked is None:
        return None
    assert msgspec.json.decode(store.text_of(found).id) == profile_id
    return locked.name


def _rename(db: SqliteDatabase, org: str, profile_id: str, name: str) -> None:
    def work(conn: Connection) -> None:
        current = store.get_profile(conn, org, profile_id)
        assert current is not None
        store.save_profile(conn, _profile(profile_id, org, name), current)

    db.write_sync(work)


def test_a_new_profile_is_filed_under_its_ids_number(db: SqliteDatabase) -> None:
    made = [random_id("uprof") for _ in range(20)]
    _insert(db, *(_profile(i) for i in made))
    for i in made:
        assert _rowid(db, i) == row_number(i)
        assert _get(db, ORG, i) == "Ada"


def test_ids_sharing_a_number_are_each_found_changed_and_deleted(db: SqliteDatabase) -> None:
    ids = _sharing_a_number(4)
    number = row_number(ids[0])
    assert number is not None and all(row_number(i) == number for i in ids)
    # one at a time, and two in one statement's transaction
    _insert(db, _profile(ids[0]))
    _insert(db, _profile(ids[1], OTHER), _profile(ids[2]))
    _insert(db, _profile(ids[3], OTHER))
    rowids = [_rowid(db, i) for i in ids]
    assert rowids[0] == number and len(set(rowids)) == 4
    for i, org in zip(ids, (ORG, OTHER, ORG, OTHER), strict=True):
        assert _get(db, org, i) == "Ada"
        assert _get(db, ORG if org == OTHER else OTHER, i) is None  # never another org's
    for i, org in zip(ids, (ORG, OTHER, ORG, OTHER), strict=True):
        _rename(db, org, i, f"renamed {i}")
    for i, org in zip(ids, (ORG, OTHER, ORG, OTHER), strict=True):
        assert _get(db, org, i) == f"renamed {i}"
    # deleting the row filed under the number leaves the others where they are
    assert db.write_sync(lambda c: store.delete_profile(c, ORG, ids[0]))
    assert _get(db, ORG, ids[0]) is None
    assert [_get(db, o, i) for i, o in zip(ids[1:], (OTHER, ORG, OTHER), strict=True)] == [
        f"renamed {i}" for i in ids[1:]
    ]
    # the number is free again: the next id that carries it is filed under it
    again = f"{ids[0][:-1]}y"
    _insert(db, _profile(again))
    assert _rowid(db, again) == number and _get(db, ORG, again) == "Ada"


def test_rows_written_before_numbering_are_found_and_changed(db: SqliteDatabase) -> None:
    """Rows a store held before (the schema's own INSERT: SQLite numbered them 1, 2, ...),
    and ids of another form, are found by the id's index."""
    old = [random_id("uprof") for _ in range(3)] + ["uprof_an_id_of_another_form"]
    db.write_sync(
        lambda c: c.execute(insert(user_profiles), [store.values(_profile(i)) for i in old])
    )
    assert sorted(_rowid(db, i) for i in old) == [1, 2, 3, 4]
    for i in old:
        assert _get(db, ORG, i) == "Ada"
        _rename(db, ORG, i, "Grace")
        assert _get(db, ORG, i) == "Grace"
        assert _get(db, OTHER, i) is None


def test_an_id_whose_number_another_row_holds_is_a_404_not_that_row(db: SqliteDatabase) -> None:
    first, absent = _sharing_a_number(2)
    _insert(db, _profile(first))
    assert _get(db, ORG, absent) is None
    assert not db.write_sync(lambda c: store.delete_profile(c, ORG, absent))
    assert _get(db, ORG, first) == "Ada"
