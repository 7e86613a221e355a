"""Slow write batches are logged with where their time went, and never flood the log."""

from __future__ import annotations

import logging

import pytest

from uprof.store.database import SlowWrites


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("slow write")]


def _never(*_: object) -> str:
    raise AssertionError("a batch that is not logged is not described")


def test_a_batch_over_the_threshold_is_logged_with_its_parts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slow = SlowWrites(0.01, clock=_Clock())
    with caplog.at_level(logging.WARNING, logger="uprof"):
        slow.report(0.0099, 7, _never)
        slow.report(0.0613, 23, lambda: "COMMIT 60.9 ms")
        slow.report(0.010, 1, lambda: "COMMIT 9.9 ms")
    assert _lines(caplog) == [
        "slow write batch: 61.3 ms, 23 writes (COMMIT 60.9 ms)",
        "slow write batch: 10.0 ms, 1 write (COMMIT 9.9 ms)",
    ]


def test_a_threshold_of_zero_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    slow = SlowWrites(0, clock=_Clock())
    with caplog.at_level(logging.WARNING, logger="uprof"):
        slow.report(5.0, 100, _never)
    assert _lines(caplog) == []


def test_at_most_so_many_lines_a_second_and_the_rest_counted_into_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = _Clock()
    slow = SlowWrites(0.01, per_second=3, clock=clock)
    with caplog.at_level(logging.WARNING, logger="uprof"):
        for ms in (20, 21, 22, 80, 23, 24):  # one second's worth: three lines, three counted
            slow.report(ms / 1000, 2, lambda: "x")
            clock.now += 0.1
        clock.now += 0.5  # past the second: lines again, the first saying what was held
        slow.report(0.030, 2, lambda: "x")
        slow.report(0.031, 2, lambda: "x")
    assert _lines(caplog) == [
        "slow write batch: 20.0 ms, 2 writes (x)",
        "slow write batch: 21.0 ms, 2 writes (x)",
        "slow write batch: 22.0 ms, 2 writes (x)",
        "slow write batch: 30.0 ms, 2 writes (x); 3 more since the last line, the longest 80.0 ms",
        "slow write batch: 31.0 ms, 2 writes (x)",
    ]
