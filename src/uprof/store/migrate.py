"""Apply the Alembic migrations; safe to run from several instances at once."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from uprof.store.database import Database

_SCRIPTS = Path(__file__).parent / "migrations"
# An arbitrary constant: the advisory lock that serializes concurrent migrations on PostgreSQL.
_PG_LOCK = 0x75_70_72_6F_66


def _config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    cfg.attributes["connection"] = conn
    return cfg


def migrate(db: Database, revision: str = "head") -> None:
    def upgrade(conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
            # uprof's sessions plan without sequential scans (``postgres._SESSION_SETUP``); a
            # migration's statements over whole tables want them.
            conn.execute(text("SET LOCAL enable_seqscan = on"))
        command.upgrade(_config(conn), revision)

    # SQLite: the write connection begins with BEGIN IMMEDIATE, which serializes migrators.
    db.write_sync(upgrade)


def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return db.read_sync(lambda conn: MigrationContext.configure(conn).get_current_revision())
