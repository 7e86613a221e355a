"""Organizations and their API keys (stored as SHA-256 hashes)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from uprof.store.tables import api_keys, organizations


def find_org_by_name(conn: Connection, name: str) -> str | None:
    row = conn.execute(select(organizations.c.id).where(organizations.c.name == name)).first()
    return None if row is None else str(row[0])


def insert_org(conn: Connection, org_id: str, name: str, now_us: int) -> None:
    conn.execute(insert(organizations).values(id=org_id, name=name, created_at=now_us))


def any_org(conn: Connection) -> bool:
    return conn.execute(select(organizations.c.id).limit(1)).first() is not None


def insert_key(
    conn: Connection, *, key_id: str, org_id: str, key_hash: str, hint: str, now_us: int
) -> None:
    conn.execute(
        insert(api_keys).values(
            id=key_id, org_id=org_id, key_hash=key_hash, hint=hint, created_at=now_us
        )
    )


def org_for_key_hash(conn: Connection, key_hash: str) -> str | None:
    row = conn.execute(
        select(api_keys.c.org_id).where(
            api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None)
        )
    ).first()
    return None if row is None else str(row[0])


def key_exists(conn: Connection, key_hash: str) -> bool:
    q = select(api_keys.c.id).where(api_keys.c.key_hash == key_hash)
    return conn.execute(q).first() is not None


def list_keys(conn: Connection) -> list[dict[str, Any]]:
    q = (
        select(
            api_keys.c.id,
            organizations.c.name,
            api_keys.c.hint,
            api_keys.c.created_at,
            api_keys.c.revoked_at,
        )
        .join(organizations, organizations.c.id == api_keys.c.org_id)
        .order_by(api_keys.c.created_at, api_keys.c.id)
    )
    return [dict(r._mapping) for r in conn.execute(q)]


def revoke_key(conn: Connection, key_id: str, now_us: int) -> bool:
    result = conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now_us)
    )
    return result.rowcount > 0
