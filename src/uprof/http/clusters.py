"""Responses written together: the answers made in one pass of the event loop go out side by side.

Every response is written to its socket as soon as it is made, and on loopback, or between
virtual machines, each write to a client that is waiting in ``epoll_wait`` wakes that client's
CPU: on the machine of ``docs/performance.md`` an inter-processor interrupt that costs the
writing process tens of microseconds, more than the request's own work for a point read. The
requests one pass of the loop takes in are computed one after another; if each wrote its answer
at once, every write would find the client asleep again. Here each answer waits for the end of
that pass (its work done, nothing sent), then all of them are written back to back: the first
write wakes the client, the others find it awake. Netty's ``FlushConsolidationHandler`` does
the same for the same reason.

The wait is one bare ``yield`` to the task running the request: asyncio then schedules the
task's next step behind every callback already ready, and the loop runs only the callbacks
that were ready when its pass began, so the step comes in the loop's next pass, after the
other requests of this one. Each task waits on its own: one cancelled does not hold or cancel
the others. Until round 22 each response waited on a future of its own that a callback at the
end of the pass settled: a future, a callback and a second turn of the loop a response, for the
same order (``docs/performance.md``, "Round 22": GET 1.05x in pairs).

What it costs a response is the rest of its pass, the work of the requests taken in with it,
and one turn of the loop; on an idle server, a few microseconds.

Every API response waits so, writes too. A batch of writes (a group commit) settles its
writes together, but each of them then renders its response between the others' writes, as
reads would: waiting for the pass made create 1.17-1.20x and update 1.06-1.08x in pairs
(``docs/performance.md``, "Round 23"; with the futures of before round 22 it had cost update
~20%).
"""

from __future__ import annotations

from collections.abc import Awaitable, Generator


class _NextPass:
    """Awaited, gives the loop one turn: the awaiting task goes on in the loop's next pass."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        yield  # a bare yield: asyncio's Task reschedules itself with call_soon


_NEXT_PASS = _NextPass()


class ResponseClusters:
    """Where the responses of one event-loop pass wait to be written together."""

    __slots__ = ()

    def turn(self) -> Awaitable[None]:
        """Awaited, returns once every response made in this pass of the loop is ready to be
        written (in the loop's next pass). Not a coroutine: it hands out the one awaitable."""
        return _NEXT_PASS
