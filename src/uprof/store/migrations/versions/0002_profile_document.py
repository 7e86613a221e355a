"""A profile is one document plus the columns it is found and ordered by.

Every attribute column of ``user_profiles`` except the keys (``id``, ``org_id``,
``created_at``, ``name_key``) moves into ``doc``: the whole record as a JSON array in the
field order of ``uprof.domain.model.Profile``, its instants as RFC 3339 text in UTC (as msgspec
writes them: no fraction for a whole second, six digits otherwise). Existing rows are
converted in place, in the database, by the same transaction.

The table is altered, not rebuilt: ``links`` references it with ON DELETE CASCADE, and
dropping the old table (as a rebuild does) would delete every link on SQLite.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The fields of Profile, in order, as the columns of revision 0001 held them.
_FIELDS = (
    "id",
    "org_id",
    "created_at",
    "updated_at",
    "access_type",
    "name",
    "metadata",
    "reference_id",
    "onboarded_at",
    "account_status",
    "country",
    "email_hash",
    "entity_type",
    "name_hash",
    "enforcement_status",
)
_MOVED = tuple(f for f in _FIELDS if f not in ("id", "org_id", "created_at"))
_INSTANTS = ("created_at", "updated_at", "onboarded_at")


def _frac(x: str) -> str:
    # The microseconds within the second, also for instants before 1970 (% truncates).
    return f"((({x} % 1000000) + 1000000) % 1000000)"


def _sqlite_instant(x: str) -> str:
    whole = f"strftime('%Y-%m-%dT%H:%M:%S', ({x} - {_frac(x)}) / 1000000, 'unixepoch')"
    frac = f"CASE WHEN {_frac(x)} = 0 THEN '' ELSE printf('.%06d', {_frac(x)}) END"
    return f"CASE WHEN {x} IS NULL THEN NULL ELSE {whole} || {frac} || 'Z' END"


def _pg_instant(x: str) -> str:
    at = f"(timestamp '1970-01-01 00:00:00' + {x} * interval '1 microsecond')"
    whole = f"""to_char({at}, 'YYYY-MM-DD"T"HH24:MI:SS')"""
    frac = f"CASE WHEN {_frac(x)} = 0 THEN '' ELSE '.' || lpad({_frac(x)}::text, 6, '0') END"
    return f"CASE WHEN {x} IS NULL THEN NULL ELSE {whole} || {frac} || 'Z' END"


def _value(field: str, dialect: str) -> str:
    if field == "metadata":
        return "json(metadata)" if dialect == "sqlite" else "metadata::json"
    if field in _INSTANTS:
        return _sqlite_instant(field) if dialect == "sqlite" else _pg_instant(field)
    return field


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        # ADD COLUMN ... NOT NULL needs a default; every row gets its document right after.
        op.execute("ALTER TABLE user_profiles ADD COLUMN doc TEXT NOT NULL DEFAULT '[]'")
        values = ", ".join(_value(f, dialect) for f in _FIELDS)
        op.execute(f"UPDATE user_profiles SET doc = json_array({values})")
        for column in _MOVED:
            op.execute(f"ALTER TABLE user_profiles DROP COLUMN {column}")
    else:
        op.add_column("user_profiles", sa.Column("doc", sa.Text, nullable=True))
        values = ", ".join(_value(f, dialect) for f in _FIELDS)
        op.execute(f"UPDATE user_profiles SET doc = json_build_array({values})::text")
        op.alter_column("user_profiles", "doc", nullable=False)
        for column in _MOVED:
            op.drop_column("user_profiles", column)


def downgrade() -> None:
    raise NotImplementedError("revision 0002 is not reversible: restore a backup instead")
