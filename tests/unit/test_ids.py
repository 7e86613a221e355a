"""Identifiers: shape, uniqueness, and time order."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uprof.domain import ids

BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def test_shape_is_prefix_and_24_base58_characters() -> None:
    for prefix in ("uprof", "req", "org", "key"):
        assert re.fullmatch(rf"{prefix}_[{BASE58}]{{24}}", ids.random_id(prefix))


def test_ids_are_unique() -> None:
    made = [ids.random_id("uprof") for _ in range(200_000)]
    assert len(set(made)) == len(made)


def test_later_ids_sort_after_earlier_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_795_000_000_000_000_000]  # ns
    monkeypatch.setattr(ids.time, "time_ns", lambda: now[0])
    made = []
    for _ in range(500):
        made.append(ids.random_id("uprof"))
        now[0] += 1_000_000  # one millisecond
    assert made == sorted(made)


@given(st.integers(0, 58**8 - 1), st.integers(0, 58**8 - 1))
def test_time_text_sorts_as_the_number(a: int, b: int) -> None:
    ta, tb = ids._time_text(a), ids._time_text(b)
    assert len(ta) == len(tb) == 8
    assert (ta < tb) == (a < b)
