"""The command line: ``uprof serve | migrate | keys ...``, thin over the services."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from uprof.config import (
    MAX_MIB,
    MAX_PG_BUSY_POLL_US,
    MAX_SLOW_WRITE_MS,
    Settings,
    settings_from_env,
)

if TYPE_CHECKING:
    from uprof.service.keys import KeyService
    from uprof.store.database import Database

_db_option = click.option(
    "--database-url",
    envvar="UPROF_DATABASE_URL",
    default=None,
    help="sqlite:///PATH (default: ./data/uprof.db, or $UPROF_DATA_DIR/uprof.db) or "
    "postgresql://USER@HOST:PORT/DB.  [env: UPROF_DATABASE_URL]",
)


# How `uprof serve` runs uvicorn; the benchmark's bare baseline app uses the same (bench/).
UVICORN_OPTIONS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "httptools",
    "log_level": "info",
    "timeout_graceful_shutdown": 10,
}


def _settings(**overrides: object) -> Settings:
    try:
        return settings_from_env(**overrides)
    except ValueError as e:
        raise click.UsageError(str(e)) from e


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="uprof")
def main() -> None:
    """uprof: a self-hosted server for the Anthropic User Profiles API."""


@main.command()
@click.option("--host", default=None, help="Address to listen on.  [default: 127.0.0.1]")
@click.option("--port", type=int, default=None, help="Port to listen on.  [default: 8080]")
@_db_option
@click.option(
    "--public-url",
    default=None,
    help="Base URL that enrollment and action URLs point at.  [default: the listen address]",
)
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Worker processes.")
@click.option(
    "--sqlite-synchronous",
    type=click.Choice(["FULL", "NORMAL"], case_sensitive=False),
    default=None,
    help="SQLite durability: FULL survives power loss (default), NORMAL survives crashes.",
)
@click.option(
    "--sqlite-mmap-mib",
    type=click.IntRange(0, MAX_MIB),
    default=None,
    help="How much of the SQLite file reads map instead of copying (0: off).",
)
@click.option(
    "--sqlite-wal-limit-mib",
    type=click.IntRange(1, MAX_MIB),
    default=None,
    help="How large the SQLite write-ahead log grows before writers start it over.",
)
@click.option(
    "--render-cache-mib",
    type=click.IntRange(0, MAX_MIB),
    default=None,
    help="Memory for the JSON of profiles' views that reads are answered with (0: off).",
)
@click.option(
    "--pg-busy-poll-us",
    type=click.IntRange(0, MAX_PG_BUSY_POLL_US),
    default=None,
    help=(
        "How long the event loop polls for PostgreSQL's answers instead of sleeping (0: never). "
        "[default: 2000 with more CPUs than workers, else 0]"
    ),
)
@click.option(
    "--slow-write-ms",
    type=click.IntRange(0, MAX_SLOW_WRITE_MS),
    default=None,
    help="Log each write batch that takes longer than this, and where its time went (0: none).  "
    "[default: 100]",
)
@click.option("--access-log/--no-access-log", default=False, help="Log every request.")
def serve(
    host: str | None,
    port: int | None,
    database_url: str | None,
    public_url: str | None,
    workers: int | None,
    sqlite_synchronous: str | None,
    sqlite_mmap_mib: int | None,
    sqlite_wal_limit_mib: int | None,
    render_cache_mib: int | None,
    pg_busy_poll_us: int | None,
    slow_write_ms: int | None,
    access_log: bool,
) -> None:
    """Serve the API (migrates the database first)."""
    import uvicorn

    settings = _settings(
        host=host,
        port=port,
        database_url=database_url,
        public_url=public_url,
        workers=workers,
        sqlite_synchronous=sqlite_synchronous.upper() if sqlite_synchronous else None,
        sqlite_mmap_mib=sqlite_mmap_mib,
        sqlite_wal_limit_mib=sqlite_wal_limit_mib,
        render_cache_mib=render_cache_mib,
        pg_busy_poll_us=pg_busy_poll_us,
        slow_write_ms=slow_write_ms,
    )
    _prepare(settings)
    # Workers are separate processes: they read the same settings from the environment.
    os.environ.update(
        {
            "UPROF_DATABASE_URL": settings.database_url,
            "UPROF_HOST": settings.host,
            "UPROF_PORT": str(settings.port),
            "UPROF_PUBLIC_URL": settings.base_url,
            "UPROF_SQLITE_SYNCHRONOUS": settings.sqlite_synchronous,
            "UPROF_SQLITE_MMAP_MIB": str(settings.sqlite_mmap_mib),
            "UPROF_SQLITE_WAL_LIMIT_MIB": str(settings.sqlite_wal_limit_mib),
            "UPROF_RENDER_CACHE_MIB": str(settings.render_cache_mib),
            "UPROF_PG_BUSY_POLL_US": str(settings.pg_busy_poll_us),
            "UPROF_SLOW_WRITE_MS": str(settings.slow_write_ms),
        }
    )
    click.echo(f"uprof: serving {settings.base_url} on {_describe(settings.database_url)}")
    click.echo(f"uprof: native request path {_native_line()}")
    uvicorn.run(
        "uprof.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=access_log,
        **UVICORN_OPTIONS,
    )


def _native_line() -> str:
    from uprof import native as n

    s = n.status()
    return f"on ({s.reason})" if s.active else f"off: {s.reason}"


def _describe(url: str) -> str:
    if url.startswith("sqlite"):
        return url
    head, _, tail = url.rpartition("@")
    return (url.split("://")[0] + "://***@" + tail) if head else url


def _prepare(settings: Settings) -> None:
    """Migrate, then make sure a key exists: the bootstrap key, or a new one printed once."""
    from uprof.domain.ids import random_id
    from uprof.service.clock import system_clock
    from uprof.service.keys import DEFAULT_ORG, KeyService
    from uprof.store.database import open_store
    from uprof.store.migrate import migrate

    db = open_store(settings)
    try:
        migrate(db)
        keys = KeyService(db, system_clock, random_id)
        if settings.bootstrap_api_key and keys.ensure_key(settings.bootstrap_api_key):
            click.echo("uprof: added the key from UPROF_BOOTSTRAP_API_KEY")
        raw = keys.bootstrap()
        if raw is not None:
            click.echo(
                f"uprof: created organization {DEFAULT_ORG!r} and its API key "
                "(shown only this once; store it):\n\n"
                f"    ANTHROPIC_API_KEY={raw}\n"
            )
    finally:
        db.close()


def _open_keys() -> tuple[Database, KeyService]:
    from uprof.domain.ids import random_id
    from uprof.service.clock import system_clock
    from uprof.service.keys import KeyService
    from uprof.store.database import open_store
    from uprof.store.migrate import migrate

    settings = click.get_current_context().obj
    db = open_store(settings)
    migrate(db)
    return db, KeyService(db, system_clock, random_id)


@main.command("migrate")
@_db_option
def migrate_command(database_url: str | None) -> None:
    """Apply the database migrations and exit."""
    from uprof.store.database import open_store
    from uprof.store.migrate import current_revision, migrate

    settings = _settings(database_url=database_url)
    db = open_store(settings)
    try:
        migrate(db)
        click.echo(
            f"uprof: {_describe(settings.database_url)} is at revision {current_revision(db)}"
        )
    finally:
        db.close()


@main.group()
@_db_option
@click.pass_context
def keys(ctx: click.Context, database_url: str | None) -> None:
    """Manage organizations' API keys."""
    ctx.obj = _settings(database_url=database_url)


