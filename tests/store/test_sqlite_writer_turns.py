"""Two servers on one SQLite store (``--workers 2``) take turns at its one write lock: one
whose batches follow one another back to back does not keep the other waiting."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from uprof.domain.ids import random_id
from uprof.domain.model import Profile
from uprof.domain.timefmt import from_us
from uprof.store import profiles as store
from uprof.store.migrate import migrate
from uprof.store.sqlite import SqliteDatabase
from uprof.store.turnstile import Turnstile

ORG = "org_turns"
WRITERS = 16  # writes in flight per server: its queue is never empty
SECONDS = 2.5


@pytest.fixture
def path(tmp_path: Path) -> Iterator[Path]:
    file = tmp_path / "turns.sqlite"
    database = SqliteDatabase(f"sqlite:///{file}")
    migrate(database)

    def org(conn: Connection) -> None:
        conn.execute(
            text("INSERT INTO organizations (id, name, created_at) VALUES (:i, :i, 1)"), {"i": ORG}
        )

    database.write_sync(org)
    database.close()
    yield file


def _insert(p: Profile, conn: Connection) -> None:
    store.insert_profile(conn, p)


def _serve(file: Path, waits: list[float], start: threading.Barrier) -> None:
    """A server of its own (its own connections, as a worker process has) writing new
    profiles from ``WRITERS`` tasks for ``SECONDS``; each write's wait is recorded."""
    database = SqliteDatabase(f"sqlite:///{file}")

    async def writer(until: float) -> None:
        while time.monotonic() < until:
            p = Profile(
                id=random_id("uprof"), org_id=ORG, created_at=from_us(1), updated_at=from_us(1)
            )
            began = time.monotonic()
            await database.write(partial(_insert, p))
            waits.append(time.monotonic() - began)

    async def main() -> None:
        start.wait()
        until = time.monotonic() + SECONDS
        await asyncio.gather(*(writer(until) for _ in range(WRITERS)))
        await database.stop()

    try:
        asyncio.run(main())
    finally:
        database.close()


def test_two_servers_writing_back_to_back_take_turns(path: Path) -> None:
    waits: tuple[list[float], list[float]] = ([], [])
    start = threading.Barrier(2)
    threads = [threading.Thread(target=_serve, args=(path, w, start), daemon=True) for w in waits]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    done = [len(w) for w in waits]
    # Each server had its share of the lock, and no write waited out a whole run of the other's.
    assert min(done) >= 0.25 * sum(done), done
    print("writes", done, "longest waits", [round(max(w), 3) for w in waits])  # -s shows it
    assert max(max(w) for w in waits) < 0.5, [round(max(w), 3) for w in waits]


def test_one_writer_at_a_time_passes_the_turnstile(tmp_path: Path) -> None:
    first, second = Turnstile(tmp_path / "s.sqlite"), Turnstile(tmp_path / "s.sqlite")
    try:
        assert first.try_enter()
        assert not second.try_enter()
        first.leave()
        assert second.try_enter()
        second.leave()
    finally:
        first.close()
        second.close()


def test_a_store_in_memory_has_an_open_turnstile() -> None:
    memory = Turnstile(None)
    assert memory.try_enter() and memory.try_enter()
    memory.leave()


def test_a_forked_worker_takes_its_own_turn(tmp_path: Path) -> None:
    """A worker forked while its parent is in the turnstile must wait like any other process:
    the parent's descriptor would let it in (a lock belongs to the open file)."""
    import os

    turnstile = Turnstile(tmp_path / "s.sqlite")
    assert turnstile.try_enter()
    pid = os.fork()
    if pid == 0:  # the child: 0 if it was kept out, as it must be
        os._exit(1 if turnstile.try_enter() else 0)
    _, status = os.waitpid(pid, 0)
    turnstile.leave()
    turnstile.close()
    assert os.waitstatus_to_exitcode(status) == 0
