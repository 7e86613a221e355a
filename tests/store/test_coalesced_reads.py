"""Point reads made in one event-loop iteration: on PostgreSQL they share one statement per
organization; on both stores every read gets exactly its own profile, or none."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from uprof.domain.errors import Overloaded
from uprof.domain.model import Profile
from uprof.domain.rules import name_sort_key
from uprof.domain.timefmt import from_us
from uprof.store import profiles as store
from uprof.store.database import Database, open_database
from uprof.store.migrate import migrate
from uprof.store.pgcoalesce import MAX_IN_FLIGHT, MAX_READS
from uprof.store.postgres import PostgresDatabase

ORGS = ("org_coalesce_a", "org_coalesce_b")


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = open_database(database_url)
    migrate(database)

    def seed(conn: Any) -> None:
        from sqlalchemy import text

        for org in ORGS:
            conn.execute(
                text(
                    "INSERT INTO organizations (id, name, created_at) VALUES (:i, :i, 1) "
                    "ON CONFLICT DO NOTHING"
                ),
                {"i": org},
            )
        conn.execute(
            text("DELETE FROM user_profiles WHERE org_id IN (:a, :b)"), {"a": ORGS[0], "b": ORGS[1]}
        )
        profiles = [
            Profile(
                id=f"uprof_co_{org[-1]}_{i}",
                org_id=org,
                created_at=from_us(i),
                updated_at=from_us(i),
                name=f"{org} {i}",
            )
            for org in ORGS
            for i in range(30)
        ]
        store.insert_many(conn, profiles)

    database.write_sync(seed)
    try:
        yield database
    finally:
        database.close()


def _run(db: Database, work: Any) -> Any:
    """Run ``work`` on a loop of its own, closing what the database opened on that loop."""

    async def main() -> Any:
        try:
            return await work
        finally:
            await db.stop()

    return asyncio.run(main())


def _name(text: Any) -> str | None:
    return None if text is None else msgspec.json.decode(store.text_of(text).name)


def _statements(db: PostgresDatabase) -> list[str]:
    """The text of every statement ``db`` sends for its queries from now on."""
    statements: list[str] = []
    fetch = db._fetch

    async def counting(text: str, params: dict[str, Any]) -> list[Any]:
        statements.append(text)
        return await fetch(text, params)

    db._fetch = counting  # type: ignore[method-assign]
    return statements


def test_reads_of_one_iteration_each_get_their_own_profile(db: Database) -> None:
    statements = _statements(db) if isinstance(db, PostgresDatabase) else []

    # Both organizations, duplicates, a profile of the other organization, and missing ids.
    wanted = [
        (ORGS[0], "uprof_co_a_1"),
        (ORGS[0], "uprof_co_a_1"),
        (ORGS[0], "uprof_co_a_2"),
        (ORGS[1], "uprof_co_b_1"),
        (ORGS[1], "uprof_co_a_1"),  # org a's id asked by org b: not found
        (ORGS[0], "uprof_co_missing"),
        *((ORGS[0], f"uprof_co_a_{i}") for i in range(3, 30)),
    ]

    async def read_all() -> list[Any]:
        return await asyncio.gather(
            *(db.query(store.profile_text_by_id(org, pid)) for org, pid in wanted)
        )

    got = _run(db, read_all())
    for (org, pid), text in zip(wanted, got, strict=True):
        if pid.startswith(f"uprof_co_{org[-1]}_") and pid != "uprof_co_missing":
            assert text is not None
            profile = store.text_of(text).decoded()
            assert profile.id == pid and profile.org_id == org
            assert _name(text) == f"{org} {pid.rsplit('_', 1)[1]}"
        else:
            assert text is None, (org, pid)
    if isinstance(db, PostgresDatabase):
        # one statement per organization, not one per read
        assert len(statements) == 2, statements
        assert all("ANY" in s for s in statements)


async def _passes(n: int) -> None:
    """Let the loop make ``n`` passes."""
    for _ in range(n):
        await asyncio.sleep(0)


async def _until(found: Any) -> None:
    """Let the loop pass until ``found()`` holds (a bounded number of passes)."""
    for _ in range(10_000):
        if found():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


def _point_read(i: int) -> Any:
    return store.profile_text_by_id(ORGS[0], f"uprof_co_a_{i}")


def _ids_in(params: dict[str, Any]) -> list[str]:
    """The profile ids a statement's parameters ask for (a plain read's or a batch's)."""
    found: list[str] = []
    for value in params.values():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str) and v.startswith("uprof_co_"):
                found.append(v)
    return sorted(found)


