"""The official TypeScript SDK against a real server: runs ``tests/e2e/ts/flow.mjs`` in node.

The SDK version is pinned in ``tests/e2e/ts/package.json`` (``package-lock.json``);
``scripts/test`` installs it with ``npm ci``. Without node or the installed SDK this test is
skipped with a message, unless ``CI`` is set: there it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.prerequisites import require
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

TS_DIR = Path(__file__).parent / "ts"
FLOW = TS_DIR / "flow.mjs"
SDK_DIR = TS_DIR / "node_modules" / "@anthropic-ai" / "sdk"


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, checked before the server starts."""
    node = shutil.which("node")
    require(node is not None, "node is not installed (apt-get install nodejs npm)")
    assert node is not None
    require(
        SDK_DIR.is_dir(),
        f"the TypeScript SDK is not installed in {TS_DIR / 'node_modules'} "
        f"(run `npm ci` in {TS_DIR}, or ./scripts/test)",
    )
    return node


def test_typescript_sdk_flow(node: str, uprof_server: RunningServer) -> None:
    # Only the server given here: no credential or base URL from the caller's environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env |= {"UPROF_BASE_URL": uprof_server.base_url, "UPROF_API_KEY": uprof_server.api_key}
    try:
        r = subprocess.run(
            [node, str(FLOW)],
            cwd=TS_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(
            f"flow.mjs did not finish within 120 s\n--- stdout\n{_text(e.stdout)}"
            f"\n--- stderr\n{_text(e.stderr)}"
        )
    assert r.returncode == 0, (
        f"flow.mjs exited {r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
        f"\n--- server log (tail)\n{uprof_server.log()[-4000:]}"
    )
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True
    pinned = json.loads((TS_DIR / "package.json").read_text())["dependencies"]
    assert summary["sdk"] == f"@anthropic-ai/sdk@{pinned['@anthropic-ai/sdk']}", (
        "not the pinned SDK"
    )
    assert summary["versions"] == [
        "ga",
        "user-profiles-2026-03-24",
        "user-profiles-2026-08-18",
        "user-profiles-2026-09-04",
    ]
    assert summary["list_pages"] >= 3
