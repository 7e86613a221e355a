"""Queries on user profiles. Every function takes the organization; keyset pages, no OFFSET.

A profile is stored as one document (``doc``: the ``Profile`` record as msgspec encodes it, a
JSON array in field order) next to the few columns the queries select and sort on (``id``,
``org_id``, ``created_at``, ``name_key``), which are derived from the same record in the same
statement. A read selects the document alone and decodes it into a ``Profile`` in one C call:
with fifteen columns, turning each row's values into Python objects cost more than finding
the row (``docs/performance.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import (
    Connection,
    Integer,
    Select,
    any_,
    bindparam,
    delete,
    insert,
    literal,
    literal_column,
    select,
    text,
    true,
    tuple_,
    union_all,
    update,
)

from uprof.domain.ids import row_number
from uprof.domain.model import Position, Profile, ProfileText, StoredText
from uprof.domain.rules import name_sort_key
from uprof.domain.timefmt import to_us
from uprof.store.compiled import (
    Batch,
    Lateral,
    Many,
    Query,
    SqliteForm,
    Statement,
    before_flush,
    execute,
    execute_deferrable,
    execute_many,
    known_rows,
    run,
    unnested,
    written,
)
from uprof.store.tables import user_profiles as t

# A statement's parameter: ``bindparam`` for one read or row, a column of the relation of many
# (``unnested``, ``written``) for many of them.
Param = Callable[[str], Any]

_encode_doc = msgspec.json.Encoder().encode
_decode_doc = msgspec.json.Decoder(Profile).decode
_decode_text = msgspec.json.Decoder(ProfileText).decode
_decode_instant = msgspec.json.Decoder(datetime).decode
_decode_name = msgspec.json.Decoder(str | None).decode


def encode_doc(p: Profile) -> str:
    return _encode_doc(p).decode()


def decode_doc(doc: str | bytes) -> Profile:
    return _decode_doc(doc)


def values(p: Profile) -> dict[str, Any]:
    """Every column of ``p``'s row, by column name: the parameters of ``insert_statement``."""
    return {
        "id": p.id,
        "org_id": p.org_id,
        "created_at": to_us(p.created_at),
        "name_key": name_sort_key(p.name),
        "doc": encode_doc(p),
    }


def _changed(p: Profile, previous: Profile) -> dict[str, Any]:
    """The columns of ``p``'s row whose values differ from ``previous``'s, by column name.

    An UPDATE that names an indexed column rewrites that index's entry even when the value is
    the same (SQLite): a metadata merge names the document alone, so it dirties the table page
    and no index page."""
    if p == previous:
        return {}
    params: dict[str, Any] = {"doc": encode_doc(p)}
    if p.name != previous.name and (key := name_sort_key(p.name)) != name_sort_key(previous.name):
        params["name_key"] = key  # a renamed profile may keep its sort key ("ada" -> "Ada")
    return params


def _first_profile(rows: list[Any]) -> Profile | None:
    return _decode_doc(rows[0][0]) if rows else None


def text_of(text: StoredText) -> ProfileText:
    """A stored document as the ``ProfileText`` it stands for."""
    return _decode_text(text)


def _first_text(rows: list[Any]) -> StoredText | None:
    return rows[0][0] if rows else None


def _all_texts(rows: list[Any]) -> list[StoredText]:
    return [r[0] for r in rows]


# Every column of a row, and each one's type, as a statement for many rows (``Many``) binds
# the rows' values of it; ``where_<column>`` binds the values that find a row to change.
_COLUMNS = ("id", "org_id", "created_at", "name_key", "doc")


def _column_type(name: str) -> Any:
    return t.c[name.removeprefix("where_")].type


def _many_rows(params: tuple[str, ...]) -> Any:
    return written(tuple((name, _column_type(name)) for name in params))


def _insert_many() -> Any:
    rows = _many_rows(_COLUMNS)
    return insert(t).from_select(list(_COLUMNS), select(*(rows.c[c] for c in _COLUMNS)))


