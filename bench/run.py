"""The benchmark: uprof against the bare baseline, side by side, in one run, as ratios.

    .venv/bin/python bench/run.py --sizes 1k,1M [--postgres] [--workers 1,2] [--duration 10s]
                                  [--soak 600] [--crash-check]

For each worker count it starts the baseline (bench/baseline.py: a bare ASGI app returning a
constant profile-sized body, on the same uvicorn settings as ``uprof serve``), and for each
backend (SQLite; PostgreSQL with --postgres) and size it loads the store (cached under
bench/.data), starts ``uprof serve`` on it, and drives both with wrk at 64 connections: GET one
profile, list (walking pages), create, update. Each scenario runs in rounds of one run on each
server, taking turns going first, so both see the same machine; the ratio is uprof / baseline
of each round, and the median of those is reported.

Prints req/s, p50/p99, the ratio, peak RSS and whether the target is met; writes
bench/results/<timestamp>.json and a PNG chart. See bench/README.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import click
import httpx
import psutil  # type: ignore[import-untyped]
from sqlalchemy import Connection, make_url, text

from bench import server_profile
from bench.common import (
    BENCH_KEY,
    DEFAULT_DATA_DIR,
    RESULTS_DIR,
    ROOT,
    WRK_DIR,
    in_turns,
    pair_ratios,
    parse_size,
    size_label,
    spread,
)
from bench.load import Loaded, count, load, reset, store_engine
from uprof import native as uprof_native
from uprof.store.database import sqlite_path
from uprof.store.sqlite_driver import dbapi as driver

SCENARIOS = ("get", "list", "create", "update")
# Throughput as a fraction of the baseline's, and p99, each scenario must reach (issue 3).
TARGET_RATIO = {"get": 0.5, "list": 0.3, "create": 0.25, "update": 0.25}
TARGET_P99_MS = 10.0
# Largest store against the smallest: GET and list within 1.25x, create within 0.8x.
SCALING_TARGET = {"get": 1.25, "list": 1.25, "create": 1 / 0.8}
# A soak's RSS (and private memory) is flat when the level of its last minute is within this of
# the level of its first minute after warm-up (``memory_drift``).
SOAK_RSS_TARGET = 0.10
# A soak samples memory every second, and judges it by windows of a minute (of a tenth of a
# shorter soak): the first one is its warm-up, the second its reference, the last its end.
SOAK_SAMPLE_SECONDS = 1.0
SOAK_WINDOW_SECONDS = 60.0

RED, GREEN, BOLD, RESET = "\033[31m", "\033[32m", "\033[1m", "\033[0m"


def _color(text: str, color: str) -> str:
    return f"{color}{text}{RESET}" if sys.stdout.isatty() else text


def parse_duration(text: str) -> int:
    m = re.fullmatch(r"(\d+)([smh]?)", text.strip())
    if m is None:
        raise click.BadParameter(f"not a duration: {text!r} (use e.g. 10s, 2m)")
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


# --- the machine and pinning ---------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
        wrk_version = wrk.splitlines()[0].split(" Copyright")[0] if wrk else "?"
    except OSError:
        wrk_version = "not installed"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "usable_cores": sorted(os.sched_getaffinity(0)),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        # The SQLite uprof serves with (its own library where installed, decisions O14).
        "sqlite": f"{driver.sqlite_version} ({driver.__name__})",
        "wrk": wrk_version,
    }


@dataclass
class Pinning:
    server: list[int] | None
    wrk: list[int] | None
    note: str

    def prefix(self, cores: list[int] | None) -> list[str]:
        return ["taskset", "-c", ",".join(map(str, cores))] if cores else []


def plan_pinning(workers: int) -> Pinning:
    cores = sorted(os.sched_getaffinity(0))
    have_taskset = subprocess.run(["which", "taskset"], capture_output=True).returncode == 0
    if not have_taskset:
        return Pinning(None, None, "not pinned: taskset is not installed")
    if len(cores) < workers + 1:
        return Pinning(
            None,
            None,
            f"not pinned: {workers} server worker(s) and wrk need {workers + 1} cores, this "
            f"machine has {len(cores)}; they share the cores, and wrk's CPU time is taken "
            "from the server's",
        )
    server, wrk = cores[:workers], [cores[workers]]
    return Pinning(
        server,
        wrk,
        f"pinned: server (and its {workers} worker(s)) on core(s) "
        f"{','.join(map(str, server))}, wrk on core {wrk[0]}"
        + (
            f"; cores {','.join(map(str, cores[workers + 1 :]))} left free"
            if len(cores) > workers + 1
            else ""
        ),
    )


# --- servers -------------------------------------------------------------------------------------


def prewarm(database_url: str) -> None:
    """Read a SQLite store once, so that its pages are in the OS cache as they would be on a
    server that has been up a while (the first run after a load or a reboot is otherwise a
    disk benchmark). Done before every run of uprof on SQLite: the guest of this VM reclaims
    page cache that no process maps once it has gone a minute unused (docs/performance.md,
    "The machine"), so the pages of a large store that a fresh server has not mapped yet are
    gone again by its later runs, while a server up a while has mapped (and so kept) every page
    it reads."""
    if database_url.startswith("postgresql"):
        _prewarm_postgres(database_url)
        return
    if not database_url.startswith("sqlite:///"):
        return
    path = Path(database_url[len("sqlite:///") :])
    with open(path, "rb", buffering=0) as f:
        while f.read(16 << 20):
            pass


def _prewarm_postgres(database_url: str) -> None:
    """The same for a PostgreSQL store: its backends read what their shared buffers (128 MiB by
    default) do not hold with pread() from the OS cache, which no process maps, so the guest
    takes it back as it takes a SQLite store's unmapped pages. ``pg_prewarm`` (PostgreSQL's
    contrib) reads into the server's shared buffers as many of the profiles' table and its
    indexes, smallest first, as nine tenths of the buffers hold, and the rest into the OS
    cache: a server up a while holds in its buffers what it reads (shared memory, which the
    guest leaves alone), and a fresh one would otherwise spend its first runs filling them
    (docs/performance.md, "Round 28")."""
    with (
        store_engine(database_url) as engine,
        engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
    ):
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_prewarm"))
        rows = conn.execute(
            text(
                "SELECT oid, pg_relation_size(oid) FROM pg_class"
                " WHERE oid = 'user_profiles'::regclass OR oid IN"
                " (SELECT indexrelid FROM pg_index WHERE indrelid = 'user_profiles'::regclass)"
                " ORDER BY 2"
            )
        ).all()
        buffers = conn.execute(
            text("SELECT setting::bigint * 8192 FROM pg_settings WHERE name = 'shared_buffers'")
        ).scalar_one()
        relations = [(int(oid), int(size)) for oid, size in rows]
        buffered = set(buffered_relations(relations, int(buffers)))
        warm = text("SELECT pg_prewarm(CAST(:oid AS oid)::regclass, CAST(:mode AS text))")
        # Reading into the buffers goes through the OS cache as well.
        for oid, _size in relations:
            conn.execute(warm, {"oid": oid, "mode": "buffer" if oid in buffered else "read"})


def wal_of(store: Path) -> Path:
    """A SQLite store's write-ahead log, beside it."""
    return store.with_name(store.name + "-wal")


def store_files(database_url: str) -> list[Path]:
    """The files a store's data lives in on this machine: a SQLite store's database and WAL, a
    local PostgreSQL store's relation files (every segment and fork of its tables, indexes and
    TOAST). Empty for a store elsewhere, or when PostgreSQL will not say where its data is."""
    store = sqlite_path(database_url)
    if store is not None:
        return [p for p in (store, wal_of(store)) if p.exists()]
    if not database_url.startswith("postgresql") or not is_local(database_url):
        return []
    try:
        with store_engine(database_url) as engine, engine.connect() as conn:
            base = Path(conn.execute(text("SELECT current_setting('data_directory')")).scalar_one())
            relations = conn.execute(
                text(
                    "SELECT pg_relation_filepath(oid) FROM pg_class WHERE relkind IN"
                    " ('r', 'i', 't', 'm') AND pg_relation_filepath(oid) IS NOT NULL"
                )
            ).scalars()
            files: list[Path] = []
            for rel in relations:
                main = base / rel
                # the relation, its further 1-GB segments, its free-space and visibility maps
                files.append(main)
                files.extend(main.parent.glob(main.name + ".*"))
                files.extend(main.parent.glob(main.name + "_*"))
    except Exception:  # no right to read the setting, or the server is gone: nothing to name
        return []
    return files


def evict_from_page_cache(paths: list[Path]) -> int:
    """Ask the kernel to drop its cached pages of ``paths`` (``posix_fadvise`` DONTNEED; pages a
    process maps or has not written back yet stay): the bytes of the files advised. A file this
    process may not open is skipped.

    The harness keeps every store it measures on one machine, and a campaign reads each of them
    whole (``prewarm``): by the runs of the last store, the page cache held the others' files as
    well (a 10M store is ~8 GB, the machine has 24 GiB, PostgreSQL's buffers take 10 of them),
    and the kernel reclaimed memory on the cores the runs were measured on. A deployment serves
    one store. So before a store's runs the harness drops the others' pages
    (docs/performance.md "Round 34")."""
    advised = 0
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            advised += os.fstat(fd).st_size
        except OSError:
            pass
        finally:
            os.close(fd)
    return advised


