"""Fixtures shared by the unit and API tests.

API tests run on SQLite and on PostgreSQL (``database_url`` is parametrized). PostgreSQL comes
from ``UPROF_TEST_POSTGRES_URL`` (default: the local server at 127.0.0.1:5432); each test session
gets a fresh database, and each test a fresh organization, so tests never see each other's rows.
Without a reachable PostgreSQL the PostgreSQL half is skipped, unless ``CI`` is set: there it fails.
"""

from __future__ import annotations

import builtins
import contextlib
import itertools
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.support.databases import temporary_database
from tests.support.prerequisites import require
from uprof.app import build_services, create_app
from uprof.config import Settings
from uprof.domain.timefmt import parse_rfc3339
from uprof.service.clock import ManualClock
from uprof.service.container import Services

PG_ADMIN_URL = os.environ.get(
    "UPROF_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PUBLIC_URL = "http://uprof.test"
START = parse_rfc3339("start", "2026-11-22T12:00:00Z")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(temporary_database(PG_ADMIN_URL, f"uprof_test_{os.getpid()}"))
        except Exception as e:
            require(False, f"PostgreSQL not reachable at {PG_ADMIN_URL} ({e})")
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'uprof.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


class SequentialIds:
    """Deterministic ids for golden responses: uprof_000…001, uprof_000…002, ..."""

    def __init__(self) -> None:
        self._counters: dict[str, itertools.count[int]] = {}
        self._salt = uuid.uuid4().hex[:6]

    def __call__(self, prefix: str) -> str:
        n = next(self._counters.setdefault(prefix, itertools.count(1)))
        if prefix == "uprof":
            return f"uprof_{n:024d}"
        return f"{prefix}_{self._salt}{n:018d}"


@pytest.fixture
def services(database_url: str, clock: ManualClock) -> Iterator[Services]:
    settings = Settings(database_url=database_url, public_url=PUBLIC_URL)
    svc = build_services(settings, clock=clock)
    try:
        yield svc
    finally:
        svc.db.close()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    app = create_app(services.settings, services=services)
    with TestClient(app, base_url=PUBLIC_URL, raise_server_exceptions=False) as c:
        yield c


class Api:
    """A thin caller of the HTTP API for one organization's key."""

    def __init__(self, client: TestClient, key: str) -> None:
        self.client = client
        self.key = key

    def headers(self, beta: str | None = None, **extra: str) -> dict[str, str]:
        h = {"x-api-key": self.key, "anthropic-version": "2023-06-01"}
        if beta:
            h["anthropic-beta"] = beta
        h.update(extra)
        return h

    def call(
        self, method: str, path: str, *, beta: str | None = None, json: Any = None, **kw: Any
    ) -> Any:
        headers = {**self.headers(beta), **kw.pop("headers", {})}
        return self.client.request(method, path, headers=headers, json=json, **kw)

    def create(self, body: dict[str, Any] | None = None, beta: str | None = None) -> Any:
        r = self.call("POST", "/v1/user_profiles", beta=beta, json=body or {})
        assert r.status_code == 200, r.text
        return r.json()

    def get(self, profile_id: str, beta: str | None = None) -> Any:
        return self.call("GET", f"/v1/user_profiles/{profile_id}", beta=beta)

    def update(self, profile_id: str, body: dict[str, Any], beta: str | None = None) -> Any:
        return self.call("POST", f"/v1/user_profiles/{profile_id}", beta=beta, json=body)

    def list(self, beta: str | None = None, **params: Any) -> Any:
        return self.call("GET", "/v1/user_profiles", beta=beta, params=params)

    def list_all(self, beta: str | None = None, **params: Any) -> builtins.list[dict[str, Any]]:
        items: builtins.list[dict[str, Any]] = []
        page: str | None = None
        while True:
            r = self.list(beta=beta, **params, **({"page": page} if page else {}))
            assert r.status_code == 200, r.text
            body = r.json()
            items += body["data"]
            page = body["next_page"]
            if page is None:
                return items


def new_org_key(services: Services) -> str:
    return services.keys.create_key(f"org-{uuid.uuid4().hex[:10]}")[1]


@pytest.fixture
def api(client: TestClient, services: Services) -> Api:
    return Api(client, new_org_key(services))


@pytest.fixture
def other_api(client: TestClient, services: Services) -> Api:
    return Api(client, new_org_key(services))
