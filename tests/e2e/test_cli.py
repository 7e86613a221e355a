"""The command line: bootstrap on first start, keys, migrate, help."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port

pytestmark = pytest.mark.e2e

HEADERS = {"anthropic-version": "2023-06-01"}


def uprof(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UPROF_DATABASE_URL": db}
    env.pop("UPROF_BOOTSTRAP_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "uprof", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "args", [(), ("serve",), ("migrate",), ("keys",), ("keys", "create"), ("keys", "revoke")]
)
def test_help_for_every_command(args: tuple[str, ...], tmp_path: Path) -> None:
    r = uprof(*args, "--help", db=f"sqlite:///{tmp_path}/x.db")
    assert r.returncode == 0, r.stderr
    assert "Usage:" in r.stdout


def test_migrate_reports_the_revision(tmp_path: Path) -> None:
    r = uprof("migrate", db=f"sqlite:///{tmp_path}/m.db")
    assert r.returncode == 0, r.stderr
    assert "revision 0003" in r.stdout


def _serve(tmp_path: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "UPROF_DATA_DIR": str(tmp_path / "data")}
    env.pop("UPROF_BOOTSTRAP_API_KEY", None)
    env.pop("UPROF_DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "uprof", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_ready(base: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("server did not start")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    out, _ = proc.communicate(timeout=20)
    return out


def test_first_start_prints_a_key_once_and_it_works(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _serve(tmp_path, port)
    _wait_ready(base, proc)
    r = httpx.get(base + "/v1/user_profiles", headers=HEADERS)
    assert r.status_code == 401
    out = _stop(proc)
    m = re.search(r"ANTHROPIC_API_KEY=(\S+)", out)
    assert m, out
    key = m.group(1)

    proc = _serve(tmp_path, port)
    try:
        _wait_ready(base, proc)
        r = httpx.get(base + "/v1/user_profiles", headers={**HEADERS, "x-api-key": key})
        assert r.status_code == 200, r.text
    finally:
        out = _stop(proc)
    assert "ANTHROPIC_API_KEY=" not in out, "a second start must not print another key"


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/k.db"
    created = uprof("keys", "create", "--org", "acme", db=db)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("sk-ant-uprof-")
    key_id = re.search(r"created key (\S+)", created.stderr).group(1)  # type: ignore[union-attr]
    second = uprof("keys", "create", "--org", "acme", db=db).stdout.strip()
    listed = uprof("keys", "list", db=db).stdout
    assert listed.count("acme") == 2 and key not in listed, "keys are never shown again"
    assert uprof("keys", "revoke", key_id, db=db).returncode == 0
    assert "revoked" in uprof("keys", "list", db=db).stdout
    assert uprof("keys", "revoke", key_id, db=db).returncode == 1

    port = free_port()
    env = {**os.environ, "UPROF_DATABASE_URL": db}
    env.pop("UPROF_BOOTSTRAP_API_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uprof", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        url = base + "/v1/user_profiles"
        assert httpx.get(url, headers={**HEADERS, "x-api-key": key}).status_code == 401
        ok = httpx.post(url, headers={**HEADERS, "x-api-key": second}, json={})
        assert ok.status_code == 200
        assert ok.headers["anthropic-organization-id"].startswith("org_")
    finally:
        _stop(proc)


@pytest.mark.parametrize(
    ("flag", "value", "bounds"),
    [
        ("--render-cache-mib", "-1", "0<=x<=1048576"),
        ("--sqlite-mmap-mib", "-1", "0<=x<=1048576"),
        ("--sqlite-wal-limit-mib", "0", "1<=x<=1048576"),
    ],
)
def test_serve_refuses_a_size_out_of_range(
    flag: str, value: str, bounds: str, tmp_path: Path
) -> None:
    r = uprof("serve", flag, value, db=f"sqlite:///{tmp_path}/x.db")
    assert r.returncode == 2
    assert flag in r.stderr and bounds in r.stderr
