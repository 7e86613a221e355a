"""The harness's figures: each round's two runs in turns, and the ratio as the median of the
rounds' ratios (what a host that changes speed between rounds cannot move)."""

from __future__ import annotations

import ctypes
import io
import logging
import mmap
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
from bench.common import in_turns, paired_ratio, spread
from bench.load import store_engine
from bench.run import (
    HEADER,
    POSTGRES_SETTINGS,
    SOAK_RSS_TARGET,
    PostgresWaits,
    Row,
    Run,
    _prewarm_postgres,
    backend_lines,
    buffered_relations,
    checkpoint_note,
    checkpoint_postgres,
    disk_line,
    disk_sync_probe,
    evict_from_page_cache,
    format_row,
    huge_pages,
    is_local,
    mapped_store,
    memory_drift,
    p99_lines,
    page_faults,
    postgres_checkpoints,
    postgres_settings,
    postgres_settings_line,
    scaled,
    scaling_lines,
    server_env,
    slow_writes,
    slow_writes_note,
    soak_memory_note,
    store_files,
    waits_note,
)
from sqlalchemy import text

from uprof.store.database import SlowWrites


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


def _one_round(
    backend: str, n: int, scenario: str, baseline: tuple[float, float], uprof: tuple[float, float]
) -> Row:
    """A row of one round: each server's (req/s, p99 ms)."""
    runs = []
    for target, (rps, p99_ms) in (("baseline", baseline), ("uprof", uprof)):
        run = _run(target, rps)
        run.p99_ms = p99_ms
        runs.append([run])
    return Row.of_rounds(backend, 1, n, scenario, runs[0], runs[1])


def test_a_p99_the_throughput_explains_has_the_baselines_shape() -> None:
    # 64 connections: the baseline's mean latency is 3.2 ms at 20,000 req/s, uprof's 10.7 ms at
    # 6,000; a p99 of 2x the mean for both is 6.4 and 21.3 ms.
    row = _one_round("sqlite", 1_000_000, "list", (20_000, 6.4), (6_000, 21.3))
    assert not row.p99_met
    assert row.tail == pytest.approx(1.0, abs=0.01)
    assert row.p99_needs_ratio == pytest.approx(0.64)
    (line,) = p99_lines([row])
    assert "the throughput's" in line and "ratio >= 0.64" in line
    assert row.as_dict()["tail"] == pytest.approx(1.0, abs=0.01)


def test_a_p99_longer_than_the_throughput_explains_is_uprofs_own() -> None:
    row = _one_round("postgres", 1_000_000, "update", (23_000, 5.7), (6_300, 55.5))
    assert row.tail == pytest.approx(55.5 * 6_300 / (5.7 * 23_000))
    (line,) = p99_lines([row])
    assert "a tail of its own" in line


def test_a_met_p99_is_not_explained() -> None:
    row = _one_round("sqlite", 1_000, "get", (20_000, 4.0), (12_000, 7.0))
    assert row.p99_met and p99_lines([row]) == []
    at = HEADER.index("tail")
    assert format_row(row)[at - 2 : at + 4].strip() == f"{row.tail:.2f}"


def test_a_checkpoint_during_a_run_is_noted(postgres_url: str) -> None:
    before = postgres_checkpoints(postgres_url)
    assert before is not None
    with store_engine(postgres_url) as engine, engine.connect() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_ckpt (n int)"))
        conn.execute(text("INSERT INTO bench_ckpt VALUES (1)"))
        conn.commit()
        conn.execute(text("CHECKPOINT"))
        # The session's database is shared: a table left here is one the migrations never made.
        conn.execute(text("DROP TABLE bench_ckpt"))
        conn.commit()
    after = postgres_checkpoints(postgres_url)
    assert after is not None and after[0] > before[0]
    run = _run("uprof", 6_000)
    run.extra.update(
        pg_checkpoints_begun=after[0] - before[0], pg_checkpoint_buffers=after[1] - before[1]
    )
    assert "checkpoint ran during uprof's run" in checkpoint_note(run)
    assert checkpoint_note(_run("uprof", 6_000)) == ""