def test_reads_of_two_loop_passes_share_a_statement(db: Database) -> None:
    # The requests of one poll of the sockets start in the pass after it: a read waits for the
    # end of the pass after its own, so that it goes out with theirs.
    if not isinstance(db, PostgresDatabase):
        pytest.skip("only PostgreSQL coalesces")
    statements = _statements(db)

    async def one_pass_later(i: int) -> Any:
        await asyncio.sleep(0)
        return await db.query(_point_read(i))

    async def read_all() -> list[Any]:
        return list(await asyncio.gather(db.query(_point_read(1)), one_pass_later(2)))

    got = _run(db, read_all())
    assert [_name(text) for text in got] == [f"{ORGS[0]} 1", f"{ORGS[0]} 2"]
    assert len(statements) == 1 and "ANY" in statements[0], statements


def _gate_statements(db: PostgresDatabase, held: int) -> tuple[list[list[str]], list[Any]]:
    """Make the first ``held`` statements wait until their gate opens; the ids each statement
    asked for, and the gates (created on the loop as the statements go out)."""
    sent: list[list[str]] = []
    gates: list[asyncio.Event] = []
    fetch = db._fetch

    async def gated(text: str, params: dict[str, Any]) -> list[Any]:
        sent.append(_ids_in(params))
        if len(sent) <= held:
            gate = asyncio.Event()
            gates.append(gate)
            await gate.wait()
        return await fetch(text, params)

    db._fetch = gated  # type: ignore[method-assign]
    return sent, gates


def test_reads_wait_while_statements_are_in_flight(db: Database) -> None:
    if not isinstance(db, PostgresDatabase):
        pytest.skip("only PostgreSQL coalesces")
    db._coalesced.max_wait = 60.0  # only a statement coming back lets them go
    sent, gates = _gate_statements(db, MAX_IN_FLIGHT)

    async def scenario() -> list[Any]:
        tasks = []
        for i in range(MAX_IN_FLIGHT):  # one statement each, all held
            tasks.append(asyncio.ensure_future(db.query(_point_read(i))))
            await _until(lambda: len(sent) == len(tasks))
        # More reads, in passes of their own, while the statements are out: they wait.
        for i in (10, 11, 12):
            tasks.append(asyncio.ensure_future(db.query(_point_read(i))))
            await _passes(3)
        assert len(sent) == MAX_IN_FLIGHT
        # One statement back: the waiting reads go out together.
        gates[0].set()
        await _until(lambda: len(sent) == MAX_IN_FLIGHT + 1)
        assert sent[-1] == ["uprof_co_a_10", "uprof_co_a_11", "uprof_co_a_12"]
        for gate in gates[1:]:
            gate.set()
        return await asyncio.gather(*tasks)

    got = _run(db, scenario())
    wanted = [*range(MAX_IN_FLIGHT), 10, 11, 12]
    assert [_name(t) for t in got] == [f"{ORGS[0]} {i}" for i in wanted]
    assert not db._coalesced._loops  # nothing kept of a loop with no reads


def test_statements_in_flight_hold_a_read_back_at_most_max_wait(db: Database) -> None:
    # Slow statements (a long scan, a busy server) must not hold up the reads behind them.
    if not isinstance(db, PostgresDatabase):
        pytest.skip("only PostgreSQL coalesces")
    db._coalesced.max_wait = 0.05
    sent, gates = _gate_statements(db, MAX_IN_FLIGHT)

    async def scenario() -> tuple[Any, float]:
        held = []
        for i in range(MAX_IN_FLIGHT):
            held.append(asyncio.ensure_future(db.query(_point_read(i))))
            await _until(lambda: len(sent) == len(held))
        loop = asyncio.get_running_loop()
        start = loop.time()
        text = await asyncio.wait_for(db.query(_point_read(20)), 10)
        waited = loop.time() - start
        assert not any(task.done() for task in held)  # answered while they are still out
        for gate in gates:
            gate.set()
        await asyncio.gather(*held)
        return text, waited

    text, waited = _run(db, scenario())
    assert _name(text) == f"{ORGS[0]} 20"
    assert 0.04 <= waited < 5, waited
    assert sent[-1] == ["uprof_co_a_20"]