def clear_page_cache_for(loaded: Loaded, stores: list[Loaded]) -> int:
    """The page cache as a store's runs should find it, before its server starts: the other
    stores' files dropped (``evict_from_page_cache``), and a SQLite store's own as well, so that
    the prewarm's sequential read lays it in large folios, which the server's mapping then maps
    in 2-MiB pages whatever read it before (``mapped_store``). The bytes of the other stores'
    files advised."""
    others = [
        path
        for other in stores
        if other.database_url != loaded.database_url
        for path in store_files(other.database_url)
    ]
    if sqlite_path(loaded.database_url) is not None:
        evict_from_page_cache(store_files(loaded.database_url))
    return evict_from_page_cache(others)


def mapped_store(pids: list[int], store: Path) -> tuple[int, int]:
    """How much of ``store`` the processes ``pids`` have mapped (``Rss``) and how much of that in
    2-MiB pages (``FilePmdMapped``), in bytes, from ``/proc/<pid>/smaps``.

    A SQLite server reads its store through a mapping, and on a large store a GET touches pages
    spread over gigabytes: mapped in 2-MiB pages they cost a TLB miss each far less often.
    The kernel maps a page of a file whole when the page cache holds it in a large folio, which
    a sequential read of the file lays it in and random faults do not (GET at 10M, 12.5k
    against 8.1k req/s, docs/performance.md "Round 34")."""
    rss = pmd = 0
    name = str(store)
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps") as f:
                inside = False
                for line in f:
                    if line[0] in "0123456789abcdef" and "-" in line.split(" ", 1)[0]:
                        inside = line.rstrip("\n").endswith(name)
                    elif inside and line.startswith(("Rss:", "FilePmdMapped:")):
                        kib = int(line.split()[1]) * 1024
                        if line.startswith("Rss:"):
                            rss += kib
                        else:
                            pmd += kib
        except OSError:
            continue
    return rss, pmd


def buffered_relations(relations: list[tuple[int, int]], shared_buffers: int) -> list[int]:
    """Which of ``relations`` (oid, bytes) to read into shared buffers of ``shared_buffers``
    bytes: the smallest first, while together they fill at most nine tenths (the rest stays
    for what the server itself needs there)."""
    chosen: list[int] = []
    room = shared_buffers * 9 // 10
    for oid, size in sorted(relations, key=lambda r: r[1]):
        if size > room:
            break
        chosen.append(oid)
        room -= size
    return chosen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []


@contextlib.contextmanager
def start_server(
    name: str, cmd: list[str], env: dict[str, str], log_path: Path, port: int
) -> Iterator[Server]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    server = Server(name, f"http://127.0.0.1:{port}", proc, log_path)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}):\n{log_path.read_text()}")
            try:
                r = httpx.get(server.url + "/healthz", timeout=2)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield server
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def baseline_cmd(port: int, workers: int, pin: Pinning) -> list[str]:
    return [
        *pin.prefix(pin.server),
        sys.executable,
        str(ROOT / "bench" / "baseline.py"),
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def uprof_cmd(
    port: int, workers: int, pin: Pinning, url: str, synchronous: str, extra: list[str]
) -> list[str]:
    return [
        *pin.prefix(pin.server),
        sys.executable,
        "-m",
        "uprof",
        "serve",
        "--port",
        str(port),
        "--database-url",
        url,
        "--workers",
        str(workers),
        "--sqlite-synchronous",
        synchronous,
        *extra,
    ]


UPROF_SRC = ROOT / "src"


def native_build(src: Path | None = None) -> Path | None:
    """The native build (``uprof.native``) of the sources uprof is served from, if one exists:
    the server is then made to use it (``UPROF_NATIVE=require``), and otherwise not to."""
    return uprof_native.find_build((src or UPROF_SRC) / "uprof")


def server_env(extra: dict[str, str] | None = None, *, src: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPROF_")}
    env["PYTHONPATH"] = os.pathsep.join([str(src or UPROF_SRC), str(ROOT)])
    env["UPROF_BOOTSTRAP_API_KEY"] = BENCH_KEY
    env["UPROF_NATIVE"] = "require" if native_build(src) is not None else "off"
    # uprof logs each write batch that keeps its writes waiting longer than the p99 target
    # (``slow_writes``); through the environment, which sources older than the setting ignore.
    env["UPROF_SLOW_WRITE_MS"] = str(int(TARGET_P99_MS))
    env.update(extra or {})
    return env


_SLOW_LINE = re.compile(
    r"slow write batch: ([\d.]+) ms, \d+ writes? \((.*?)\)"
    r"(?:; (\d+) more since the last line, the longest ([\d.]+) ms)?$"
)


def slow_writes(log_text: str) -> dict[str, Any]:
    """The write batches over the threshold that uprof logged (``uprof serve --slow-write-ms``):
    how many, the longest, and what its line said its time went to."""
    batches, longest, parts = 0, 0.0, ""
    for line in log_text.splitlines():
        found = _SLOW_LINE.search(line)
        if found is None:
            continue
        ms, what, more, more_longest = found.groups()
        batches += 1 + int(more or 0)
        if float(ms) > longest:
            longest, parts = float(ms), what
        if more_longest and float(more_longest) > longest:
            longest, parts = float(more_longest), ""
    return {"batches": batches, "longest_ms": longest, "longest_parts": parts}


def slow_writes_note(run: Run) -> str:
    """The write batches of uprof's run that took longer than the p99 target, if any."""
    found = run.extra.get("slow_writes") or {}
    if not found.get("batches"):
        return ""
    parts = f": {found['longest_parts']}" if found.get("longest_parts") else ""
    return (
        f"   (uprof's log: {found['batches']} write batch(es) over {TARGET_P99_MS:.0f} ms, "
        f"the longest {found['longest_ms']:.1f} ms{parts})"
    )


def disk_sync_probe(directory: Path, seconds: float = 5.0) -> dict[str, Any]:
    """What the disk under ``directory`` takes to sync a write: 8-KiB writes into a 16-MiB file,
    each followed by ``fdatasync``, for ``seconds``, with nothing else running (a COMMIT that
    syncs does the same). The figures that bound the writes' p99 on this machine."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f".sync-probe-{os.getpid()}"
    size, block = 16 << 20, b"\0" * 8192
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
        took: list[float] = []
        offset = 0
        end = time.monotonic() + seconds
        while (t := time.monotonic()) < end:
            os.pwrite(fd, block, offset)
            os.fdatasync(fd)
            took.append(time.monotonic() - t)
            offset = (offset + len(block)) % size
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    took.sort()
    n = len(took)
    return {
        "directory": str(directory),
        "seconds": seconds,
        "syncs": n,
        "p50_ms": round(took[n // 2] * 1000, 3) if n else 0.0,
        "p99_ms": round(took[min(n - 1, n * 99 // 100)] * 1000, 3) if n else 0.0,
        "max_ms": round(took[-1] * 1000, 1) if n else 0.0,
        "over_target": sum(1 for t in took if t * 1000 > TARGET_P99_MS),
    }


def disk_line(probe: dict[str, Any]) -> str:
    return (
        f"disk: 8-KiB writes each synced (fdatasync) in {probe['directory']}, "
        f"{probe['seconds']:g} s with nothing else running: {probe['syncs']:,} syncs, "
        f"p50 {probe['p50_ms']:.2f} ms, p99 {probe['p99_ms']:.2f}, max {probe['max_ms']:.1f}; "
        f"{probe['over_target']} over {TARGET_P99_MS:.0f} ms"
    )


# --- measuring -----------------------------------------------------------------------------------


class _Background:
    """A thread that samples something from ``with`` to the end of the block."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Sampler(_Background):
    """Samples the server's process tree (RSS summed over the supervisor and its workers) and the
    CPU time of the server, wrk and PostgreSQL while a scenario runs."""

    def __init__(self, server: Server, interval: float = 0.25, wal: Path | None = None) -> None:
        self.server = server
        self.interval = interval
        # A SQLite store's write-ahead log: its largest size is reported (decisions O15).
        self.wal = wal
        self.wal_peak = 0
        self.samples: list[tuple[float, int]] = []
        # (seconds, private bytes): RSS without the file pages mapped into the process
        self.private: list[tuple[float, int]] = []
        super().__init__()

    def rss(self) -> tuple[int, int]:
        """RSS summed over the tree, and its private part (RssAnon + RssShmem: what the
        processes allocated, without the pages of files they map, such as the database)."""
        total = private = 0
        for p in self.server.tree():
            with contextlib.suppress(psutil.Error, OSError):
                total += p.memory_info().rss
                private += _private_rss(p.pid)
        return total, private

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            total, private = self.rss()
            now = time.monotonic() - t0
            self.samples.append((now, total))
            self.private.append((now, private))
            if self.wal is not None:
                with contextlib.suppress(OSError):
                    self.wal_peak = max(self.wal_peak, self.wal.stat().st_size)
            self._stop.wait(self.interval)

    @property
    def peak(self) -> int:
        return max((s for _, s in self.samples), default=0)

    @property
    def peak_private(self) -> int:
        return max((s for _, s in self.private), default=0)


def _private_rss(pid: int) -> int:
    """RssAnon + RssShmem of a process, in bytes (Linux ``/proc/<pid>/status``)."""
    found = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssShmem:")):
                found += int(line.split()[1]) * 1024
    return found


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def page_faults(procs: list[psutil.Process]) -> tuple[int, int]:
    """The minor and major page faults of ``procs`` so far (``/proc/<pid>/stat``). A minor
    fault maps a page the page cache holds (a SQLite store's page that this process had not
    touched since it mapped the file); a major fault waits for the disk."""
    minor = major = 0
    for p in procs:
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{p.pid}/stat") as f:
                # The fields after the command's closing parenthesis: minflt is the 8th, majflt
                # the 10th (state is the 1st).
                fields = f.read().rpartition(")")[2].split()
            minor += int(fields[7])
            major += int(fields[9])
    return minor, major


def page_cache_refaults() -> int | None:
    """File pages read back into the page cache after the kernel had evicted them (Linux's
    ``workingset_refault_file``): a request that needs one waits for the disk. On VMs whose
    host reclaims cold memory (DAMON ``pageout``), a store larger than what stays hot is
    partly evicted between runs; this counter says how much of a run that was."""
    try:
        with open("/proc/vmstat") as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == "workingset_refault_file":
                    return int(value)
    except OSError:
        pass
    return None


def postgres_checkpoints(database_url: str) -> tuple[int, int] | None:
    """The checkpoints PostgreSQL has begun and the buffers they have written (its cumulative
    ``pg_stat_bgwriter``): a run during which either moves shared the disk with a checkpoint's
    writes, and its commits wrote whole pages to the WAL (the first change of each page after
    a checkpoint begins). The server's ``max_wal_size`` and ``checkpoint_timeout`` decide how
    often that is; they are the operator's settings, not uprof's."""
    try:
        with store_engine(database_url) as engine, engine.connect() as conn:
            return _checkpoint_counts(conn)
    except Exception:  # the figure is a note; a run without it is still a run
        return None


def _checkpoint_counts(conn: Connection) -> tuple[int, int]:
    begun, written = conn.execute(
        text("SELECT checkpoints_timed + checkpoints_req, buffers_checkpoint FROM pg_stat_bgwriter")
    ).one()
    return int(begun), int(written)


def checkpoint_postgres(database_url: str) -> int | None:
    """A checkpoint of a PostgreSQL store before its runs; the buffers it wrote, or None if it
    could not be made (a role without the right to, a store elsewhere that refuses).

    What the store's preparation left dirty in the shared buffers (a load's COPY and index
    builds, the delete and vacuum of ``reset``, an earlier store's runs) is written by the
    next checkpoint, and with ``checkpoint_timeout`` of minutes that one began during the
    runs: in round 35 every PostgreSQL row of a campaign right after a 10M load shared the
    disk with 5,400-5,600 buffers of it, and wrote each page's first change after it whole
    to the WAL. A store up a while has no such backlog; its runs' own checkpoints stay.

    One connection, each statement its own transaction (a transaction would read the
    statistics once and see them unchanged after the checkpoint)."""
    try:
        with (
            store_engine(database_url) as engine,
            engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
        ):
            _begun, before = _checkpoint_counts(conn)
            conn.execute(text("CHECKPOINT"))
            _begun, after = _checkpoint_counts(conn)
            return after - before
    except Exception:  # a note, not a condition of the run
        return None


def prepare_store(loaded: Loaded, stores: list[Loaded], say: Callable[[str], None]) -> None:
    """A store as its runs should find it, before its server starts, each step told to ``say``
    as it is done.

    The page cache cleared for it (``clear_page_cache_for``), the store read (``prewarm``),
    the profiles earlier runs created removed (``reset``), and a PostgreSQL store
    checkpointed (``checkpoint_postgres``)."""
    evicted = clear_page_cache_for(loaded, stores)
    if evicted:
        say(
            f"   (the other stores' files dropped from the page cache: "
            f"{evicted / 2**30:.1f} GiB advised)"
        )
    prewarm(loaded.database_url)
    removed = reset(loaded)
    if removed:
        say(f"   (removed {removed} profiles an earlier run created)")
    if loaded.database_url.startswith("postgresql"):
        written = checkpoint_postgres(loaded.database_url)
        if written:
            say(
                f"   (PostgreSQL checkpointed before the runs: {written:,} "
                "buffers written that the store's preparation had left dirty)"
            )


# The PostgreSQL server's settings that its figures depend on (docs/performance.md, rounds 16,
# 25 and 28): what its buffers hold and on what pages (shared_buffers, huge_pages), how often a
# checkpoint begins under steady writes (max_wal_size, checkpoint_timeout), and whether a commit
# waits for a new WAL segment to be written full of zeros (min_wal_size keeps freed ones for
# reuse; wal_init_zero).
POSTGRES_SETTINGS = (
    "server_version",
    "shared_buffers",
    "huge_pages",
    "max_wal_size",
    "min_wal_size",
    "checkpoint_timeout",
    "wal_compression",
    "wal_init_zero",
    "synchronous_commit",
)


def is_local(database_url: str) -> bool:
    """Whether the database's server runs on this machine (its figures beside this machine's)."""
    host = make_url(database_url).host
    return host in (None, "", "localhost", "127.0.0.1", "::1") or str(host).startswith("/")


def postgres_settings(database_url: str) -> dict[str, str] | None:
    """``POSTGRES_SETTINGS`` as the server shows them, or None if it cannot be asked."""
    try:
        with store_engine(database_url) as engine, engine.connect() as conn:
            # One statement for all of them, each shown as SHOW shows it (with its unit).
            rows = conn.execute(
                text("SELECT name, current_setting(name) FROM unnest(CAST(:names AS text[])) name"),
                {"names": list(POSTGRES_SETTINGS)},
            ).all()
            shown = {str(name): str(value) for name, value in rows}
            return {name: shown[name] for name in POSTGRES_SETTINGS}
    except Exception:  # the figures are a note; a run without them is still a run
        return None


def postgres_settings_line(settings: dict[str, str], huge: str | None = None) -> str:
    version = settings.get("server_version", "?").split(" ")[0]
    rest = ", ".join(f"{k} {v}" for k, v in settings.items() if k != "server_version")
    return f"postgres: {version}; {rest}" + (f" ({huge})" if huge else "")


def huge_pages(meminfo: str | None = None) -> str | None:
    """This machine's huge pages, as a note beside a local PostgreSQL's settings: with
    ``huge_pages = try`` (the default) the server maps its shared buffers on them only if the
    kernel has enough set aside (``vm.nr_hugepages``), and PostgreSQL 15 does not say which it
    did. Held is in use or reserved: the server reserves its whole segment when it starts."""
    if meminfo is None:
        try:
            meminfo = Path("/proc/meminfo").read_text()
        except OSError:
            return None
    fields: dict[str, int] = {}
    for line in meminfo.splitlines():
        name, _, value = line.partition(":")
        if name.startswith("HugePages_") or name == "Hugepagesize":
            fields[name] = int(value.split()[0])
    total = fields.get("HugePages_Total")
    if total is None:
        return None
    if total == 0:
        return "this machine: no huge pages set aside"
    held = total - fields.get("HugePages_Free", 0) + fields.get("HugePages_Rsvd", 0)
    size = fields.get("Hugepagesize", 0) // 1024
    return f"this machine: {total:,} huge pages of {size} MiB, {held:,} held"


def checkpoint_note(run: Run) -> str:
    """What a run of uprof on PostgreSQL shared with a checkpoint, if anything."""
    begun = run.extra.get("pg_checkpoints_begun", 0)
    written = run.extra.get("pg_checkpoint_buffers", 0)
    if not begun and not written:
        return ""
    return (
        f"   (a PostgreSQL checkpoint ran during uprof's run: {begun} begun, {written:,} "
        "buffers written; its p99 includes the checkpoint's writes and full-page WAL records)"
    )


class PostgresWaits(_Background):
    """What the store database's client backends are doing while a run goes on, sampled every
    ``interval`` seconds from ``pg_stat_activity``: running (``CPU``), waiting on an event
    PostgreSQL names (``WALSync``: the WAL's flush at a commit; ``WALWrite``; a lock...), or
    idle inside a transaction (``uprof``: the batch's jobs run in this process between its
    statements). A p99 that the throughput does not explain is then set beside what the
    server's backends waited on (docs/performance.md, "Round 27"). One small query a sample:
    at the default 20 ms, ~50 a second, against thousands of uprof's."""

    def __init__(self, database_url: str, interval: float = 0.02) -> None:
        self.database_url = database_url
        self.interval = interval
        self.counts: dict[str, int] = {}
        super().__init__()

    _QUERY = text(
        "SELECT CASE WHEN state = 'active' THEN coalesce(wait_event, 'CPU') ELSE 'uprof' END"
        " FROM pg_stat_activity WHERE datname = current_database()"
        " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        " AND state IN ('active', 'idle in transaction')"
    )

    def _run(self) -> None:
        # The figures are a note: a run without them is still a run.
        with (
            contextlib.suppress(Exception),
            store_engine(self.database_url) as engine,
            engine.connect() as conn,
        ):
            conn.execution_options(isolation_level="AUTOCOMMIT")
            while not self._stop.wait(self.interval):
                for (what,) in conn.execute(self._QUERY):
                    self.counts[what] = self.counts.get(what, 0) + 1


def waits_note(run: Run, top: int = 4) -> str:
    """The shares of what uprof's PostgreSQL backends were seen doing during a run."""
    counts: dict[str, int] = run.extra.get("pg_waits", {})
    total = sum(counts.values())
    if not total:
        return ""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{what} {n / total:.0%}" for what, n in ranked[:top])
    return f"   (uprof's PostgreSQL backends, {total:,} samples while busy: {shown})"


def postgres_processes() -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["name"]):
        if p.info["name"] in ("postgres", "postmaster"):
            found.append(p)
    return found


@dataclass
class Run:
    """One wrk run against one server."""

    target: str
    scenario: str
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    requests: int
    errors: dict[str, int]
    peak_rss_mib: float
    peak_private_mib: float
    cpu: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def wrk(
    url: str,
    scenario: str,
    *,
    seconds: int,
    connections: int,
    ids_path: str,
    pin: Pinning,
    extra_env: dict[str, str] | None = None,
    during: Any = None,
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str] | None]:
    env = {
        **os.environ,
        "BENCH_WRK_DIR": str(WRK_DIR),
        "BENCH_KEY": BENCH_KEY,
        "BENCH_IDS": ids_path,
        "BENCH_SCENARIO": scenario,
        **(extra_env or {}),
    }
    cmd = [
        *pin.prefix(pin.wrk),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_DIR / f"{scenario}.lua"),
        url,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if during is not None:
        during(proc)
    out, err = proc.communicate()
    for line in out.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON ") :]), None
    raise RuntimeError(f"wrk printed no result (exit {proc.returncode}):\n{out}\n{err}")