@keys.command("create")
@click.option("--org", "org_name", required=True, help="Organization name (created if new).")
def keys_create(org_name: str) -> None:
    """Create a key for an organization and print it (shown only once)."""
    db, svc = _open_keys()
    try:
        key_id, raw = svc.create_key(org_name)
    finally:
        db.close()
    click.echo(f"uprof: created key {key_id} for organization {org_name!r}", err=True)
    click.echo(raw)


@keys.command("list")
def keys_list() -> None:
    """List keys (never the keys themselves)."""
    db, svc = _open_keys()
    try:
        rows = svc.list_keys()
    finally:
        db.close()
    for row in rows:
        created = datetime.fromtimestamp(int(str(row["created_at"])) / 1e6, UTC)
        state = "revoked" if row["revoked_at"] else "active"
        click.echo(
            f"{row['id']}\t{row['name']}\t{row['hint']}\t{state}\t{created:%Y-%m-%dT%H:%M:%SZ}"
        )


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (see `uprof keys list`)."""
    db, svc = _open_keys()
    try:
        ok = svc.revoke(key_id)
    finally:
        db.close()
    if not ok:
        click.echo(f"uprof: no active key {key_id}", err=True)
        sys.exit(1)
    click.echo(f"uprof: revoked {key_id}")


@main.group()
def native() -> None:
    """The request path compiled to C (mypyc), used when a build matches the sources."""


@native.command("build")
@click.option("--force", is_flag=True, help="Build again even if a build of these sources exists.")
def native_build(force: bool) -> None:
    """Compile the request path for these sources (once per source version; ~1 min)."""
    from uprof import native as n

    try:
        path, made = n.build(force=force)
    except n.NativeError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"uprof: native build {'made' if made else 'already there'}: {path}")


@native.command("status")
def native_status() -> None:
    """Say whether a native build of these sources exists and would serve."""
    from uprof import native as n

    s = n.status()
    click.echo(f"{'on' if s.active else 'off'}: {s.reason} [{s.path}]")