def _record_polls() -> list[float | None]:
    """The timeout of every look the running loop takes at its sockets from now on: 0 when it
    looks without waiting, else how long it may sleep (None: until something happens)."""
    selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
    timeouts: list[float | None] = []
    select = selector.select

    def recording(timeout: float | None = None) -> Any:
        timeouts.append(timeout)
        return select(timeout)

    selector.select = recording
    return timeouts


def _slept_through(timeouts: list[float | None], hold: float) -> bool:
    """Whether the loop's looks during a sleep of ``hold`` were one wait for all of it, and the
    look at the sleep's end."""
    return len(timeouts) <= 2 and (timeouts[0] or 0) > hold * 0.8


def _held_read(
    db: PostgresDatabase, busy_poll: float, hold: float, query: Any = None
) -> list[float | None]:
    """One read (a point read unless ``query``) whose statement is held ``hold`` seconds, with
    ``busy_poll``; the loop's looks at its sockets while it is held."""
    db._coalesced.busy_poll = busy_poll
    sent, gates = _gate_statements(db, 1)

    async def scenario() -> list[float | None]:
        task = asyncio.ensure_future(db.query(query or _point_read(3)))
        await _until(lambda: len(sent) == 1)
        timeouts = _record_polls()
        await asyncio.sleep(hold)
        held = list(timeouts)
        gates[0].set()
        got = await task
        assert query is not None or _name(got) == f"{ORGS[0]} 3"
        return held

    return _run(db, scenario())  # type: ignore[no-any-return]


def test_the_loop_polls_for_a_statements_answer_instead_of_sleeping(db: Database) -> None:
    # A sleeping loop's CPU may be halted by the hypervisor and woken only when the answer
    # arrives, which costs more than the answer itself on the machine of docs/performance.md.
    if not isinstance(db, PostgresDatabase):
        pytest.skip("only PostgreSQL's reads go out of the process")
    timeouts = _held_read(db, busy_poll=10.0, hold=0.05)
    assert len(timeouts) > 20 and set(timeouts) == {0}, timeouts[:20]


def test_polling_stops_after_busy_poll_and_when_no_statement_is_out(db: Database) -> None:
    if not isinstance(db, PostgresDatabase):
        pytest.skip("only PostgreSQL's reads go out of the process")
    # Held longer than busy_poll: the loop looks without waiting at first, then sleeps.
    timeouts = _held_read(db, busy_poll=0.01, hold=0.2)
    slept = [i for i, t in enumerate(timeouts) if t != 0]
    assert timeouts[0] == 0 and slept, timeouts
    # asleep from then until the hold was over (the sleep's end is a look of its own)
    assert _slept_through(timeouts[slept[0] :], 0.15), timeouts[slept[0] :]

    # Once the answer is in, nothing keeps the loop awake.
    db._coalesced.busy_poll = 10.0

    async def after_a_read() -> list[float | None]:
        assert _name(await db.query(_point_read(4))) == f"{ORGS[0]} 4"
        await _passes(3)
        timeouts = _record_polls()
        await asyncio.sleep(0.05)
        return list(timeouts)  # not the looks of the database's stop after it

    timeouts = _run(db, after_a_read())
    assert _slept_through(timeouts, 0.05), timeouts
    assert not db._coalesced._loops


def test_a_page_alone_does_not_make_the_loop_poll(db: Database) -> None:
    # PostgreSQL takes longer to make a page's rows than a wake costs (docs/performance.md,
    # "Round 24"): polling through it would take the CPU from backends on the loop's CPU.
    if not isinstance(db, PostgresDatabase):
        pytest.skip("only PostgreSQL's reads go out of the process")
    query = store.scan(ORGS[0], order_by="created_at", descending=False, after=None, n=5)
    timeouts = _held_read(db, busy_poll=10.0, hold=0.05, query=query)
    assert _slept_through(timeouts, 0.05), timeouts


