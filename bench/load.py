"""The bulk loader: N profiles for the bench key's organization, written straight through the
store's schema and row mapping, fast enough that 10M profiles take minutes.

* SQLite: a fresh file, filled with ``executemany`` on the raw sqlite3 connection in large
  transactions with ``journal_mode=OFF, synchronous=OFF`` (load only: nothing is acknowledged to
  anyone, and a crash leaves only the ``.loading`` file, which the next load starts over). The
  two secondary indexes are dropped first and rebuilt at the end (one sort instead of N random
  inserts): safe because nothing else can see the file until it is renamed into place. The
  server then opens it in WAL mode with its own durability settings.
* PostgreSQL: a database of its own per size, filled with COPY, the secondary indexes rebuilt
  after it. A side file records that the load completed.

Loaded databases are kept under the data directory (``bench/.data``), one per size, and reused:
10M is loaded once. A sample of the loaded ids goes to ``<name>.ids`` for the wrk scripts.

    python bench/load.py 1M [--postgres] [--data-dir DIR]
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import click
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Dialect, Engine

from bench.common import (
    BENCH_KEY,
    DEFAULT_DATA_DIR,
    LOAD_SPACING_US,
    bench_profile,
    parse_size,
    size_label,
)
from uprof.domain.ids import random_id
from uprof.service.clock import system_clock
from uprof.service.keys import KeyService, hash_key
from uprof.store import keys as key_store
from uprof.store import profiles as profile_store
from uprof.store.database import normalize_url, open_database
from uprof.store.migrate import migrate
from uprof.store.sqlite_driver import dbapi as driver
from uprof.store.tables import user_profiles

# Bumped when what a load produces changes; stores of another format are loaded again.
# 2: profile ids are time-ordered (uprof.domain.ids), so ids increase in load order.
# 3: a profile is one document column (migration 0002).
# 4: PostgreSQL's profiles table leaves a tenth of each page free (migration 0003).
# 5: a SQLite row is filed under its id's number (decisions O20).
LOAD_FORMAT = 5
ID_SAMPLE = 200_000  # ids written for the wrk scripts, spread evenly over the load
_BATCH = 50_000
_SECONDARY = ("ix_user_profiles_org_created", "ix_user_profiles_org_name")
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Loaded:
    """A loaded store: where it is, whose profiles, and what marks a loaded row."""

    n: int
    database_url: str
    org_id: str
    ids_path: str
    max_created_at: int  # rows created later were made by a benchmark run
    load_seconds: float
    format: int = LOAD_FORMAT


def _reusable(meta: Path) -> Loaded | None:
    """The load described by ``meta``, if there is one of the current format."""
    if not meta.exists():
        return None
    data = json.loads(meta.read_text())
    if data.get("format", 1) != LOAD_FORMAT:
        click.echo(f"  {meta.stem}: loaded in an older format, loading again")
        return None
    return Loaded(**data)

    def meta_path(self, data_dir: Path) -> Path:
        return data_dir / (Path(self.ids_path).stem + ".json")


def _prepare_schema(database_url: str) -> str:
    """Migrate, add the bench key; the organization the key belongs to."""
    db = open_database(database_url)
    try:
        migrate(db)
        KeyService(db, system_clock, random_id).ensure_key(BENCH_KEY)
        org_id = db.read_sync(lambda c: key_store.org_for_key_hash(c, hash_key(BENCH_KEY)))
        assert org_id is not None
        return org_id
    finally:
        db.close()


def _rows(n: int, org_id: str, ids_file: Path, label: str) -> Iterator[list[dict[str, object]]]:
    """Batches of row dicts (the store's own mapping), with a progress bar and the id sample."""
    start_us = system_clock() - (n + 1) * LOAD_SPACING_US
    every = max(1, n // ID_SAMPLE)
    with (
        open(ids_file, "w") as ids,
        click.progressbar(
            length=n, label=f"loading {label}", show_pos=True, show_eta=True, width=30
        ) as bar,
    ):
        for lo in range(0, n, _BATCH):
            batch = []
            for i in range(lo, min(n, lo + _BATCH)):
                p = bench_profile(i, random_id("uprof"), org_id, start_us + i * LOAD_SPACING_US)
                if i % every == 0:
                    ids.write(p.id + "\n")
                batch.append(profile_store.values(p))
            yield batch
            bar.update(len(batch))


def _record(
    meta: Path, n: int, url: str, org_id: str, ids_path: Path, max_created: int, t0: float
) -> Loaded:
    """Describe a finished load and keep it next to the store, so the next run reuses it."""
    loaded = Loaded(
        n=n,
        database_url=url,
        org_id=org_id,
        ids_path=str(ids_path),
        max_created_at=max_created,
        load_seconds=round(time.monotonic() - t0, 1),
    )
    meta.write_text(json.dumps(asdict(loaded), indent=2))
    return loaded


def load_sqlite(n: int, data_dir: Path) -> Loaded:
    name = f"sqlite-{size_label(n)}"
    final = data_dir / f"{name}.db"
    meta = data_dir / f"{name}.json"
    if final.exists() and (reusable := _reusable(meta)) is not None:
        return reusable
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f"{name}.loading"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    t0 = time.monotonic()
    org_id = _prepare_schema(f"sqlite:///{tmp}")
    ids_path = data_dir / f"{name}.ids"
    # The library uprof's schema was just made with in this process (decisions O14).
    raw = driver.connect(tmp, isolation_level=None)
    raw.execute("PRAGMA journal_mode=OFF")
    raw.execute("PRAGMA synchronous=OFF")
    raw.execute("PRAGMA cache_size=-1048576")  # 1 GiB
    raw.execute("PRAGMA temp_store=MEMORY")
    index_sql = [
        sql
        for (sql,) in raw.execute(
            "SELECT sql FROM sqlite_master WHERE type='index' AND name IN (?, ?)", _SECONDARY
        )
    ]
    for ix in _SECONDARY:
        raw.execute(f"DROP INDEX {ix}")
    # The store's own INSERT: each row filed under its id's number, as uprof files it.
    compiled = profile_store.insert_statement().compiled(_sqlite_dialect())
    max_created = 0
    for batch in _rows(n, org_id, ids_path, f"{size_label(n)} profiles into SQLite"):
        raw.execute("BEGIN")
        raw.executemany(compiled.text, [compiled.bind(row) for row in batch])
        raw.execute("COMMIT")
        max_created = int(batch[-1]["created_at"])  # type: ignore[call-overload]
    click.echo("  rebuilding the secondary indexes ...")
    for stmt in index_sql:
        raw.execute(stmt)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.close()
    # A WAL left beside the store this one replaces belongs to that store: SQLite would read
    # its frames into the new file's pages (a server still open on the old file leaves one).
    for suffix in ("-wal", "-shm"):
        Path(f"{final}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, final)
    return _record(meta, n, f"sqlite:///{final}", org_id, ids_path, max_created, t0)


def _sqlite_dialect() -> Dialect:
    from sqlalchemy.dialects import sqlite

    return sqlite.dialect()


def load_postgres(n: int, data_dir: Path, admin_url: str = PG_ADMIN_URL) -> Loaded:
    name = f"postgres-{size_label(n)}"
    dbname = f"uprof_bench_{size_label(n).lower()}"
    meta = data_dir / f"{name}.json"
    base = normalize_url(admin_url).rpartition("/")[0]
    url = f"{base}/{dbname}"
    admin = create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": dbname}
        ).first()
        if exists and (reusable := _reusable(meta)) is not None:
            admin.dispose()
            return reusable
        meta.unlink(missing_ok=True)
        conn.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{dbname}"'))
    admin.dispose()
    data_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    org_id = _prepare_schema(url)
    ids_path = data_dir / f"{name}.ids"
    engine = create_engine(url)
    columns = [c.name for c in user_profiles.columns]
    max_created = 0
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur:
            index_sql = [
                r[0]
                for r in cur.execute(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = ANY(%s)", [list(_SECONDARY)]
                )
            ]
            for ix in _SECONDARY:
                cur.execute(f"DROP INDEX {ix}")
            raw.commit()
            copy_sql = f"COPY user_profiles ({', '.join(columns)}) FROM STDIN"
            for batch in _rows(n, org_id, ids_path, f"{size_label(n)} profiles into PostgreSQL"):
                with cur.copy(copy_sql) as copy:
                    for row in batch:
                        copy.write_row([row[c] for c in columns])
                raw.commit()
                max_created = int(batch[-1]["created_at"])  # type: ignore[call-overload]
            click.echo("  rebuilding the secondary indexes, VACUUM ANALYZE ...")
            cur.execute("SET maintenance_work_mem = '1GB'")
            for stmt in index_sql:
                cur.execute(stmt)
            raw.commit()
        raw.autocommit = True
        raw.execute("VACUUM ANALYZE user_profiles")
        raw.autocommit = False
    engine.dispose()
    return _record(meta, n, url, org_id, ids_path, max_created, t0)


@contextlib.contextmanager
def store_engine(database_url: str) -> Iterator[Engine]:
    """An engine on a store for the harness's own statements, disposed of afterwards."""
    engine = create_engine(normalize_url(database_url))
    try:
        yield engine
    finally:
        engine.dispose()


def reset(loaded: Loaded) -> int:
    """Remove what earlier benchmark runs created, so each run starts from exactly N profiles.
    (Updates only rewrite one metadata key of loaded profiles; they need no undoing.)"""
    with store_engine(loaded.database_url) as engine:
        with engine.begin() as conn:
            result = conn.execute(
                text("DELETE FROM user_profiles WHERE org_id = :o AND created_at > :t"),
                {"o": loaded.org_id, "t": loaded.max_created_at},
            )
            removed = int(result.rowcount)
        if removed and engine.dialect.name == "postgresql":
            # The deleted rows stay in the table and its indexes as dead entries until a
            # vacuum: left there, they sit exactly where a list's first pages start (the
            # newest profiles), and every run would scan past a different number of them.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM (ANALYZE) user_profiles"))
        return removed


def count(loaded: Loaded) -> int:
    """How many profiles the store's organization holds now."""
    with store_engine(loaded.database_url) as engine, engine.connect() as conn:
        return profile_store.count_profiles(conn, loaded.org_id)


def load(n: int, *, postgres: bool, data_dir: Path = DEFAULT_DATA_DIR) -> Loaded:
    return load_postgres(n, data_dir) if postgres else load_sqlite(n, data_dir)


@click.command()
@click.argument("sizes")
@click.option("--postgres", is_flag=True, help="Load PostgreSQL instead of SQLite.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR)
def main(sizes: str, postgres: bool, data_dir: Path) -> None:
    """Load (or find already loaded) stores of SIZES profiles, e.g. 1k,1M,10M."""
    for part in sizes.split(","):
        loaded = load(parse_size(part), postgres=postgres, data_dir=data_dir)
        click.echo(json.dumps(asdict(loaded)))


if __name__ == "__main__":
    main()
