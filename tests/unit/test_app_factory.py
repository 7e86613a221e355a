"""The server's app factory: what it sets up for the process beyond the app itself."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from uprof.app import YOUNG_GC_THRESHOLD, app_from_env


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_the_served_app_collects_the_young_generation_less_often(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Serving makes no cyclic garbage; at Python's default (700) a young collection ran every
    # ~70 updates and found nothing (docs/performance.md, "Round 12").
    monkeypatch.setenv("UPROF_DATABASE_URL", f"sqlite:///{tmp_path / 'uprof.db'}")
    gc.set_threshold(700, 10, 10)
    app_from_env()
    assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, 10, 10)
    assert YOUNG_GC_THRESHOLD >= 10_000
    assert gc.get_freeze_count() > 0  # what start-up made is out of the generations