# --- SQLite: a profile's row filed under its id's number (decisions O20) ----------------------
#
# A SQLite table is a B-tree keyed by the rowid; a TEXT primary key is an index of its own, so
# finding a row by its id is two descents, the index's and then the table's. A row is filed
# under the number its id carries (``row_number``: its millisecond and its count within it, so
# one process's rows follow one another in the order they were made) and looked up by it
# first, id checked; a row filed elsewhere (an id whose number was taken, rows written
# before this, a VACUUM that renumbered the table) is found by the id's index after that.
# PostgreSQL has no rowid: its statements are the schema's own.


def _numbered(source: str, target: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Parameters with ``target`` bound to the number of the id ``source`` binds."""

    def derive(params: dict[str, Any]) -> dict[str, Any]:
        return {**params, target: row_number(params[source])}

    return derive


def _build_sqlite_insert() -> Any:
    # The number if no row holds it yet, else NULL: SQLite then files the row after the last.
    return text(
        f"INSERT INTO {t.name} (rowid, {', '.join(_COLUMNS)}) VALUES ("
        f"CASE WHEN :row IS NULL OR EXISTS (SELECT 1 FROM {t.name} WHERE rowid = :row) "
        f"THEN NULL ELSE :row END, {', '.join(f':{c}' for c in _COLUMNS)})"
    )


def _rowid_of(id_param: str, number_param: str) -> Any:
    """The rowid of the row whose id ``id_param`` binds: filed under its number, or else
    wherever the id's index says. The UNION ALL stops at its first row (LIMIT 1), so a row
    filed under its number costs one descent of the table."""
    u = t.alias("numbered")
    rowid: Any = literal_column(f"{u.name}.rowid")
    by_number = select(rowid).where(rowid == bindparam(number_param), u.c.id == bindparam(id_param))
    by_index = select(rowid).where(u.c.id == bindparam(id_param))
    return union_all(by_number, by_index).limit(literal_column("1")).scalar_subquery()


_INSERT: Statement[None] = Statement(
    "insert",
    lambda: insert(t),
    many=Many(_COLUMNS, _insert_many),
    sqlite=SqliteForm(_build_sqlite_insert, _numbered("id", "row")),
)


def insert_profile(conn: Connection, p: Profile) -> None:
    # Deferrable: a new profile's id is known to no one before its write is acknowledged, so
    # nothing else in its transaction reads or changes its row.
    execute_deferrable(conn, _INSERT, values(p))


def insert_statement() -> Statement[None]:
    """The INSERT of one profile's row (``values``' parameters), for a bulk loader."""
    return _INSERT


def insert_many(conn: Connection, profiles: list[Profile]) -> None:
    """Bulk path (benchmarks, imports): one executemany."""
    execute_many(conn, _INSERT, [values(p) for p in profiles])


def _build_get(lock: bool) -> Callable[[], Select[Any]]:
    def build() -> Select[Any]:
        q = select(t.c.doc).where(t.c.id == bindparam("id"), t.c.org_id == bindparam("org_id"))
        # Row lock on PostgreSQL; SQLite ignores it, its writers are serialized by BEGIN IMMEDIATE.
        return q.with_for_update() if lock else q

    return build


def _build_sqlite_get() -> Any:
    """By the id's number, else by the id's index (see above): one statement, which stops at
    its first row: 1.7-2.3 us less than the index alone a read of a store of 10M, 0.3 us more
    for a row filed elsewhere (docs/performance.md, "Round 21")."""
    org = t.c.org_id == bindparam("org_id")
    rowid: Any = literal_column("rowid")
    by_number = select(t.c.doc).where(rowid == bindparam("row"), t.c.id == bindparam("id"), org)
    by_index = select(t.c.doc).where(t.c.id == bindparam("id"), org)
    return union_all(by_number, by_index).limit(literal_column("1"))


_SQLITE_GET = SqliteForm(_build_sqlite_get, _numbered("id", "row"))

_GET = {
    lock: Statement(f"get(lock={lock})", _build_get(lock), _first_profile, sqlite=_SQLITE_GET)
    for lock in (False, True)
}


def _build_get_many() -> Select[Any]:
    return select(t.c.id, t.c.doc).where(
        t.c.org_id == bindparam("org_id"), t.c.id == any_(bindparam("keys"))
    )


_GET_TEXT = Statement(
    "get_text",
    _build_get(False),
    _first_text,
    batch=Batch("id", _build_get_many),
    sqlite=_SQLITE_GET,
)


def profile_by_id(org_id: str, profile_id: str, *, lock: bool = False) -> Query[Profile | None]:
    return Query(_GET[lock], {"id": profile_id, "org_id": org_id})


def profile_text_by_id(org_id: str, profile_id: str) -> Query[StoredText | None]:
    """The profile's stored document, for a read that only shows it."""
    return Query(_GET_TEXT, {"id": profile_id, "org_id": org_id})


