"""Paired before/after: two builds of uprof served at once on one store, driven in turns.

Separate harness invocations of the same code moved by up to 0.05 of a ratio on this shared VM
(the host's phase moves the baseline between minutes, docs/performance.md "Noise"), which is as
much as most changes are worth. Here both builds serve the same store at the same time, with
the same pinning, and wrk drives them in alternating order (A B, B A, ...), several rounds a
scenario; each round's B/A throughput is a pair measured within seconds of itself, so the
host's phase cancels out of it. The median of those ratios is the figure.

    .venv/bin/python bench/ab.py --before ../old/src --after src --postgres --size 1k \\
        --scenarios create,update --rounds 6
"""

from __future__ import annotations

import contextlib
import signal
import statistics
import sys
import time
from pathlib import Path

import click

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    DEFAULT_DATA_DIR,
    RESULTS_DIR,
    in_turns,
    pair_ratios,
    paired_ratio,
    parse_size,
)
from bench.load import load, reset


def turn(round_no: int) -> tuple[str, str]:
    """Which build goes first in a round: A B, then B A, so that neither is always the one
    measured right after the other has run."""
    return in_turns(round_no, ("A", "B"))


def summary_line(scenario: str, a: list[float], b: list[float]) -> str:
    """Each build's median throughput, B/A of each round, and the median of those ratios."""
    pairs = pair_ratios(a, b)
    return (
        f"{scenario:<7} A {statistics.median(a):>8,.0f} req/s   "
        f"B {statistics.median(b):>8,.0f} req/s   "
        f"B/A by round {' '.join(f'{p:.2f}' for p in pairs)}   "
        f"median {paired_ratio(a, b):.3f}"
    )


def served_as(build: Path | None) -> str:
    """How a side with native build ``build`` (None: none) is served. ``uprof native build``
    prunes all but its newest builds, so a copy built earlier may have lost its build since,
    and a side served interpreted where compiled was meant skews every pair: say which."""
    if build is None:
        return "interpreted: no native build of these sources; `uprof native build` makes one"
    return f"compiled: native build {build.name}"


@click.command()
@click.option(
    "--before",
    "before_src",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    required=True,
    help="The src/ directory of the build to compare against (A).",
)
@click.option(
    "--after",
    "after_src",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=Path(__file__).resolve().parent.parent / "src",
    show_default=True,
    help="The src/ directory of the build measured (B).",
)
@click.option(
    "--before-arg",
    "before_args",
    multiple=True,
    help="An argument of A's `uprof serve` (repeat it), e.g. --before-arg=--sqlite-mmap-mib=0.",
)
@click.option("--after-arg", "after_args", multiple=True, help="The same for B.")
@click.option("--postgres", is_flag=True, help="Serve a PostgreSQL store instead of SQLite.")
@click.option("--size", default="1k", show_default=True, help="Profiles in the store.")
@click.option("--scenarios", default="create,update", show_default=True)
@click.option("--rounds", type=int, default=6, show_default=True, help="Pairs per scenario.")
@click.option("--duration", default="5s", show_default=True, help="Each run of each build.")
@click.option("--connections", type=int, default=64, show_default=True)
@click.option(
    "--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True
)
def main(
    before_src: Path,
    after_src: Path,
    before_args: tuple[str, ...],
    after_args: tuple[str, ...],
    postgres: bool,
    size: str,
    scenarios: str,
    rounds: int,
    duration: str,
    connections: int,
    data_dir: Path,
) -> None:
    """Throughput of two builds of uprof, measured in alternating pairs on one store."""
    # The harness's servers and wrk need the bench extra (psutil); the arithmetic above does not.
    from bench.run import (
        SCENARIOS,
        free_port,
        native_build,
        parse_duration,
        plan_pinning,
        prewarm,
        requests_per_second,
        server_env,
        start_server,
        uprof_cmd,
        wrk,
    )

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    wanted = [s.strip() for s in scenarios.split(",") if s.strip()]
    for s in wanted:
        if s not in SCENARIOS:
            raise click.BadParameter(f"unknown scenario {s!r}; choose from {SCENARIOS}")
    if rounds < 1:
        raise click.BadParameter("--rounds must be at least 1")
    seconds = parse_duration(duration)
    builds = {"A": before_src.resolve(), "B": after_src.resolve()}
    extra = {"A": list(before_args), "B": list(after_args)}
    found = {name: native_build(src) for name, src in builds.items()}
    for name, src in builds.items():
        click.echo(
            f"{name}: {src} {' '.join(extra[name])}".rstrip() + f" ({served_as(found[name])})"
        )
    if (found["A"] is None) != (found["B"] is None):
        # Compiled against interpreted measures the compiler, not the change.
        raise click.ClickException(
            "one build is compiled and the other is not: run "
            "`PYTHONPATH=<src> python -m uprof native build` for the interpreted one"
        )
    loaded = load(parse_size(size), postgres=postgres, data_dir=data_dir)
    prewarm(loaded.database_url)
    removed = reset(loaded)
    pin = plan_pinning(1)
    click.echo(f"store: {loaded.database_url} ({removed} profiles of earlier runs removed)")
    click.echo(f"{pin.note}; both builds on the server's core, one of them driven at a time")
    logs = RESULTS_DIR / f"{time.strftime('%Y%m%d-%H%M%S')}-ab-logs"
    with contextlib.ExitStack() as servers:
        urls: dict[str, str] = {}
        for name, src in builds.items():
            port = free_port()
            cmd = uprof_cmd(port, 1, pin, loaded.database_url, "FULL", extra[name])
            env = server_env(src=src)
            server = servers.enter_context(
                start_server(name, cmd, env, logs / f"uprof-{name}.log", port)
            )
            urls[name] = server.url
        for scenario in wanted:
            # Profiles an earlier scenario created are removed (and, on PostgreSQL, vacuumed
            # away), so that each scenario starts from the store as loaded.
            reset(loaded)
            drive = {"connections": connections, "ids_path": loaded.ids_path, "pin": pin}
            for url in urls.values():  # warm both
                wrk(url, scenario, seconds=max(1, seconds // 2), **drive)  # type: ignore[arg-type]
            rps: dict[str, list[float]] = {"A": [], "B": []}
            for i in range(rounds):
                for name in turn(i):
                    result, _ = wrk(urls[name], scenario, seconds=seconds, **drive)  # type: ignore[arg-type]
                    rps[name].append(requests_per_second(result))
            click.echo(summary_line(scenario, rps["A"], rps["B"]))


if __name__ == "__main__":
    main()
