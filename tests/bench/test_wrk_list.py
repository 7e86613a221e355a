"""The list scenario's walks (``bench/wrk/list.lua``) under wrk against a real server: every
page answered, and walks that end at random, not only at the last page, so that the 64
connections do not walk in step (bench/README.md, step 5)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx

from tests.support.prerequisites import require
from tests.support.server import run_server

WRK_DIR = Path(__file__).resolve().parents[2] / "bench" / "wrk"
PAGES = 60  # of 20 profiles: a walk to the end would be 60 pages


def test_list_walks_every_page_and_ends_walks_at_random(tmp_path: Path) -> None:
    wrk = shutil.which("wrk")
    require(wrk is not None, "wrk is not installed (apt-get install wrk)")
    assert wrk is not None
    with run_server(tmp_path) as server:
        headers = {"x-api-key": server.api_key, "anthropic-version": "2023-06-01"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as client:
            for i in range(PAGES * 20):
                r = client.post("/v1/user_profiles", json={"name": f"walker {i}"})
                assert r.status_code == 200, r.text
        done = subprocess.run(
            [wrk, "-t1", "-c16", "-d2s", "-s", str(WRK_DIR / "list.lua"), server.base_url],
            env={**os.environ, "BENCH_WRK_DIR": str(WRK_DIR), "BENCH_KEY": server.api_key},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON "))
    result = json.loads(line.removeprefix("BENCH_JSON "))
    assert sum(result["errors"].values()) == 0, result
    assert result["pages"] > 500, result
    # Each page ends its walk one time in 32 (and the last page always): walks of ~27 pages at
    # the mean here. Walks that ended only at the last page would be 60 pages long.
    mean_walk = result["pages"] / result["walks"]
    assert 15 < mean_walk < 40, result
