"""The harness's figures: each round's two runs in turns, and the ratio as the median of the
rounds' ratios (what a host that changes speed between rounds cannot move)."""

from __future__ import annotations

import pytest
from bench.common import in_turns, paired_ratio, spread
from bench.run import HEADER, Row, Run, format_row


def _run(target: str, rps: float) -> Run:
    return Run(
        target=target,
        scenario="list",
        rps=rps,
        p50_ms=5.0,
        p90_ms=7.0,
        p99_ms=9.0,
        p999_ms=12.0,
        max_ms=20.0,
        requests=int(rps * 10),
        errors={},
        peak_rss_mib=80.0,
        peak_private_mib=60.0,
        cpu={"server": 99.0, "wrk": 25.0},
    )


def test_the_runs_of_a_round_take_turns_going_first() -> None:
    assert [in_turns(i, ("baseline", "uprof")) for i in range(3)] == [
        ("baseline", "uprof"),
        ("uprof", "baseline"),
        ("baseline", "uprof"),
    ]


def test_the_ratio_is_the_median_of_the_rounds_not_of_the_median_runs() -> None:
    # The host slowed down in round 2, for both servers alike. The median runs come from
    # different rounds (the baseline's from round 3, uprof's from round 1): 6,000 / 24,000 =
    # 0.25 would report a phase of the host, not uprof.
    baseline = [_run("baseline", r) for r in (25_000, 16_000, 24_000)]
    uprof = [_run("uprof", r) for r in (6_000, 5_200, 7_500)]
    row = Row.of_rounds("sqlite", 1, 1_000_000, "list", baseline, uprof)
    assert row.pairs == pytest.approx([0.24, 0.325, 0.3125])
    assert row.ratio == pytest.approx(0.3125)
    assert row.ratio_of_medians == pytest.approx(0.25)
    assert row.ratio_met
    assert row.baseline.rps == 24_000 and row.uprof.rps == 6_000
    figures = row.as_dict()
    assert figures["ratio"] == 0.3125
    assert figures["pair_ratios"] == [0.24, 0.325, 0.3125]
    assert figures["ratio_of_medians"] == 0.25


def test_the_printed_row_shows_the_rounds_spread_under_its_heading() -> None:
    baseline = [_run("baseline", r) for r in (20_000, 20_000, 20_000)]
    uprof = [_run("uprof", r) for r in (5_600, 6_000, 6_600)]
    row = Row.of_rounds("sqlite", 1, 1_000, "list", baseline, uprof)
    line = format_row(row)
    at = HEADER.index("rounds")
    assert line[at - 5 : at + len("rounds")].strip() == "0.28-0.33"
    assert "0.30" in line


def test_one_round_has_no_spread() -> None:
    assert spread([0.3]) == ""
    assert paired_ratio([10_000.0], [3_000.0]) == pytest.approx(0.3)


def test_runs_that_do_not_pair_up_are_refused() -> None:
    with pytest.raises(ValueError, match="not one pair a round"):
        paired_ratio([1.0, 2.0], [1.0])