def test_a_postgresql_store_is_checkpointed_before_its_runs(postgres_url: str) -> None:
    with store_engine(postgres_url) as engine, engine.connect() as conn:
        conn.execute(text("CREATE TABLE bench_dirty (n int, pad text)"))
        conn.execute(
            text(
                "INSERT INTO bench_dirty SELECT g, repeat('x', 500) FROM generate_series(1, 5000) g"
            )
        )
        conn.commit()
    try:
        # ~2.7 MB of new rows sit dirty in the shared buffers: the checkpoint writes them now,
        # not the next timed one during the runs.
        written = checkpoint_postgres(postgres_url)
        assert written is not None and written >= 300
    finally:
        with store_engine(postgres_url) as engine, engine.connect() as conn:
            conn.execute(text("DROP TABLE bench_dirty"))
            conn.commit()
    assert checkpoint_postgres("postgresql+psycopg://nobody@127.0.0.1:1/none") is None


def test_no_checkpoint_figures_without_postgresql() -> None:
    assert postgres_checkpoints("postgresql+psycopg://nobody@127.0.0.1:1/none") is None
    assert postgres_settings("postgresql+psycopg://nobody@127.0.0.1:1/none") is None


def test_the_relations_read_into_shared_buffers_are_the_smallest_that_fit() -> None:
    mib = 1 << 20
    relations = [(1, 700 * mib), (2, 40 * mib), (3, 90 * mib), (4, 30 * mib)]
    # 128 MiB of buffers: nine tenths is 115 MiB, 30 + 40 fit, 90 more does not.
    assert buffered_relations(relations, 128 * mib) == [4, 2]
    assert buffered_relations(relations, 1024 * mib) == [4, 2, 3, 1]
    assert buffered_relations(relations, 16 * mib) == []


def test_the_prewarm_reads_the_store_into_the_servers_buffers(postgres_url: str) -> None:
    from uprof.store.database import open_database
    from uprof.store.migrate import migrate

    database = open_database(postgres_url)
    try:
        migrate(database)
    finally:
        database.close()
    with store_engine(postgres_url) as engine, engine.begin() as conn:
        conn.execute(text("INSERT INTO organizations VALUES ('org_prewarm', 'org_prewarm', 1)"))
        conn.execute(
            text(
                "INSERT INTO user_profiles (id, org_id, created_at, doc)"
                " SELECT 'uprof_' || n, 'org_prewarm', n, repeat('x', 500)"
                " FROM generate_series(1, 2000) n"
            )
        )

    def buffer_reads() -> int:
        # Reads through the buffer manager, hits or misses: 'read' mode bypasses it.
        with store_engine(postgres_url) as engine, engine.connect() as conn:
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            return int(
                conn.execute(
                    text(
                        "SELECT heap_blks_read + heap_blks_hit FROM pg_statio_user_tables"
                        " WHERE relname = 'user_profiles'"
                    )
                ).scalar_one()
            )

    with store_engine(postgres_url) as engine, engine.connect() as conn:
        blocks = conn.execute(text("SELECT pg_relation_size('user_profiles') / 8192")).scalar_one()
    try:
        before = buffer_reads()
        _prewarm_postgres(postgres_url)
        deadline = time.monotonic() + 5  # a closed backend's statistics reach the server at exit
        while buffer_reads() - before < blocks and time.monotonic() < deadline:
            time.sleep(0.05)
        assert blocks > 100 and buffer_reads() - before >= blocks
    finally:
        # The session's database is shared with the API tests: leave no organization behind.
        with store_engine(postgres_url) as engine, engine.begin() as conn:
            conn.execute(text("DELETE FROM user_profiles WHERE org_id = 'org_prewarm'"))
            conn.execute(text("DELETE FROM organizations WHERE id = 'org_prewarm'"))


