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

What it costs a response is the rest of its pass, the work of the requests taken in with it,
and two turns of the loop; on an idle server, a few microseconds.
"""

from __future__ import annotations

import asyncio


class ResponseClusters:
    """Where the responses of one event-loop pass wait to be written together."""

    __slots__ = ("_loop", "_waiting")

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[asyncio.Future[None]] | None = None

    async def turn(self) -> None:
        """Return once every response made in this pass of the loop is ready to be written."""
        loop = asyncio.get_running_loop()
        waiting = self._waiting
        if waiting is None or self._loop is not loop:
            waiting = self._waiting = []
            self._loop = loop
            # Runs after everything the loop had ready when it was scheduled: this pass's work.
            loop.call_soon(self._release, waiting)
        # One future a response (not one shared by all): a request cancelled while it waits
        # must not cancel the others.
        future: asyncio.Future[None] = loop.create_future()
        waiting.append(future)
        await future

    def _release(self, waiting: list[asyncio.Future[None]]) -> None:
        if self._waiting is waiting:
            self._waiting = None
        for future in waiting:
            if not future.done():
                future.set_result(None)
