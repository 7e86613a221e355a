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
    monkeypatch.setattr("uprof.domain.ids.time.time_ns", lambda: now[0])
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


def test_a_forked_worker_makes_ids_of_its_own() -> None:
    """Workers are forked from one process: neither the generator's state nor the random
    characters already drawn may be shared, or two workers would hand out the same ids."""
    import os

    ids.random_id("uprof")  # the parent holds drawn characters
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next ids and leave
        os.close(read)
        os.write(write, " ".join(ids.random_id("uprof") for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        child = f.read().split()
    os.waitpid(pid, 0)
    parent = [ids.random_id("uprof") for _ in range(50)]
    strip = [i[len("uprof_") + 8 :] for i in child], [i[len("uprof_") + 8 :] for i in parent]
    assert len(child) == 50 and not set(strip[0]) & set(strip[1])