def test_this_machines_huge_pages_are_noted_beside_a_local_servers_settings() -> None:
    meminfo = (
        "MemTotal:       24000000 kB\nHugePages_Total:    5400\nHugePages_Free:     5286\n"
        "HugePages_Rsvd:     5130\nHugePages_Surp:        0\nHugepagesize:       2048 kB\n"
    )
    assert huge_pages(meminfo) == "this machine: 5,400 huge pages of 2 MiB, 5,244 held"
    none_set = meminfo.replace("5400", "0").replace("5286", "0").replace("5130", "0")
    assert huge_pages(none_set) == "this machine: no huge pages set aside"
    assert huge_pages("MemTotal: 1 kB\n") is None
    line = postgres_settings_line({"server_version": "15.2", "huge_pages": "try"}, "x")
    assert line == "postgres: 15.2; huge_pages try (x)"
    assert is_local("postgresql+psycopg://postgres@127.0.0.1:5432/db")
    assert is_local("postgresql:///db?host=/var/run/postgresql")
    assert not is_local("postgresql://db.internal:5432/db")


def test_the_servers_write_settings_are_printed_with_the_figures(postgres_url: str) -> None:
    found = postgres_settings(postgres_url)
    assert found is not None and list(found) == list(POSTGRES_SETTINGS)
    with store_engine(postgres_url) as engine, engine.connect() as conn:
        assert found["max_wal_size"] == conn.execute(text("SHOW max_wal_size")).scalar()
        assert found["server_version"] == conn.execute(text("SHOW server_version")).scalar()
    line = postgres_settings_line(found)
    assert line.startswith(f"postgres: {found['server_version'].split()[0]}; shared_buffers ")
    assert f"max_wal_size {found['max_wal_size']}," in line
    assert line.endswith(f"synchronous_commit {found['synchronous_commit']}")


def test_the_store_sizes_are_compared_against_their_own_rounds_baselines() -> None:
    # The host slowed by a fifth between the 1k and the 10M rows: uprof's raw throughput fell
    # with it, its ratio to the baseline did not.
    small = _one_round("sqlite", 1_000, "create", (21_000, 6.4), (7_700, 13.7))
    large = _one_round("sqlite", 10_000_000, "create", (16_800, 8.0), (6_160, 17.1))
    tput, p99 = scaled(small, large)
    assert tput == pytest.approx(1.0, abs=0.01)
    assert p99 == pytest.approx((17.1 / 8.0) / (13.7 / 6.4))
    (line,) = scaling_lines([small, large])
    assert "met" in line and "NOT met" not in line and "raw 0.80x" in line
    assert "the baseline 0.80x" in line
    slower = _one_round("sqlite", 10_000_000, "create", (21_000, 6.4), (5_900, 17.1))
    (line,) = scaling_lines([small, slower])
    assert "NOT met" in line


def test_a_host_that_changed_speed_between_the_stores_is_pointed_out() -> None:
    small = _one_round("sqlite", 1_000, "get", (16_665, 9.8), (11_028, 11.9))
    steady = _one_round("sqlite", 10_000_000, "get", (18_000, 9.8), (10_500, 12.5))
    (line,) = scaling_lines([small, steady])
    assert "the baseline 1.08x" in line and "changed speed" not in line
    # Round 18: the baseline 1.23 times as fast at 10M as at 1k, uprof's raw figure 0.89x.
    faster = _one_round("sqlite", 10_000_000, "get", (20_473, 7.0), (9_845, 12.8))
    (line,) = scaling_lines([small, faster])
    assert "NOT met" in line
    assert "moved 1.23x between the two stores' runs: the host changed speed" in line
    slower = _one_round("sqlite", 10_000_000, "get", (12_000, 9.8), (8_000, 12.5))
    (line,) = scaling_lines([small, slower])
    assert "moved 0.72x" in line