def requests_per_second(result: dict[str, Any]) -> float:
    """Throughput of one wrk run, from what its script printed."""
    return float(result["requests"] / (result["duration_us"] / 1e6))


def measure(
    server: Server,
    scenario: str,
    *,
    seconds: int,
    connections: int,
    ids_path: str,
    pin: Pinning,
    postgres: bool,
    database_url: str = "",
    profile_to: Path | None = None,
) -> Run:
    """One wrk run against ``server``; with ``profile_to``, py-spy samples the server meanwhile
    and the run's ``extra["profile"]`` says where its time went (never use such a run for a
    ratio: sampling takes CPU from the server's core)."""
    wrk_procs: list[psutil.Process] = []
    server_procs = server.tree()
    pg_procs = postgres_processes() if postgres else []
    before = {"server": cpu_seconds(server_procs), "postgres": cpu_seconds(pg_procs)}
    wrk_cpu: dict[str, float] = {}

    def during(proc: subprocess.Popen[str]) -> None:
        # wrk's own CPU time, read just before it exits (it is gone by communicate()'s end)
        with contextlib.suppress(psutil.Error):
            p = psutil.Process(proc.pid)
            wrk_procs.append(p)

            def watch() -> None:
                while proc.poll() is None:
                    with contextlib.suppress(psutil.Error):
                        t = p.cpu_times()
                        wrk_cpu["wrk"] = t.user + t.system
                    time.sleep(0.2)

            threading.Thread(target=watch, daemon=True).start()

    refaults_before = page_cache_refaults()
    faults_before = page_faults(server_procs)
    checkpoints_before = postgres_checkpoints(database_url) if postgres else None
    recorder = None
    if profile_to is not None:
        recorder = server_profile.start(server.process.pid, seconds, profile_to)
    log_offset = server.log_path.stat().st_size if server.log_path.exists() else 0
    t0 = time.monotonic()
    waits = PostgresWaits(database_url) if postgres and server.name == "uprof" else None
    with Sampler(server) as sampler, waits or contextlib.nullcontext():
        result, _ = wrk(
            server.url,
            scenario,
            seconds=seconds,
            connections=connections,
            ids_path=ids_path,
            pin=pin,
            during=during,
        )
    wall = time.monotonic() - t0
    cpu = {
        "server": (cpu_seconds(server.tree()) - before["server"]) / wall,
        "wrk": wrk_cpu.get("wrk", 0.0) / wall,
    }
    if postgres:
        cpu["postgres"] = (cpu_seconds(postgres_processes()) - before["postgres"]) / wall
    refaults_after = page_cache_refaults()
    faults_after = page_faults(server.tree())
    extra: dict[str, Any] = {
        "server_minor_faults": faults_after[0] - faults_before[0],
        "server_major_faults": faults_after[1] - faults_before[1],
    }
    if refaults_before is not None and refaults_after is not None:
        extra["page_cache_refaults"] = refaults_after - refaults_before
    checkpoints_after = postgres_checkpoints(database_url) if postgres else None
    if checkpoints_before is not None and checkpoints_after is not None:
        extra["pg_checkpoints_begun"] = checkpoints_after[0] - checkpoints_before[0]
        extra["pg_checkpoint_buffers"] = checkpoints_after[1] - checkpoints_before[1]
    if waits is not None:
        extra["pg_waits"] = dict(waits.counts)
    if server.name == "uprof" and server.log_path.exists():
        with open(server.log_path, "rb") as log:
            log.seek(log_offset)
            extra["slow_writes"] = slow_writes(log.read().decode(errors="replace"))
    if scenario == "list":
        extra.update(pages=result["pages"], walks=result["walks"])
    if recorder is not None and profile_to is not None:
        extra["profile"] = _profile(recorder, profile_to, seconds)
    lat = result["latency_us"]
    pct = lat["percentiles"]
    rps = requests_per_second(result)
    return Run(
        target=server.name,
        scenario=scenario,
        rps=rps,
        p50_ms=pct["50"] / 1000,
        p90_ms=pct["90"] / 1000,
        p99_ms=pct["99"] / 1000,
        p999_ms=pct["99.9"] / 1000,
        max_ms=lat["max"] / 1000,
        requests=result["requests"],
        errors=result["errors"],
        peak_rss_mib=sampler.peak / 2**20,
        peak_private_mib=sampler.peak_private / 2**20,
        cpu={k: round(v * 100, 1) for k, v in cpu.items()},
        extra=extra,
    )


