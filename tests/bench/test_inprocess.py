"""The in-process walks of list pages (``bench/inprocess.py``, scenario ``walk``) go on as
``bench/wrk/list.lua``'s do: each slot from its own last page, ending at random or at the
last page, so that the 64 requests of a pass do not all read the first page."""

from __future__ import annotations

import re
from pathlib import Path

from bench.inprocess import WALK_END, Walks

LIST_LUA = Path(__file__).resolve().parents[2] / "bench" / "wrk" / "list.lua"


def _page(cursor: str | None) -> bytes:
    tail = b"null" if cursor is None else b'"' + cursor.encode() + b'"'
    return b'{"data":[' + b'{"id":"x"},' * 20 + b'{"id":"y"}],"next_page":' + tail + b"}"


def test_each_slot_goes_on_from_its_own_page() -> None:
    walks = Walks(slots=4, end=1_000_000)  # walks that (almost) never end at random
    assert [walks.query(i) for i in range(4)] == [b"limit=20"] * 4
    for i in range(4):
        walks.answered(i, _page(f"page_{i}"))
    assert walks.query(5) == b"limit=20&page=page_1"  # slot 1 again, on its next page
    walks.answered(5, _page(None))  # the last page ends the walk
    assert walks.query(1) == b"limit=20"
    assert walks.query(2) == b"limit=20&page=page_2"


def test_walks_end_at_random_one_time_in_walk_end() -> None:
    walks = Walks(slots=1)
    pages = walks_ended = 0
    for i in range(64_000):
        if walks.query(i) == b"limit=20":
            walks_ended += 1
        walks.answered(i, _page(f"page_{i}"))
        pages += 1
    mean_walk = pages / walks_ended
    assert 0.8 * WALK_END < mean_walk < 1.2 * WALK_END


def test_walks_end_as_often_as_list_luas() -> None:
    found = re.search(r"^local WALK_END = (\d+)$", LIST_LUA.read_text(), re.MULTILINE)
    assert found is not None and int(found.group(1)) == WALK_END
