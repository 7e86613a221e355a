"""A key's organization is looked up once for all the requests that miss the cache together.

Under load, when a key's cache entry expires every request in flight misses it in the same
moment; each looking the key up on its own sent as many reads to the database (64 at the
benchmark's 64 connections, every five seconds)."""

from __future__ import annotations

import asyncio
from typing import Any

from uprof.service.container import Services


def _counting_reads(
    services: Services, monkeypatch: Any, gate: asyncio.Event, read_done: asyncio.Event
) -> list[int]:
    """Count the key service's reads; each, once done, holds its answer until ``gate``."""
    db = services.db
    read = db.read
    calls: list[int] = []

    async def counting(fn: Any) -> Any:
        calls.append(1)
        found = await read(fn)
        read_done.set()
        await gate.wait()  # the answer is on its way back
        return found

    monkeypatch.setattr(db, "read", counting)
    return calls


def test_requests_that_miss_together_share_one_lookup(services: Services, monkeypatch: Any) -> None:
    _key_id, raw = services.keys.create_key("acme")

    async def main() -> list[str | None]:
        gate, read_done = asyncio.Event(), asyncio.Event()
        calls = _counting_reads(services, monkeypatch, gate, read_done)
        waiting = [asyncio.ensure_future(services.keys.authenticate(raw)) for _ in range(50)]
        # One of them gives up (its client went away): the others still get their answer.
        waiting[0].cancel()
        await asyncio.sleep(0)
        gate.set()
        answers = await asyncio.gather(*waiting[1:])
        assert len(calls) == 1
        # Cached now: no more reads.
        assert await services.keys.authenticate(raw) == answers[0]
        assert len(calls) == 1
        # An unknown key is looked up each time (a new key works at once), also shared.
        unknown = await asyncio.gather(*(services.keys.authenticate("nope") for _ in range(5)))
        assert unknown == [None] * 5
        assert len(calls) == 2
        return answers

    answers = asyncio.run(main())
    assert len(set(answers)) == 1 and answers[0] is not None and answers[0].startswith("org_")


def test_a_lookup_that_a_revocation_overtook_is_not_kept(
    services: Services, monkeypatch: Any
) -> None:
    key_id, raw = services.keys.create_key("acme")

    async def main() -> None:
        gate, read_done = asyncio.Event(), asyncio.Event()
        calls = _counting_reads(services, monkeypatch, gate, read_done)
        first = asyncio.ensure_future(services.keys.authenticate(raw))
        await read_done.wait()
        # Revoked after the lookup's read found the key, before its answer arrived.
        assert services.keys.revoke(key_id)
        gate.set()
        assert (await first) is not None  # it answers what its read found
        # The next request looks the key up again and finds it revoked.
        assert await services.keys.authenticate(raw) is None
        assert len(calls) == 2

    asyncio.run(main())
