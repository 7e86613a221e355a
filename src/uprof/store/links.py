"""Enrollment and action URLs, stored by the hash of their token."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select

from uprof.domain.model import Link
from uprof.store.tables import links as t


def insert_link(conn: Connection, link: Link) -> None:
    conn.execute(
        insert(t).values(
            token_hash=link.token_hash,
            org_id=link.org_id,
            profile_id=link.profile_id,
            kind=link.kind,
            action=link.action,
            created_at=link.created_at,
            expires_at=link.expires_at,
        )
    )


def find_link(conn: Connection, token_hash: str) -> Link | None:
    row = conn.execute(select(t).where(t.c.token_hash == token_hash)).first()
    if row is None:
        return None
    m = row._mapping
    return Link(
        token_hash=m["token_hash"],
        org_id=m["org_id"],
        profile_id=m["profile_id"],
        kind=m["kind"],
        action=m["action"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
    )


def delete_links_of(conn: Connection, org_id: str, profile_id: str) -> None:
    conn.execute(delete(t).where(t.c.org_id == org_id, t.c.profile_id == profile_id))
