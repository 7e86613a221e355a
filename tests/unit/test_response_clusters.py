"""Responses made in one pass of the event loop are released to be written together."""

from __future__ import annotations

import asyncio

from uprof.http.clusters import ResponseClusters


async def _respond(clusters: ResponseClusters, name: str, log: list[str]) -> None:
    log.append(f"{name} ready")
    await clusters.turn()
    log.append(f"{name} sent")


def test_the_responses_of_one_pass_go_out_together() -> None:
    async def main() -> list[str]:
        clusters = ResponseClusters()
        log: list[str] = []
        # Tasks created together start in one pass, as the requests one read of the sockets
        # takes in do.
        await asyncio.gather(*(_respond(clusters, n, log) for n in "abc"))
        return log

    # Written one by one, each would be sent before the next is ready.
    assert asyncio.run(main()) == ["a ready", "b ready", "c ready", "a sent", "b sent", "c sent"]


def test_a_later_pass_makes_a_cluster_of_its_own() -> None:
    async def main() -> list[str]:
        clusters = ResponseClusters()
        log: list[str] = []
        first = asyncio.gather(*(_respond(clusters, n, log) for n in "ab"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        second = asyncio.gather(*(_respond(clusters, n, log) for n in "xy"))
        await asyncio.gather(first, second)
        return log

    log = asyncio.run(main())
    assert log.index("b sent") < log.index("x ready")
    assert log[-4:] == ["x ready", "y ready", "x sent", "y sent"]


def test_a_cancelled_response_does_not_hold_or_cancel_the_others() -> None:
    async def main() -> tuple[list[str], bool]:
        clusters = ResponseClusters()
        log: list[str] = []
        tasks = [asyncio.create_task(_respond(clusters, n, log)) for n in "abc"]
        await asyncio.sleep(0)  # all three wait for their turn
        tasks[1].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return log, isinstance(results[1], asyncio.CancelledError)

    log, cancelled = asyncio.run(main())
    assert cancelled
    assert log == ["a ready", "b ready", "c ready", "a sent", "c sent"]


def test_one_instance_serves_loop_after_loop() -> None:
    # The app object outlives an event loop in tests (one TestClient after another).
    clusters = ResponseClusters()
    for _ in range(2):
        log: list[str] = []

        async def main(log: list[str] = log) -> None:
            await asyncio.wait_for(_respond(clusters, "a", log), timeout=5)

        asyncio.run(main())
        assert log == ["a ready", "a sent"]


def test_a_response_waits_one_pass_of_the_loop() -> None:
    # It is written in the loop's next pass: after what was ready when it turned (this pass's
    # other work), before what that work scheduled in turn.
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        log: list[str] = []

        def this_pass() -> None:
            log.append("this pass")
            loop.call_soon(log.append, "the pass after")

        loop.call_soon(this_pass)
        await ResponseClusters().turn()
        log.append("sent")
        await asyncio.sleep(0)
        return log

    assert asyncio.run(main()) == ["this pass", "sent", "the pass after"]