def get_profile(
    conn: Connection, org_id: str, profile_id: str, *, lock: bool = False
) -> Profile | None:
    known = known_rows(conn)
    if known is not None and profile_id in known:  # locked up front (``lock_profiles``)
        row: _Locked | None = known[profile_id]
        return row.current if row is not None and row.org_id == org_id else None
    return run(conn, profile_by_id(org_id, profile_id, lock=lock))


# --- a batch's profiles, locked up front -------------------------------------------------------
#
# A group commit on PostgreSQL runs every write of one moment in one transaction. Reading each
# profile with its own locking SELECT and writing it with its own UPDATE cost two statements
# a write (~75 us of this process's CPU each, measured, and a round trip): instead the batch
# locks the rows its writes name in one statement before its first job (``lock_profiles``,
# in id order, so that two transactions lock in the same order), its jobs read and change
# those rows here, and each changed row is written once, as it ends up, when the batch
# flushes (one statement per set of changed columns, one round trip). A row deleted by
# a job is deleted at once and forgotten here. Outside ``deferring`` (SQLite; a batch
# replayed with savepoints) every read and write is its own statement, as before.


class _Locked:
    """A profile row locked by the transaction: as it was, and as its jobs have left it."""

    __slots__ = ("current", "org_id", "original")

    def __init__(self, profile: Profile) -> None:
        self.org_id = profile.org_id
        self.original = profile
        self.current = profile


def _build_lock_many() -> Select[Any]:
    q = select(t.c.id, t.c.doc).where(t.c.id == any_(bindparam("keys")))
    return q.order_by(t.c.id).with_for_update()


_LOCK_MANY: Statement[list[Any]] = Statement("lock_many", _build_lock_many, list)


def lock_profiles(
    conn: Connection,
    profile_ids: Iterable[str],
    runner: Callable[[Connection, Query[list[Any]]], list[Any]] = run,
) -> None:
    """Inside ``deferring``: lock these profiles' rows with one statement and keep them for the
    rest of the transaction (absent ones as absent). Outside it, nothing. ``runner`` runs the
    statement (``run``'s signature: the database may send it with what opens its transaction)."""
    known = known_rows(conn)
    if known is None:
        return
    keys = sorted({k for k in profile_ids if k not in known})
    if not keys:
        return
    for k in keys:
        known[k] = None
    for profile_id, doc in runner(conn, Query(_LOCK_MANY, {"keys": keys})):
        known[profile_id] = _Locked(_decode_doc(doc))


def _flush_profiles(conn: Connection) -> None:
    """Write each locked row its jobs changed, as it ends up."""
    for row in (known_rows(conn) or {}).values():
        if row is not None and row.current is not row.original:
            _save(conn, row.current, _changed(row.current, row.original), execute_deferrable)


def _save_statement(columns: tuple[str, ...]) -> Statement[None]:
    def build(param: Param = bindparam) -> Any:
        where = (t.c.id == param("where_id"), t.c.org_id == param("where_org_id"))
        return update(t).where(*where).values({c: param(c) for c in columns})

    params = (*columns, "where_id", "where_org_id")

    def build_many() -> Any:
        rows = _many_rows(params)
        return build(lambda name: rows.c[name])

    def build_sqlite() -> Any:
        found = literal_column("rowid") == _rowid_of("where_id", "where_row")
        org = t.c.org_id == bindparam("where_org_id")
        return update(t).where(found, org).values({c: bindparam(c) for c in columns})

    return Statement(
        f"save{columns}",
        build,
        many=Many(params, build_many),
        sqlite=SqliteForm(build_sqlite, _numbered("where_id", "where_row")),
    )


