"""The clock, injected: tests set time instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]  # microseconds since the Unix epoch, UTC


def system_clock() -> int:
    return time.time_ns() // 1000


class ManualClock:
    """A clock that moves only when told to (tests, and later an operator's test clock)."""

    def __init__(self, start_us: int) -> None:
        self.now_us = start_us

    def __call__(self) -> int:
        return self.now_us

    def advance(self, seconds: float) -> None:
        self.now_us += int(seconds * 1_000_000)
