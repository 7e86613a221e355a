"""One schema for SQLite and PostgreSQL (SQLAlchemy Core). Alembic migrations create it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Sort keys must compare byte for byte in both dialects: PostgreSQL's default collation would
# order names by locale rules, SQLite by code point. "C" makes PostgreSQL agree with SQLite.
SortText = Text().with_variant(Text(collation="C"), "postgresql")

organizations = Table(
    "organizations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("org_id", String(64), ForeignKey("organizations.id"), nullable=False, index=True),
    # SHA-256 of the key: keys are long random strings, so a fast hash is enough, and the
    # server never holds a key it could leak.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("hint", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

user_profiles = Table(
    "user_profiles",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("org_id", String(64), ForeignKey("organizations.id"), nullable=False),
    # The columns the queries find and order rows by, derived from the profile when it is
    # written; everything else is in ``doc`` (see ``uprof.store.profiles``).
    Column("created_at", BigInteger, nullable=False),
    # ASCII-case-folded name, the key of order_by=name.
    Column("name_key", SortText, nullable=True),
    # The whole profile record: a JSON array in the field order of ``uprof.domain.model.Profile``.
    Column("doc", Text, nullable=False),
    Index("ix_user_profiles_org_created", "org_id", "created_at", "id"),
    Index("ix_user_profiles_org_name", "org_id", "name_key", "id"),
    # Room on each page for an update to stay there (a HOT update: no index entry written);
    # migration 0003, decisions O17.
    postgresql_with={"fillfactor": 90},
)

links = Table(
    "links",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("org_id", String(64), nullable=False),
    Column(
        "profile_id",
        String(64),
        ForeignKey("user_profiles.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("kind", String(16), nullable=False),
    Column("action", String(32), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)
