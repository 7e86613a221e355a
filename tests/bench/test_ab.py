"""The paired before/after comparison: the order of each round and how it is summarised."""

from __future__ import annotations

from bench.ab import summary_line, turn


def test_the_builds_take_turns_going_first() -> None:
    assert [turn(i) for i in range(4)] == [("A", "B"), ("B", "A"), ("A", "B"), ("B", "A")]


def test_the_figure_is_the_median_of_each_rounds_ratio() -> None:
    # The host slowed down in round 2: both builds fell, their ratio did not.
    line = summary_line("create", [1000.0, 500.0, 1000.0], [1100.0, 560.0, 1150.0])
    assert line.startswith("create  A    1,000 req/s   B    1,100 req/s")
    assert "B/A by round 1.10 1.12 1.15" in line
    assert line.endswith("median 1.120")