def test_the_tail_is_the_median_of_the_rounds_own() -> None:
    # Within each round uprof's latencies have the baseline's shape (tail 1.0), while the host
    # moved p99 x req/s from round to round. The median runs come from different rounds (the
    # baseline's from round 1, uprof's from round 2): set side by side they would read 1.25.
    baseline = [_run("baseline", r) for r in (20_000, 15_000, 25_000)]
    uprof = [_run("uprof", r) for r in (5_000, 6_000, 7_000)]
    for run, p99 in zip(baseline + uprof, (6.0, 10.0, 4.0, 24.0, 25.0, 100 / 7), strict=True):
        run.p99_ms = p99
    row = Row.of_rounds("sqlite", 1, 1_000_000, "list", baseline, uprof)
    assert row.round_tails == pytest.approx([1.0, 1.0, 1.0])
    assert row.tail == pytest.approx(1.0)
    b, u = row.baseline, row.uprof
    assert (u.p99_ms * u.rps) / (b.p99_ms * b.rps) == pytest.approx(1.25)
    assert row.p99_needs_ratio == pytest.approx(0.6)
    assert row.as_dict()["round_tails"] == pytest.approx([1.0, 1.0, 1.0])


def test_postgresqls_throughput_is_split_into_cpu_in_use_and_cpu_a_request() -> None:
    # Round 19's update at 1M: PostgreSQL's server used as much CPU a request as SQLite's
    # and was idle a third of the time, waiting for its commits.
    lite = _one_round("sqlite", 1_000_000, "update", (47_934, 2.5), (13_808, 10.1))
    lite.uprof.cpu = {"server": 97.0, "wrk": 17.0}
    pg = _one_round("postgres", 1_000_000, "update", (48_379, 2.4), (9_690, 32.1))
    pg.uprof.cpu = {"server": 67.0, "wrk": 14.0, "postgres": 56.0}
    alone = _one_round("postgres", 1_000, "update", (49_175, 2.1), (13_159, 7.8))
    (line,) = backend_lines([lite, pg, alone])  # no SQLite row at 1k: nothing to set it beside
    assert "w1   1M update  postgres 0.70x sqlite's req/s (9,690 against 13,808)" in line
    assert "CPU in use 0.69x (67% against 97%)" in line
    assert "CPU a request 0.98x (69.1 against 70.2 us)" in line


def test_a_runs_page_faults_are_counted_for_the_servers_processes() -> None:
    # Each page of a fresh anonymous mapping is a minor fault at its first write (no
    # fault-around for anonymous memory, and no huge page unless asked for).
    me = [psutil.Process()]
    before = page_faults(me)
    with mmap.mmap(-1, 64 * mmap.PAGESIZE) as m:
        for off in range(0, len(m), mmap.PAGESIZE):
            m[off] = 1
    after = page_faults(me)
    assert after[0] - before[0] >= 64
    assert after[1] >= before[1]


def test_a_process_that_is_gone_counts_no_faults() -> None:
    child = subprocess.Popen(["true"])
    gone = psutil.Process(child.pid)
    child.wait()
    assert page_faults([gone]) == (0, 0)


def test_what_the_stores_backends_wait_on_is_sampled(postgres_url: str) -> None:
    # One backend waits for an advisory lock another holds, a third sits inside a transaction
    # (as a batch's does while its jobs run in uprof): the sampler sees each as such.
    with (
        store_engine(postgres_url) as engine,
        engine.connect() as holder,
        engine.connect() as idle,
    ):
        holder.execute(text("SELECT pg_advisory_lock(4242)"))
        idle.execute(text("SELECT 1"))  # autobegun: idle in transaction from here on

        def wait_for_the_lock() -> None:
            with engine.connect() as waiter:
                waiter.execute(text("SELECT pg_advisory_lock(4242)"))
                waiter.execute(text("SELECT pg_advisory_unlock(4242)"))

        blocked = threading.Thread(target=wait_for_the_lock)
        blocked.start()
        try:
            with PostgresWaits(postgres_url, interval=0.01) as waits:
                time.sleep(0.5)
        finally:
            holder.execute(text("SELECT pg_advisory_unlock(4242)"))
            blocked.join(timeout=10)
    assert waits.counts.get("advisory", 0) >= 10
    assert waits.counts.get("uprof", 0) >= 10
    assert set(waits.counts) <= {"advisory", "uprof", "CPU", "ClientRead"}