def test_a_busy_poll_of_zero_lets_the_loop_sleep(db: Database) -> None:
    if not isinstance(db, PostgresDatabase):
        pytest.skip("only PostgreSQL's reads go out of the process")
    timeouts = _held_read(db, busy_poll=0.0, hold=0.05)
    assert _slept_through(timeouts, 0.05), timeouts


def test_the_setting_reaches_the_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    from uprof.config import settings_from_env
    from uprof.store.database import open_store

    url = "postgresql://postgres@127.0.0.1:5432/test"
    for value, seconds in (("0", 0.0), ("250", 0.00025)):
        monkeypatch.setenv("UPROF_PG_BUSY_POLL_US", value)
        database = open_store(settings_from_env(database_url=url))
        assert isinstance(database, PostgresDatabase)
        assert database._coalesced.busy_poll == seconds
        database.close()
    # Not set: on while every worker has a CPU and one is left over, off where they share.
    monkeypatch.delenv("UPROF_PG_BUSY_POLL_US")
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert settings_from_env(database_url=url).pg_busy_poll_us == 2000
    assert settings_from_env(database_url=url, workers=2).pg_busy_poll_us == 0
    assert (
        settings_from_env(database_url=url, workers=2, pg_busy_poll_us=500).pg_busy_poll_us == 500
    )
    monkeypatch.setenv("UPROF_WORKERS", "3")
    assert settings_from_env(database_url=url).pg_busy_poll_us == 0
    monkeypatch.setenv("UPROF_PG_BUSY_POLL_US", "700")
    assert settings_from_env(database_url=url).pg_busy_poll_us == 700
    for bad in ("-1", "1000001", "soon"):
        monkeypatch.setenv("UPROF_PG_BUSY_POLL_US", bad)
        with pytest.raises(ValueError, match="UPROF_PG_BUSY_POLL_US"):
            settings_from_env(database_url=url)


def test_a_lone_read_uses_the_plain_statement(db: Database) -> None:
    if not isinstance(db, PostgresDatabase):
        pytest.skip("only PostgreSQL coalesces")
    statements = _statements(db)
    text = _run(db, db.query(store.profile_text_by_id(ORGS[1], "uprof_co_b_7")))
    assert text is not None and _name(text) == f"{ORGS[1]} 7"
    assert len(statements) == 1 and "ANY" not in statements[0]


@pytest.mark.parametrize(
    "query",
    [
        lambda i: store.profile_text_by_id(ORGS[0], f"uprof_co_a_{i}"),
        lambda i: store.scan(ORGS[0], order_by="name", descending=False, after=None, n=i + 1),
    ],
    ids=["point reads", "pages"],
)
def test_a_failing_batch_fails_every_read_in_it(db: Database, query: Any) -> None:
    if not isinstance(db, PostgresDatabase):
        pytest.skip("only PostgreSQL coalesces")

    async def down(text: str, params: dict[str, Any]) -> list[Any]:
        raise Overloaded("the storage backend is busy or unavailable")

    db._fetch = down  # type: ignore[method-assign]

    async def read_all() -> list[Any]:
        return await asyncio.gather(*(db.query(query(i)) for i in range(5)), return_exceptions=True)

    assert all(isinstance(r, Overloaded) for r in _run(db, read_all()))


# --- pages ----------------------------------------------------------------------------------------


