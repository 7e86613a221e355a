"""SQLite's unit-of-work machinery: group commit outcomes and the per-iteration read snapshot."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import platform
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection

from uprof.config import DEFAULT_SQLITE_MMAP_MIB
from uprof.domain.errors import NotFound, Overloaded
from uprof.store.sqlite import SqliteDatabase

# The library the server uses: another copy of SQLite in this process would not see its locks.
from uprof.store.sqlite_driver import dbapi as sqlite3


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteDatabase]:
    database = SqliteDatabase(f"sqlite:///{tmp_path / 'db.sqlite'}")
    database.write_sync(lambda c: c.exec_driver_sql("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)"))
    yield database
    database.close()


def _put(k: str, v: str = "x"):  # type: ignore[no-untyped-def]
    def work(conn: Connection) -> str:
        conn.connection.driver_connection.execute("INSERT INTO t VALUES (?, ?)", (k, v))  # type: ignore[union-attr]
        return k

    return work


def _put_then_fail(k: str):  # type: ignore[no-untyped-def]
    def work(conn: Connection) -> str:
        _put(k)(conn)
        raise NotFound(f"{k} wrote a row, then failed")

    return work


def _fail_first(conn: Connection) -> str:
    raise NotFound("failed before writing")


def _keys(db: SqliteDatabase) -> set[str]:
    return {r[0] for r in db.read_sync(lambda c: c.exec_driver_sql("SELECT k FROM t").all())}


async def _together(db: SqliteDatabase, *jobs):  # type: ignore[no-untyped-def]
    # Queued in the same loop iteration, so they share one batch (one transaction).
    return await asyncio.gather(*(db.write(j) for j in jobs), return_exceptions=True)


def test_jobs_of_one_batch_fail_alone(db: SqliteDatabase) -> None:
    outcomes = asyncio.run(
        _together(db, _put("a"), _fail_first, _put("b"), _put_then_fail("c"), _put("d"))
    )
    assert outcomes[0] == "a" and outcomes[2] == "b" and outcomes[4] == "d"
    assert isinstance(outcomes[1], NotFound) and isinstance(outcomes[3], NotFound)
    # c's row was undone with its failure; everyone else's was committed
    assert _keys(db) == {"a", "b", "d"}


def test_a_statement_failing_part_way_fails_only_its_job(db: SqliteDatabase) -> None:
    db.write_sync(_put("taken"))
    outcomes = asyncio.run(_together(db, _put("e"), _put("taken"), _put("f")))
    assert outcomes[0] == "e" and outcomes[2] == "f"
    assert isinstance(outcomes[1], Exception)
    assert _keys(db) == {"taken", "e", "f"}


def test_reads_see_every_acknowledged_write(db: SqliteDatabase) -> None:
    async def scenario() -> list[set[str]]:
        seen = []
        read = lambda c: {r[0] for r in c.exec_driver_sql("SELECT k FROM t").all()}  # noqa: E731
        seen.append(await db.read(read))  # begins this iteration's snapshot
        await db.write(_put("g"))
        seen.append(await db.read(read))
        await _together(db, _put("h"), _put("i"))
        seen.append(await db.read(read))
        return seen

    assert asyncio.run(scenario()) == [set(), {"g"}, {"g", "h", "i"}]


def test_a_read_snapshot_ends_with_its_loop_iteration(db: SqliteDatabase) -> None:
    async def scenario() -> tuple[bool, bool]:
        await db.read(lambda c: c.exec_driver_sql("SELECT count(*) FROM t").scalar())
        raw = db._conn().connection.driver_connection
        during = raw.in_transaction  # type: ignore[union-attr]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return during, raw.in_transaction  # type: ignore[union-attr]

    assert asyncio.run(scenario()) == (True, False)


def test_a_write_from_another_connection_is_seen_in_the_next_iteration(
    db: SqliteDatabase, tmp_path: Path
) -> None:
    other = SqliteDatabase(f"sqlite:///{tmp_path / 'db.sqlite'}")

    async def scenario() -> tuple[int, int]:
        count = lambda c: c.exec_driver_sql("SELECT count(*) FROM t").scalar()  # noqa: E731
        before = await db.read(count)
        other.write_sync(_put("elsewhere"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return before, await db.read(count)

    try:
        assert asyncio.run(scenario()) == (0, 1)
    finally:
        other.close()


def _hold_write_lock(path: Path) -> Any:
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_a_write_waits_for_another_process_lock(db: SqliteDatabase, tmp_path: Path) -> None:
    holder = _hold_write_lock(tmp_path / "db.sqlite")
    threading.Timer(0.3, lambda: holder.execute("COMMIT")).start()
    started = time.monotonic()
    assert asyncio.run(_together(db, _put("j"), _put("k"))) == ["j", "k"]
    assert time.monotonic() - started >= 0.25
    assert _keys(db) == {"j", "k"}
    holder.close()


def test_a_write_held_off_past_the_busy_timeout_is_overloaded(tmp_path: Path) -> None:
    database = SqliteDatabase(f"sqlite:///{tmp_path / 'db.sqlite'}", busy_timeout_ms=200)
    database.write_sync(lambda c: c.exec_driver_sql("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)"))
    holder = _hold_write_lock(tmp_path / "db.sqlite")
    try:
        [outcome] = asyncio.run(_together(database, _put("l")))
        assert isinstance(outcome, Overloaded)
        holder.execute("ROLLBACK")
        assert _keys(database) == set()
    finally:
        holder.close()
        database.close()


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
def test_acknowledged_writes_are_in_the_file(tmp_path: Path, synchronous: str) -> None:
    database = SqliteDatabase(f"sqlite:///{tmp_path / 'db.sqlite'}", synchronous=synchronous)
    database.write_sync(lambda c: c.exec_driver_sql("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)"))
    asyncio.run(_together(database, *(_put(f"m{i}") for i in range(50))))
    # another connection, as another process would after a crash, sees them all
    other = sqlite3.connect(tmp_path / "db.sqlite")
    assert other.execute("SELECT count(*) FROM t").fetchone()[0] == 50
    other.close()
    database.close()


def _compile_options() -> set[str]:
    """The options the SQLite library in use was built with."""
    conn = sqlite3.connect(":memory:")
    try:
        return {row[0] for row in conn.execute("PRAGMA compile_options")}
    finally:
        conn.close()


def _max_mmap_bytes() -> int:
    """The largest mapping the SQLite library in use allows (SQLITE_MAX_MMAP_SIZE; a build
    that keeps SQLite's default, 0x7fff0000, does not list it among its options)."""
    options = _compile_options()
    cap = next((o.split("=", 1)[1] for o in options if o.startswith("MAX_MMAP_SIZE=")), None)
    return int(cap, 0) if cap is not None else 0x7FFF0000


@pytest.mark.parametrize("mib", [0, 16, DEFAULT_SQLITE_MMAP_MIB])
def test_every_connection_maps_as_configured(tmp_path: Path, mib: int) -> None:
    database = SqliteDatabase(f"sqlite:///{tmp_path / 'm.sqlite'}", mmap_mib=mib)
    expected = min(mib << 20, _max_mmap_bytes())
    try:
        database.write_sync(lambda c: c.exec_driver_sql("CREATE TABLE t (k TEXT)"))
        pragma = "PRAGMA mmap_size"
        assert database.read_sync(lambda c: c.exec_driver_sql(pragma).scalar()) == expected
        assert database.write_sync(lambda c: c.exec_driver_sql(pragma).scalar()) == expected
    finally:
        database.close()


@pytest.mark.skipif(
    not (
        sys.platform == "linux"
        and platform.machine() == "x86_64"
        and platform.python_implementation() == "CPython"
    ),
    reason="the sqlite extra installs pysqlite3-binary on CPython, Linux x86-64 only",
)
def test_linux_x86_64_runs_the_bundled_sqlite_that_maps_a_whole_store() -> None:
    """decisions O14: the server's SQLite is pysqlite3-binary's, not the distribution's, so the
    default mapping covers a store past 2 GiB and statements have their lookaside memory."""
    assert sqlite3.__name__ == "pysqlite3.dbapi2"
    assert tuple(int(p) for p in sqlite3.sqlite_version.split(".")) >= (3, 45)
    assert _max_mmap_bytes() >= DEFAULT_SQLITE_MMAP_MIB << 20 > 2 << 30
    assert "OMIT_LOOKASIDE" not in _compile_options()


def test_a_deleted_row_leaves_no_bytes_in_the_files(tmp_path: Path) -> None:
    """secure_delete (O14): what a delete removed is overwritten, in the WAL and, after a
    checkpoint, in the database file, not left in free space until reused."""
    path = tmp_path / "d.sqlite"
    database = SqliteDatabase(f"sqlite:///{path}")
    marker = "gone-" + "x" * 40
    try:
        database.write_sync(lambda c: c.exec_driver_sql("CREATE TABLE t (k TEXT, v TEXT)"))
        database.write_sync(
            lambda c: c.exec_driver_sql("INSERT INTO t VALUES ('a', ?), ('b', 'kept')", (marker,))
        )
        database.read_sync(lambda c: c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").all())
        assert marker.encode() in path.read_bytes()
        database.write_sync(lambda c: c.exec_driver_sql("DELETE FROM t WHERE k = 'a'"))
        database.read_sync(lambda c: c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").all())
    finally:
        database.close()
    assert b"kept" in path.read_bytes()
    for file in tmp_path.iterdir():
        assert marker.encode() not in file.read_bytes(), file.name


@pytest.mark.parametrize(
    ("variable", "refused", "taken", "attribute"),
    [
        ("UPROF_SQLITE_MMAP_MIB", ("-1", "lots", "2000000"), 64, "sqlite_mmap_mib"),
        ("UPROF_SLOW_WRITE_MS", ("-1", "lots", "3600001"), 0, "slow_write_ms"),
    ],
)
def test_an_integer_setting_is_checked(
    variable: str, refused: tuple[str, ...], taken: int, attribute: str
) -> None:
    from uprof.config import settings_from_env

    for bad in refused:
        with pytest.MonkeyPatch.context() as m:
            m.setenv(variable, bad)
            with pytest.raises(ValueError, match=variable):
                settings_from_env()
    with pytest.MonkeyPatch.context() as m:
        m.setenv(variable, str(taken))
        assert getattr(settings_from_env(), attribute) == taken


def test_a_store_opened_from_settings_takes_every_store_setting(tmp_path: Path) -> None:
    """The server and the CLI's commands open the store the same way (``open_store``)."""
    from uprof.config import Settings
    from uprof.store.database import open_store

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 's.sqlite'}",
        sqlite_synchronous="NORMAL",
        sqlite_mmap_mib=8,
        sqlite_wal_limit_mib=3,
    )
    database = open_store(settings)
    try:

        def pragma(name: str) -> int:
            rows = database.read_sync(lambda c: c.exec_driver_sql(f"PRAGMA {name}").all())
            return int(rows[0][0])

        assert pragma("synchronous") == 1  # NORMAL
        assert pragma("mmap_size") == 8 * 2**20
        assert pragma("journal_size_limit") == 3 * 2**20
        assert isinstance(database, SqliteDatabase)
        assert database._slow.threshold == 0.1  # the default, 100 ms
    finally:
        database.close()
    database = open_store(
        Settings(database_url=f"sqlite:///{tmp_path / 's.sqlite'}", slow_write_ms=250)
    )
    try:
        assert isinstance(database, SqliteDatabase)
        assert database._slow.threshold == 0.25
    finally:
        database.close()


def test_the_wal_limit_setting_is_checked() -> None:
    from uprof.config import settings_from_env

    for bad in ("0", "-1", "lots", "2000000"):
        with pytest.MonkeyPatch.context() as m:
            m.setenv("UPROF_SQLITE_WAL_LIMIT_MIB", bad)
            with pytest.raises(ValueError, match="UPROF_SQLITE_WAL_LIMIT_MIB") as raised:
                settings_from_env()
            if bad in ("0", "2000000"):
                assert "from 1 to 1048576" in str(raised.value)
    with pytest.MonkeyPatch.context() as m:
        m.setenv("UPROF_SQLITE_WAL_LIMIT_MIB", "16")
        assert settings_from_env().sqlite_wal_limit_mib == 16


def test_slow_write_batches_are_logged_past_100_ms_unless_set() -> None:
    from uprof.config import settings_from_env

    with pytest.MonkeyPatch.context() as m:
        m.delenv("UPROF_SLOW_WRITE_MS", raising=False)
        assert settings_from_env().slow_write_ms == 100


def test_a_batch_whose_commit_is_slow_is_logged_with_where_its_time_went(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write waits for its batch's COMMIT, and a COMMIT that syncs waits for the disk: the
    operator is told how long, for how many writes, and which part took it."""
    database = SqliteDatabase(f"sqlite:///{tmp_path / 's.sqlite'}", slow_write=0.15)
    try:
        database.write_sync(lambda c: c.exec_driver_sql("CREATE TABLE t (k TEXT, v TEXT)"))
        with caplog.at_level(logging.WARNING, logger="uprof"):
            asyncio.run(_together(database, *(_put(f"a{i}") for i in range(3))))
        assert not [r for r in caplog.records if "slow write" in r.getMessage()]
        commit = database._commit

        def stalled_commit(conn: Connection) -> None:
            time.sleep(0.3)  # as a disk whose sync stalls
            commit(conn)

        monkeypatch.setattr(database, "_commit", stalled_commit)
        with caplog.at_level(logging.WARNING, logger="uprof"):
            asyncio.run(_together(database, *(_put(f"b{i}") for i in range(3))))
        lines = [r.getMessage() for r in caplog.records if "slow write" in r.getMessage()]
        assert len(lines) == 1, lines
        found = re.fullmatch(
            r"slow write batch: ([\d.]+) ms, 3 writes \(the write lock ([\d.]+) ms, "
            r"the jobs ([\d.]+) ms, COMMIT ([\d.]+) ms\)",
            lines[0],
        )
        assert found, lines[0]
        total, lock, jobs, commit_ms = map(float, found.groups())
        assert commit_ms >= 300 and total >= commit_ms and lock + jobs < 100
    finally:
        database.close()


def test_the_wal_starts_over_under_steady_writes(tmp_path: Path) -> None:
    """Batches committed back to back, for longer than many checkpoint passes: the WAL file
    starts over once past its limit. With passes alone a writer never found every frame
    copied, so the file grew by every page written (5.3 GB in a 7-minute soak)."""
    path = tmp_path / "w.sqlite"
    limit_mib = 1
    database = SqliteDatabase(f"sqlite:///{path}", synchronous="NORMAL", wal_limit_mib=limit_mib)
    database.write_sync(lambda c: c.exec_driver_sql("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)"))
    wal = Path(f"{path}-wal")
    blob = "x" * 3000  # about a page a row: the WAL grows by ~100 KiB a batch of 32
    sizes: list[int] = []

    async def steady(seconds: float) -> int:
        n = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            done = await _together(database, *(_put(f"k{n + i}", blob) for i in range(32)))
            assert done == [f"k{n + i}" for i in range(32)]
            n += 32
            sizes.append(wal.stat().st_size)
        return n

    try:
        written = asyncio.run(steady(3.0))
    finally:
        database.close()
    written_bytes = written * len(blob)
    assert written_bytes > 20 * limit_mib * 2**20, "too few writes to tell"
    # Starting over, the next writer cuts the file back to the limit (journal_size_limit): the
    # file shrinks. Without that it only grew, and held every page written, 1.4 to 1.7 times
    # the rows. How far past the limit it gets before a catch-up has copied it back depends on
    # how fast this machine is at the moment (0.3 to 0.7 times the rows were seen), so the size
    # is held to the rows' own, which only a WAL that never starts over exceeds.
    starts_over = sum(1 for a, b in itertools.pairwise(sizes) if b < a)
    assert starts_over >= 1, sizes[-5:]
    assert max(sizes) < written_bytes, (max(sizes), written_bytes)


def test_a_wal_past_its_limit_asks_for_the_catch_up_before_any_pass(tmp_path: Path) -> None:
    """The checkpoint thread is niced: with other work on every core it gets almost no CPU, and
    a pass over a long WAL could take minutes before it saw the WAL's length (357 MB after 3 s
    of steady writes beside two busy processes). The file's size alone asks for the catch-up,
    which runs at normal priority. Here the pass sees an empty WAL; only the size can ask."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    from uprof.store.sqlite import _Checkpointer

    engine = create_engine(
        f"sqlite:///{tmp_path / 'c.sqlite'}",
        module=sqlite3,
        poolclass=StaticPool,
        connect_args={"check_same_thread": False},
    )
    wal = tmp_path / "c.sqlite-wal"
    checkpointer = _Checkpointer(engine, limit_bytes=4096, interval=0.02, wal=wal)
    checkpointer.start()
    try:
        wal.write_bytes(b"\0" * 4096)  # at the limit: the size a WAL is cut back to
        time.sleep(0.3)
        assert not checkpointer.due
        wal.write_bytes(b"\0" * 4097)
        deadline = time.monotonic() + 5
        while not checkpointer.due and time.monotonic() < deadline:
            time.sleep(0.01)
        assert checkpointer.due
    finally:
        checkpointer.stop()


def test_the_catch_up_syncs_the_file_before_it_holds_writes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The passes leave the pages they copy unsynced in the file's page cache; the last step's
    own sync, under the batch lock, wrote all of them (92-300 ms at 1M profiles). Synced
    before the lock, the last step has one pass's pages to write."""
    from uprof.store import sqlite_driver

    path = tmp_path / "c.sqlite"
    database = SqliteDatabase(f"sqlite:///{path}", synchronous="FULL")
    events: list[str] = []
    try:
        database.write_sync(lambda c: c.exec_driver_sql("CREATE TABLE t (k TEXT PRIMARY KEY)"))
        asyncio.run(_together(database, *(_put(f"k{i}") for i in range(50))))
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            if os.path.samefile(f"/proc/self/fd/{fd}", path):
                events.append("fsync of the database file")
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)  # the module calls os.fsync
        lock = database._batch_lock

        class Watched:
            def acquire(self, *args: Any, **kwargs: Any) -> bool:
                events.append("batch lock")
                return lock.acquire(*args, **kwargs)

            def release(self) -> None:
                lock.release()

        monkeypatch.setattr(database, "_batch_lock", Watched())
        raw = sqlite_driver.dbapi.connect(str(path))
        try:
            database._copy_back(raw)
        finally:
            raw.close()
    finally:
        monkeypatch.undo()
        database.close()
    assert events == ["fsync of the database file", "batch lock"]


