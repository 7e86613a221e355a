"""The schema the migrations build is the schema the queries are written against, and data
written under an earlier revision reads the same after the upgrade."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from tests.support.databases import temporary_database
from uprof.domain.model import Profile
from uprof.domain.timefmt import from_us
from uprof.store import profiles as profile_store
from uprof.store.database import open_database
from uprof.store.migrate import current_revision, migrate
from uprof.store.tables import metadata, user_profiles

HEAD = "0003"


@pytest.fixture
def fresh_url(database_url: str) -> Iterator[str]:
    """A database nothing has migrated yet: on PostgreSQL one of its own for the test (the
    session's database is shared and already at the head)."""
    if not database_url.startswith("postgresql"):
        yield database_url
        return
    with temporary_database(database_url, "uprof_migrate") as url:
        yield url


def test_migrations_match_the_tables(database_url: str) -> None:
    db = open_database(database_url)
    try:
        migrate(db)

        def diff(conn):  # type: ignore[no-untyped-def]
            return compare_metadata(MigrationContext.configure(conn), metadata)

        assert db.read_sync(diff) == []
        assert current_revision(db) == HEAD
    finally:
        db.close()


def test_a_migration_may_scan_whole_tables(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uprof's PostgreSQL sessions plan without sequential scans (decisions O23); a migration's
    statements over whole tables want them, so its transaction turns them back on."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL setting")
    from alembic import command

    seen: list[str] = []

    def upgrade(config: Any, revision: str) -> None:
        conn = config.attributes["connection"]
        seen.append(conn.exec_driver_sql("SHOW enable_seqscan").scalar_one())

    db = open_database(database_url)
    try:
        monkeypatch.setattr(command, "upgrade", upgrade)
        migrate(db)
        assert seen == ["on"]
        # ... and only for the migration's own transaction
        assert (
            db.read_sync(lambda c: c.exec_driver_sql("SHOW enable_seqscan").scalar_one()) == "off"
        )
    finally:
        db.close()


def test_migrating_again_is_a_no_op(database_url: str) -> None:
    db = open_database(database_url)
    try:
        migrate(db)
        migrate(db)
        assert current_revision(db) == HEAD
    finally:
        db.close()


# Rows as revision 0001 stored them: one column per attribute, metadata as JSON text.
_ROWS_0001: list[dict[str, Any]] = [
    {
        "id": "uprof_0001full",
        "created_at": 1_700_000_000_123_456,
        "updated_at": 1_700_000_100_000_000,
        "access_type": "passthrough",
        "name": 'Zoë "quoted" \\ name',
        "name_key": 'zoë "quoted" \\ name',
        "metadata": '{"plan":"pro","emoji":"\\ud83d\\ude00","quote":"a\\"b"}',
        "reference_id": "ext-1",
        "onboarded_at": -1_500_001,  # before 1970, not a whole second
        "account_status": "active",
        "country": "DE",
        "email_hash": "e" * 64,
        "entity_type": "business",
        "name_hash": "n" * 64,
        "enforcement_status": "restricted",
    },
    {
        "id": "uprof_0001bare",
        "created_at": 1_700_000_000_000_000,
        "updated_at": 1_700_000_000_000_000,
        "access_type": "application",
        "name": None,
        "name_key": None,
        "metadata": "{}",
        "reference_id": None,
        "onboarded_at": None,
        "account_status": None,
        "country": None,
        "email_hash": None,
        "entity_type": None,
        "name_hash": None,
        "enforcement_status": "unrestricted",
    },
]


def test_profiles_of_revision_0001_read_the_same_after_the_upgrade(fresh_url: str) -> None:
    db = open_database(fresh_url)
    try:
        migrate(db, "0001")
        org = "org_migrated"

        def seed(conn: Any) -> None:
            conn.execute(
                text("INSERT INTO organizations (id, name, created_at) VALUES (:i, :n, 1)"),
                {"i": org, "n": "migrated"},
            )
            for row in _ROWS_0001:
                columns = ", ".join(["org_id", *row])
                values = ", ".join([":org_id", *(f":{k}" for k in row)])
                conn.execute(
                    text(f"INSERT INTO user_profiles ({columns}) VALUES ({values})"),
                    {"org_id": org, **row},
                )
            conn.execute(
                text(
                    "INSERT INTO links (token_hash, org_id, profile_id, kind, action, "
                    "created_at, expires_at) VALUES ('t1', :o, 'uprof_0001full', 'enrollment', "
                    "NULL, 1, 2)"
                ),
                {"o": org},
            )

        db.write_sync(seed)
        migrate(db)
        assert current_revision(db) == HEAD

        async def read() -> list[Profile]:
            page = await db.query(
                profile_store.scan(org, order_by="created_at", descending=True, after=None, n=10)
            )
            one = await db.query(profile_store.profile_by_id(org, "uprof_0001full"))
            assert one == profile_store.text_of(page[0]).decoded()
            return [profile_store.text_of(p).decoded() for p in page]

        full, bare = asyncio.run(read())
        assert full == Profile(
            id="uprof_0001full",
            org_id=org,
            created_at=from_us(1_700_000_000_123_456),
            updated_at=from_us(1_700_000_100_000_000),
            access_type="passthrough",
            name='Zoë "quoted" \\ name',
            metadata={"plan": "pro", "emoji": "\U0001f600", "quote": 'a"b'},
            reference_id="ext-1",
            onboarded_at=datetime(1969, 12, 31, 23, 59, 58, 499_999, tzinfo=UTC),
            account_status="active",
            country="DE",
            email_hash="e" * 64,
            entity_type="business",
            name_hash="n" * 64,
            enforcement_status="restricted",
        )
        assert bare == Profile(
            id="uprof_0001bare",
            org_id=org,
            created_at=from_us(1_700_000_000_000_000),
            updated_at=from_us(1_700_000_000_000_000),
        )
        # The table was altered in place: the link that references a profile is still there
        # (a rebuild of the table would have cascaded its deletion on SQLite).
        links = db.read_sync(lambda c: c.execute(text("SELECT count(*) FROM links")).scalar_one())
        assert links == 1
        # order_by=name still finds them by their kept sort keys.
        by_name = asyncio.run(
            db.query(profile_store.scan(org, order_by="name", descending=False, after=None, n=10))
        )
        assert [profile_store.text_of(p).decoded().id for p in by_name] == [
            "uprof_0001full",
            "uprof_0001bare",
        ]
    finally:
        db.close()


@pytest.mark.parametrize("revision", ["0001", "0002"])
def test_every_revision_upgrades_an_empty_database(fresh_url: str, revision: str) -> None:
    db = open_database(fresh_url)
    try:
        migrate(db, revision)
        assert current_revision(db) == revision
        migrate(db)
        assert current_revision(db) == HEAD
    finally:
        db.close()


def test_an_update_of_the_document_stays_on_its_page(fresh_url: str) -> None:
    """PostgreSQL: the profiles table leaves room on its pages (migration 0003), so rewriting a
    row's document, as a metadata merge does, is a heap-only update that writes no index entry.
    At the default fill factor the pages that inserts filled have no room, and such an update
    moves the row and writes an entry in each index."""
    if not fresh_url.startswith("postgresql"):
        pytest.skip("fill factor and heap-only updates are PostgreSQL's")
    db = open_database(fresh_url)
    try:
        migrate(db)
        declared = user_profiles.dialect_options["postgresql"]["with"]
        assert declared == {"fillfactor": 90}

        def fill_then_update(conn: Any) -> tuple[list[str], int, int]:
            options = conn.execute(
                text("SELECT reloptions FROM pg_class WHERE relname = 'user_profiles'")
            ).scalar_one()
            conn.execute(text("INSERT INTO organizations VALUES ('org_ff', 'ff', 1)"))
            doc = "x" * 500  # about a profile's size: some sixteen rows a page
            conn.execute(
                text(
                    "INSERT INTO user_profiles (id, org_id, created_at, name_key, doc) "
                    "SELECT 'uprof_' || i, 'org_ff', i, NULL, :doc FROM generate_series(1, 200) i"
                ),
                {"doc": doc},
            )
            # One row a page (fewer rows fit on a page than 16): each page's free space
            # decides, not the versions this transaction leaves behind on it.
            conn.execute(
                text("UPDATE user_profiles SET doc = :doc WHERE created_at % 16 = 0"),
                {"doc": doc + "y"},
            )
            updated, hot = conn.execute(
                text(
                    "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
                    "WHERE relname = 'user_profiles'"
                )
            ).one()
            return options, updated, hot

        options, updated, hot = db.write_sync(fill_then_update)
        assert options == [f"fillfactor={declared['fillfactor']}"]
        assert updated == 12
        assert hot == updated
    finally:
        db.close()
