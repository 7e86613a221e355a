"""PostgreSQL's group commit: the writes of one moment share one transaction, and each job's
failure is undone alone."""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import pq
from sqlalchemy import Connection, Pool, event, text

from uprof.domain.errors import NotFound, Overloaded
from uprof.domain.model import Profile
from uprof.domain.rules import name_sort_key
from uprof.domain.timefmt import from_us
from uprof.store import postgres
from uprof.store import profiles as profile_store
from uprof.store.compiled import Statement, execute_deferrable
from uprof.store.migrate import migrate
from uprof.store.postgres import PostgresDatabase

# Each test's event loop, kept from one ``_keyed`` to the next as a server keeps its loop: the
# write batches' pool belongs to the loop that opened it (its connections are reused, or pinged,
# only on that loop).
_LOOPS: dict[int, asyncio.Runner] = {}


@pytest.fixture
def pg(postgres_url: str) -> Iterator[tuple[PostgresDatabase, str]]:
    database = PostgresDatabase(postgres_url)
    migrate(database)  # a batch locks the profiles its writes name: the table must exist
    table = f"gc_{uuid.uuid4().hex[:10]}"
    database.write_sync(
        lambda c: c.execute(text(f"CREATE TABLE {table} (k TEXT PRIMARY KEY, tx BIGINT)"))
    )
    runner = _LOOPS[id(database)] = asyncio.Runner()
    try:
        yield database, table
    finally:
        runner.run(database.stop())
        runner.close()
        del _LOOPS[id(database)]
        database.write_sync(lambda c: c.execute(text(f"DROP TABLE {table}")))
        database.close()


def _put(table: str, k: str, *, raw: bool = False):  # type: ignore[no-untyped-def]
    def work(conn: Connection) -> str:
        if raw:  # as the store's compiled statements do, on the DBAPI connection's cursor
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            cursor.execute(f"INSERT INTO {table} VALUES (%s, txid_current())", (k,))
        else:
            conn.execute(text(f"INSERT INTO {table} VALUES (:k, txid_current())"), {"k": k})
        return k

    return work


def _put_then_fail(table: str, k: str):  # type: ignore[no-untyped-def]
    def work(conn: Connection) -> str:
        _put(table, k)(conn)
        raise NotFound(f"{k} wrote a row, then failed")

    return work


def _rows(db: PostgresDatabase, table: str) -> dict[str, int]:
    rows = db.read_sync(lambda c: c.execute(text(f"SELECT k, tx FROM {table}")).all())
    return {k: tx for k, tx in rows}


def _together(db: PostgresDatabase, *jobs: Any) -> list[Any]:
    """The jobs written at one moment, none naming a key; each one's result or error."""
    return _keyed(db, *((None, job) for job in jobs))


def test_the_writes_of_one_moment_share_one_transaction(pg: tuple[PostgresDatabase, str]) -> None:
    db, table = pg
    assert _together(db, *(_put(table, f"k{i}") for i in range(20))) == [f"k{i}" for i in range(20)]
    rows = _rows(db, table)
    assert set(rows) == {f"k{i}" for i in range(20)}
    assert len(set(rows.values())) == 1, "one transaction id for the whole batch"


def test_a_slow_batch_is_logged(postgres_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A batch whose statements or COMMIT keep its writes waiting past the threshold (here
    PostgreSQL sleeping in one of them, as a WAL flush that stalls) is logged."""
    import logging

    from uprof.config import Settings
    from uprof.store.database import open_store

    database = open_store(Settings(database_url=postgres_url, slow_write_ms=150))
    assert isinstance(database, PostgresDatabase)
    runner = _LOOPS[id(database)] = asyncio.Runner()
    try:

        def sleeps(conn: Connection) -> str:
            conn.execute(text("SELECT pg_sleep(0.3)"))
            return "slept"

        with caplog.at_level(logging.WARNING, logger="uprof"):
            assert _together(database, _noop, _noop) == ["ok", "ok"]
            assert not [r for r in caplog.records if "slow write" in r.getMessage()]
            assert _together(database, sleeps, _noop) == ["slept", "ok"]
        lines = [r.getMessage() for r in caplog.records if "slow write" in r.getMessage()]
        assert len(lines) == 1, lines
        found = re.fullmatch(
            r"slow write batch: ([\d.]+) ms, 2 writes \(its statements and COMMIT on PostgreSQL\)",
            lines[0],
        )
        assert found and float(found.group(1)) >= 300, lines[0]
    finally:
        runner.run(database.stop())
        runner.close()
        del _LOOPS[id(database)]
        database.close()


def _noop(conn: Connection) -> str:
    return "ok"


def _key_of_lane(lane: int) -> str:
    """A profile id whose writes go into ``lane`` (the lanes hash their keys)."""
    return next(
        k for k in (f"up_lane{i}" for i in itertools.count()) if postgres.lane_of(k) == lane
    )


def test_a_write_without_a_key_goes_out_with_the_first_batch_to_start(
    pg: tuple[PostgresDatabase, str],
) -> None:
    """Writes without a key (new profiles) wait in one queue that the first lane free takes,
    not behind a lane chosen when they arrived: with both lanes running, a create waited for
    the first lane's batch however long that took, while the other lane sat idle."""
    db, table = pg

    def sleeping(seconds: float, k: str):  # type: ignore[no-untyped-def]
        def work(conn: Connection) -> str:
            conn.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})
            return _put(table, k)(conn)  # type: ignore[no-any-return]

        return work

    async def main() -> dict[str, float]:
        loop = asyncio.get_running_loop()
        done: dict[str, float] = {}

        async def timed(name: str, write: Any) -> None:
            await write
            done[name] = loop.time()

        slow = asyncio.ensure_future(timed("slow", db.write(sleeping(0.8, "s"), _key_of_lane(0))))
        fast = asyncio.ensure_future(timed("fast", db.write(sleeping(0.1, "f"), _key_of_lane(1))))
        await asyncio.sleep(0.05)  # both lanes' batches are running
        await timed("keyless", db.write(_put(table, "n")))
        await asyncio.gather(slow, fast)
        return done

    done = _LOOPS[id(db)].run(main())
    assert done["fast"] <= done["keyless"] < done["slow"] - 0.3, done
    rows = _rows(db, table)
    assert rows["n"] != rows["s"]  # it went out in a batch of the lane that was free first


