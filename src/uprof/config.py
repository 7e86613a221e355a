"""Settings: parsed once (CLI flags over environment over defaults), frozen, passed in."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MAX_REQUEST_BYTES = 32 * 1024 * 1024  # the API's documented limit for standard endpoints
# Reads map the SQLite file (docs/decisions.md O6): up to 64 GiB of it, the whole of any store
# uprof expects, where the SQLite library allows (O14; a build that caps the mapping at 2 GiB,
# as Debian's does, maps that much).
DEFAULT_SQLITE_MMAP_MIB = 65536
# How large SQLite's write-ahead log may grow before writers start it over (decisions O15).
DEFAULT_SQLITE_WAL_LIMIT_MIB = 1024
# What the views' JSON of stored profiles may hold in memory, per process (uprof.http.rendered).
DEFAULT_RENDER_CACHE_MIB = 16
# How long a PostgreSQL store's event loop polls for a statement's answer instead of sleeping
# (uprof.store.pgcoalesce, decisions O22) when the machine has a CPU to spare, and the most it
# may be set to (a second).
DEFAULT_PG_BUSY_POLL_US = 2000
MAX_PG_BUSY_POLL_US = 1_000_000
# A write batch that takes longer than this (ms) is logged, with where its time went
# (uprof.store.database.SlowWrites; 0: never), and the longest that may be set (an hour).
DEFAULT_SLOW_WRITE_MS = 100
MAX_SLOW_WRITE_MS = 3_600_000
# The largest size a setting in MiB takes (1 TiB), and the settings that are such sizes, each
# with its smallest value.
MAX_MIB = 1 << 20
_SIZES_MIB = (
    ("sqlite_mmap_mib", "UPROF_SQLITE_MMAP_MIB", 0),
    ("render_cache_mib", "UPROF_RENDER_CACHE_MIB", 0),
    ("sqlite_wal_limit_mib", "UPROF_SQLITE_WAL_LIMIT_MIB", 1),
)


def default_database_url(data_dir: str | os.PathLike[str]) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / 'uprof.db'}"


@dataclass(frozen=True)
class Settings:
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    workers: int = 1
    link_ttl_seconds: int = 15 * 60
    # FULL survives power loss; NORMAL survives process crashes (kill -9) and is faster.
    sqlite_synchronous: str = "FULL"
    # How much of the SQLite file reads may map instead of copying page by page (0: none).
    sqlite_mmap_mib: int = DEFAULT_SQLITE_MMAP_MIB
    # How large the SQLite WAL file may grow under steady writes before it starts over.
    sqlite_wal_limit_mib: int = DEFAULT_SQLITE_WAL_LIMIT_MIB
    # How much JSON of profiles' views a process keeps to answer reads with (0: none).
    render_cache_mib: int = DEFAULT_RENDER_CACHE_MIB
    # How long the loop polls for PostgreSQL's answers instead of sleeping, in us (0: never).
    pg_busy_poll_us: int = DEFAULT_PG_BUSY_POLL_US
    # Write batches slower than this many ms are logged (0: none).
    slow_write_ms: int = DEFAULT_SLOW_WRITE_MS
    bootstrap_api_key: str | None = None
    max_request_bytes: int = MAX_REQUEST_BYTES

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return (self.public_url or f"http://{host}:{self.port}").rstrip("/")


def _int(env: os._Environ[str], name: str, default: int | None) -> int | None:
    """``name``'s integer, or ``default`` where it is unset or blank."""
    text = env.get(name)
    if text is None or not text.strip():
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer; got {text!r}") from None


def pg_busy_poll_for(workers: int, cpus: int) -> int:
    """The busy poll a server of ``workers`` processes on a machine of ``cpus`` CPUs has unless
    set. Polling pays only while every worker has a CPU to itself and a CPU is left for
    PostgreSQL and the clients: where they share CPUs, a polling worker takes its time from
    the backends it waits for and from the other workers (docs/performance.md, "Round 24":
    list at ``--workers 2`` on 2 CPUs 0.52x with polling)."""
    return DEFAULT_PG_BUSY_POLL_US if workers < cpus else 0


def settings_from_env(**overrides: object) -> Settings:
    """Environment variables (UPROF_*) with explicit overrides (CLI flags) on top."""
    env = os.environ
    data_dir = env.get("UPROF_DATA_DIR", "data")
    values: dict[str, object] = {
        "database_url": env.get("UPROF_DATABASE_URL") or default_database_url(data_dir),
        "host": env.get("UPROF_HOST", "127.0.0.1"),
        "port": int(env.get("UPROF_PORT", "8080")),
        "public_url": env.get("UPROF_PUBLIC_URL", ""),
        "workers": int(env.get("UPROF_WORKERS", "1")),
        "link_ttl_seconds": int(env.get("UPROF_LINK_TTL_SECONDS", str(15 * 60))),
        "sqlite_synchronous": env.get("UPROF_SQLITE_SYNCHRONOUS", "FULL").upper(),
        "sqlite_mmap_mib": _int(env, "UPROF_SQLITE_MMAP_MIB", DEFAULT_SQLITE_MMAP_MIB),
        "render_cache_mib": _int(env, "UPROF_RENDER_CACHE_MIB", DEFAULT_RENDER_CACHE_MIB),
        "sqlite_wal_limit_mib": _int(
            env, "UPROF_SQLITE_WAL_LIMIT_MIB", DEFAULT_SQLITE_WAL_LIMIT_MIB
        ),
        # None: not set, chosen below by the workers and the machine's CPUs
        "pg_busy_poll_us": _int(env, "UPROF_PG_BUSY_POLL_US", None),
        "slow_write_ms": _int(env, "UPROF_SLOW_WRITE_MS", DEFAULT_SLOW_WRITE_MS),
        "bootstrap_api_key": env.get("UPROF_BOOTSTRAP_API_KEY") or None,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    for key, name, least in _SIZES_MIB:
        if not least <= int(values[key]) <= MAX_MIB:  # type: ignore[call-overload]
            raise ValueError(f"{name} must be a number of MiB from {least} to {MAX_MIB}")
    busy_poll = values["pg_busy_poll_us"]
    if busy_poll is None:
        busy_poll = values["pg_busy_poll_us"] = pg_busy_poll_for(
            int(values["workers"]),  # type: ignore[call-overload]
            os.cpu_count() or 1,
        )
    if not 0 <= int(busy_poll) <= MAX_PG_BUSY_POLL_US:  # type: ignore[call-overload]
        raise ValueError(f"UPROF_PG_BUSY_POLL_US must be from 0 to {MAX_PG_BUSY_POLL_US} (us)")
    if not 0 <= int(values["slow_write_ms"]) <= MAX_SLOW_WRITE_MS:  # type: ignore[call-overload]
        raise ValueError(f"UPROF_SLOW_WRITE_MS must be from 0 to {MAX_SLOW_WRITE_MS} (ms)")
    if values["sqlite_synchronous"] not in ("FULL", "NORMAL", "EXTRA"):
        raise ValueError("UPROF_SQLITE_SYNCHRONOUS must be FULL, NORMAL or EXTRA")
    return Settings(**values)  # type: ignore[arg-type]