def median_run(runs: list[Run]) -> Run:
    """The run with the median throughput (its own latencies, not a blend)."""
    ordered = sorted(runs, key=lambda r: r.rps)
    chosen = (
        ordered[(len(ordered) - 1) // 2] if len(ordered) % 2 == 0 else ordered[len(ordered) // 2]
    )
    if len(runs) > 1:
        chosen.extra["all_rps"] = [round(r.rps) for r in runs]
    return chosen


def _profile(recorder: subprocess.Popen[bytes], out: Path, seconds: int) -> dict[str, Any]:
    """What py-spy recorded into ``out``, summarized."""
    _, err = recorder.communicate(timeout=seconds + 60)
    if recorder.returncode != 0 or not out.exists():
        raise RuntimeError(f"py-spy failed (exit {recorder.returncode}): {err.decode()}")
    summary = server_profile.summarize(out.read_text())
    return {
        "folded": str(out),
        "samples": summary.samples,
        "waiting": round(summary.waiting, 4),
        "areas": {area: round(share, 4) for share, area in summary.areas},
        "top_self": [[round(share, 4), frame] for share, frame in summary.top_self],
        "lines": server_profile.report_lines(summary),
    }


# --- the report ----------------------------------------------------------------------------------


def _over(x: float, y: float) -> float:
    """``x / y``, or 0 where ``y`` is 0 (a run that measured nothing)."""
    return x / y if y else 0.0


@dataclass
class Row:
    """A scenario's figures: the median run of each server, and uprof / baseline of each round.

    The ratio is the median of the rounds' ratios (``pairs``), each from two runs measured
    seconds apart, as ``bench/ab.py`` reports its pairs: the host's phase moves both runs of a
    round alike, while the two median runs may come from different rounds (and so from
    different phases of the host)."""

    backend: str
    workers: int
    n: int
    scenario: str
    baseline: Run
    uprof: Run
    pairs: list[float]
    # Each round's uprof p99 x req/s over the baseline's, and the baseline's p99 (see ``tail``).
    round_tails: list[float]
    round_base_p99s: list[float]

    @classmethod
    def of_rounds(
        cls,
        backend: str,
        workers: int,
        n: int,
        scenario: str,
        baseline: list[Run],
        uprof: list[Run],
    ) -> Row:
        """The row of ``baseline[i]`` and ``uprof[i]`` measured in round ``i``."""
        pairs = pair_ratios([r.rps for r in baseline], [r.rps for r in uprof])
        tails = pair_ratios([r.p99_ms * r.rps for r in baseline], [r.p99_ms * r.rps for r in uprof])
        return cls(
            backend,
            workers,
            n,
            scenario,
            median_run(baseline),
            median_run(uprof),
            pairs,
            tails,
            [r.p99_ms for r in baseline],
        )

    @property
    def ratio_of_medians(self) -> float:
        return _over(self.uprof.rps, self.baseline.rps)

    @property
    def ratio(self) -> float:
        return statistics.median(self.pairs)

    @property
    def ratio_met(self) -> bool:
        return self.ratio >= TARGET_RATIO[self.scenario]

    @property
    def p99_met(self) -> bool:
        return self.uprof.p99_ms <= TARGET_P99_MS

    @property
    def tail(self) -> float:
        """uprof's p99 against the p99 its throughput alone would give it: 1.0 when uprof's
        latencies have the baseline's shape. In a closed loop of C connections the mean latency
        is C / throughput (Little's law), so with p99 = k x mean for a tail shape k, the two
        p99s differ by k_uprof / k_baseline times the inverse of the throughputs. The median
        of the rounds' own, as the ratio is (the two median runs may come from different
        phases of the host)."""
        return statistics.median(self.round_tails)

    @property
    def p99_needs_ratio(self) -> float:
        """The ratio at which uprof's p99 would be the target if its tail had the baseline's
        shape (the median of the rounds' baseline p99s over the target): above the ratio
        target, the p99 target asks for more throughput than the ratio target does, whatever
        uprof's tail."""
        return statistics.median(self.round_base_p99s) / TARGET_P99_MS

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "workers": self.workers,
            "n": self.n,
            "scenario": self.scenario,
            "ratio": round(self.ratio, 4),
            "pair_ratios": [round(p, 4) for p in self.pairs],
            "ratio_of_medians": round(self.ratio_of_medians, 4),
            "target_ratio": TARGET_RATIO[self.scenario],
            "ratio_met": self.ratio_met,
            "p99_met": self.p99_met,
            "tail": round(self.tail, 4),
            "round_tails": [round(t, 4) for t in self.round_tails],
            "p99_needs_ratio": round(self.p99_needs_ratio, 4),
            "baseline": asdict(self.baseline),
            "uprof": asdict(self.uprof),
        }


HEADER = (
    f"{'backend':<9}{'w':>2} {'profiles':>8} {'scenario':<8}"
    f"{'base req/s':>11}{'b.p99':>7}{'req/s':>9}{'ratio':>7}{'rounds':>11}{'target':>8}"
    f"{'p50 ms':>8}{'p99 ms':>8}{'tail':>6}{'RSS/priv MiB':>13}"
    f"  {'cpu srv/wrk/pg %':<18}{'met?':<6}"
)


def _flat_verdict(flat: bool) -> str:
    return _color("flat", GREEN) if flat else _color("NOT flat", RED)


def memory_drift(series: list[tuple[float, int]], seconds: float) -> dict[str, Any]:
    """How a soak's memory moved: the level of its last window against the level of its first
    window after the warm-up, each level the median of the window's samples, and its peak
    against that first level.

    Levels, not single samples: a SQLite server's RSS is a sawtooth under reads and writes
    together. SQLite drops the reads' connection's mapping of the store at each read snapshot
    that begins after a commit, and the reads then fault its pages in again. Each fault maps
    the page cache's whole folio of the file, 2 MiB where the file was read in large folios
    (as the harness's prewarm reads it), so that mapping held 20-120 MiB of the store from one
    second to the next in round 34's soak, and more after a pause in the commits; with the file
    in small folios, 0-4 MiB (docs/performance.md "Round 31" to "Round 34"). A peak against
    one sample measured where in that sawtooth the sample fell; a level moves only when memory
    climbs and stays, which is what a leak does. The peak is still reported (``peak_drift``),
    so a swing is shown as what it is."""
    mib = [(round(t, 1), round(b / 2**20, 1)) for t, b in series]
    if not mib:
        return {
            "samples": [],
            "reference_mib": 0.0,
            "last_mib": 0.0,
            "peak_mib": 0.0,
            "drift": 0.0,
            "peak_drift": 0.0,
        }
    window = min(SOAK_WINDOW_SECONDS, seconds / 10)
    end = mib[-1][0]
    warm = [(t, m) for t, m in mib if t >= window] or mib
    first = [m for t, m in warm if t < warm[0][0] + window] or [warm[0][1]]
    last = [m for t, m in warm if t >= end - window] or [warm[-1][1]]
    reference, level, peak = (
        statistics.median(first),
        statistics.median(last),
        max(m for _, m in warm),
    )

    def over(x: float) -> float:
        return round((x - reference) / reference, 4) if reference else 0.0

    return {
        "samples": mib,
        "reference_mib": reference,
        "last_mib": level,
        "peak_mib": peak,
        "drift": over(level),
        "peak_drift": over(peak),
    }


def soak_memory_note(backend: str, result: dict[str, Any]) -> str | None:
    """What a SQLite soak's RSS counts when it moved and its private memory did not: the store's
    pages each connection has mapped. The writers' connection's own commits never drop its
    mapping: it keeps every page the writes have read, and fills as they reach more of the
    store, at the pace of the write rate, so its level climbs and stays. The reads' connection
    drops its mapping at every read snapshot that begins after a commit and holds what the reads
    touched since, up to 120 MiB at most samples and more after a pause in the commits, so the
    total swings around its level: a peak over the target with a flat level (docs/performance.md
    "Round 31" to "Round 34")."""
    if backend != "sqlite" or not result["private_flat"]:
        return None
    reference = result.get("rss_reference_mib") or 0.0
    if result["flat"]:
        peak = result.get("rss_peak_mib") or 0.0
        if not reference or peak <= reference * (1 + SOAK_RSS_TARGET):
            return None
        return (
            f"   (its RSS swung around a flat level: the peak {peak:,.0f} MiB against a level of "
            f"{reference:,.0f} in the first minute. The swing is the reads' connection's mapping "
            "of the store, which holds what the reads touched since SQLite last dropped it, at "
            "each read snapshot after a commit; what the server itself holds is the private part)"
        )
    return (
        "   (its RSS counts the store's pages SQLite's connections have mapped, most of them the "
        "writers' connection's, which fills with the pages the writes reach, at the pace of the "
        "write rate; the reads' connection drops its mapping at each read snapshot after a "
        "commit; what the server itself holds is the private part)"
    )


def format_row(row: Row) -> str:
    u = row.uprof
    cpu = "/".join(f"{u.cpu.get(k, 0):.0f}" for k in ("server", "wrk", "postgres") if k in u.cpu)
    met = row.ratio_met and row.p99_met
    why = "" if met else (("" if row.ratio_met else " ratio") + ("" if row.p99_met else " p99"))
    verdict = _color("yes", GREEN) if met else _color("NO" + why, RED)
    rss = f"{u.peak_rss_mib:.0f}/{u.peak_private_mib:.0f}"
    line = (
        f"{row.backend:<9}{row.workers:>2} {size_label(row.n):>8} {row.scenario:<8}"
        f"{row.baseline.rps:>11,.0f}{row.baseline.p99_ms:>7.2f}{u.rps:>9,.0f}{row.ratio:>7.2f}"
        f"{spread(row.pairs):>11}"
        f"{'>=' + format(TARGET_RATIO[row.scenario], '.2f'):>8}"
        f"{u.p50_ms:>8.2f}{u.p99_ms:>8.2f}{row.tail:>6.2f}{rss:>13}  {cpu:<18}{verdict}"
    )
    if u.error_count or row.baseline.error_count:
        line += "\n" + _color(
            f"  !!! ERRORS: uprof {u.errors}, baseline {row.baseline.errors} — these figures "
            "count failed requests and are not valid",
            RED + BOLD,
        )
    return line


def scaled(a: Row, b: Row) -> tuple[float, float]:
    """``b``'s throughput and p99 against ``a``'s, each first taken relative to the baseline of
    its own rounds: the two stores are measured minutes apart, and a host that changed speed
    in between moves both servers alike (the ratio is the median of its rounds', as in a row;
    the p99 is the median run's over the baseline's)."""
    a_p99 = _over(a.uprof.p99_ms, a.baseline.p99_ms)
    b_p99 = _over(b.uprof.p99_ms, b.baseline.p99_ms)
    return _over(b.ratio, a.ratio), _over(b_p99, a_p99)


# Between two stores' runs, a baseline that moved by more than this says the host changed speed.
HOST_MOVED = 1.15


