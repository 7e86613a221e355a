"""A response's head and body written to its socket in one write.

uvicorn writes a response's status line and headers when the app sends
``http.response.start``, and its body when the app sends ``http.response.body``: two writes to
the transport, and uvloop's transport makes each a ``write()`` of its own at once. On loopback
each of those runs the whole TCP path twice, the receiving side's included (its softirq runs
on the sending CPU), sends two segments, and may wake the client twice. A ``strace -c`` of a
GET run counted two ``write()`` calls a request (docs/performance.md, "Round 27").

``hold_writes`` puts a stand-in in front of the transport of the connection a ``send`` belongs
to, which keeps what uvicorn writes until ``HeldWrites.release`` writes it as one. Nothing
about the response changes: the bytes are uvicorn's, in uvicorn's order, and uvicorn checks
and finishes the response as always (content length, keep-alive, the next pipelined request).

It depends on one fact of uvicorn's protocols (httptools and h11 alike): the ``send`` an app is
given is the bound method of the request's cycle, which writes through the cycle's
``transport`` attribute. Where that does not hold (another server, a test client), there is
nothing to hold and the response is sent as before. The stand-in forwards what it does not
hold, and gives up holding before anything that must come after the held bytes (a close).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any


class HeldWrites:
    """Stands in for a connection's transport while one response is sent."""

    __slots__ = ("_cycle", "_parts", "_transport")

    def __init__(self, cycle: Any, transport: Any) -> None:
        self._cycle = cycle
        self._transport = transport
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self._parts.append(data)

    def writelines(self, lines: Any) -> None:
        self._parts.extend(lines)

    def flush(self) -> None:
        """Write what is held, in one write."""
        parts = self._parts
        if parts:
            self._transport.write(parts[0] if len(parts) == 1 else b"".join(parts))
            self._parts = []

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._parts = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        # is_closing, get_extra_info, pause_reading, ...: the transport's own
        return getattr(self._transport, name)

    def release(self) -> None:
        """Give the cycle its transport back and write what is held."""
        if self._cycle.transport is self:
            self._cycle.transport = self._transport
        self.flush()


def hold_writes(send: Any) -> HeldWrites | None:
    """A stand-in holding the writes of ``send``'s connection until ``release``, or None when
    ``send`` is not a server's cycle writing through a ``transport`` attribute."""
    cycle: Any = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or isinstance(transport, HeldWrites):
        return None
    held = HeldWrites(cycle, transport)
    cycle.transport = held
    return held


async def send_whole(send: Any, sending: Awaitable[None]) -> None:
    """Await ``sending`` (a response being sent through ``send``) with its connection's writes
    held, and write them as one when it ends, however it ends."""
    held = hold_writes(send)
    try:
        await sending
    finally:
        if held is not None:
            held.release()
