"""Start a real ``uprof serve`` process for end-to-end tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    base_url: str
    api_key: str
    database_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def run_server(
    data_dir: Path,
    *,
    api_key: str = "sk-ant-uprof-e2e-test-key",
    database_url: str | None = None,
    extra_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> Iterator[RunningServer]:
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    database_url = database_url or f"sqlite:///{data_dir / 'uprof.db'}"
    log_path = data_dir / f"server-{port}.log"
    proc_env = {
        **os.environ,
        "UPROF_BOOTSTRAP_API_KEY": api_key,
        "UPROF_DATABASE_URL": database_url,
        **(env or {}),
    }
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uprof", "serve", "--port", str(port), *extra_args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=proc_env,
        )
    base_url = f"http://127.0.0.1:{port}"
    server = RunningServer(base_url, api_key, database_url, proc, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"uprof exited early ({proc.returncode}):\n{server.log()}")
            try:
                if httpx.get(base_url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"uprof did not start within 30 s:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