def scaling_lines(rows: list[Row]) -> list[str]:
    """Largest store against the smallest, per backend and worker count: judged on the
    figures relative to each store's baseline (``scaled``), the raw ones shown beside."""
    out = []
    groups: dict[tuple[str, int], list[Row]] = {}
    for r in rows:
        groups.setdefault((r.backend, r.workers), []).append(r)
    for (backend, workers), rs in groups.items():
        sizes = sorted({r.n for r in rs})
        if len(sizes) < 2:
            continue
        lo, hi = sizes[0], sizes[-1]
        for scenario in SCENARIOS:
            a = next((r for r in rs if r.n == lo and r.scenario == scenario), None)
            b = next((r for r in rs if r.n == hi and r.scenario == scenario), None)
            if a is None or b is None:
                continue
            tput, p99 = scaled(a, b)
            raw_tput = _over(b.uprof.rps, a.uprof.rps)
            raw_p99 = _over(b.uprof.p99_ms, a.uprof.p99_ms)
            base_tput = _over(b.baseline.rps, a.baseline.rps)
            limit = SCALING_TARGET.get(scenario)
            if limit is None:
                verdict = "(no target)"
            else:
                ok = tput >= 1 / limit and (scenario == "create" or p99 <= limit)
                want = f"req/s >= {1 / limit:.2f}x" + (
                    "" if scenario == "create" else f", p99 <= {limit:.2f}x"
                )
                verdict = (_color("met", GREEN) if ok else _color("NOT met", RED)) + f" ({want})"
            line = (
                f"{backend:<9}w{workers} {scenario:<7} {size_label(hi):>4} vs {size_label(lo):<4}: "
                f"req/s {tput:5.2f}x, p99 {p99:5.2f}x of the baseline's "
                f"(raw {raw_tput:4.2f}x, {raw_p99:4.2f}x; the baseline {base_tput:4.2f}x)  "
                f"{verdict}"
            )
            if base_tput and not 1 / HOST_MOVED <= base_tput <= HOST_MOVED:
                # Relative figures cancel a change of the host's speed only as far as uprof's
                # costs move with the baseline's ("Why the ratios fall in a fast phase"), so a
                # large change can tip a verdict either way: say so under it.
                line += (
                    f"\n   (the baseline's own throughput moved {base_tput:.2f}x between the "
                    "two stores' runs: the host changed speed; a second run may judge otherwise)"
                )
            out.append(line)
    return out


# A tail this much longer than the baseline's is uprof's own, not its throughput's.
OWN_TAIL = 1.25


def p99_lines(rows: list[Row]) -> list[str]:
    """Each missed p99, told apart: the throughput's (uprof's latencies shaped as the
    baseline's, ``Row.tail`` near 1) or uprof's own tail."""
    out = []
    for r in rows:
        if r.p99_met:
            continue
        where = f"{r.backend:<9}w{r.workers} {size_label(r.n):>4} {r.scenario:<7}"
        if r.tail > OWN_TAIL:
            why = _color(f"a tail of its own ({r.tail:.2f}x the baseline's shape)", RED)
        else:
            why = (
                f"the throughput's (tail {r.tail:.2f}x the baseline's shape; 10 ms needs "
                f"ratio >= {r.p99_needs_ratio:.2f} at the baseline's p99 of "
                f"{r.p99_needs_ratio * TARGET_P99_MS:.2f} ms)"
            )
        slow = r.uprof.extra.get("slow_writes") or {}
        if slow.get("batches"):
            why += (
                f"; {slow['batches']} write batch(es) over {TARGET_P99_MS:.0f} ms in uprof's "
                f"log, the longest {slow['longest_ms']:.1f} ms"
            )
        out.append(f"{where} {r.uprof.p99_ms:6.2f} ms: {why}")
    return out


def worker_lines(rows: list[Row]) -> list[str]:
    out = []
    keys = {(r.backend, r.n, r.scenario) for r in rows}
    for backend, n, scenario in sorted(keys):
        by_w = {
            r.workers: r for r in rows if (r.backend, r.n, r.scenario) == (backend, n, scenario)
        }
        if len(by_w) < 2 or 1 not in by_w:
            continue
        one = by_w[1]
        for w, r in sorted(by_w.items()):
            if w == 1:
                continue
            out.append(
                f"{backend:<9}{size_label(n):>4} {scenario:<7} workers {w} vs 1: "
                f"uprof {r.uprof.rps / one.uprof.rps:4.2f}x "
                f"({one.uprof.rps:,.0f} -> {r.uprof.rps:,.0f} "
                f"req/s), baseline {r.baseline.rps / one.baseline.rps:4.2f}x; cpu at w{w}: "
                + ", ".join(f"{k} {v:.0f}%" for k, v in r.uprof.cpu.items())
            )
    return out


def server_cpu(run: Run) -> float:
    """The server's CPU in use during ``run``, in percent of one core (all its workers)."""
    return run.cpu.get("server", 0.0)


def cpu_per_request_us(run: Run) -> float:
    """The server's CPU time per request of ``run``, in microseconds (all its workers)."""
    return _over(server_cpu(run) / 100 * 1e6, run.rps)


def backend_lines(rows: list[Row]) -> list[str]:
    """PostgreSQL's throughput against SQLite's for the same store size, scenario and workers,
    split into its two factors: throughput = the server's CPU in use / its CPU per request.
    A gap in the second is uprof's own work on that backend; a gap in the first is time the
    server's core spent waiting (for PostgreSQL's answers) or ceded to PostgreSQL's processes
    (docs/performance.md, "Round 19")."""
    out = []
    lites = {(r.workers, r.n, r.scenario): r for r in rows if r.backend == "sqlite"}
    pgs = {(r.workers, r.n, r.scenario): r for r in rows if r.backend == "postgres"}
    for (workers, n, scenario), pg in sorted(pgs.items()):
        lite = lites.get((workers, n, scenario))
        if lite is None:
            continue
        pg_us, lite_us = cpu_per_request_us(pg.uprof), cpu_per_request_us(lite.uprof)
        pg_cpu, lite_cpu = server_cpu(pg.uprof), server_cpu(lite.uprof)
        tput = _over(pg.uprof.rps, lite.uprof.rps)
        out.append(
            f"w{workers} {size_label(n):>4} {scenario:<7} postgres {tput:4.2f}x "
            f"sqlite's req/s ({pg.uprof.rps:,.0f} against {lite.uprof.rps:,.0f}) = "
            f"the server's CPU in use {_over(pg_cpu, lite_cpu):4.2f}x ({pg_cpu:.0f}% against "
            f"{lite_cpu:.0f}%) / its CPU a request {_over(pg_us, lite_us):4.2f}x "
            f"({pg_us:.1f} against {lite_us:.1f} us)"
        )
    return out