def _seed_for_pages(db: Database) -> dict[str, list[Profile]]:
    """Both organizations get profiles with names (some equal but for case, so the id breaks
    ties) and without, several sharing a creation instant."""
    from sqlalchemy import text

    names = ["ada", "Ada", "bob", None, "carol", None, "dave", "ada", None, "Eve", "eve", "zed"]
    made: dict[str, list[Profile]] = {}

    def seed(conn: Any) -> None:
        conn.execute(
            text("DELETE FROM user_profiles WHERE org_id IN (:a, :b)"), {"a": ORGS[0], "b": ORGS[1]}
        )
        for o, org in enumerate(ORGS):
            made[org] = [
                Profile(
                    id=f"uprof_pg_{o}_{i:03d}",
                    org_id=org,
                    created_at=from_us(1_000 + (i // 3)),  # three to an instant
                    updated_at=from_us(1_000 + i),
                    name=names[(i + o) % len(names)],
                )
                for i in range(40)
            ]
            store.insert_many(conn, made[org])

    db.write_sync(seed)
    return made


def _expected(profiles: list[Profile], order_by: str, descending: bool) -> list[str]:
    """The listing order as the API documents it, computed here without SQL."""
    if order_by == "created_at":
        ordered = sorted(profiles, key=lambda p: (p.created_at, p.id), reverse=descending)
        return [p.id for p in ordered]
    named = [p for p in profiles if p.name is not None]
    nameless = [p for p in profiles if p.name is None]
    named.sort(key=lambda p: (name_sort_key(p.name), p.id), reverse=descending)
    nameless.sort(key=lambda p: p.id, reverse=descending)
    return [p.id for p in named + nameless]


def test_pages_of_one_iteration_each_get_their_own_rows(db: Database) -> None:
    made = _seed_for_pages(db)
    statements = _statements(db) if isinstance(db, PostgresDatabase) else []

    # Every order and direction, from the start and after every position (named and nameless
    # alike), both organizations, page sizes from 1 to past the end; all in one iteration.
    reads: list[tuple[Any, list[str]]] = []
    for org in ORGS:
        for order_by in ("created_at", "name"):
            for descending in (False, True):
                ids = _expected(made[org], order_by, descending)
                by_id = {p.id: p for p in made[org]}
                for start in range(-1, len(ids), 3):
                    n = 1 + (start + 2) % 7 if start % 2 else 45
                    after = None if start < 0 else store.position_of(by_id[ids[start]], order_by)
                    query = store.scan(
                        org, order_by=order_by, descending=descending, after=after, n=n
                    )
                    reads.append((query, ids[start + 1 : start + 1 + n]))

    async def read_all() -> list[Any]:
        return await asyncio.gather(*(db.query(query) for query, _ in reads))

    pages = _run(db, read_all())
    for (query, want), page in zip(reads, pages, strict=True):
        got = [store.text_of(p).decoded().id for p in page]
        assert got == want, query.statement
        assert all(store.text_of(p).decoded().org_id == query.params["org_id"] for p in page)
    if isinstance(db, PostgresDatabase):
        # one statement per variant of the scan (order, direction, where it starts) and every
        # MAX_READS pages of it, not one per page
        per_variant = Counter(query.statement for query, _ in reads)
        assert max(per_variant.values()) > MAX_READS  # some variant is split
        assert len(statements) == sum(-(-n // MAX_READS) for n in per_variant.values())
        assert len(statements) < len(reads)
        assert all("LATERAL" in s for s in statements)


def _pages_of_two(
    db: Database, *, descending: bool, count: int
) -> tuple[list[str], list[str], list[Any]]:
    """The seed's ids of ``ORGS[0]`` in creation order, ``count`` of them in turn (round again
    if need be), and a page of two profiles after each."""
    made = _seed_for_pages(db)
    ids = _expected(made[ORGS[0]], "created_at", descending)
    by_id = {p.id: p for p in made[ORGS[0]]}
    starts = [ids[i % len(ids)] for i in range(count)]
    queries = [
        store.scan(
            ORGS[0],
            order_by="created_at",
            descending=descending,
            after=store.position_of(by_id[start], "created_at"),
            n=2,
        )
        for start in starts
    ]
    return ids, starts, queries


def test_many_pages_of_one_iteration_go_out_side_by_side(db: Database) -> None:
    if not isinstance(db, PostgresDatabase):
        pytest.skip("only PostgreSQL coalesces")
    # 2 * MAX_READS + 1 pages of one variant: three statements of 11 (equal chunks)
    ids, starts, queries = _pages_of_two(db, descending=False, count=2 * MAX_READS + 1)
    in_flight = 0
    most = 0
    sizes: list[int] = []
    fetch = db._fetch

    async def watched(text: str, params: dict[str, Any]) -> list[Any]:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        sizes.append(len(next(v for v in params.values() if isinstance(v, list))))
        try:
            return await fetch(text, params)
        finally:
            in_flight -= 1

    db._fetch = watched  # type: ignore[method-assign]

    async def read_all() -> list[Any]:
        return await asyncio.gather(*(db.query(q) for q in queries))

    pages = _run(db, read_all())
    for start, page in zip(starts, pages, strict=True):
        at = ids.index(start)
        assert [store.text_of(p).decoded().id for p in page] == ids[at + 1 : at + 3]
    assert sorted(sizes) == [11, 11, 11]
    assert most == 3  # all at once, each on a connection of its own


def test_equal_pages_of_one_iteration_are_read_once_and_each_gets_a_list_of_its_own(
    db: Database,
) -> None:
    made = _seed_for_pages(db)
    ids = _expected(made[ORGS[0]], "created_at", False)
    by_id = {p.id: p for p in made[ORGS[0]]}
    after = [None, store.position_of(by_id[ids[9]], "created_at")]
    # Ten callers walking in step: five ask for the first page, four for the page after the
    # tenth profile, and one for the other organization's page after that position (its own).
    queries = [
        store.scan(ORGS[0], order_by="created_at", descending=False, after=after[i % 2], n=4)
        for i in range(9)
    ]
    queries.append(
        store.scan(ORGS[1], order_by="created_at", descending=False, after=after[1], n=4)
    )
    sizes: list[int] = []
    if isinstance(db, PostgresDatabase):
        fetch = db._fetch

        async def watched(text: str, params: dict[str, Any]) -> list[Any]:
            arrays = [v for v in params.values() if isinstance(v, list)]
            sizes.append(len(arrays[0]) if arrays else 1)
            return await fetch(text, params)

        db._fetch = watched  # type: ignore[method-assign]

    async def read_all() -> list[Any]:
        return await asyncio.gather(*(db.query(q) for q in queries))

    pages = _run(db, read_all())
    for i, page in enumerate(pages):
        got = [store.text_of(p).decoded().id for p in page]
        if i == 9:
            assert all(pid.startswith("uprof_pg_1_") for pid in got) and len(got) == 4
        else:
            assert got == (ids[:4] if i % 2 == 0 else ids[10:14])
    # A caller cutting its page (as the service cuts the row past the limit) cuts only its own.
    del pages[0][1:]
    assert len(pages[2]) == 4 and len(pages[4]) == 4
    assert len({id(page) for page in pages}) == len(pages)
    if isinstance(db, PostgresDatabase):
        # the first pages as one plain statement; the pages after a position (a variant of
        # their own) as one of two distinct reads, not of five
        assert sorted(sizes) == [1, 2], sizes


def test_sqlite_reads_an_equal_page_once_per_snapshot_and_afresh_in_the_next(
    db: Database,
) -> None:
    if isinstance(db, PostgresDatabase):
        pytest.skip("SQLite's snapshot of an event-loop iteration")
    made = _seed_for_pages(db)
    ids = _expected(made[ORGS[0]], "created_at", True)
    first = store.scan(ORGS[0], order_by="created_at", descending=True, after=None, n=3)
    scans: list[str] = []

    async def twice() -> tuple[list[Any], list[Any]]:
        db._conn()  # type: ignore[attr-defined]  # the loop thread's read connection, traced
        raw = db._local.raw  # type: ignore[attr-defined]
        raw.set_trace_callback(lambda sql: scans.append(sql) if "LIMIT" in sql else None)
        try:
            together = await asyncio.gather(*(db.query(first) for _ in range(4)))
            # A newer profile written between two iterations: the next one's page shows it.
            newest = Profile(
                id="uprof_pg_0_new",
                org_id=ORGS[0],
                created_at=from_us(9_000),
                updated_at=from_us(9_000),
                name="new",
            )
            await db.write(lambda conn: store.insert_many(conn, [newest]))
            await _passes(2)
            later = await db.query(first)
            return together, later
        finally:
            raw.set_trace_callback(None)

    together, later = _run(db, twice())
    for page in together:
        assert [store.text_of(p).decoded().id for p in page] == ids[:3]
    assert len({id(page) for page in together}) == 4  # a list of its own each
    assert len(scans) == 2, scans  # one for the four pages of one iteration, one after
    assert [store.text_of(p).decoded().id for p in later] == ["uprof_pg_0_new", *ids[:2]]


def test_a_lone_page_uses_the_plain_statement(db: Database) -> None:
    if not isinstance(db, PostgresDatabase):
        pytest.skip("only PostgreSQL coalesces")
    made = _seed_for_pages(db)
    statements = _statements(db)
    query = store.scan(ORGS[1], order_by="created_at", descending=True, after=None, n=5)
    page = _run(db, db.query(query))
    assert [store.text_of(p).decoded().id for p in page] == _expected(
        made[ORGS[1]], "created_at", True
    )[:5]
    assert len(statements) == 1 and "LATERAL" not in statements[0]


def test_sessions_do_not_compile_statements_just_in_time(db: Database) -> None:
    """A coalesced read's generic plan looks expensive to the planner; JIT compiling it cost
    6-26 ms a statement. Both of uprof's pools turn it off for their sessions."""
    if not isinstance(db, PostgresDatabase):
        pytest.skip("a PostgreSQL setting")

    for setting in ("jit", "enable_seqscan"):  # and no sequential scan (O23)

        async def async_setting(setting: str = setting) -> Any:
            pool = await db._query_pool()
            async with pool.connection() as conn:
                return (await (await conn.execute(f"SHOW {setting}")).fetchone())[0]  # type: ignore[index]

        def sync_setting(conn: Any, setting: str = setting) -> Any:
            return conn.exec_driver_sql(f"SHOW {setting}").scalar_one()

        assert _run(db, async_setting()) == "off"
        assert db.read_sync(sync_setting) == "off"


def test_a_page_reads_its_index_even_where_churn_made_the_index_look_costly(db: Database) -> None:
    """The planner prices an index by its pages. A table whose index kept the pages of many
    deleted rows got a generic plan of a list page that read the whole table and sorted it
    (on the bench's 1k store after ~480k profiles were created and deleted: 0.5 ms a page
    against 0.03 through the index). uprof's sessions plan without sequential scans where an
    index can serve (decisions O23)."""
    if not isinstance(db, PostgresDatabase):
        pytest.skip("a PostgreSQL plan")
    from sqlalchemy import Connection

    _ids, _starts, queries = _pages_of_two(db, descending=True, count=3)
    sent: list[tuple[str, dict[str, Any]]] = []
    fetch = db._fetch

    async def recording(sql: str, params: dict[str, Any]) -> list[Any]:
        sent.append((sql, params))
        return await fetch(sql, params)

    db._fetch = recording  # type: ignore[method-assign,assignment]

    async def read_all() -> list[Any]:
        return await asyncio.gather(*(db.query(q) for q in queries))

    _run(db, read_all())
    [(sql, params)] = sent
    assert "LATERAL" in sql
    # The statement as the query pool prepares it, in psycopg's placeholders.
    sql = re.sub(r":(\w+)", r"%(\1)s", sql)

    def plans(conn: Connection) -> tuple[str, str]:
        raw: Any = conn.connection.dbapi_connection
        cursor = raw.cursor()
        # A table of this session's own in the place of the profiles' (a temporary table comes
        # first on the search path): 300 live rows, the heap vacuumed down to them, beside the
        # index pages of 30,000 deleted.
        cursor.execute("CREATE TEMP TABLE user_profiles (LIKE public.user_profiles INCLUDING ALL)")
        try:
            cursor.execute(
                "INSERT INTO user_profiles (id, org_id, created_at, name_key, doc)"
                " SELECT 'churn_' || g, %(org)s, g, NULL, '{}' FROM generate_series(1, 30300) g",
                {"org": ORGS[0]},
            )
            cursor.execute("DELETE FROM user_profiles WHERE created_at > 300")
            raw.commit()
            raw.autocommit = True
            cursor.execute("VACUUM ANALYZE user_profiles")
            cursor.execute("SET plan_cache_mode = force_generic_plan")

            def plan() -> str:
                cursor.execute("EXPLAIN " + sql, params)
                return "\n".join(row[0] for row in cursor.fetchall())

            as_served = plan()
            cursor.execute("SET enable_seqscan = on")
            by_default = plan()
        finally:
            # The pool keeps the session: nothing of this may outlive the test in it.
            raw.autocommit = True
            cursor.execute("DROP TABLE IF EXISTS pg_temp.user_profiles")
            cursor.execute("RESET plan_cache_mode")
            cursor.execute("SET enable_seqscan = off")
            raw.autocommit = False
        return as_served, by_default

    as_served, by_default = db.read_sync(plans)
    assert "Seq Scan on user_profiles" in by_default, by_default  # what churn does by default
    assert "Seq Scan" not in as_served and "Index Scan" in as_served, as_served