def test_the_waits_note_ranks_what_the_backends_did() -> None:
    run = _run("uprof", 6_000)
    assert waits_note(run) == ""
    run.extra["pg_waits"] = {"CPU": 30, "WALSync": 55, "uprof": 10, "WALWrite": 4, "Lock": 1}
    assert waits_note(run) == (
        "   (uprof's PostgreSQL backends, 100 samples while busy: "
        "WALSync 55%, CPU 30%, uprof 10%, WALWrite 4%)"
    )


def test_no_waits_without_postgresql() -> None:
    with PostgresWaits("postgresql+psycopg://nobody@127.0.0.1:1/none", interval=0.01) as waits:
        time.sleep(0.05)
    assert waits.counts == {}


def _logged_by_uprof(*batches: tuple[float, int, str], per_second: int = 10) -> str:
    """What uprof's own ``SlowWrites`` writes to its log for ``batches`` (seconds, writes,
    parts), within one second, with unrelated lines around them."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger = logging.getLogger("uprof.store")
    logger.addHandler(handler)
    try:
        slow = SlowWrites(0.01, per_second=per_second, clock=lambda: 5.0)
        out.write("INFO:     Started server process [1]\n")
        for seconds, writes, parts in batches:
            slow.report(seconds, writes, lambda parts=parts: parts)  # type: ignore[misc]
        later = SlowWrites(0.01, clock=lambda: 9.0)
        later._unlogged, later._unlogged_longest = slow._unlogged, slow._unlogged_longest
        later.report(0.012, 1, lambda: "COMMIT 11.0 ms")  # the next second's first line
        out.write("INFO:     Shutting down\n")
    finally:
        logger.removeHandler(handler)
    return out.getvalue()


def test_the_slow_write_batches_uprof_logged_are_counted() -> None:
    text_ = _logged_by_uprof(
        (0.0613, 23, "the write lock 0.0 ms, the jobs 1.1 ms, COMMIT 60.1 ms"),
        (0.0205, 9, "its statements and COMMIT on PostgreSQL"),
    )
    assert slow_writes(text_) == {
        "batches": 3,
        "longest_ms": 61.3,
        "longest_parts": "the write lock 0.0 ms, the jobs 1.1 ms, COMMIT 60.1 ms",
    }
    # Past the lines of a second: the ones held back are counted from the next line.
    held = _logged_by_uprof(
        (0.020, 2, "a"), (0.090, 2, "b"), (0.030, 2, "c"), (0.040, 2, "d"), per_second=1
    )
    assert slow_writes(held) == {"batches": 5, "longest_ms": 90.0, "longest_parts": ""}
    assert slow_writes("INFO:     Started\nnothing slow here\n") == {
        "batches": 0,
        "longest_ms": 0.0,
        "longest_parts": "",
    }


def test_a_runs_slow_write_batches_are_noted_and_set_beside_its_p99() -> None:
    row = _one_round("sqlite", 1_000_000, "update", (34_000, 3.6), (9_000, 24.0))
    assert slow_writes_note(row.uprof) == ""
    row.uprof.extra["slow_writes"] = slow_writes(
        _logged_by_uprof((0.0613, 23, "the write lock 0.0 ms, the jobs 1.1 ms, COMMIT 60.1 ms"))
    )
    assert slow_writes_note(row.uprof) == (
        "   (uprof's log: 2 write batch(es) over 10 ms, the longest 61.3 ms: "
        "the write lock 0.0 ms, the jobs 1.1 ms, COMMIT 60.1 ms)"
    )
    (line,) = p99_lines([row])
    assert line.endswith("; 2 write batch(es) over 10 ms in uprof's log, the longest 61.3 ms")


def test_uprof_is_served_with_the_p99_target_as_its_slow_write_threshold() -> None:
    assert server_env()["UPROF_SLOW_WRITE_MS"] == "10"


def test_the_disk_probe_times_synced_writes_and_leaves_nothing_behind(tmp_path: Path) -> None:
    probe = disk_sync_probe(tmp_path / "data", seconds=0.3)
    assert probe["syncs"] > 10
    assert 0 < probe["p50_ms"] <= probe["p99_ms"] <= probe["max_ms"]
    assert 0 <= probe["over_target"] <= probe["syncs"]
    assert list((tmp_path / "data").iterdir()) == []
    line = disk_line(probe)
    assert line.startswith("disk: 8-KiB writes each synced (fdatasync) in ")
    assert f"{probe['syncs']:,} syncs" in line


def test_a_sqlite_soaks_rss_moving_with_flat_private_memory_is_explained() -> None:
    # a climb that stayed: the writers' connection's mapping filling
    soak = {"flat": False, "private_flat": True, "rss_reference_mib": 600.0, "rss_last_mib": 800.0}
    note = soak_memory_note("sqlite", soak)
    assert note is not None and "writers' connection" in note and "private part" in note
    # a swing around a flat level (round 33: peak 1,018 MiB against ~706): the reads' mapping
    swing = {**soak, "flat": True, "rss_reference_mib": 706.0, "rss_peak_mib": 1018.0}
    note = soak_memory_note("sqlite", swing)
    assert note is not None and "swung" in note and "reads' connection" in note
    assert "peak 1,018 MiB against a level of 706" in note and "private part" in note
    # nothing to explain when RSS is flat and its peak near its level, when the private memory
    # moved too (a real leak must not be talked away), or on PostgreSQL (no store file mapped)
    calm = {"flat": True, "private_flat": True, "rss_reference_mib": 700.0, "rss_peak_mib": 760.0}
    assert soak_memory_note("sqlite", calm) is None
    assert soak_memory_note("sqlite", {**soak, "private_flat": False}) is None
    assert soak_memory_note("sqlite", {**swing, "private_flat": False}) is None
    assert soak_memory_note("postgres", soak) is None


def _series(mib_at: Callable[[int], float], seconds: int = 600) -> list[tuple[float, int]]:
    return [(float(t), int(mib_at(t) * 2**20)) for t in range(seconds + 1)]


def test_a_soak_is_judged_by_its_minutes_levels_not_by_one_sample() -> None:
    # Round 34's sawtooth: the writers' mapping steady, the reads' swinging 20-120 MiB from one
    # second to the next, once in a while much more (a pause in the commits).
    rng = random.Random(34)
    sawtooth = _series(lambda t: 630 + rng.uniform(20, 120) + (300 if t % 97 == 0 else 0))
    got = memory_drift(sawtooth, 600)
    assert abs(got["drift"]) < 0.05 and got["drift"] <= SOAK_RSS_TARGET  # flat
    assert got["peak_drift"] > 0.4  # and its peak reported for what it is
    assert 690 < got["reference_mib"] < 720 and got["peak_mib"] > 1000
    # The old judgement (the run's peak against the first sample after a minute) called the
    # same sawtooth a drift of over 40%.
    first = next(b for t, b in sawtooth if t >= 60)
    assert (max(b for t, b in sawtooth if t >= 60) - first) / first > 0.4
    # A climb that stays is not flat, however noisy: +15% over the run.
    climb = _series(lambda t: 700 + 0.175 * t + rng.uniform(-20, 20))
    got = memory_drift(climb, 600)
    assert got["drift"] > SOAK_RSS_TARGET
    # A climb of less than the target is flat; the level ignores a single high sample.
    slow = _series(lambda t: 700 + 0.05 * t + (400 if t == 599 else 0))
    got = memory_drift(slow, 600)
    assert 0.03 < got["drift"] < 0.06 and got["peak_mib"] == 1129.9
    # Samples only in the warm-up (a short run) still give a level; no samples give zeros.
    assert memory_drift(_series(lambda t: 100.0, 5), 600)["reference_mib"] == 100.0
    assert memory_drift([], 600)["drift"] == 0.0


def _resident_bytes(path: Path) -> int:
    """How much of ``path`` the page cache holds (``mincore`` on a mapping never touched)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int]
    libc.mmap.argtypes += [ctypes.c_int, ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = path.stat().st_size
    page = mmap.PAGESIZE
    with open(path, "rb") as f:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, f.fileno(), 0)
        assert addr not in (None, ctypes.c_void_p(-1).value)
        try:
            vec = ctypes.create_string_buffer((size + page - 1) // page)
            assert libc.mincore(addr, size, vec) == 0
            return sum(b & 1 for b in vec.raw) * page
        finally:
            libc.munmap(addr, size)


def _filesystem(path: Path) -> str:
    """The type of the filesystem ``path`` is on (the longest mount point above it)."""
    found, kind = "", ""
    for line in Path("/proc/mounts").read_text().splitlines():
        _dev, point, fstype, *_ = line.split()
        if str(path).startswith(point) and len(point) > len(found):
            found, kind = point, fstype
    return kind


def test_the_other_stores_files_leave_the_page_cache(tmp_path: Path) -> None:
    store = tmp_path / "sqlite-1k.db"
    store.write_bytes(os.urandom(8 << 20))
    wal = tmp_path / "sqlite-1k.db-wal"
    wal.write_bytes(os.urandom(1 << 20))
    os.sync()  # written back: the kernel drops only clean pages
    for path in (store, wal):
        path.read_bytes()
    if _filesystem(tmp_path) == "tmpfs":
        pytest.skip("tmpfs: its files are memory, with nothing behind them to drop to")
    assert _resident_bytes(store) == 8 << 20
    url = f"sqlite:///{store}"
    assert store_files(url) == [store, wal]
    assert evict_from_page_cache([*store_files(url), tmp_path / "gone"]) == 9 << 20
    assert _resident_bytes(store) < (1 << 20) and _resident_bytes(wal) < (1 << 20)
    assert store_files("postgresql+psycopg://u@db.example.com/x") == []


def test_a_local_postgresql_stores_files_are_its_relations(postgres_url: str) -> None:
    files = store_files(postgres_url)
    if not files:
        pytest.skip("PostgreSQL does not tell this role where its data directory is")
    assert all(f.name.split(".")[0].split("_")[0].isdigit() for f in files)
    assert len({f.parent for f in files}) <= 2  # the database's directory (and global/)


def test_the_mapped_store_is_counted_from_smaps(tmp_path: Path) -> None:
    store = tmp_path / "sqlite-1k.db"
    store.write_bytes(os.urandom(4 << 20))
    other = tmp_path / "sqlite-1k.db.other"
    other.write_bytes(os.urandom(8 << 20))  # a name the store's is a prefix of
    with open(store, "rb") as f, open(other, "rb") as g:
        m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        n = mmap.mmap(g.fileno(), 0, prot=mmap.PROT_READ)
        try:
            assert mapped_store([os.getpid()], store) == (0, 0)  # mapped, not touched yet
            for off in range(0, 1 << 20, mmap.PAGESIZE):  # the first MiB of it touched
                m[off]
            for off in range(0, 8 << 20, mmap.PAGESIZE):  # and all of another file
                n[off]
            rss, pmd = mapped_store([os.getpid(), 2**22 + 1], store)  # a pid that is gone
            assert 1 << 20 <= rss < 4 << 20  # fault-around may map a few pages more
            assert 0 <= pmd <= rss
        finally:
            m.close()
            n.close()
