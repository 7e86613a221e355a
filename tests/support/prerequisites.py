"""What an e2e test needs from the machine (node, Chromium, PostgreSQL): skipped with a clear
message on a developer's machine that lacks it, a failure under CI, where .ci/run installs it."""

from __future__ import annotations

import os

import pytest


def require(ok: bool, what: str) -> None:
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what}; required when CI is set")
    pytest.skip(f"{what}; set CI=true to make this a failure")
