"""The harness's profile summary: folded stacks ranked by the line on top, grouped by area."""

from __future__ import annotations

from bench.server_profile import area_of, report_lines, summarize

_FOLDED = "\n".join(
    [
        "main (uprof/__main__.py:4);run_asgi (uvicorn/protocols/http/httptools_impl.py:446);"
        "query (uprof/store/sqlite.py:128) 6",
        "main (uprof/__main__.py:4);send (uvicorn/protocols/http/httptools_impl.py:524) 3",
        "main (uprof/__main__.py:4);render (<view View_ga>:4) 1",
        "not a sample line",
        "",
    ]
)


def test_the_summary_ranks_top_frames_and_areas() -> None:
    summary = summarize(_FOLDED)
    assert summary.samples == 10
    assert summary.top_self[0] == (0.6, "query (uprof/store/sqlite.py:128)")
    assert summary.areas == [(0.6, "uprof store"), (0.3, "uvicorn"), (0.1, "uprof domain")]
    lines = report_lines(summary)
    assert lines[0] == "by area: uprof store 60%, uvicorn 30%, uprof domain 10%"
    assert lines[1].endswith("query (uprof/store/sqlite.py:128)")


def test_areas_follow_the_layers() -> None:
    assert area_of("list (uprof/service/profiles.py:93)") == "uprof service"
    assert area_of("_json (uprof/http/endpoints.py:24)") == "uprof http"
    assert area_of("run (asyncio/runners.py:118)") == "event loop"
    assert area_of("execute (sqlalchemy/engine/base.py:1)") == "sqlalchemy"
    assert area_of("somewhere (site-packages/click/core.py:1)") == "other"


def test_no_samples_say_so() -> None:
    assert report_lines(summarize("")) == ["no samples (was the server busy?)"]
