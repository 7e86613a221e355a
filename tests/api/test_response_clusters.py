"""Which responses wait for the others of their loop pass to be written with them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_links import _action, _enroll
from tests.conftest import Api
from uprof.http.clusters import ResponseClusters


@pytest.fixture
def turns(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    counted: list[int] = []
    real = ResponseClusters.turn

    async def counting(self: ResponseClusters) -> None:
        counted.append(1)
        await real(self)

    monkeypatch.setattr(ResponseClusters, "turn", counting)
    return counted


def _turns_of(turns: list[int], call: Any) -> int:
    before = len(turns)
    call()
    return len(turns) - before


def test_reads_wait_for_their_pass_and_group_committed_writes_do_not(
    api: Api, turns: list[int]
) -> None:
    pid = api.create()["id"]
    base = f"/v1/user_profiles/{pid}"
    reads = {
        "retrieve": lambda: api.get(pid),
        "list": lambda: api.list(),
        "a read's error": lambda: api.get("uprof_missing"),
    }
    writes = {
        "create": lambda: api.call("POST", "/v1/user_profiles", json={}),
        "update": lambda: api.update(pid, {"metadata": {"k": "v"}}),
        "enrollment_url": lambda: _enroll(api, pid),
        "action_urls": lambda: _action(api, pid),
        "delete": lambda: api.call("DELETE", base),
    }
    for name, call in reads.items():
        assert _turns_of(turns, call) == 1, name
    # A batch's responses already go out together when its commit settles.
    for name, call in writes.items():
        before = len(turns)
        r = call()
        assert r.status_code == 200, (name, r.text)
        assert len(turns) == before, name