def test_jobs_of_one_batch_fail_alone(pg: tuple[PostgresDatabase, str]) -> None:
    db, table = pg
    db.write_sync(_put(table, "taken"))
    outcomes = _together(
        db,
        _put(table, "a"),
        _put_then_fail(table, "b"),  # its row is undone with it
        _put(table, "taken"),  # unique violation (SQLAlchemy)
        _put(table, "c", raw=True),
        _put(table, "taken", raw=True),  # unique violation (driver cursor)
        _put(table, "d"),
    )
    assert outcomes[0] == "a" and outcomes[3] == "c" and outcomes[5] == "d"
    assert isinstance(outcomes[1], NotFound)
    assert isinstance(outcomes[2], Exception) and isinstance(outcomes[4], Exception)
    assert set(_rows(db, table)) == {"taken", "a", "c", "d"}


def test_a_batch_runs_on_the_event_loop_and_serves_it_while_it_waits(
    pg: tuple[PostgresDatabase, str],
) -> None:
    """A batch's jobs run on the loop's own thread (no hop into a worker thread and back, each
    ending in a wait for the interpreter's lock), and every wait of the batch for the server
    (a job's statement, the rollback of a failed pass, its replay with savepoints, the COMMIT)
    leaves the loop serving other work."""
    db, table = pg
    threads: list[int] = []

    def slow_put(k: str):  # type: ignore[no-untyped-def]
        def work(conn: Connection) -> str:
            threads.append(threading.get_ident())
            conn.execute(text("SELECT pg_sleep(0.15)"))
            return _put(table, k)(conn)  # type: ignore[no-any-return]

        return work

    async def main() -> tuple[list[Any], list[float], float]:
        ticks: list[float] = []
        stopping = asyncio.Event()

        async def tick() -> None:
            while not stopping.is_set():
                ticks.append(time.monotonic())
                await asyncio.sleep(0.005)

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0.02)
        started = time.monotonic()
        outcomes: list[Any] = list(
            await asyncio.gather(
                db.write(slow_put("a")),
                db.write(_put_then_fail(table, "b")),
                return_exceptions=True,
            )
        )
        elapsed = time.monotonic() - started
        stopping.set()
        await ticker
        return outcomes, ticks, elapsed

    outcomes, ticks, elapsed = _LOOPS[id(db)].run(main())
    assert outcomes[0] == "a" and isinstance(outcomes[1], NotFound), outcomes
    assert set(_rows(db, table)) == {"a"}
    # the failing job made the batch run twice: the first pass, then the replay
    assert len(threads) == 2 and elapsed >= 0.3, (threads, elapsed)
    assert set(threads) == {threading.get_ident()}, "the jobs ran on the loop's thread"
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    assert max(gaps) < 0.1, f"the loop stalled {max(gaps):.3f} s while the batch waited"


_PUTS: dict[str, Statement[None]] = {}


