"""The paired before/after comparison: the order of each round and how it is summarised."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.ab import served_as, summary_line, turn
from click.testing import CliRunner


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


def test_a_compiled_build_is_not_paired_with_an_interpreted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A side whose build was pruned would be served interpreted and skew every pair.
    import bench.run

    from bench import ab

    before, after = tmp_path / "before", tmp_path / "after"
    before.mkdir()
    after.mkdir()
    monkeypatch.setattr(
        bench.run, "native_build", lambda src: tmp_path / "0123abcd" if src == after else None
    )

    def no_store(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("refused before loading a store")

    monkeypatch.setattr(ab, "load", no_store)
    result = CliRunner().invoke(ab.main, ["--before", str(before), "--after", str(after)])
    assert result.exit_code == 1
    assert "one build is compiled and the other is not" in result.output