_SAVE: dict[tuple[str, ...], Statement[None]] = {
    columns: _save_statement(columns)
    for columns in (
        ("doc",),
        ("doc", "name_key"),
        ("id", "org_id", "created_at", "name_key", "doc"),
    )
}


def save_profile(conn: Connection, p: Profile, previous: Profile | None = None) -> None:
    """Write ``p`` over its row: only the columns that differ from ``previous`` when it is
    given. A row the transaction locked up front is written when it flushes."""
    known = known_rows(conn)
    row: _Locked | None = known.get(p.id) if known is not None else None
    if row is not None and row.org_id == p.org_id:
        row.current = p
        before_flush(conn, _flush_profiles)
        return
    _save(conn, p, values(p) if previous is None else _changed(p, previous), execute)


def _save(conn: Connection, p: Profile, params: dict[str, Any], how: Callable[..., Any]) -> None:
    if not params:
        return
    statement = _SAVE[tuple(params)]
    params["where_id"] = p.id
    params["where_org_id"] = p.org_id
    how(conn, statement, params)


def delete_profile(conn: Connection, org_id: str, profile_id: str) -> bool:
    result = conn.execute(delete(t).where(t.c.id == profile_id, t.c.org_id == org_id))
    deleted = result.rowcount > 0
    known = known_rows(conn)
    if deleted and known is not None:
        known[profile_id] = None  # gone: nothing to write back
    return deleted


def _ordered(q: Select[Any], key: Any, descending: bool) -> Select[Any]:
    if descending:
        return q.order_by(key.desc(), t.c.id.desc())
    return q.order_by(key.asc(), t.c.id.asc())


def _after(key: Any, descending: bool, param: Param) -> Any:
    bound = tuple_(key, t.c.id)
    mark = tuple_(param("after_key"), param("after_id"))
    return bound < mark if descending else bound > mark


def _limit(param: Param) -> Any:
    """A page's LIMIT, bound as ``n + 0`` rather than ``n``: SQLite 3.45 and later read a
    LIMIT that is a bare parameter while planning, and then prepare the statement again every
    time it is bound (+3 us of a page's ~20 us of SQL, measured with SQLite 3.51); an
    expression is not read so. PostgreSQL plans the two alike."""
    return param("n") + literal_column("0")


def _scan_statement(
    order_by: str, descending: bool, start: str, param: Param = bindparam, keys: bool = False
) -> Select[Any]:
    """The listing query for one variant: ``start`` is "first", "named" or "nameless" (where the
    previous page ended). ``order_by=name`` is one UNION ALL of two index ranges, so a page is
    one statement and one snapshot: named profiles by (name_key, id) in the requested direction,
    then the nameless ones by id, which come last in either direction. With ``keys`` the rows
    carry their sort keys after the document (named as in ``_SORT_KEYS``)."""
    org = t.c.org_id == param("org_id")
    if order_by == "created_at":
        q = select(*((t.c.doc, t.c.created_at, t.c.id) if keys else (t.c.doc,))).where(org)
        if start != "first":
            q = q.where(_after(t.c.created_at, descending, param))
        return _ordered(q, t.c.created_at, descending).limit(_limit(param))

    seg: Any = literal_column("seg")
    columns = (t.c.doc, t.c.id, t.c.name_key)
    nameless = select(*columns, literal(1).label("seg")).where(org, t.c.name_key.is_(None))
    if start == "nameless":
        nameless = nameless.where(
            t.c.id < param("after_id") if descending else t.c.id > param("after_id")
        )
    nameless = nameless.order_by(t.c.id.desc() if descending else t.c.id.asc()).limit(_limit(param))
    if start == "nameless":
        return nameless
    named = select(*columns, literal(0).label("seg")).where(org, t.c.name_key.is_not(None))
    if start == "named":
        named = named.where(_after(t.c.name_key, descending, param))
    named = _ordered(named, t.c.name_key, descending).limit(_limit(param))
    if keys:  # in the form for many reads, the branches refer to the reads' relation outside
        named, nameless = named.correlate_except(t), nameless.correlate_except(t)
    both = union_all(select(named.subquery()), select(nameless.subquery())).subquery()
    key = both.c.name_key.desc() if descending else both.c.name_key.asc()
    row_id = both.c.id.desc() if descending else both.c.id.asc()
    shown = (both.c.doc, both.c.seg, both.c.name_key, both.c.id) if keys else (both.c.doc,)
    return select(*shown).order_by(seg, key, row_id).limit(_limit(param))