def chart(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    series: dict[tuple[str, int, str], list[Row]] = {}
    for r in rows:
        series.setdefault((r.backend, r.workers, r.scenario), []).append(r)
    markers = {"get": "o", "list": "s", "create": "^", "update": "D"}
    for (backend, workers, scenario), rs in sorted(series.items()):
        rs.sort(key=lambda r: r.n)
        xs = [r.n for r in rs]
        label = f"{scenario} {backend}" + (f" w{workers}" if workers != 1 else "")
        style = "-" if backend == "sqlite" else "--"
        ax1.plot(xs, [r.uprof.rps for r in rs], style, marker=markers[scenario], label=label)
        ax2.plot(xs, [r.uprof.p99_ms for r in rs], style, marker=markers[scenario], label=label)
    base = [r.baseline.rps for r in rows if r.scenario == "get" and r.workers == 1]
    if base:
        ax1.axhline(statistics.median(base), color="grey", linestyle=":", label="baseline (GET)")
    ax2.axhline(TARGET_P99_MS, color="red", linestyle=":", label="p99 target")
    for ax, title, unit in ((ax1, "Throughput", "req/s"), (ax2, "p99 latency", "ms")):
        ax.set_xscale("log")
        ax.set_xlabel("profiles in the store")
        ax.set_ylabel(unit)
        ax.set_title(f"{title} at 64 connections")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_ylim(bottom=0)
    ax1.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- soak and crash check ------------------------------------------------------------------------


def soak(
    server: Server, seconds: int, loaded: Loaded, pin: Pinning, connections: int
) -> dict[str, Any]:
    """The mixed workload for ``seconds``, RSS sampled every 5 s: drift from the first minute.
    Its creates are balanced by deletes (``wrk/mixed.lua``): the store's size before and after
    is reported, to show the memory was measured at a steady size."""
    profiles_before = count(loaded)
    store = sqlite_path(loaded.database_url)
    wal = None if store is None else wal_of(store)
    sampler = Sampler(server, interval=SOAK_SAMPLE_SECONDS, wal=wal)
    t0 = time.monotonic()
    with sampler:
        result, _ = wrk(
            server.url,
            "mixed",
            seconds=seconds,
            connections=connections,
            ids_path=loaded.ids_path,
            pin=pin,
        )
    profiles_after = count(loaded)

    rss = memory_drift(sampler.samples, seconds)
    private = memory_drift(sampler.private, seconds)
    errors = sum(result["errors"].values())
    return {
        "seconds": round(time.monotonic() - t0),
        "rps": round(requests_per_second(result)),
        "p99_ms": result["latency_us"]["percentiles"]["99"] / 1000,
        "errors": result["errors"],
        "error_count": errors,
        "profiles_before": profiles_before,
        "profiles_after": profiles_after,
        "rss_reference_mib": rss["reference_mib"],
        "rss_last_mib": rss["last_mib"],
        "rss_peak_mib": rss["peak_mib"],
        "drift": rss["drift"],
        "peak_drift": rss["peak_drift"],
        "flat": rss["drift"] <= SOAK_RSS_TARGET,
        "private_reference_mib": private["reference_mib"],
        "private_last_mib": private["last_mib"],
        "private_peak_mib": private["peak_mib"],
        "private_drift": private["drift"],
        "private_peak_drift": private["peak_drift"],
        "private_flat": private["drift"] <= SOAK_RSS_TARGET,
        "wal_peak_mib": round(sampler.wal_peak / 2**20, 1) if wal is not None else None,
        "samples": rss["samples"],
        "private_samples": private["samples"],
    }


def crash_check(
    loaded: Loaded,
    port: int,
    cmd: list[str],
    env: dict[str, str],
    log: Path,
    pin: Pinning,
    seconds: int,
    connections: int,
    data_dir: Path,
) -> dict[str, Any]:
    """Creates under load, ``kill -9`` half-way, restart: is every acknowledged create there?"""
    acked_path = data_dir / "acked.ids"
    acked_path.unlink(missing_ok=True)
    with start_server("uprof", cmd, env, log, port) as server:

        def killer(proc: subprocess.Popen[str]) -> None:
            time.sleep(seconds / 2)
            for p in reversed(server.tree()):
                with contextlib.suppress(psutil.Error):
                    p.kill()  # SIGKILL: no shutdown, no flush

        result, _ = wrk(
            server.url,
            "create",
            seconds=seconds,
            connections=connections,
            ids_path=loaded.ids_path,
            pin=pin,
            extra_env={"BENCH_ACKED": str(acked_path)},
            during=killer,
        )
    acked = [line for line in acked_path.read_text().split() if line]
    # Restart on the same store (it recovers the WAL), then look every acknowledged id up.
    with start_server("uprof", cmd, env, log, port) as server:
        missing = []
        with httpx.Client(
            base_url=server.url, headers={"x-api-key": BENCH_KEY, "anthropic-version": "2023-06-01"}
        ) as client:
            for pid in acked:
                if client.get(f"/v1/user_profiles/{pid}").status_code != 200:
                    missing.append(pid)
    return {
        "acknowledged": len(acked),
        "missing_after_restart": len(missing),
        "missing_sample": missing[:5],
        "survived": not missing and len(acked) > 0,
        "wrk_errors": result["errors"],
    }


# --- the command ---------------------------------------------------------------------------------


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--sizes", default="1k,1M", show_default=True, help="Store sizes, e.g. 1k,1M,10M.")
@click.option("--postgres", is_flag=True, help="Also benchmark uprof on PostgreSQL.")
@click.option("--no-sqlite", is_flag=True, help="Skip SQLite (with --postgres).")
@click.option(
    "--pg-admin-url",
    default="postgresql://postgres@127.0.0.1:5432/postgres",
    show_default=True,
    help="Where the per-size bench databases are created.",
)
@click.option(
    "--workers",
    default="1",
    show_default=True,
    help="Worker counts, e.g. 1,2 (the baseline runs with each too).",
)
@click.option("--duration", default="10s", show_default=True, help="Per scenario and target.")
@click.option("--warmup", default="3s", show_default=True, help="Per server, before measuring.")
@click.option(
    "--repeat",
    type=int,
    default=1,
    show_default=True,
    help="Rounds per scenario (a run of each server, in turns); the median round's ratio "
    "is reported.",
)
@click.option("--connections", type=int, default=64, show_default=True)
@click.option("--scenarios", default=",".join(SCENARIOS), show_default=True)
@click.option(
    "--sqlite-synchronous",
    type=click.Choice(["FULL", "NORMAL"]),
    default="FULL",
    show_default=True,
    help="As `uprof serve --sqlite-synchronous`.",
)
@click.option(
    "--sqlite-mmap-mib",
    type=int,
    default=None,
    help="As `uprof serve --sqlite-mmap-mib` (default: uprof's own default).",
)
@click.option(
    "--render-cache-mib",
    type=int,
    default=None,
    help="As `uprof serve --render-cache-mib` (default: uprof's own default; 0: off).",
)
@click.option(
    "--pg-busy-poll-us",
    type=int,
    default=None,
    help="As `uprof serve --pg-busy-poll-us` (default: uprof's own default; 0: off).",
)
@click.option(
    "--soak",
    "soak_seconds",
    type=int,
    default=0,
    help="Also run the mixed workload this many seconds on the largest store and "
    "report RSS drift (600 for the issue's 10-minute run).",
)
@click.option(
    "--crash-check",
    "do_crash_check",
    is_flag=True,
    help="Also kill -9 uprof under create load and check every acknowledged create "
    "survived (each backend, smallest store).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="Where loaded stores are kept and reused.",
)
@click.option(
    "--py-spy",
    "py_spy",
    is_flag=True,
    help="After each scenario's measured runs, run it once more on uprof under py-spy: folded "
    "stacks in <out>/<timestamp>-profiles/, the busiest lines printed.",
)
@click.option("--out", type=click.Path(path_type=Path), default=RESULTS_DIR, show_default=True)
@click.option(
    "--uprof-src",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="Serve uprof from another checkout's src/ (before/after comparisons); the "
    "baseline and the loader stay this checkout's.",
)
def main(
    sizes: str,
    postgres: bool,
    no_sqlite: bool,
    pg_admin_url: str,
    workers: str,
    duration: str,
    warmup: str,
    repeat: int,
    connections: int,
    scenarios: str,
    sqlite_synchronous: str,
    sqlite_mmap_mib: int | None,
    render_cache_mib: int | None,
    pg_busy_poll_us: int | None,
    soak_seconds: int,
    do_crash_check: bool,
    py_spy: bool,
    data_dir: Path,
    out: Path,
    uprof_src: Path | None,
) -> None:
    """Benchmark uprof against the bare baseline; print ratios, write JSON and a PNG chart."""
    global UPROF_SRC
    if uprof_src is not None:
        UPROF_SRC = uprof_src.resolve()
        click.echo(f"uprof from {UPROF_SRC}")
    # A SIGTERM unwinds like Ctrl-C, so the servers this run started are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    seconds = parse_duration(duration)
    warm = parse_duration(warmup)
    ns = [parse_size(s) for s in sizes.split(",")]
    worker_counts = [int(w) for w in workers.split(",")]
    wanted = [s.strip() for s in scenarios.split(",") if s.strip()]
    for s in wanted:
        if s not in SCENARIOS:
            raise click.BadParameter(f"unknown scenario {s!r}; choose from {SCENARIOS}")
    serve_extra = [] if sqlite_mmap_mib is None else ["--sqlite-mmap-mib", str(sqlite_mmap_mib)]
    if render_cache_mib is not None:
        serve_extra += ["--render-cache-mib", str(render_cache_mib)]
    if pg_busy_poll_us is not None:
        serve_extra += ["--pg-busy-poll-us", str(pg_busy_poll_us)]
    backends = ([] if no_sqlite else ["sqlite"]) + (["postgres"] if postgres else [])
    if not backends:
        raise click.UsageError("nothing to run: --no-sqlite without --postgres")
    if subprocess.run(["which", "wrk"], capture_output=True).returncode != 0:
        raise click.UsageError("wrk is not installed (Debian: apt-get install wrk)")
    if py_spy and server_profile.py_spy() is None:
        raise click.UsageError("--py-spy: py-spy is not installed (pip install -e '.[bench]')")

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    logs = out / f"{stamp}-logs"
    info = machine()
    build = native_build()
    info["native"] = (
        f"on ({len(uprof_native.MODULES)} modules compiled by mypyc, {build.name})"
        if build is not None
        else "off (no native build of these sources: `uprof native build`)"
    )
    click.echo(
        f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, "
        f"Linux {info['kernel']}, Python {info['python']}, SQLite {info['sqlite']}, {info['wrk']}"
    )
    click.echo(f"uprof: native request path {info['native']}")
    info["disk_sync"] = disk_sync_probe(data_dir)
    click.echo(disk_line(info["disk_sync"]))
    click.echo(
        f"load: wrk, 1 thread, {connections} connections, {seconds}s per run, {repeat} run(s) "
        f"per scenario and target; SQLite synchronous={sqlite_synchronous}"
        + ("" if sqlite_mmap_mib is None else f", mmap {sqlite_mmap_mib} MiB")
        + ("" if render_cache_mib is None else f", render cache {render_cache_mib} MiB")
        + ("" if pg_busy_poll_us is None else f", PostgreSQL busy poll {pg_busy_poll_us} us")
    )

    # Load every store first (cached between runs).
    stores: dict[tuple[str, int], Loaded] = {}
    for backend in backends:
        for n in ns:
            loaded = load(n, postgres=backend == "postgres", data_dir=data_dir)
            stores[(backend, n)] = loaded
            click.echo(f"store: {backend} {size_label(n)} profiles ({loaded.database_url})")
            if backend == "postgres" and "postgres" not in info:
                found = postgres_settings(loaded.database_url)
                if found is not None:
                    info["postgres"] = found
                    huge = huge_pages() if is_local(loaded.database_url) else None
                    if huge:
                        info["huge_pages"] = huge
                    click.echo(postgres_settings_line(found, huge))

    rows: list[Row] = []
    pinnings: dict[int, str] = {}
    extra_results: dict[str, Any] = {}
    for w in worker_counts:
        pin = plan_pinning(w)
        pinnings[w] = pin.note
        click.echo(_color(f"\n== workers {w}: {pin.note}", BOLD))
        if any(b == "postgres" for b in backends):
            click.echo("   (PostgreSQL's own processes are the system's and are not pinned)")
        bport = free_port()
        with start_server(
            "baseline",
            baseline_cmd(bport, w, pin),
            server_env(src=ROOT / "src"),
            logs / f"baseline-w{w}.log",
            bport,
        ) as base:
            a_store = next(iter(stores.values()))
            wrk(
                base.url,
                "get",
                seconds=warm,
                connections=connections,
                ids_path=a_store.ids_path,
                pin=pin,
            )
            click.echo(HEADER)
            for backend in backends:
                for n in ns:
                    loaded = stores[(backend, n)]
                    prepare_store(loaded, list(stores.values()), click.echo)
                    port = free_port()
                    cmd = uprof_cmd(
                        port, w, pin, loaded.database_url, sqlite_synchronous, serve_extra
                    )
                    log = logs / f"uprof-{backend}-{size_label(n)}-w{w}.log"
                    with start_server("uprof", cmd, server_env(), log, port) as up:
                        for s in ("get", "list"):
                            wrk(
                                up.url,
                                s,
                                seconds=max(1, warm // 2),
                                connections=connections,
                                ids_path=loaded.ids_path,
                                pin=pin,
                            )
                        store = sqlite_path(loaded.database_url)
                        if store is not None:
                            rss, pmd = mapped_store([p.pid for p in up.tree()], store)
                            if rss:
                                click.echo(
                                    f"   (the store mapped after the warm-up: "
                                    f"{rss / 2**20:,.0f} MiB, {pmd / 2**20:,.0f} of them in "
                                    "2-MiB pages)"
                                )
                        drive: dict[str, Any] = {
                            "seconds": seconds,
                            "connections": connections,
                            "ids_path": loaded.ids_path,
                            "pin": pin,
                            "postgres": backend == "postgres",
                            "database_url": loaded.database_url,
                        }
                        for scenario in wanted:
                            runs: dict[str, list[Run]] = {"baseline": [], "uprof": []}
                            for i in range(repeat):
                                for server in in_turns(i, (base, up)):
                                    if server is up:
                                        # The store's pages, as a server up a while has them:
                                        # what the guest evicted during the last runs is read
                                        # again (see prewarm; SQLite and PostgreSQL alike).
                                        prewarm(loaded.database_url)
                                    runs[server.name].append(measure(server, scenario, **drive))
                            row = Row.of_rounds(
                                backend, w, n, scenario, runs["baseline"], runs["uprof"]
                            )
                            rows.append(row)
                            click.echo(format_row(row))
                            refaults = row.uprof.extra.get("page_cache_refaults", 0)
                            if refaults >= 1000:
                                click.echo(
                                    f"   (uprof's run read {refaults:,} evicted pages back "
                                    "from disk: the store did not stay in the page cache)"
                                )
                            for note in (
                                checkpoint_note(row.uprof),
                                waits_note(row.uprof),
                                slow_writes_note(row.uprof),
                            ):
                                if note:
                                    click.echo(note)
                            if py_spy:
                                name = f"{backend}-{size_label(n)}-w{w}-{scenario}.folded"
                                sampled = measure(
                                    up,
                                    scenario,
                                    **drive,
                                    profile_to=out / f"{stamp}-profiles" / name,
                                )
                                prof = {"rps": round(sampled.rps), **sampled.extra["profile"]}
                                row.uprof.extra["profile"] = prof
                                click.echo(
                                    f"   py-spy ({prof['rps']:,} req/s while sampled, "
                                    f"{prof['samples']:,} samples, {prof['folded']}):"
                                )
                                for line in prof["lines"]:
                                    click.echo(f"     {line}")
                        if soak_seconds and w == worker_counts[0] and n == ns[-1]:
                            click.echo(f"   soak: mixed workload for {soak_seconds}s ...")
                            result = soak(up, soak_seconds, loaded, pin, connections)
                            extra_results[f"soak_{backend}_{size_label(n)}"] = result
                            verdict = _flat_verdict(result["flat"])
                            private_verdict = _flat_verdict(result["private_flat"])
                            click.echo(
                                f"   soak {backend} {size_label(n)}: {result['rps']:,} req/s, "
                                f"p99 {result['p99_ms']:.1f} ms, profiles "
                                f"{result['profiles_before']:,} -> {result['profiles_after']:,}, "
                                f"RSS {result['rss_reference_mib']:.0f} -> "
                                f"{result['rss_last_mib']:.0f} MiB (first and last minutes' "
                                f"medians, drift {result['drift'] * 100:+.1f}%, target <= 10%, "
                                f"peak {result['rss_peak_mib']:.0f}, "
                                f"{result['peak_drift'] * 100:+.1f}%): {verdict}; "
                                f"private {result['private_reference_mib']:.0f} -> "
                                f"{result['private_last_mib']:.0f} MiB (drift "
                                f"{result['private_drift'] * 100:+.1f}%, peak "
                                f"{result['private_peak_mib']:.0f}): {private_verdict}"
                                + (
                                    f"; WAL peak {result['wal_peak_mib']:,.0f} MiB"
                                    if result["wal_peak_mib"] is not None
                                    else ""
                                )
                                + (
                                    _color(f"  !!! {result['error_count']} ERRORS", RED + BOLD)
                                    if result["error_count"]
                                    else ""
                                )
                            )
                            memory_note = soak_memory_note(backend, result)
                            if memory_note is not None:
                                click.echo(memory_note)
                    if do_crash_check and w == worker_counts[0] and n == ns[0]:
                        port = free_port()
                        cmd = uprof_cmd(
                            port, w, pin, loaded.database_url, sqlite_synchronous, serve_extra
                        )
                        result = crash_check(
                            loaded,
                            port,
                            cmd,
                            server_env(),
                            log,
                            pin,
                            seconds,
                            connections,
                            data_dir,
                        )
                        extra_results[f"crash_{backend}"] = result
                        verdict = (
                            _color("every one survived", GREEN)
                            if result["survived"]
                            else _color("LOST WRITES", RED + BOLD)
                        )
                        click.echo(
                            f"   kill -9 under create load ({backend}): "
                            f"{result['acknowledged']} acknowledged, "
                            f"{result['missing_after_restart']} missing after restart: {verdict}"
                        )

    click.echo("")
    for line in scaling_lines(rows):
        click.echo("scaling: " + line)
    for line in worker_lines(rows):
        click.echo("workers: " + line)
    for line in backend_lines(rows):
        click.echo("backends: " + line)
    for line in p99_lines(rows):
        click.echo("p99 miss: " + line)
    errors = [r for r in rows if r.uprof.error_count or r.baseline.error_count]
    if errors:
        click.echo(_color(f"\n!!! {len(errors)} run(s) had errors: see above", RED + BOLD))
    result_path = out / f"{stamp}.json"
    result_path.write_text(
        json.dumps(
            {
                "machine": info,
                "command": sys.argv,
                "pinning": pinnings,
                "settings": {
                    "connections": connections,
                    "duration_s": seconds,
                    "repeat": repeat,
                    "sqlite_synchronous": sqlite_synchronous,
                    "sqlite_mmap_mib": sqlite_mmap_mib,
                    "render_cache_mib": render_cache_mib,
                    "pg_busy_poll_us": pg_busy_poll_us,
                    "targets": {
                        "ratio": TARGET_RATIO,
                        "p99_ms": TARGET_P99_MS,
                        "scaling": SCALING_TARGET,
                    },
                },
                "stores": {f"{b}-{size_label(n)}": asdict(v) for (b, n), v in stores.items()},
                "rows": [r.as_dict() for r in rows],
                **extra_results,
            },
            indent=2,
        )
    )
    png = out / f"{stamp}.png"
    chart(rows, png)
    click.echo(f"\nwrote {result_path} and {png}")
    if errors:
        sys.exit(2)


if __name__ == "__main__":
    main()
