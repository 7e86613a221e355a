"""uprof's own cost per request, without uvicorn or the kernel: the ASGI app called directly.

    .venv/bin/python bench/inprocess.py [--store bench/.data/sqlite-1M.db] [--profile get]

Each scenario (the same requests as the wrk scripts) runs ``--rounds`` rounds of ``--n``
requests on one event loop (uvloop); the best round's CPU time per request is printed.
``list`` reads the first page, 64 requests at once; ``walk`` walks pages out of step, as
``bench/wrk/list.lua`` does (its figure includes finding each next page's cursor, ~1 us). With
``--profile SCENARIO`` the scenario runs once more under cProfile and the top functions are
printed. This is the tool for finding what to change; the harness (``run.py``) says whether the
change mattered on a real server.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import pstats
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script (bench/inprocess.py), as its usage says
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import click
import uvloop

from bench.common import BENCH_KEY
from uprof.app import create_app
from uprof.config import DEFAULT_RENDER_CACHE_MIB, Settings

HEADERS = [
    (b"host", b"127.0.0.1"),
    (b"x-api-key", BENCH_KEY.encode()),
    (b"anthropic-version", b"2023-06-01"),
    (b"content-type", b"application/json"),
]
UPDATE_BODY = b'{"metadata":{"bench":"updated"}}'
CREATE_BODY = (
    b'{"name":"Bench User","metadata":{"plan":"pro","region":"eu"},'
    b'"external_user_details":{"reference_id":"ext-1","country":"DE"}}'
)


# bench/wrk/list.lua's: a walk ends after a page, at random, one time in WALK_END.
WALK_END = 32
_NEXT_PAGE = re.compile(rb'"next_page":"([^"]+)"')


def _scope(method: str, path: str, query: bytes = b"", body: bytes = b"") -> dict[str, Any]:
    headers = list(HEADERS)
    if body:
        headers.append((b"content-length", str(len(body)).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }


class Walks:
    """List pages walked as ``bench/wrk/list.lua`` walks them: each of the ``slots`` requests in
    flight goes on from the page its slot read last, and a walk ends after any page at random
    (one in ``end``) or at the last one, and starts again at the first. The walks fall out of
    step, and most pages are read by one request of a pass; the scenario ``list`` reads the
    first page only, 64 at once, which one read and one rendering serve (decisions O7), not
    what a server under list.lua does."""

    def __init__(self, slots: int = 64, end: int = WALK_END, seed: int = 2) -> None:
        self._cursors: list[bytes | None] = [None] * slots
        self._end = end
        self._rng = random.Random(seed)

    def query(self, i: int) -> bytes:
        """The query string of request ``i``'s page."""
        cursor = self._cursors[i % len(self._cursors)]
        return b"limit=20" if cursor is None else b"limit=20&page=" + cursor

    def answered(self, i: int, body: bytes) -> None:
        """Request ``i``'s page came back: its slot goes on to the next page, or starts over."""
        found = _NEXT_PAGE.search(body, max(0, len(body) - 600))
        cursor = None
        if found is not None and self._rng.randrange(self._end) != 0:
            cursor = found.group(1)
        self._cursors[i % len(self._cursors)] = cursor


class Call:
    """One request through the app; the status and body of its response."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.status = 0
        self.body = b""

    async def __call__(self, scope: dict[str, Any], body: bytes) -> bytes:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        chunks: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
            else:
                chunks.append(message.get("body", b""))

        await self.app(dict(scope), receive, send)
        self.body = b"".join(chunks)
        if self.status != 200:
            raise RuntimeError(f"{scope['method']} {scope['path']}: {self.status} {self.body!r}")
        return self.body


def _ids(ids_path: Path, n: int) -> list[str]:
    ids = ids_path.read_text().split()
    random.Random(1).shuffle(ids)
    return ids[:n]


@click.command()
@click.option(
    "--store",
    type=click.Path(path_type=Path),  # checked below: unused with --database-url
    default=Path("bench/.data/sqlite-1M.db"),
    show_default=True,
    help="A loaded SQLite bench store (bench/load.py).",
)
@click.option(
    "--database-url",
    default=None,
    help="Measure on this database instead of --store (e.g. a PostgreSQL bench store); "
    "ids from --ids.",
)
@click.option(
    "--ids",
    "ids_file",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="The store's ids, one a line (bench/.data/<backend>-<size>.ids; default: beside --store).",
)
@click.option("--n", type=int, default=5000, show_default=True)
@click.option("--rounds", type=int, default=5, show_default=True)
@click.option("--scenarios", default="get,list,walk,create,update", show_default=True)
@click.option("--profile", "profiled", default=None, help="cProfile this scenario.")
@click.option(
    "--render-cache-mib",
    type=click.IntRange(0, 1 << 20),
    default=DEFAULT_RENDER_CACHE_MIB,
    show_default=True,
    help="Memory for remembered views (0: every read renders afresh).",
)
def main(
    store: Path,
    database_url: str | None,
    ids_file: Path | None,
    n: int,
    rounds: int,
    scenarios: str,
    profiled: str | None,
    render_cache_mib: int,
) -> None:
    if database_url is None and not store.is_file():
        raise click.BadParameter(
            f"no store at {store} (load one with bench/load.py)", param_hint="--store"
        )
    if database_url is not None and ids_file is None:
        raise click.BadParameter("a --database-url needs its store's --ids", param_hint="--ids")
    uvloop.install()
    settings = Settings(
        database_url=database_url or f"sqlite:///{store.resolve()}",
        bootstrap_api_key=BENCH_KEY,
        render_cache_mib=render_cache_mib,
    )
    app = create_app(settings)
    gc.collect()
    gc.freeze()  # as uprof.app.app_from_env does for a server
    call = Call(app)
    ids = _ids(ids_file or store.with_suffix(".ids"), n)
    list_scope = _scope("GET", "/v1/user_profiles", b"limit=20")

    async def get(i: int) -> None:
        await call(_scope("GET", f"/v1/user_profiles/{ids[i % len(ids)]}"), b"")

    async def listing(i: int) -> None:
        await call(list_scope, b"")

    walks = Walks()

    async def walk(i: int) -> None:
        body = await call(_scope("GET", "/v1/user_profiles", walks.query(i)), b"")
        walks.answered(i, body)

    async def create(i: int) -> None:
        await call(_scope("POST", "/v1/user_profiles", body=CREATE_BODY), CREATE_BODY)

    async def update(i: int) -> None:
        path = f"/v1/user_profiles/{ids[i % len(ids)]}"
        await call(_scope("POST", path, body=UPDATE_BODY), UPDATE_BODY)

    table: dict[str, Callable[[int], Any]] = {
        "get": get,
        "list": listing,
        "walk": walk,
        "create": create,
        "update": update,
    }

    async def round_of(fn: Callable[[int], Any]) -> float:
        # 64 requests in flight, as wrk's 64 connections: writes then share group commits.
        start = time.process_time()
        for base in range(0, n, 64):
            await asyncio.gather(*(fn(i) for i in range(base, min(n, base + 64))))
        return (time.process_time() - start) / n * 1e6

    async def run() -> None:
        for name in scenarios.split(","):
            fn = table[name]
            best = min([await round_of(fn) for _ in range(rounds)])
            click.echo(f"{name:8} {best:8.1f} us/request")
        if profiled:
            prof = cProfile.Profile()
            prof.enable()
            await round_of(table[profiled])
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(30)

    asyncio.run(run())


if __name__ == "__main__":
    main()