_TABLE = "CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)"
# SQLite's shared lock on a database file: the range past its pending and reserved bytes.
_SHARED_FIRST, _SHARED_SIZE = 0x40000000 + 2, 510


def _in_another_process(code: str) -> str:
    """Run ``code`` in a new Python process (whose ``sqlite3`` is the standard library's, not
    the store's library); what it printed."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX record locks")
def test_syncing_the_file_keeps_the_stores_lock_on_it(tmp_path: Path) -> None:
    """In WAL mode every connection holds a shared lock on the database file while it is
    open; SQLite takes the exclusive lock to tell that the last user is leaving. The catch-up
    syncs the file (``_sync_file``): through a descriptor opened and closed for it, that
    close dropped every lock the process held on the file."""
    path = tmp_path / "l.sqlite"
    database = SqliteDatabase(f"sqlite:///{path}", synchronous="FULL")
    probe = (
        "import fcntl, os\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR)\n"
        "try:\n"
        f"    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, {_SHARED_SIZE}, {_SHARED_FIRST})\n"
        "    print('taken')\n"
        "except OSError:\n"
        "    print('refused')\n"
    )
    try:
        database.write_sync(lambda c: c.exec_driver_sql(_TABLE))
        assert asyncio.run(_together(database, _put("k"))) == ["k"]
        assert _in_another_process(probe) == "refused"
        database._sync_file()
        database._sync_file()
        assert _in_another_process(probe) == "refused"
    finally:
        database.close()
    assert _in_another_process(probe) == "taken"  # closed, the store holds nothing


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX record locks")
def test_a_write_after_a_catch_up_survives_another_process_using_the_store(
    tmp_path: Path,
) -> None:
    """An operator's command or a backup opens the store beside the server and closes it.
    SQLite (3.40, the standard library's here) deletes the WAL on a close that can take the
    exclusive lock; after a catch-up had dropped the server's lock, it could, and the server
    went on writing into the deleted file: a write acknowledged after that was missing for
    every other process, and lost at a restart."""
    path = tmp_path / "o.sqlite"
    database = SqliteDatabase(f"sqlite:///{path}", synchronous="FULL")
    other = (
        "import sqlite3\n"
        f"c = sqlite3.connect({str(path)!r})\n"
        "print(','.join(sorted(r[0] for r in c.execute('SELECT k FROM t'))))\n"
        "c.close()\n"
    )
    try:
        database.write_sync(lambda c: c.exec_driver_sql(_TABLE))
        assert asyncio.run(_together(database, _put("before"))) == ["before"]
        database._catch_up()
        assert _in_another_process(other) == "before"
        assert Path(f"{path}-wal").exists()
        assert asyncio.run(_together(database, _put("after"))) == ["after"]
        assert _in_another_process(other) == "after,before"
    finally:
        database.close()


@pytest.mark.skipif(sys.platform != "linux", reason="threads have their own priority on Linux")
def test_checkpoints_run_at_the_lowest_priority_and_nothing_else_does(db: SqliteDatabase) -> None:
    """The checkpoint thread is niced: it must not preempt the event loop on its core."""
    ours = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert asyncio.run(_together(db, *(_put(f"n{i}") for i in range(50)))) == [
        f"n{i}" for i in range(50)
    ]
    (checkpointer,) = [t for t in threading.enumerate() if t.name == "uprof-sqlite-checkpoint"]
    assert checkpointer.native_id is not None
    deadline = time.monotonic() + 5  # the thread lowers its own priority as it starts
    while os.getpriority(os.PRIO_PROCESS, checkpointer.native_id) != 19:
        assert time.monotonic() < deadline, "the checkpoint thread was not niced"
        time.sleep(0.01)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == ours


def test_without_the_bundled_sqlite_the_standard_library_serves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where pysqlite3-binary is not installed (not Linux x86-64), Python's own sqlite3."""
    import sqlite3 as standard

    from uprof.store import sqlite_driver

    monkeypatch.setitem(sys.modules, "pysqlite3", None)
    monkeypatch.setitem(sys.modules, "pysqlite3.dbapi2", None)
    assert sqlite_driver._load() is standard


def test_a_bundled_sqlite_that_does_not_load_is_reported_and_passed_over(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import importlib
    import sqlite3 as standard

    from uprof.store import sqlite_driver

    def broken(name: str) -> Any:
        raise ImportError("libsqlite3 symbol not found")

    monkeypatch.setattr(importlib, "import_module", broken)
    with caplog.at_level("WARNING", logger="uprof.store"):
        assert sqlite_driver._load() is standard
    assert "does not load" in caplog.text and "symbol not found" in caplog.text


def test_a_last_step_that_a_reader_keeps_from_finishing_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The catch-up's FULL checkpoint waits (up to its budget, writes held back) for readers of
    an older snapshot. When it gives up, the WAL stays past its limit and the next batch starts
    another catch-up, a stall that repeats: the operator is told, not left with a p99."""
    from uprof.store import sqlite_driver

    path = tmp_path / "r.sqlite"
    database = SqliteDatabase(f"sqlite:///{path}", synchronous="FULL")
    reader = sqlite_driver.dbapi.connect(str(path), isolation_level=None)
    raw = sqlite_driver.dbapi.connect(str(path))
    try:
        database.write_sync(lambda c: c.exec_driver_sql("CREATE TABLE t (k TEXT, v TEXT)"))
        assert asyncio.run(_together(database, *(_put(f"a{i}") for i in range(20))))[-1] == "a19"
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM t").fetchone() == (20,)  # its snapshot
        asyncio.run(_together(database, *(_put(f"b{i}") for i in range(20))))
        with caplog.at_level(logging.WARNING, logger="uprof"):
            started = time.monotonic()
            database._copy_back(raw)
            waited = time.monotonic() - started
        assert waited >= 0.15  # the last step's budget was spent waiting for the reader
        warnings = [r.getMessage() for r in caplog.records if "WAL catch-up" in r.getMessage()]
        assert len(warnings) == 1, warnings
        assert "still in use by a reader of an older snapshot" in warnings[0]
        reader.execute("COMMIT")
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="uprof"):
            database._copy_back(raw)  # nothing holds it now: it finishes, quietly
        assert not [r for r in caplog.records if "WAL catch-up" in r.getMessage()]
    finally:
        reader.close()
        raw.close()
        database.close()