# Each order's sort keys, as a scan with ``keys`` names them, and whether each follows the
# requested direction (nameless profiles come last either way: ``seg`` always ascends).
_SORT_KEYS: dict[str, tuple[tuple[str, bool], ...]] = {
    "created_at": (("created_at", True), ("id", True)),
    "name": (("seg", False), ("name_key", True), ("id", True)),
}


def _scan_params(order_by: str, start: str) -> tuple[tuple[str, Any], ...]:
    """The parameters one variant binds, with their SQL types (the columns they are compared
    with)."""
    params: tuple[tuple[str, Any], ...] = (("org_id", t.c.org_id.type), ("n", Integer()))
    if start == "named":
        key = t.c.created_at if order_by == "created_at" else t.c.name_key
        params += (("after_key", key.type), ("after_id", t.c.id.type))
    elif start == "nameless":
        params += (("after_id", t.c.id.type),)
    return params


def _scan_many(order_by: str, descending: bool, start: str) -> Select[Any]:
    """Many reads of one variant as one statement (``Lateral``): each read's page, in its
    order, after the read's ordinal."""
    reads = unnested(_scan_params(order_by, start))
    page = _scan_statement(
        order_by, descending, start, param=lambda name: reads.c[name], keys=True
    ).lateral("page")
    order = [
        page.c[name].desc() if descending and follows else page.c[name].asc()
        for name, follows in _SORT_KEYS[order_by]
    ]
    return (
        select(reads.c.ordinal, page.c.doc)
        .select_from(reads.join(page, true()))
        .order_by(reads.c.ordinal, *order)
    )


def _scan(order_by: str, descending: bool, start: str) -> Statement[list[StoredText]]:
    return Statement(
        f"scan({order_by}, descending={descending}, {start})",
        lambda: _scan_statement(order_by, descending, start),
        _all_texts,
        batch=Lateral(
            tuple(name for name, _ in _scan_params(order_by, start)),
            lambda: _scan_many(order_by, descending, start),
        ),
    )


_SCANS = {
    (order_by, descending, start): _scan(order_by, descending, start)
    for order_by, starts in (
        ("created_at", ("first", "named")),
        ("name", ("first", "named", "nameless")),
    )
    for descending in (False, True)
    for start in starts
}


def scan(
    org_id: str,
    *,
    order_by: str,
    descending: bool,
    after: Position | None,
    n: int,
) -> Query[list[StoredText]]:
    """Up to ``n`` profiles strictly after ``after`` in the listing order, as stored
    documents."""
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
    return Query(_SCANS[(order_by, descending, start)], params)


def position_of(p: Profile | ProfileText, order_by: str) -> Position:
    """Where ``p`` stands in the listing order (the key a cursor carries)."""
    if isinstance(p, ProfileText):
        profile_id: str = msgspec.json.decode(p.id)
        if order_by == "created_at":
            return Position(to_us(_decode_instant(p.created_at)), profile_id)
        return Position(name_sort_key(_decode_name(p.name)), profile_id)
    key: int | str | None
    key = to_us(p.created_at) if order_by == "created_at" else name_sort_key(p.name)
    return Position(key, p.id)


def count_profiles(conn: Connection, org_id: str) -> int:
    """For operators and benchmarks only; the API never counts."""
    from sqlalchemy import func

    return int(conn.execute(select(func.count()).where(t.c.org_id == org_id)).scalar_one())
