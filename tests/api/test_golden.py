"""Golden responses: one scenario per contract version, kept as readable JSON in tests/golden/.

Regenerate after an intended change with ``UPROF_UPDATE_GOLDEN=1 pytest tests/api/test_golden.py``
and review the diff: it is the wire contract.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.api.test_transport import V0324, V0818, V0904
from tests.conftest import PUBLIC_URL, Api, SequentialIds, new_org_key
from uprof.app import build_services
from uprof.config import Settings
from uprof.service.clock import ManualClock
from uprof.service.container import Services

GOLDEN = Path(__file__).parent.parent / "golden"
VERSIONS = {"ga": None, "2026-09-04": V0904, "2026-08-18": V0818, "2026-03-24": V0324}
_TOKEN = re.compile(r"(/user-profiles/(?:enrollment|actions)/)[A-Za-z0-9_-]+")
_REQUEST_ID = re.compile(r"req_[A-Za-z0-9]+")
_CURSOR = re.compile(r"^page_[A-Za-z0-9_-]+$")


@pytest.fixture
def services(tmp_path: Path, clock: ManualClock) -> Iterator[Services]:
    # SQLite only: the ids are fixed, and the shapes do not depend on the dialect (the other API
    # tests run on both).
    svc = build_services(
        Settings(database_url=f"sqlite:///{tmp_path / 'golden.db'}", public_url=PUBLIC_URL),
        clock=clock,
        new_id=SequentialIds(),
    )
    try:
        yield svc
    finally:
        svc.db.close()


def _normalize(value: Any) -> Any:
    """Replace what is random by design (tokens, request ids, cursors) with placeholders."""
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    if isinstance(value, str):
        if _CURSOR.match(value):
            return "page_<cursor>"
        value = _TOKEN.sub(r"\1<token>", value)
        return _REQUEST_ID.sub("req_<id>", value)
    return value


def _exchange(api: Api, beta: str | None, method: str, path: str, body: Any = None) -> Any:
    r = api.call(method, path, beta=beta, json=body)
    return {
        "request": {"method": method, "path": path, **({"body": body} if body is not None else {})},
        "status": r.status_code,
        "response": _normalize(r.json()),
    }


def _scenario(api: Api, clock: ManualClock, beta: str | None) -> list[Any]:
    legacy = beta in (V0324, V0818)
    create: dict[str, Any] = {"name": "Acme Corp", "metadata": {"plan": "enterprise"}}
    if beta == V0324:
        create |= {"external_id": "cust_42", "relationship": "resold"}
    elif beta == V0818:
        create |= {
            "external_id": "cust_42",
            "access_type": "passthrough",
            "external_user_onboarded_at": "2025-05-14T09:30:00+02:00",
        }
    else:
        create |= {
            "access_type": "passthrough",
            "external_user_details": {
                "reference_id": "cust_42",
                "country": "DE",
                "entity_type": "business",
                "account_status": "active",
                "onboarded_at": "2025-05-14T09:30:00+02:00",
            },
        }
    steps = [_exchange(api, beta, "POST", "/v1/user_profiles", create)]
    pid = steps[0]["response"]["id"]
    clock.advance(60)
    steps.append(_exchange(api, beta, "POST", "/v1/user_profiles", {}))
    clock.advance(60)
    steps.append(_exchange(api, beta, "GET", f"/v1/user_profiles/{pid}"))
    steps.append(
        _exchange(
            api,
            beta,
            "POST",
            f"/v1/user_profiles/{pid}",
            {"metadata": {"plan": "", "tier": "gold"}},
        )
    )
    steps.append(_exchange(api, beta, "GET", "/v1/user_profiles?limit=1"))
    steps.append(_exchange(api, beta, "GET", "/v1/user_profiles?order_by=name&order=asc"))
    if beta is not None:
        steps.append(_exchange(api, beta, "POST", f"/v1/user_profiles/{pid}/enrollment_url"))
    steps.append(
        _exchange(
            api,
            beta,
            "POST",
            f"/v1/user_profiles/{pid}/action_urls",
            {"action": {"type": "enroll_end_user"}},
        )
    )
    wrong = {"external_user_details": {"country": "US"}} if legacy else {"external_id": "x"}
    steps.append(_exchange(api, beta, "POST", f"/v1/user_profiles/{pid}", wrong))
    steps.append(_exchange(api, beta, "DELETE", f"/v1/user_profiles/{pid}"))
    steps.append(_exchange(api, beta, "GET", f"/v1/user_profiles/{pid}"))
    return steps


@pytest.mark.parametrize("version", list(VERSIONS))
def test_golden(client: TestClient, services: Services, clock: ManualClock, version: str) -> None:
    api = Api(client, new_org_key(services))
    actual = _scenario(api, clock, VERSIONS[version])
    path = GOLDEN / f"{version}.json"
    if os.environ.get("UPROF_UPDATE_GOLDEN"):
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n")
    expected = json.loads(path.read_text())
    assert actual == expected
