"""The API's reads made close together, sent to PostgreSQL as one statement.

Under load, the requests a poll hands the loop each read one profile or one page: each would be
a round trip of its own, and psycopg's asynchronous path costs more per statement (~100 us of
this process's CPU, measured) than PostgreSQL spends answering it. The reads of a statement
with a batch form that wait together (below: when they go out) go out as one statement:
point reads (``Batch``) as one per group of equal parameters (the organization),
``key = ANY(keys)``, each getting the rows of its key; pages (``Lateral``) as one for all of
them, each distinct read's parameters a row of an unnested relation, each getting the rows of
its ordinal. Equal reads are read once in both forms.

When the reads go out is what sizes the statements. A read waits for the end of the loop pass
after the one it was made in: the requests that one poll of the sockets hands the loop take
their first step in the next pass, after that pass's statement was sent, so waiting one pass
only would send the reads of each poll apart. And while ``MAX_IN_FLIGHT`` statements are
running, new reads wait for one of them to come back, at most ``MAX_WAIT``: under load they
gather into the next statement instead of going out a few at a time, and a slow statement
holds up no read for longer than that. Measured in alternating pairs on the 1M store
(docs/performance.md, "Round 23"): list 1.11-1.16x; GET 0.97-1.03x, its statements cheap.

While a statement of point reads is out, the loop polls for its answer instead of sleeping
(``busy_poll``, at most that long after such a statement went out). On a virtual machine whose
idle CPU halts, the answer of a sleeping loop waits for the hypervisor to wake its CPU: a round
trip between two processes on two CPUs took 46-116 us blocking and 5-9 us polling on the
machine of docs/performance.md ("Round 24"; GET 1.04-1.15x in pairs). Polling is a callback
that queues itself again, so the loop looks at its sockets without waiting; under load its
passes do that anyway. Pages' statements alone do not start it: PostgreSQL takes longer to
make their rows than a wake costs, and polling through that time takes the CPU from backends
that run on the loop's (list 0.95-0.99x in pairs).

A module of its own so that it can be compiled with the rest of the request path
(``uprof.native``): it runs for every read, while the store's other half (units of work in
threads, group commit) stays interpreted, because its tests replace functions of its module and
callers compiled into that module would not see the replacements.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from sqlalchemy.engine.interfaces import Dialect

from uprof.config import DEFAULT_PG_BUSY_POLL_US
from uprof.store.compiled import Batch, Lateral, Query, Statement
from uprof.store.database import settle, spawn

T = TypeVar("T")

# Keys per coalesced statement: one page of ANY(...) stays well inside a packet and a plan.
MAX_KEYS = 500
# Reads per coalesced statement of a ``Lateral`` form (a page each: up to 101 rows a read).
# A statement of 40-60 pages (~500 KB) reached this process over 25-90 ms, while PostgreSQL
# logged none over 8 ms and the event loop sat idle: list's p99 was 23-33 ms. In statements
# of at most 16, run side by side, it was 11.5-13.7 ms at the same throughput; at 8, more
# statements cost throughput (docs/performance.md, "Round 12").
MAX_READS = 16
# Statements of coalesced reads running at once (per event loop) before new reads wait for one
# of them to come back, and the longest they wait. One in flight was slower (GET 0.96x, list
# 0.91x against two), three no faster than two; ~0.5-1 ms is a statement's round trip under
# load (docs/performance.md, "Round 23").
MAX_IN_FLIGHT = 2
MAX_WAIT = 0.002
# How long after a statement went out the loop polls for answers instead of sleeping, while
# statements are out (0: never), in seconds. A point read's statement comes back within
# ~0.1-1 ms; one that takes longer (a busy server) is waited for asleep after this.
BUSY_POLL = DEFAULT_PG_BUSY_POLL_US / 1e6

Fetch = Callable[[str, dict[str, Any]], Awaitable[list[Any]]]


class _LoopReads:
    """One event loop's reads waiting to go out, and its statements running."""

    __slots__ = ("in_flight", "pending", "polling", "scheduled", "sent", "timer")

    def __init__(self) -> None:
        # (statement, group) -> the reads waiting (see ``CoalescedReads.read``)
        self.pending: dict[Any, Any] = {}
        self.in_flight = 0
        # Whether the pending reads go out in the pass after next already.
        self.scheduled = False
        # While the statements in flight hold them back: when they go out anyway.
        self.timer: asyncio.TimerHandle | None = None
        # Whether the loop polls for the statements' answers, and when the last one went out.
        self.polling = False
        self.sent = 0.0


