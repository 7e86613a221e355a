"""Every bench script runs by its path, as bench/README.md and the scripts' own usage lines
show it (``.venv/bin/python bench/<script>.py``), not only as a module of the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = ["ab.py", "baseline.py", "inprocess.py", "load.py", "report.py", "run.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_bench_script_runs_by_its_path(script: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"],
        cwd=tmp_path,  # not the checkout: the package must be found from the script's place
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout


def test_every_script_with_a_command_line_is_listed() -> None:
    with_main = {p.name for p in BENCH.glob("*.py") if 'if __name__ == "__main__"' in p.read_text()}
    assert with_main == set(SCRIPTS)
