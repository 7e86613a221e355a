"""Queries on user profiles. Every function takes the organization; keyset pages, no OFFSET."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from sqlalchemy import (
    Connection,
    Select,
    bindparam,
    delete,
    insert,
    literal,
    literal_column,
    select,
    tuple_,
    union_all,
    update,
)

from uprof.domain.model import Position, Profile
from uprof.domain.rules import name_sort_key
from uprof.store.compiled import Query, StatementCache, execute, run
from uprof.store.tables import user_profiles as t

_statements = StatementCache()

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
    """Every column of the row, by column name."""
    return {
        "id": p.id,
        "org_id": p.org_id,
        "created_at": p.created_at,
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


# Columns that hold a profile attribute as it is (name_key and metadata are derived).
_PLAIN = tuple(
    k
    for k in _values(Profile(id="", org_id="", created_at=0, updated_at=0))
    if k not in ("name_key", "metadata")
)


def _changed(p: Profile, previous: Profile) -> dict[str, Any]:
    """The columns of ``p`` whose values differ from ``previous``'s, by column name."""
    params = {k: v for k in _PLAIN if (v := getattr(p, k)) != getattr(previous, k)}
    if p.metadata != previous.metadata:
        params["metadata"] = _json_encode(p.metadata).decode()
    if p.name != previous.name and (key := name_sort_key(p.name)) != name_sort_key(previous.name):
        params["name_key"] = key  # a renamed profile may keep its sort key ("ada" -> "Ada")
    return params


def insert_profile(conn: Connection, p: Profile) -> None:
    execute(conn, _statements.sql(conn, "insert", lambda: insert(t)), _values(p))


def insert_many(conn: Connection, profiles: list[Profile]) -> None:
    """Bulk path (benchmarks, imports): one executemany."""
    conn.execute(insert(t), [_values(p) for p in profiles])


def _first_profile(rows: list[Any]) -> Profile | None:
    return _from_row(rows[0]) if rows else None


def _all_profiles(rows: list[Any]) -> list[Profile]:
    return [_from_row(r) for r in rows]


def _build_get(lock: bool) -> Callable[[], Select[Any]]:
    def build() -> Select[Any]:
        q = _SELECT.where(t.c.id == bindparam("id"), t.c.org_id == bindparam("org_id"))
        # Row lock on PostgreSQL; SQLite ignores it, its writers are serialized by BEGIN IMMEDIATE.
        return q.with_for_update() if lock else q

    return build


_GET_BUILDERS = {lock: _build_get(lock) for lock in (False, True)}


def profile_by_id(org_id: str, profile_id: str, *, lock: bool = False) -> Query[Profile | None]:
    return Query(
        _statements,
        ("get", lock),
        _GET_BUILDERS[lock],
        {"id": profile_id, "org_id": org_id},
        _first_profile,
    )


def get_profile(
    conn: Connection, org_id: str, profile_id: str, *, lock: bool = False
) -> Profile | None:
    return run(conn, profile_by_id(org_id, profile_id, lock=lock))


def save_profile(conn: Connection, p: Profile, previous: Profile | None = None) -> None:
    """Write ``p`` over its row: only the columns that differ from ``previous`` when it is
    given. An UPDATE that names an indexed column rewrites that index's entry even when the
    value is the same (SQLite); a metadata merge then dirties one table page instead of four
    index pages as well, which is what keeps updates flat on a large store."""
    if previous is None:
        params = _values(p)
    else:
        params = _changed(p, previous)
        if not params:
            return
    columns = tuple(params)

    def build() -> Any:
        where = (t.c.id == bindparam("where_id"), t.c.org_id == bindparam("where_org_id"))
        return update(t).where(*where).values({c: bindparam(c) for c in columns})

    params["where_id"] = p.id
    params["where_org_id"] = p.org_id
    execute(conn, _statements.sql(conn, ("save", columns), build), params)


def delete_profile(conn: Connection, org_id: str, profile_id: str) -> bool:
    result = conn.execute(delete(t).where(t.c.id == profile_id, t.c.org_id == org_id))
    return result.rowcount > 0


def _ordered(q: Select[Any], key: Any, descending: bool) -> Select[Any]:
    if descending:
        return q.order_by(key.desc(), t.c.id.desc())
    return q.order_by(key.asc(), t.c.id.asc())


def _after(key: Any, descending: bool) -> Any:
    bound = tuple_(key, t.c.id)
    mark = tuple_(bindparam("after_key"), bindparam("after_id"))
    return bound < mark if descending else bound > mark


def _scan_statement(order_by: str, descending: bool, start: str) -> Select[Any]:
    """The listing query for one variant: ``start`` is "first", "named" or "nameless" (where the
    previous page ended). ``order_by=name`` is one UNION ALL of two index ranges, so a page is
    one statement and one snapshot: named profiles by (name_key, id) in the requested direction,
    then the nameless ones by id, which come last in either direction."""
    org = t.c.org_id == bindparam("org_id")
    if order_by == "created_at":
        q = _SELECT.where(org)
        if start != "first":
            q = q.where(_after(t.c.created_at, descending))
        return _ordered(q, t.c.created_at, descending).limit(bindparam("n"))

    seg: Any = literal_column("seg")
    nameless = _SELECT.add_columns(t.c.name_key, literal(1).label("seg")).where(
        org, t.c.name_key.is_(None)
    )
    if start == "nameless":
        nameless = nameless.where(
            t.c.id < bindparam("after_id") if descending else t.c.id > bindparam("after_id")
        )
    nameless = nameless.order_by(t.c.id.desc() if descending else t.c.id.asc()).limit(
        bindparam("n")
    )
    if start == "nameless":
        return nameless
    named = _SELECT.add_columns(t.c.name_key, literal(0).label("seg")).where(
        org, t.c.name_key.is_not(None)
    )
    if start == "named":
        named = named.where(_after(t.c.name_key, descending))
    named = _ordered(named, t.c.name_key, descending).limit(bindparam("n"))
    both = union_all(select(named.subquery()), select(nameless.subquery())).subquery()
    key = both.c.name_key.desc() if descending else both.c.name_key.asc()
    row_id = both.c.id.desc() if descending else both.c.id.asc()
    return (
        select(*(both.c[c.name] for c in _COLUMNS)).order_by(seg, key, row_id).limit(bindparam("n"))
    )


def scan(
    org_id: str,
    *,
    order_by: str,
    descending: bool,
    after: Position | None,
    n: int,
) -> Query[list[Profile]]:
    """Up to ``n`` profiles strictly after ``after`` in the listing order."""
    if after is None:
        start = "first"
    elif order_by == "name" and after.key is None:
        start = "nameless"
    else:
        start = "named"
    params: dict[str, Any] = {"org_id": org_id, "n": n}
    if after is not None:
        params["after_key"] = after.key
        params["after_id"] = after.id
    return Query(
        _statements,
        ("scan", order_by, descending, start),
        lambda: _scan_statement(order_by, descending, start),
        params,
        _all_profiles,
    )


def position_of(p: Profile, order_by: str) -> Position:
    key: int | str | None = p.created_at if order_by == "created_at" else name_sort_key(p.name)
    return Position(key, p.id)


def count_profiles(conn: Connection, org_id: str) -> int:
    """For operators and benchmarks only; the API never counts."""
    from sqlalchemy import func

    return int(conn.execute(select(func.count()).where(t.c.org_id == org_id)).scalar_one())
