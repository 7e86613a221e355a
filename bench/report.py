"""A results file as Markdown tables (for docs/performance.md).

python bench/report.py bench/results/<timestamp>.json [...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import click

from bench.common import size_label, spread


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
def main(paths: tuple[Path, ...]) -> None:
    """Print the rows of one or more results files as a Markdown table."""
    click.echo(
        "| backend | workers | profiles | scenario | baseline req/s | baseline p99 | uprof req/s "
        "| ratio | rounds | target | p50 ms | p99 ms | peak RSS / private MiB "
        "| server/wrk/pg CPU % | met |"
    )
    click.echo("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    extras = []
    for path in paths:
        data = json.loads(path.read_text())
        for r in data["rows"]:
            b, u = r["baseline"], r["uprof"]
            cpu = "/".join(f"{v:.0f}" for v in u["cpu"].values())
            met = "yes" if r["ratio_met"] and r["p99_met"] else "no"
            errors = sum(u["errors"].values()) + sum(b["errors"].values())
            click.echo(
                f"| {r['backend']} | {r['workers']} | {size_label(r['n'])} | {r['scenario']} "
                f"| {b['rps']:,.0f} | {b['p99_ms']:.1f} | {u['rps']:,.0f} | {r['ratio']:.2f} "
                f"| {spread(r.get('pair_ratios', []))} | {r['target_ratio']:.2f} "
                f"| {u['p50_ms']:.1f} | {u['p99_ms']:.1f} "
                f"| {u['peak_rss_mib']:.0f} / {u.get('peak_private_mib', 0):.0f} | {cpu} "
                f"| {met}{' ERRORS' if errors else ''} |"
            )
        for key, value in data.items():
            if key.startswith(("soak_", "crash_")):
                value = {k: v for k, v in value.items() if not k.endswith("samples")}
                extras.append(f"{key}: {json.dumps(value)}")
    for line in extras:
        click.echo("\n" + line)


if __name__ == "__main__":
    main()
