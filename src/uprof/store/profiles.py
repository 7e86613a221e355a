"""Queries on user profiles. Every function takes the organization; keyset pages, no OFFSET."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import Connection, Select, delete, insert, select, tuple_, update

from uprof.domain.model import Position, Profile
from uprof.domain.rules import name_sort_key
from uprof.store.tables import user_profiles as t

_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder(dict[str, str]).decode

_COLUMNS = (
    t.c.id,
    t.c.org_id,
    t.c.created_at,
    t.c.updated_at,
    t.c.access_type,
    t.c.name,
    t.c.metadata,
    t.c.reference_id,
    t.c.onboarded_at,
    t.c.account_status,
    t.c.country,
    t.c.email_hash,
    t.c.entity_type,
    t.c.name_hash,
    t.c.enforcement_status,
)
_SELECT = select(*_COLUMNS)


def _from_row(row: Any) -> Profile:
    return Profile(
        id=row[0],
        org_id=row[1],
        created_at=row[2],
        updated_at=row[3],
        access_type=row[4],
        name=row[5],
        metadata=_json_decode(row[6]),
        reference_id=row[7],
        onboarded_at=row[8],
        account_status=row[9],
        country=row[10],
        email_hash=row[11],
        entity_type=row[12],
        name_hash=row[13],
        enforcement_status=row[14],
    )


def _values(p: Profile) -> dict[str, Any]:
    return {
        "updated_at": p.updated_at,
        "access_type": p.access_type,
        "name": p.name,
        "name_key": name_sort_key(p.name),
        "metadata": _json_encode(p.metadata).decode(),
        "reference_id": p.reference_id,
        "onboarded_at": p.onboarded_at,
        "account_status": p.account_status,
        "country": p.country,
        "email_hash": p.email_hash,
        "entity_type": p.entity_type,
        "name_hash": p.name_hash,
        "enforcement_status": p.enforcement_status,
    }


def insert_profile(conn: Connection, p: Profile) -> None:
    conn.execute(insert(t).values(id=p.id, org_id=p.org_id, created_at=p.created_at, **_values(p)))


def insert_many(conn: Connection, profiles: list[Profile]) -> None:
    """Bulk path (benchmarks, imports): one executemany."""
    conn.execute(
        insert(t),
        [
            {"id": p.id, "org_id": p.org_id, "created_at": p.created_at, **_values(p)}
            for p in profiles
        ],
    )


def get_profile(
    conn: Connection, org_id: str, profile_id: str, *, lock: bool = False
) -> Profile | None:
    q = _SELECT.where(t.c.id == profile_id, t.c.org_id == org_id)
    if lock:
        # Row lock on PostgreSQL; SQLite ignores it, its writers are serialized by BEGIN IMMEDIATE.
        q = q.with_for_update()
    row = conn.execute(q).first()
    return None if row is None else _from_row(row)


def save_profile(conn: Connection, p: Profile) -> None:
    conn.execute(update(t).where(t.c.id == p.id, t.c.org_id == p.org_id).values(**_values(p)))


def delete_profile(conn: Connection, org_id: str, profile_id: str) -> bool:
    result = conn.execute(delete(t).where(t.c.id == profile_id, t.c.org_id == org_id))
    return result.rowcount > 0


def _ordered(q: Select[Any], key: Any, descending: bool) -> Select[Any]:
    if descending:
        return q.order_by(key.desc(), t.c.id.desc())
    return q.order_by(key.asc(), t.c.id.asc())


def scan(
    conn: Connection,
    org_id: str,
    *,
    order_by: str,
    descending: bool,
    after: Position | None,
    n: int,
) -> list[Profile]:
    """Up to ``n`` profiles strictly after ``after`` in the listing order.

    ``order_by=name`` is two index ranges: named profiles by (name_key, id) in the requested
    direction, then the nameless ones by id, which come last in either direction.
    """
    if order_by == "created_at":
        q = _SELECT.where(t.c.org_id == org_id)
        if after is not None:
            bound = tuple_(t.c.created_at, t.c.id)
            mark = tuple_(after.key, after.id)
            q = q.where(bound < mark if descending else bound > mark)
        return [
            _from_row(r) for r in conn.execute(_ordered(q, t.c.created_at, descending).limit(n))
        ]

    rows: list[Profile] = []
    if after is None or after.key is not None:
        q = _SELECT.where(t.c.org_id == org_id, t.c.name_key.is_not(None))
        if after is not None:
            bound = tuple_(t.c.name_key, t.c.id)
            mark = tuple_(after.key, after.id)
            q = q.where(bound < mark if descending else bound > mark)
        rows = [_from_row(r) for r in conn.execute(_ordered(q, t.c.name_key, descending).limit(n))]
    if len(rows) < n:
        q = _SELECT.where(t.c.org_id == org_id, t.c.name_key.is_(None))
        if after is not None and after.key is None:
            q = q.where(t.c.id < after.id if descending else t.c.id > after.id)
        q = q.order_by(t.c.id.desc() if descending else t.c.id.asc()).limit(n - len(rows))
        rows += [_from_row(r) for r in conn.execute(q)]
    return rows


def position_of(p: Profile, order_by: str) -> Position:
    key: int | str | None = p.created_at if order_by == "created_at" else name_sort_key(p.name)
    return Position(key, p.id)


def count_profiles(conn: Connection, org_id: str) -> int:
    """For operators and benchmarks only; the API never counts."""
    from sqlalchemy import func

    return int(conn.execute(select(func.count()).where(t.c.org_id == org_id)).scalar_one())