def _deferred_put(table: str, k: str, seen: list[int] | None = None):  # type: ignore[no-untyped-def]
    """A job inserting its row as the store inserts a new profile (``execute_deferrable``, one
    statement per table); with ``seen``, it first counts the rows its transaction sees."""
    statement = _PUTS.setdefault(
        table,
        Statement(
            f"put into {table}", lambda: text(f"INSERT INTO {table} VALUES (:k, txid_current())")
        ),
    )

    def work(conn: Connection) -> str:
        if seen is not None:
            seen.append(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
        execute_deferrable(conn, statement, {"k": k})
        return k

    return work


def test_deferred_inserts_go_out_together_at_the_end_of_the_batch(
    pg: tuple[PostgresDatabase, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, table = pg
    messages: list[str] = []
    simple = postgres._simple

    def recording(
        raw: psycopg.AsyncConnection[Any], sql: str, encoding: str
    ) -> list[pq.abc.PGresult]:
        messages.append(sql)
        return simple(raw, sql, encoding)

    monkeypatch.setattr(postgres, "_simple", recording)
    seen: list[int] = []
    jobs = [_deferred_put(table, f"k{i}", seen) for i in range(10)]
    assert _together(db, *jobs) == [f"k{i}" for i in range(10)]
    assert seen == [0] * 10, "no insert ran before the last job of the batch"
    assert len(messages) == 1, "the batch's inserts and its COMMIT are one message"
    statements = messages[0].split(";\n")
    assert statements[-1] == "COMMIT"
    assert sum(f"INSERT INTO {table}" in s for s in statements) == 10
    rows = _rows(db, table)
    assert set(rows) == {f"k{i}" for i in range(10)} and len(set(rows.values())) == 1


def test_a_deferred_insert_that_fails_fails_its_own_job_alone(
    pg: tuple[PostgresDatabase, str],
) -> None:
    db, table = pg
    db.write_sync(_put(table, "taken"))
    outcomes = _together(
        db,
        _deferred_put(table, "a"),
        _deferred_put(table, "taken"),  # unique violation, found only when the batch flushes
        _deferred_put(table, "b"),
        _put(table, "c"),
    )
    assert outcomes[0] == "a" and outcomes[2] == "b" and outcomes[3] == "c"
    assert isinstance(outcomes[1], psycopg.errors.UniqueViolation)
    assert set(_rows(db, table)) == {"taken", "a", "b", "c"}


def test_outside_a_batch_a_deferrable_insert_runs_at_once(pg: tuple[PostgresDatabase, str]) -> None:
    db, table = pg
    seen: list[int] = []

    def put_and_count(conn: Connection) -> None:
        _deferred_put(table, "now")(conn)
        seen.append(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())

    db.write_sync(put_and_count)
    assert seen == [1]


def test_a_deadlock_with_another_transaction_runs_the_batch_again(
    pg: tuple[PostgresDatabase, str],
) -> None:
    db, table = pg
    attempts = []

    def loses_once(conn: Connection) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise psycopg.errors.DeadlockDetected("deadlock detected")
        return _put(table, "won")(conn)  # type: ignore[no-any-return]

    assert _together(db, _put(table, "x"), loses_once) == ["x", "won"]
    assert set(_rows(db, table)) == {"x", "won"}
    assert len(attempts) == 2


def test_an_unreachable_server_fails_every_write_as_overloaded(
    pg: tuple[PostgresDatabase, str],
) -> None:
    db, table = pg

    def down(conn: Connection) -> str:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    outcomes = _together(db, _put(table, "y"), down)
    assert all(isinstance(o, Overloaded) for o in outcomes)
    assert _rows(db, table) == {}


@pytest.mark.parametrize(
    "statement_after", [False, True], ids=["found-by-the-commit", "found-by-a-jobs-statement"]
)
def test_a_connection_lost_before_the_commit_fails_the_batch_as_overloaded_and_writes_nothing(
    pg: tuple[PostgresDatabase, str], statement_after: bool
) -> None:
    """The server ends the batch's session after its jobs ran and before its message with the
    COMMIT: that message fails at once (no hang), every write of the batch is a 529 and none
    is stored, and the next batch runs on a new connection. Or a job's own statement finds it
    gone first, through SQLAlchemy, which then invalidates the connection the lane holds: the
    same."""
    db, table = pg
    # Autocommit: inside one transaction pg_stat_activity keeps the snapshot its first read took,
    # and the wait below would see the ended session forever (a flaky 10 s).
    admin = psycopg.connect(
        db.url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    )

    def ends_its_session(conn: Connection) -> str:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        if statement_after:
            conn.execute(text("SELECT 1"))
        return "gone"

    try:
        started = time.monotonic()
        jobs = [_deferred_put(table, "lost"), ends_its_session]
        outcomes = _together(db, *jobs)
        assert time.monotonic() - started < 10
        assert all(isinstance(o, Overloaded) for o in outcomes), outcomes
        assert _rows(db, table) == {}
        assert _together(db, _deferred_put(table, "after")) == ["after"]
        assert set(_rows(db, table)) == {"after"}
    finally:
        admin.close()


def _backends(admin: psycopg.Connection[Any], name: str) -> int:
    sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
    row = admin.execute(sql, (name,)).fetchone()
    assert row is not None
    return int(row[0])


def _until_no_backend(admin: psycopg.Connection[Any], name: str) -> None:
    deadline = time.monotonic() + 10
    while _backends(admin, name):
        assert time.monotonic() < deadline, _backends(admin, name)
        time.sleep(0.01)


def test_a_loop_that_ends_without_stop_leaves_no_connection_open(postgres_url: str) -> None:
    """The write batches' connections belong to the loop that opened them. One that ends
    without ``stop`` (a script's ``asyncio.run``) leaves them behind; closing the database
    closes them, with no loop to wait on, and a write on a new loop opens its own."""
    name = f"uprof_gc_{uuid.uuid4().hex[:8]}"
    db = PostgresDatabase(f"{postgres_url}?application_name={name}")
    admin = psycopg.connect(postgres_url.replace("postgresql+psycopg://", "postgresql://"))
    admin.autocommit = True

    async def one_write() -> Any:
        return await db.write(lambda c: c.execute(text("SELECT 1")).scalar_one())

    try:
        assert asyncio.run(one_write()) == 1
        assert _backends(admin, name) == 1
        assert asyncio.run(one_write()) == 1  # the first loop's engine is dropped, closed
        deadline = time.monotonic() + 10
        while _backends(admin, name) != 1:
            assert time.monotonic() < deadline, _backends(admin, name)
            time.sleep(0.01)
        db.close()
        _until_no_backend(admin, name)
    finally:
        db.close()
        admin.close()


@pytest.mark.parametrize("batch_running", [False, True], ids=["idle", "batch-running"])
def test_stop_closes_the_connections_the_lanes_hold(postgres_url: str, batch_running: bool) -> None:
    """A lane holds its connection between batches; ``stop`` closes it, at once if the lane is
    idle, or as soon as the batch running on it has committed."""
    name = f"uprof_gc_{uuid.uuid4().hex[:8]}"
    db = PostgresDatabase(f"{postgres_url}?application_name={name}")
    admin = psycopg.connect(
        postgres_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    )

    def slow(conn: Connection) -> int:
        return int(conn.execute(text("SELECT 1 FROM pg_sleep(0.3)")).scalar_one())

    async def main() -> None:
        await asyncio.gather(*(db.write(lambda c: 1) for _ in range(8)))
        assert _backends(admin, name) >= 1
        if batch_running:
            running = asyncio.ensure_future(db.write(slow))
            await asyncio.sleep(0.1)  # its batch waits for the server
            await db.stop()
            assert await running == 1  # it committed on the connection it had
        else:
            await db.stop()

    try:
        asyncio.run(main())
        _until_no_backend(admin, name)
    finally:
        db.close()
        admin.close()


def test_a_lane_keeps_its_connection_from_one_batch_to_the_next(
    pg: tuple[PostgresDatabase, str], profiles: list[str]
) -> None:
    """No checkout a batch (the pool's events, its reset on return): each lane checks out one
    connection and its later batches run on it."""
    db, _table = pg
    checkouts: list[Any] = []

    def counted(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        checkouts.append(dbapi_conn)

    p0 = profiles[0]
    event.listen(Pool, "checkout", counted)
    try:
        for i in range(5):
            _keyed(db, (p0, _merge(ORG, p0, f"k{i}", "v")))
            _together(db, _create(f"uprof_gc_keep_{uuid.uuid4().hex[:8]}"))
    finally:
        event.remove(Pool, "checkout", counted)
    assert 1 <= len(checkouts) <= 2, "one checkout a lane, not one a batch"
    assert len(set(map(id, checkouts))) == len(checkouts)


def test_a_statement_a_job_runs_through_sqlalchemy_leaves_no_transaction_to_the_next_batch(
    pg: tuple[PostgresDatabase, str],
) -> None:
    """A job's ``conn.execute`` begins SQLAlchemy's transaction on the lane's connection; the
    batch ends it, so the next batch (and a replay's SAVEPOINTs) start on a clean one."""
    db, table = pg
    assert _together(db, _put(table, "a")) == ["a"]  # through conn.execute
    assert _together(db, lambda conn: conn.in_transaction()) == [False]
    outcomes = _together(db, _put(table, "b"), _put_then_fail(table, "c"))  # a replay
    assert outcomes[0] == "b" and isinstance(outcomes[1], NotFound)
    assert set(_rows(db, table)) == {"a", "b"}


def test_writes_of_one_profile_share_a_lane_and_batches_never_wait_for_each_other(
    pg: tuple[PostgresDatabase, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes of the same key go to one lane: batches running at once never lock the same row,
    so they never deadlock each other (which PostgreSQL detects only after a second)."""
    db, table = pg
    keys = [f"p{i}" for i in range(6)]
    db.write_sync(
        lambda c: c.execute(
            text(f"INSERT INTO {table} (k, tx) VALUES " + ", ".join(f"('{k}', 0)" for k in keys))
        )
    )
    attempts: list[int] = []
    run_jobs = PostgresDatabase._run_jobs

    def counting(conn: Connection, fns: Any, keys: Any, literals: Any) -> Any:
        attempts.append(len(fns))
        return run_jobs(conn, fns, keys, literals)

    monkeypatch.setattr(PostgresDatabase, "_run_jobs", staticmethod(counting))
    seen: dict[str, set[int]] = {k: set() for k in keys}

    def bump(k: str):  # type: ignore[no-untyped-def]
        def work(conn: Connection) -> None:
            # Lock the row as an update of a profile does, then hold it while the batch runs.
            tx = conn.execute(text("SELECT txid_current()")).scalar_one()
            conn.execute(text(f"SELECT 1 FROM {table} WHERE k = :k FOR UPDATE"), {"k": k})
            conn.execute(text(f"UPDATE {table} SET tx = tx + 1 WHERE k = :k"), {"k": k})
            seen[k].add(tx)

        return work

    async def main() -> None:
        try:
            for _ in range(5):
                order = [keys[(i * 7) % len(keys)] for i in range(60)]
                await asyncio.gather(*(db.write(bump(k), key=k) for k in order))
        finally:
            await db.stop()

    asyncio.run(main())
    counts: dict[str, int] = db.read_sync(
        lambda c: dict(c.execute(text(f"SELECT k, tx FROM {table}")).all())
    )
    assert counts == {k: 50 for k in keys}
    assert sum(attempts) == 300, "no batch ran twice (no deadlock, no failure)"
    # one round's writes of a key share one batch; several lanes ran at once
    assert all(len(txs) == 5 for txs in seen.values()), seen
    assert len(set().union(*seen.values())) > 5


# --- the profiles a batch names, locked up front ------------------------------------------------

ORG, OTHER_ORG = "org_gc_locked", "org_gc_other"


@pytest.fixture
def profiles(pg: tuple[PostgresDatabase, str]) -> list[str]:
    return _seed_profiles(pg[0], "uprof_gc", 6)


def _seed_profiles(db: PostgresDatabase, prefix: str, n: int) -> list[str]:
    """``n`` new profiles of ORG (both organizations exist), their ids."""
    ids = [f"{prefix}_{uuid.uuid4().hex[:12]}_{i}" for i in range(n)]

    def seed(conn: Connection) -> None:
        for org in (ORG, OTHER_ORG):
            conn.execute(
                text(
                    "INSERT INTO organizations (id, name, created_at) VALUES (:i, :i, 1) "
                    "ON CONFLICT DO NOTHING"
                ),
                {"i": org},
            )
        profile_store.insert_many(
            conn,
            [
                Profile(id=pid, org_id=ORG, created_at=from_us(1), updated_at=from_us(1))
                for pid in ids
            ],
        )

    db.write_sync(seed)
    return ids


def _merge(org: str, pid: str, key: str, value: str):  # type: ignore[no-untyped-def]
    """What an update does: read the profile locked, merge one metadata key, save it."""

    def work(conn: Connection) -> dict[str, str]:
        current = profile_store.get_profile(conn, org, pid, lock=True)
        if current is None:
            raise NotFound(pid)
        updated = msgspec.structs.replace(current, metadata={**current.metadata, key: value})
        profile_store.save_profile(conn, updated, previous=current)
        return updated.metadata

    return work


def _delete(org: str, pid: str):  # type: ignore[no-untyped-def]
    def work(conn: Connection) -> bool:
        if not profile_store.delete_profile(conn, org, pid):
            raise NotFound(pid)
        return True

    return work


def _create(pid: str, name: str | None = None):  # type: ignore[no-untyped-def]
    """What a create does: insert a new profile of ORG."""

    def work(conn: Connection) -> str:
        profile_store.insert_profile(
            conn,
            Profile(id=pid, org_id=ORG, created_at=from_us(2), updated_at=from_us(2), name=name),
        )
        return pid

    return work


def _keyed(db: PostgresDatabase, *jobs: tuple[str | None, Any]) -> list[Any]:
    async def main() -> list[Any]:
        return await asyncio.gather(
            *(db.write(job, key=key) for key, job in jobs), return_exceptions=True
        )

    return _LOOPS[id(db)].run(main())


def _stored(db: PostgresDatabase, pid: str) -> Profile | None:
    return db.read_sync(lambda c: profile_store.get_profile(c, ORG, pid))


def _statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement sent from now on: through psycopg's cursors (executemany: one entry with
    its row count) and in a batch's own messages (``postgres._simple``: one entry a statement)."""
    sent: list[str] = []
    execute, executemany = psycopg.Cursor.execute, psycopg.Cursor.executemany
    simple = postgres._simple

    def counting_execute(self: psycopg.Cursor[Any], query: Any, *a: Any, **kw: Any) -> Any:
        sent.append(str(query))
        return execute(self, query, *a, **kw)

    def counting_many(self: psycopg.Cursor[Any], query: Any, params_seq: Any, **kw: Any) -> Any:
        rows = list(params_seq)
        sent.append(f"{query} x{len(rows)}")
        return executemany(self, query, rows, **kw)

    def counting_simple(
        raw: psycopg.AsyncConnection[Any], sql: str, encoding: str
    ) -> list[pq.abc.PGresult]:
        sent.extend(sql.split(";\n"))
        return simple(raw, sql, encoding)

    monkeypatch.setattr(psycopg.Cursor, "execute", counting_execute)
    monkeypatch.setattr(psycopg.Cursor, "executemany", counting_many)
    monkeypatch.setattr(postgres, "_simple", counting_simple)
    return sent


def test_a_batch_locks_its_profiles_in_one_statement_and_writes_them_in_one_round_trip(
    pg: tuple[PostgresDatabase, str], profiles: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, _table = pg
    sent = _statements(monkeypatch)
    # Each profile twice (two keys, merged in order), so a row is read back after a change.
    jobs = [(pid, _merge(ORG, pid, key, f"{key}-{pid}")) for key in ("a", "b") for pid in profiles]
    outcomes = _keyed(db, *jobs)
    for pid in profiles:
        stored = _stored(db, pid)
        assert stored is not None and stored.metadata == {"a": f"a-{pid}", "b": f"b-{pid}"}
    assert outcomes[len(profiles)] == {"a": f"a-{profiles[0]}", "b": f"b-{profiles[0]}"}
    # Per lane that ran: one locking SELECT and one UPDATE for all of its rows, not two
    # statements a write (12 writes of 6 rows: 12 SELECT ... FOR UPDATE and 12 UPDATE before).
    selects = [s for s in sent if "FOR UPDATE" in s]
    updates = [s for s in sent if s.startswith("UPDATE")]
    assert len(selects) == len(updates) <= postgres._LANES, sent
    assert all("ANY" in s for s in selects), selects
    # a lane's rows in one statement over a VALUES list, their values bound into its text
    assert all("FROM (VALUES (" in u for u in updates), updates


def test_a_locked_profile_deleted_in_the_batch_is_gone_for_the_jobs_after_it(
    pg: tuple[PostgresDatabase, str], profiles: list[str]
) -> None:
    db, _table = pg
    p0, p1 = profiles[0], profiles[1]
    outcomes = _keyed(
        db,
        (p0, _merge(ORG, p0, "k", "before")),  # changed, then deleted: nothing to write back
        (p0, _delete(ORG, p0)),
        (p0, _merge(ORG, p0, "k", "after")),  # deleted earlier in the batch: not found
        (p1, _delete(ORG, p1)),
        (p1, _delete(ORG, p1)),  # not found the second time
    )
    assert outcomes[0] == {"k": "before"} and outcomes[1] is True and outcomes[3] is True
    assert isinstance(outcomes[2], NotFound) and isinstance(outcomes[4], NotFound)
    assert _stored(db, p0) is None and _stored(db, p1) is None
    assert _stored(db, profiles[2]) is not None


def test_a_locked_profile_is_not_another_organizations(
    pg: tuple[PostgresDatabase, str], profiles: list[str]
) -> None:
    db, _table = pg
    p0 = profiles[0]
    outcomes = _keyed(
        db,
        (p0, _merge(OTHER_ORG, p0, "k", "theirs")),  # another organization's id: not found
        (p0, _delete(OTHER_ORG, p0)),
        (p0, _merge(ORG, p0, "k", "ours")),
        ("uprof_gc_missing", _merge(ORG, "uprof_gc_missing", "k", "none")),
    )
    assert isinstance(outcomes[0], NotFound) and isinstance(outcomes[1], NotFound)
    assert outcomes[2] == {"k": "ours"} and isinstance(outcomes[3], NotFound)
    stored = _stored(db, p0)
    assert stored is not None and stored.metadata == {"k": "ours"}


def _rename(org: str, pid: str, name: str | None):  # type: ignore[no-untyped-def]
    """What an update of the name does (its sort key is a column of its own)."""

    def work(conn: Connection) -> str | None:
        current = profile_store.get_profile(conn, org, pid, lock=True)
        if current is None:
            raise NotFound(pid)
        profile_store.save_profile(
            conn, msgspec.structs.replace(current, name=name), previous=current
        )
        return name

    return work


_OPS = st.lists(
    st.tuples(
        st.integers(0, 2),  # which profile
        st.one_of(
            st.tuples(st.just("merge"), st.sampled_from("ab"), st.sampled_from(["1", "2", ""])),
            st.tuples(st.just("rename"), st.sampled_from(["Ada", "ada", "Bob", None])),
            st.tuples(st.just("delete")),
            # a new profile (a write without a key, sharing whichever lane is free)
            st.tuples(st.just("create"), st.sampled_from(["Cy", None])),
            # a profile that does not exist: its job fails, and the batch is replayed
            st.tuples(st.just("missing")),
        ),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=_OPS)
def test_any_mix_of_writes_in_one_batch_ends_as_if_run_one_by_one(
    pg: tuple[PostgresDatabase, str], ops: list[tuple[int, tuple[Any, ...]]]
) -> None:
    """Writes of one moment, several to the same profile (merges, renames that do and do not
    change the sort key, deletes), with new profiles and writes that fail among them, end with
    each profile as running them in order would leave it, and each write sees what the ones
    before it left."""
    db, _table = pg
    ids = _seed_profiles(db, "uprof_gc_mix", 3)
    # The model: each profile's name and metadata, or None once deleted.
    model: dict[str, Any] = {pid: {"name": None, "metadata": {}} for pid in ids}
    expected: list[Any] = []
    jobs: list[tuple[str | None, Any]] = []
    for which, op in ops:
        pid = ids[which]
        state = model[pid]
        if op[0] == "create":
            new = f"uprof_gc_mix_new_{uuid.uuid4().hex[:12]}"
            jobs.append((None, _create(new, op[1])))
            model[new] = {"name": op[1], "metadata": {}}
            expected.append(new)
        elif op[0] == "missing":
            absent = f"uprof_gc_mix_absent_{uuid.uuid4().hex[:8]}"
            jobs.append((absent, _merge(ORG, absent, "a", "1")))
            expected.append(NotFound)
        elif op[0] == "merge":
            _kind, key, value = op
            jobs.append((pid, _merge(ORG, pid, key, value)))
            if state is not None:
                state["metadata"] = {**state["metadata"], key: value}
            expected.append(NotFound if state is None else dict(state["metadata"]))
        elif op[0] == "rename":
            jobs.append((pid, _rename(ORG, pid, op[1])))
            if state is not None:
                state["name"] = op[1]
            expected.append(NotFound if state is None else op[1])
        else:
            jobs.append((pid, _delete(ORG, pid)))
            expected.append(NotFound if state is None else True)
            model[pid] = None
    outcomes = _keyed(db, *jobs)
    for got, want in zip(outcomes, expected, strict=True):
        if want is NotFound:
            assert isinstance(got, NotFound)
        else:
            assert got == want
    rows = db.read_sync(
        lambda c: {
            r[0]: r[1]
            for r in c.execute(
                text("SELECT id, name_key FROM user_profiles WHERE id = ANY(:ids)"),
                {"ids": list(model)},
            )
        }
    )
    for pid in model:
        stored = _stored(db, pid)
        if model[pid] is None:
            assert stored is None and pid not in rows
        else:
            assert stored is not None
            assert (stored.name, stored.metadata) == (model[pid]["name"], model[pid]["metadata"])
            assert rows[pid] == name_sort_key(model[pid]["name"])


# Any text the domain lets through (no NUL, no lone surrogate): quotes, backslashes, percent
# signs, newlines after semicolons (what joins a batch's statements), four-byte characters.
_STORABLE = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40
) | st.sampled_from(["'", "''", "\\", "\\'", "%s", "%(doc)s", "%%", ";\nCOMMIT", "$$", "😀"])


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(names=st.lists(_STORABLE | st.none(), min_size=1, max_size=4), value=_STORABLE)
def test_any_storable_text_is_written_by_a_batch_exactly_as_given(
    pg: tuple[PostgresDatabase, str], profiles: list[str], names: list[str | None], value: str
) -> None:
    """A batch binds its values into the text of its statements (psycopg's quoting): whatever
    the values, each new and each updated profile reads back as written, and nothing else
    changes."""
    db, _table = pg
    fresh = [f"uprof_gc_text_{uuid.uuid4().hex[:10]}_{i}" for i in range(len(names))]
    assert (
        _together(db, *(_create(pid, name) for pid, name in zip(fresh, names, strict=True)))
        == fresh
    )
    assert _keyed(db, *((pid, _merge(ORG, pid, value, value)) for pid in fresh)) == [
        {value: value}
    ] * len(fresh)
    for pid, name in zip(fresh, names, strict=True):
        stored = _stored(db, pid)
        assert stored is not None and (stored.name, stored.metadata) == (name, {value: value})
    rows: dict[str, str | None] = db.read_sync(
        lambda c: dict(
            c.execute(
                text("SELECT id, name_key FROM user_profiles WHERE id = ANY(:ids)"),
                {"ids": fresh},
            ).all()
        )
    )
    assert rows == {pid: name_sort_key(name) for pid, name in zip(fresh, names, strict=True)}
    assert all(_stored(db, pid).metadata == {} for pid in profiles)  # type: ignore[union-attr]


def test_a_batch_inserts_its_new_profiles_in_one_statement_and_a_duplicate_fails_alone(
    pg: tuple[PostgresDatabase, str], profiles: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, _table = pg
    sent = _statements(monkeypatch)
    create = _create
    fresh = [f"uprof_gc_new_{uuid.uuid4().hex[:10]}_{i}" for i in range(5)]
    # All nameless: a column whose values are all NULL (a VALUES column of text) still inserts.
    assert _together(db, *(create(pid, None) for pid in fresh)) == fresh
    inserts = [s for s in sent if s.startswith("INSERT")]
    assert len(inserts) == 1 and inserts[0].count("'uprof_gc_new_") == 5, inserts
    for pid in fresh:
        stored = _stored(db, pid)
        assert stored is not None and stored.name is None

    again = [f"uprof_gc_new_{uuid.uuid4().hex[:10]}_{i}" for i in range(3)]
    outcomes = _together(
        db,
        create(again[0], "a"),
        create(profiles[0], "taken"),  # an existing id: the batch's one INSERT fails
        create(again[1], None),
        create(again[2], "c"),
    )
    assert outcomes[0] == again[0] and outcomes[2] == again[1] and outcomes[3] == again[2]
    assert isinstance(outcomes[1], Exception) and "duplicate key" in str(outcomes[1])
    assert all(_stored(db, pid) is not None for pid in again)
    taken = _stored(db, profiles[0])
    assert taken is not None and taken.name is None  # the profile that was there is unchanged


# --- round trips ------------------------------------------------------------------------------


class _Wire:
    """What the write pool's connections send from now on, as libpq traces it (one line a
    protocol message): a simple ``Query`` or a ``Sync`` ends a round trip."""

    def __init__(self, path: Any) -> None:
        self._file = open(path, "w+")  # noqa: SIM115 (closed by the fixture)
        self._traced: list[Any] = []
        # Every pool's: the write batches' engine is made by the database on its loop.
        event.listen(Pool, "checkout", self._trace)

    def _trace(self, dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        dbapi_conn = getattr(dbapi_conn, "driver_connection", dbapi_conn)  # psycopg's own
        if dbapi_conn.pgconn.status == pq.ConnStatus.OK and dbapi_conn not in self._traced:
            dbapi_conn.pgconn.trace(self._file.fileno())
            dbapi_conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
            dbapi_conn.prepare_threshold = None  # every statement's text in the trace
            self._traced.append(dbapi_conn)

    def sent(self) -> list[tuple[str, str]]:
        """Each message the client sent since the last call: (kind, what it carries)."""
        self._file.flush()
        self._file.seek(0)
        # A message is a line; a query's newlines continue its line (they are traced as is).
        messages = re.split(r"\n(?=[FB]\t)", self._file.read().rstrip("\n"))
        self._file.seek(0)
        self._file.truncate()
        fields = [m.split("\t", 3) for m in messages]
        return [(f[2], f[3] if len(f) > 3 else "") for f in fields if f and f[0] == "F"]

    def round_trips(self) -> list[list[str]]:
        """The first word of each statement of each round trip since the last call (``;``: a
        ping); a simple ``Query`` of several statements (a batch's own, ``;`` and a newline
        between them) gives each of its statements."""
        trips: list[list[str]] = [[]]
        for kind, what in self.sent():
            if kind == "Query":  # Query "text"
                text = what[what.index('"') + 1 : what.rindex('"')]
                statements = text.split(";\n")
                trips[-1] += [s.split()[0] if s.strip() else ";" for s in statements]
            if kind == "Parse":  # Parse "name" "text"
                text = what.split('"')[3]
                trips[-1].append(text.split()[0] if text.strip() else ";")
            if kind in ("Query", "Sync"):
                trips.append([])
        return [trip for trip in trips if trip]

    def close(self) -> None:
        event.remove(Pool, "checkout", self._trace)
        for dbapi_conn in self._traced:
            if dbapi_conn.pgconn.status == pq.ConnStatus.OK:
                dbapi_conn.pgconn.untrace()
        self._file.close()


@pytest.fixture
def wire(pg: tuple[PostgresDatabase, str], tmp_path: Any) -> Iterator[_Wire]:
    wire = _Wire(tmp_path / "libpq.trace")
    yield wire
    wire.close()


def test_a_batch_of_new_profiles_is_one_round_trip(
    pg: tuple[PostgresDatabase, str], profiles: list[str], wire: _Wire
) -> None:
    db, _table = pg
    fresh = [f"uprof_gc_rt_{uuid.uuid4().hex[:10]}_{i}" for i in range(5)]
    _together(db, _create(f"uprof_gc_rt_warm_{uuid.uuid4().hex[:8]}"))  # a pooled connection
    wire.round_trips()
    assert _together(db, *(_create(pid) for pid in fresh)) == fresh
    # BEGIN, the batch's one INSERT and COMMIT in one message; no ping of a connection just used
    assert wire.round_trips() == [["BEGIN", "INSERT", "COMMIT"]]
    assert all(_stored(db, pid) is not None for pid in fresh)


def test_a_batch_of_updates_is_two_round_trips(
    pg: tuple[PostgresDatabase, str], profiles: list[str], wire: _Wire
) -> None:
    db, _table = pg
    p0 = profiles[0]
    _keyed(db, (p0, _merge(ORG, p0, "warm", "up")))
    wire.round_trips()
    outcomes = _keyed(db, *((p0, _merge(ORG, p0, k, k)) for k in "abcd"))
    assert outcomes[-1] == {"warm": "up", "a": "a", "b": "b", "c": "c", "d": "d"}
    # BEGIN with the locking read (one message), then the UPDATE and COMMIT (another)
    assert wire.round_trips() == [["BEGIN", "SELECT"], ["UPDATE", "COMMIT"]]
    stored = _stored(db, p0)
    assert stored is not None and stored.metadata == outcomes[-1]


def test_a_failing_batch_leaves_its_connection_as_psycopg_runs_it(
    pg: tuple[PostgresDatabase, str], profiles: list[str]
) -> None:
    """After a batch that opened its own transaction fails (a job's error, then a duplicate at
    the flush), its connection is idle, out of autocommit, and serves the next batch."""
    db, _table = pg
    p0 = profiles[0]
    outcomes = _keyed(
        db,
        (p0, _merge(ORG, p0, "k", "v")),
        (p0, _merge(ORG, "uprof_gc_absent", "k", "v")),  # NotFound: the batch is replayed
    )
    assert outcomes[0] == {"k": "v"} and isinstance(outcomes[1], NotFound)
    outcomes = _together(db, _create(profiles[1]), _create(f"uprof_gc_ok_{uuid.uuid4().hex[:8]}"))
    assert isinstance(outcomes[0], psycopg.errors.UniqueViolation) and isinstance(outcomes[1], str)

    def state(conn: Connection) -> tuple[bool, Any, Any]:
        raw: Any = conn.connection.driver_connection
        idle = raw.pgconn.transaction_status
        conn.execute(text("SELECT 1"))
        return raw.autocommit, idle, raw.pgconn.transaction_status

    # idle when taken; the first statement opens psycopg's transaction (not autocommit)
    idle, intrans = pq.TransactionStatus.IDLE, pq.TransactionStatus.INTRANS
    assert db.write_sync(state) == (False, idle, intrans)
    assert _together(db, _create(f"uprof_gc_ok_{uuid.uuid4().hex[:8]}"))[0].startswith("uprof_gc")


def test_a_connection_idle_past_the_window_is_pinged_first(
    pg: tuple[PostgresDatabase, str],
    profiles: list[str],
    wire: _Wire,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db, _table = pg
    _together(db, _create(f"uprof_gc_idle_{uuid.uuid4().hex[:8]}"))
    wire.round_trips()
    later = postgres._now() + postgres._TRUSTED_FOR + 1
    monkeypatch.setattr(postgres, "_now", lambda: later)
    _together(db, _create(f"uprof_gc_idle_{uuid.uuid4().hex[:8]}"))
    assert wire.round_trips() == [[";"], ["BEGIN", "INSERT", "COMMIT"]]


def test_a_connection_the_server_closed_is_replaced_before_use(
    pg: tuple[PostgresDatabase, str], profiles: list[str], wire: _Wire
) -> None:
    """A pooled connection used a moment ago is not pinged, but one the server has closed since
    (it sent a FATAL error, then the end of the stream) is found without a round trip and
    replaced: the write succeeds."""
    db, _table = pg
    p0 = profiles[0]
    _keyed(db, (p0, _merge(ORG, p0, "before", "1")))
    admin = PostgresDatabase(db.url)
    others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    try:
        killed = admin.write_sync(
            lambda c: [
                r[0] for r in c.execute(text(f"SELECT pid, pg_terminate_backend(pid) {others}"))
            ]
        )
        assert killed, "the batch's connection was pooled"
        deadline = time.monotonic() + 10
        while admin.read_sync(
            lambda c: c.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:p)"), {"p": killed}
            ).scalar_one()
        ):  # until the backends are gone
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        admin.close()
    wire.round_trips()
    assert _keyed(db, (p0, _merge(ORG, p0, "after", "2"))) == [{"before": "1", "after": "2"}]
