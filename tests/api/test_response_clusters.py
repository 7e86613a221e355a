"""Which responses wait for the others of their loop pass to be written with them."""

from __future__ import annotations

from collections.abc import Callable
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


def test_every_api_response_waits_for_its_pass(api: Api, turns: list[int]) -> None:
    # Writes too: a group commit settles its writes together, but each renders its response
    # between the others' writes unless they wait for the pass.
    pid = api.create()["id"]
    base = f"/v1/user_profiles/{pid}"
    calls: dict[str, tuple[Callable[[], Any], int]] = {  # name: (request, its status)
        "retrieve": (lambda: api.get(pid), 200),
        "list": (lambda: api.list(), 200),
        "a read's error": (lambda: api.get("uprof_missing"), 404),
        "create": (lambda: api.call("POST", "/v1/user_profiles", json={}), 200),
        "update": (lambda: api.update(pid, {"metadata": {"k": "v"}}), 200),
        "enrollment_url": (lambda: _enroll(api, pid), 200),
        "action_urls": (lambda: _action(api, pid), 200),
        "a write's error": (lambda: api.update(pid, {"name": 5}), 400),
        "delete": (lambda: api.call("DELETE", base), 200),
    }
    for name, (call, status) in calls.items():
        before = len(turns)
        r = call()
        assert r.status_code == status, (name, r.text)
        assert len(turns) == before + 1, name
