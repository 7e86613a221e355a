"""The paired before/after comparison: the order of each round and how it is summarised."""

from __future__ import annotations

from pathlib import Path

from bench.ab import served_as, summary_line, turn


def test_the_builds_take_turns_going_first() -> None:
    assert [turn(i) for i in range(4)] == [("A", "B"), ("B", "A"), ("A", "B"), ("B", "A")]


def test_the_figure_is_the_median_of_each_rounds_ratio() -> None:
    # The host slowed down in round 2: both builds fell, their ratio did not.
    line = summary_line("create", [1000.0, 500.0, 1000.0], [1100.0, 560.0, 1150.0])
    assert line.startswith("create  A    1,000 req/s   B    1,100 req/s")
    assert "B/A by round 1.10 1.12 1.15" in line
    assert line.endswith("median 1.120")


def test_each_side_says_whether_it_is_served_compiled(tmp_path: Path) -> None:
    assert served_as(None).startswith("interpreted: no native build")
    assert served_as(tmp_path / "0123abcd") == "compiled: native build 0123abcd"
