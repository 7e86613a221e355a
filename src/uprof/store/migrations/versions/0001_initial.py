"""Organizations, API keys, user profiles, links and server secrets.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SortText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_organizations"),
        sa.UniqueConstraint("name", name="uq_organizations_name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("hint", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name="fk_api_keys_org_id_organizations"
        ),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_index("ix_api_keys_org_id", "api_keys", ["org_id"])
    op.create_table(
        "user_profiles",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("access_type", sa.String(16), nullable=False),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("name_key", SortText, nullable=True),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("reference_id", sa.Text, nullable=True),
        sa.Column("onboarded_at", sa.BigInteger, nullable=True),
        sa.Column("account_status", sa.String(16), nullable=True),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("email_hash", sa.Text, nullable=True),
        sa.Column("entity_type", sa.String(16), nullable=True),
        sa.Column("name_hash", sa.Text, nullable=True),
        sa.Column("enforcement_status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_user_profiles"),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name="fk_user_profiles_org_id_organizations"
        ),
    )
    op.create_index("ix_user_profiles_org_created", "user_profiles", ["org_id", "created_at", "id"])
    op.create_index("ix_user_profiles_org_name", "user_profiles", ["org_id", "name_key", "id"])
    op.create_table(
        "links",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("profile_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_links"),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["user_profiles.id"],
            name="fk_links_profile_id_user_profiles",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_links_profile_id", "links", ["profile_id"])
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_server_secrets"),
    )


def downgrade() -> None:
    for table in ("server_secrets", "links", "user_profiles", "api_keys", "organizations"):
        op.drop_table(table)
