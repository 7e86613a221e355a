"""The schema the migrations build is the schema the queries are written against."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from uprof.service.container import Services
from uprof.store.migrate import current_revision, migrate
from uprof.store.tables import metadata


def test_migrations_match_the_tables(services: Services) -> None:
    def diff(conn):  # type: ignore[no-untyped-def]
        return compare_metadata(MigrationContext.configure(conn), metadata)

    assert services.db.read_sync(diff) == []
    assert current_revision(services.db) == "0001"


def test_migrating_again_is_a_no_op(services: Services) -> None:
    migrate(services.db)
    migrate(services.db)
    assert current_revision(services.db) == "0001"