class CoalescedReads:
    """Collects the reads of each loop pass and answers each from a shared statement.

    ``fetch`` runs one statement's text with its parameters and returns its rows."""

    def __init__(
        self,
        fetch: Fetch,
        dialect: Dialect,
        *,
        max_in_flight: int = MAX_IN_FLIGHT,
        max_wait: float = MAX_WAIT,
        busy_poll: float = BUSY_POLL,
    ) -> None:
        self._fetch = fetch
        self._dialect = dialect
        self.max_in_flight = max_in_flight
        self.max_wait = max_wait
        self.busy_poll = busy_poll
        # Each loop's reads, while it has any waiting or running; the statements running.
        self._loops: dict[asyncio.AbstractEventLoop, _LoopReads] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def read(self, query: Query[T]) -> asyncio.Future[T]:
        """The result of ``query`` (whose statement has a batch form), once its statement ran."""
        loop = asyncio.get_running_loop()
        statement = query.statement
        batch = statement.batch
        params = query.params
        reads = self._loops.get(loop)
        if reads is None:
            reads = self._loops[loop] = _LoopReads()
        pending = reads.pending
        if not pending:  # the first to wait: nothing is scheduled or timed while none waits
            self._schedule(loop, reads)
        future: asyncio.Future[T] = loop.create_future()
        if isinstance(batch, Lateral):
            pending.setdefault((statement, None), []).append((params, future))
        else:
            assert batch is not None
            key = batch.key
            group = tuple(sorted((k, v) for k, v in params.items() if k != key))
            waiting = pending.setdefault((statement, group), {}).setdefault(params[key], [])
            waiting.append(future)
        return future

    def _schedule(self, loop: asyncio.AbstractEventLoop, reads: _LoopReads) -> None:
        """Send the pending reads in the pass after next, or, while ``max_in_flight``
        statements run, when one of them comes back (``_finished``) or ``max_wait`` is up."""
        if reads.in_flight < self.max_in_flight:
            reads.scheduled = True
            loop.call_soon(self._next_pass, loop, reads)
        elif reads.timer is None:
            reads.timer = loop.call_later(self.max_wait, self._waited, loop, reads)

    def _next_pass(self, loop: asyncio.AbstractEventLoop, reads: _LoopReads) -> None:
        loop.call_soon(self._run_pending, loop, reads)

    def _waited(self, loop: asyncio.AbstractEventLoop, reads: _LoopReads) -> None:
        reads.timer = None
        if not reads.scheduled:
            self._run_pending(loop, reads)

    def _run_pending(self, loop: asyncio.AbstractEventLoop, reads: _LoopReads) -> None:
        reads.scheduled = False
        if reads.timer is not None:
            reads.timer.cancel()
            reads.timer = None
        pending, reads.pending = reads.pending, {}
        points = False
        for (statement, group), waiting in pending.items():
            if group is None:
                futures = [future for _params, future in waiting]
                work = self._run_lateral(statement, waiting)
            else:
                futures = [f for fs in waiting.values() for f in fs]
                work = self._run_batch(statement, dict(group), waiting)
                points = True
            reads.in_flight += 1
            task = spawn(loop, _answer(futures, work), self._tasks)
            task.add_done_callback(lambda _task: self._finished(loop, reads))
        if points and self.busy_poll > 0:
            reads.sent = time.monotonic()
            if not reads.polling:
                reads.polling = True
                loop.call_soon(self._poll, loop, reads)

    def _poll(self, loop: asyncio.AbstractEventLoop, reads: _LoopReads) -> None:
        """Keep the loop from sleeping while statements are out (see ``busy_poll``)."""
        if reads.in_flight and time.monotonic() - reads.sent < self.busy_poll:
            loop.call_soon(self._poll, loop, reads)
        else:
            reads.polling = False

    def _finished(self, loop: asyncio.AbstractEventLoop, reads: _LoopReads) -> None:
        """A statement came back: the reads it held back may go out."""
        reads.in_flight -= 1
        if reads.pending:
            if not reads.scheduled:
                self._schedule(loop, reads)
        elif not reads.in_flight:
            self._loops.pop(loop, None)  # nothing left of this loop's reads

    async def _run_lateral(
        self, statement: Statement[Any], reads: list[tuple[dict[str, Any], asyncio.Future[Any]]]
    ) -> list[tuple[asyncio.Future[Any], Any]]:
        batch = statement.batch
        assert isinstance(batch, Lateral)
        # Equal pages (clients walking the same pages, or polling the first) are read once, as
        # equal point reads are: the same statement and snapshot would return the same rows.
        distinct: dict[tuple[Any, ...], tuple[dict[str, Any], list[asyncio.Future[Any]]]] = {}
        for params, future in reads:
            distinct.setdefault(batch.read_key(params), (params, []))[1].append(future)
        pages = list(distinct.values())
        if len(pages) == 1:  # the plain statement
            params, futures = pages[0]
            rows = await self._fetch(*Query(statement, params).sql(self._dialect))
            return _each_own(statement, futures, rows)
        # Each chunk on a connection of its own, all at once.
        parts = await asyncio.gather(
            *[self._run_pages(statement, chunk) for chunk in equal_chunks(pages, MAX_READS)]
        )
        return [answer for part in parts for answer in part]

    async def _run_pages(
        self,
        statement: Statement[Any],
        chunk: list[tuple[dict[str, Any], list[asyncio.Future[Any]]]],
    ) -> list[tuple[asyncio.Future[Any], Any]]:
        batch = statement.batch
        assert isinstance(batch, Lateral)
        compiled = statement.compiled_batch(self._dialect)
        arrays = {name: [params[name] for params, _ in chunk] for name in batch.params}
        of_read: list[list[Any]] = [[] for _ in chunk]
        for row in await self._fetch(compiled.text, compiled.bind(arrays)):
            of_read[row[0] - 1].append(row[1:])
        return [
            answer
            for (_, futures), rows in zip(chunk, of_read, strict=True)
            for answer in _each_own(statement, futures, rows)
        ]

    async def _run_batch(
        self,
        statement: Statement[Any],
        group: dict[str, Any],
        by_key: dict[Any, list[asyncio.Future[Any]]],
    ) -> list[tuple[asyncio.Future[Any], Any]]:
        batch = statement.batch
        assert isinstance(batch, Batch)
        keys = list(by_key)
        results: dict[Any, Any] = {}
        if len(keys) == 1:  # the plain statement: its plan is the one an idle server uses
            text, params = Query(statement, {**group, batch.key: keys[0]}).sql(self._dialect)
            results[keys[0]] = statement.result(await self._fetch(text, params))
        else:
            compiled = statement.compiled_batch(self._dialect)
            for i in range(0, len(keys), MAX_KEYS):
                chunk = keys[i : i + MAX_KEYS]
                rows = await self._fetch(compiled.text, compiled.bind({**group, "keys": chunk}))
                of_key: dict[Any, list[Any]] = {k: [] for k in chunk}
                for row in rows:
                    of_key[row[0]].append(row[1:])
                for k in chunk:
                    results[k] = statement.result(of_key[k])
        return [(f, results[k]) for k, futures in by_key.items() for f in futures]


def _each_own(
    statement: Statement[Any], futures: list[asyncio.Future[Any]], rows: list[Any]
) -> list[tuple[asyncio.Future[Any], Any]]:
    """Each of the reads that asked for ``rows`` with a result of its own: a caller may change
    the list it gets (the service cuts a page's row past the limit off)."""
    return [(future, statement.result(rows)) for future in futures]


async def _answer(
    futures: list[asyncio.Future[Any]],
    work: Coroutine[Any, Any, list[tuple[asyncio.Future[Any], Any]]],
) -> None:
    """Hand coalesced reads the results ``work`` finds for them, or, if it fails, its error."""
    try:
        answers = await work
    except BaseException as e:
        settle((future, None, e) for future in futures)
        if not isinstance(e, Exception):
            raise
        return
    settle((future, result, None) for future, result in answers)


def equal_chunks(items: list[T], most: int) -> list[list[T]]:
    """``items`` in as few chunks of at most ``most`` as can be, all of one size but the last,
    which may be smaller."""
    count = -(-len(items) // most)
    size = -(-len(items) // count)
    return [items[i : i + size] for i in range(0, len(items), size)]
