"""The harness's profile summary: folded stacks ranked by the line on top, grouped by area,
with blocked threads counted apart."""

from __future__ import annotations

from bench.server_profile import area_of, is_waiting, report_lines, summarize

_FOLDED = "\n".join(
    [
        "main (uprof/__main__.py:4);run_asgi (uvicorn/protocols/http/httptools_impl.py:446);"
        "query (uprof/store/sqlite.py:128) 6",
        "main (uprof/__main__.py:4);send (uvicorn/protocols/http/httptools_impl.py:524) 3",
        "main (uprof/__main__.py:4);render (<view View_ga>:4) 1",
        "_bootstrap (threading.py:1002);Condition.wait (threading.py:327) 7",
        "run (uprof/store/postgres.py:90);Connection.wait (psycopg/connection.py:495) 3",
        "not a sample line",
        "",
    ]
)


def test_the_summary_ranks_busy_frames_and_areas() -> None:
    summary = summarize(_FOLDED)
    assert summary.samples == 20
    assert summary.waiting == 0.5
    assert summary.top_self[0] == (0.6, "query (uprof/store/sqlite.py:128)")
    assert summary.areas == [(0.6, "uprof store"), (0.3, "uvicorn"), (0.1, "uprof domain")]
    lines = report_lines(summary)
    assert lines[0] == "by area: uprof store 60%, uvicorn 30%, uprof domain 10%"
    assert lines[1] == "(of the busy samples; 50% of all were threads waiting)"
    assert lines[2].endswith("query (uprof/store/sqlite.py:128)")


def test_areas_follow_the_layers() -> None:
    assert area_of("list (uprof/service/profiles.py:93)") == "uprof service"
    assert area_of("_json (uprof/http/endpoints.py:24)") == "uprof http"
    assert area_of("run (asyncio/runners.py:118)") == "event loop"
    assert area_of("execute (sqlalchemy/engine/base.py:1)") == "sqlalchemy"
    assert area_of("somewhere (site-packages/click/core.py:1)") == "other"


def test_blocked_threads_are_waiting_and_running_ones_are_not() -> None:
    assert is_waiting("Condition.wait (threading.py:327)")
    assert is_waiting("Connection.wait (psycopg/connection.py:495)")
    assert not is_waiting("BaseCursor._send_query_prepared (psycopg/_cursor_base.py:602)")
    assert not is_waiting("Runner.run (asyncio/runners.py:118)")


def test_no_samples_say_so() -> None:
    assert report_lines(summarize("")) == ["no busy samples (was the server running?)"]
    only_waiting = summarize("w (threading.py:1);Condition.wait (threading.py:327) 4")
    assert only_waiting.waiting == 1.0
    assert report_lines(only_waiting) == ["no busy samples (was the server running?)"]
