"""A profile of the server under the harness's own load: py-spy samples the uprof process (and
its workers) while wrk runs one scenario once more, and the folded stacks are summarized.

The measured runs are never profiled: sampling takes CPU from the core the server runs on, so
the profiled run's throughput is printed beside the profile, not used for a ratio.

Without ``--native`` py-spy charges the time spent in a C call (SQLite, msgspec, a socket
write) to the Python line that made it; those lines are what the summary ranks. py-spy also
samples threads that are only waiting (it does not tell them apart here): a worker thread
blocked on PostgreSQL's answer or on a condition for its next job is counted apart, as
waiting, and the areas and lines are shares of the other samples. The event loop's own line
(``Runner.run``: uvloop's C code) still includes its wait for the next I/O event.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# "function (path/to/file.py:123)", as py-spy writes a frame in its raw (folded) format.
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]+):(?P<line>\d+)\)$")

# Where a frame's file says it belongs, first match wins: uprof's layers, then what serves it.
_AREAS = (
    ("uprof/http/", "uprof http"),
    ("uprof/service/", "uprof service"),
    ("uprof/domain/", "uprof domain"),
    ("<view ", "uprof domain"),  # the views' generated renderers (uprof.domain.versions)
    ("uprof/store/", "uprof store"),
    ("uprof/", "uprof other"),
    ("sqlalchemy/", "sqlalchemy"),
    ("uvicorn/", "uvicorn"),
    ("httptools/", "uvicorn"),
    ("asyncio/", "event loop"),
    ("uvloop/", "event loop"),
)


# Leaf frames of a thread that is blocked, not running: waiting for work or a lock, or for a
# PostgreSQL answer in a worker thread.
_WAITING = (
    "wait (threading.py:",
    "Condition.wait (threading.py:",
    "Event.wait (threading.py:",
    "Connection.wait (psycopg/",
    "_wait_for_tstate_lock (threading.py:",
)


def is_waiting(frame: str) -> bool:
    return frame.startswith(_WAITING)


def py_spy() -> str | None:
    """The py-spy of this environment (the bench extra installs it), or one on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start(pid: int, seconds: int, out: Path, rate: int = 250) -> subprocess.Popen[bytes]:
    """py-spy recording ``pid`` and its subprocesses for ``seconds`` into ``out`` (folded)."""
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed (pip install -e '.[bench]')")
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [exe, "record", "-p", str(pid), "--subprocesses", "--nonblocking"]
    cmd += ["-r", str(rate), "-d", str(seconds), "-f", "raw", "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def area_of(frame: str) -> str:
    m = _FRAME.match(frame)
    path = m.group("file") if m else frame
    for prefix, area in _AREAS:
        if prefix in path:
            return area
    return "other"


@dataclass
class Summary:
    samples: int
    # Share of all samples whose thread was blocked (``is_waiting``); the rest are "busy".
    waiting: float
    # (share of samples, frame) with the most samples at the top of the stack.
    top_self: list[tuple[float, str]]
    # Share of samples whose top frame is in each area, largest first.
    areas: list[tuple[float, str]]


def summarize(folded: str, top: int = 10) -> Summary:
    """Rank the lines that were on top of the stack, and the areas of the code they are in."""
    by_frame: collections.Counter[str] = collections.Counter()
    by_area: collections.Counter[str] = collections.Counter()
    busy = waiting = 0
    for line in folded.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        leaf = stack.rsplit(";", 1)[-1]
        if is_waiting(leaf):
            waiting += n
            continue
        by_frame[leaf] += n
        by_area[area_of(leaf)] += n
        busy += n
    total = busy + waiting
    if not busy:
        return Summary(total, 1.0 if total else 0.0, [], [])
    return Summary(
        samples=total,
        waiting=waiting / total,
        top_self=[(n / busy, f) for f, n in by_frame.most_common(top)],
        areas=[(n / busy, a) for a, n in by_area.most_common()],
    )


def report_lines(summary: Summary) -> list[str]:
    if not summary.areas:
        return ["no busy samples (was the server running?)"]
    lines = [
        "by area: " + ", ".join(f"{area} {share * 100:.0f}%" for share, area in summary.areas),
        f"(of the busy samples; {summary.waiting * 100:.0f}% of all were threads waiting)",
    ]
    lines += [f"{share * 100:5.1f}%  {frame}" for share, frame in summary.top_self]
    return lines
