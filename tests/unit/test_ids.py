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


def test_ids_made_in_one_millisecond_sort_and_number_in_the_order_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Within one millisecond too: each id of a process counts on from the one before, so a
    new id is filed (an index entry, a SQLite row, decisions O20) after the last one."""
    monkeypatch.setattr("uprof.domain.ids.time.time_ns", lambda: 1_795_000_000_000_000_000)
    made = [ids.random_id(p) for p in ("uprof", "req", "uprof") * 1000]
    profiles = [i for i in made if i.startswith("uprof_")]
    assert profiles == sorted(profiles) and len(set(profiles)) == len(profiles)
    numbers = [ids.row_number(i) or -1 for i in profiles]
    assert min(numbers) >= 0
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


def test_each_millisecond_counts_from_a_random_point(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes (workers) count through one millisecond's values from different points,
    so their ids rarely share a number."""
    now = [1_795_000_000_000_000_000]
    monkeypatch.setattr("uprof.domain.ids.time.time_ns", lambda: now[0])
    starts = set()
    for _ in range(50):
        now[0] += 1_000_000
        starts.add(ids.random_id("uprof")[len("uprof_") + 8 : len("uprof_") + 11])
    assert len(starts) > 40


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


def test_an_ids_number_is_its_millisecond_and_three_random_characters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ms = 1_795_000_000_123
    monkeypatch.setattr("uprof.domain.ids.time.time_ns", lambda: ms * 1_000_000)
    made = ids.random_id("uprof")
    body = made[len("uprof_") :]
    three = sum(BASE58.index(c) * 58**p for p, c in enumerate(reversed(body[8:11])))
    assert ids.row_number(made) == ms * 58**3 + three
    assert ids.row_number(made.replace("uprof_", "org_")) == ids.row_number(made)


_bodies = st.text(alphabet=BASE58, min_size=24, max_size=24)


@given(_bodies, _bodies)
def test_numbers_follow_the_ids_first_eleven_characters(a: str, b: str) -> None:
    """Later ids have larger numbers (rows filed under them follow one another), and ids
    differing only past the eleventh character share one."""
    na, nb = ids.row_number(f"uprof_{a}"), ids.row_number(f"uprof_{b}")
    if na is None or nb is None:  # past 2**63: only for times beyond the year 3400
        assert a[0] > "1" or b[0] > "1"
        return
    assert 0 <= na < 2**63 and 0 <= nb < 2**63
    assert (na < nb) == (a[:11] < b[:11]) and (na == nb) == (a[:11] == b[:11])


@given(st.text(max_size=40))
def test_any_other_text_has_no_number(other: str) -> None:
    if len(other) >= 25 and other[-25] == "_" and all(c in BASE58 for c in other[-24:-13]):
        return  # the form of an id
    assert ids.row_number(other) is None


def test_ids_made_now_have_numbers() -> None:
    assert all(ids.row_number(ids.random_id(p)) is not None for p in ("uprof", "org"))


def test_the_count_carries_into_its_first_character(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past its last two characters' 3,364 values the count moves its first character on, and
    ids still sort in the order made."""
    monkeypatch.setattr("uprof.domain.ids.time.time_ns", lambda: 1_796_000_000_000_000_000)
    monkeypatch.setattr(ids._rng, "randrange", lambda _n: 58 * 58 - 3)
    ids._sequence.reset()
    made = [ids.random_id("uprof") for _ in range(8)]
    counts = [i[len("uprof_") + 8 : len("uprof_") + 11] for i in made]
    assert counts[:4] == ["1zx", "1zy", "1zz", "211"]
    assert made == sorted(made)
    ids._sequence.reset()
