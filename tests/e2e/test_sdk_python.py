"""The official Python SDK (``anthropic==2.10.0``), unchanged, against a real ``uprof serve``.

Every client is built with ``_strict_response_validation=True``: a response whose shape differs
from the SDK's types (a missing field, a wrong type, a bad timestamp) raises instead of passing.
Retries are off so an error surfaces as the SDK's own exception class on the first answer.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from anthropic import Anthropic, AsyncAnthropic

from tests.support.server import RunningServer, run_server

pytestmark = pytest.mark.e2e

BETAS = ["user-profiles-2026-03-24", "user-profiles-2026-08-18", "user-profiles-2026-09-04"]
GA_KEYS = {
    "id",
    "type",
    "name",
    "metadata",
    "access_type",
    "external_user_details",
    "programs",
    "enforcement_status",
    "enforcement_actions",
    "created_at",
    "updated_at",
}
BASE_KEYS = {"id", "type", "name", "metadata", "trust_grants", "created_at", "updated_at"}
BETA_KEYS = {
    # The original documents' `relationship` is served under that beta only.
    "user-profiles-2026-03-24": BASE_KEYS | {"external_id", "relationship"},
    "user-profiles-2026-08-18": BASE_KEYS
    | {"access_type", "external_id", "external_user_onboarded_at"},
    "user-profiles-2026-09-04": BASE_KEYS | {"access_type", "external_user_details"},
}


def sdk(server: RunningServer, api_key: str | None = None) -> Anthropic:
    return Anthropic(
        base_url=server.base_url,
        api_key=api_key or server.api_key,
        max_retries=0,
        _strict_response_validation=True,
    )


def new_org_key(server: RunningServer) -> str:
    """A key of a brand-new organization, made by the CLI against the running server's store."""
    env = {**os.environ, "UPROF_DATABASE_URL": server.database_url}
    env.pop("UPROF_BOOTSTRAP_API_KEY", None)
    org = f"org-{uuid.uuid4().hex[:8]}"
    r = subprocess.run(
        [sys.executable, "-m", "uprof", "keys", "create", "--org", org],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture
def client(uprof_server: RunningServer) -> Iterator[Anthropic]:
    with sdk(uprof_server) as c:
        yield c


@pytest.fixture
def own_org(uprof_server: RunningServer) -> Iterator[Anthropic]:
    """A client whose organization holds only what the test creates (exact counts)."""
    with sdk(uprof_server, new_org_key(uprof_server)) as c:
        yield c


def _fields(model: Any) -> set[str]:
    # to_dict() keeps only the fields the server sent, so it shows what a version omits.
    return set(model.to_dict())


def test_ga_namespace_every_method(client: Anthropic, uprof_server: RunningServer) -> None:
    onboarded = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    created = client.user_profiles.create(
        name="Ada Lovelace",
        metadata={"plan": "pro", "region": "eu"},
        access_type="passthrough",
        external_user_details={
            "reference_id": "cust-1",
            "country": "GB",
            "entity_type": "business",
            "account_status": "active",
            "onboarded_at": onboarded.isoformat(),
        },
    )
    assert isinstance(created, anthropic.types.UserProfile)
    assert created.id.startswith("uprof_") and created.type == "user_profile"
    assert _fields(created) == GA_KEYS
    assert created.access_type == "passthrough"
    details = created.external_user_details
    assert details.reference_id == "cust-1" and details.country == "GB"
    assert details.email_hash is None and details.name_hash is None
    # Stored and served in UTC.
    assert details.onboarded_at == onboarded
    assert details.onboarded_at is not None and details.onboarded_at.utcoffset() == timedelta(0)
    assert created.enforcement_status == "unrestricted" and created.enforcement_actions == []
    assert created.programs.to_dict() == {"cyber": None, "efs": None}
    assert created.created_at == created.updated_at

    got = client.user_profiles.retrieve(created.id)
    assert got == created

    same = client.user_profiles.update(created.id, metadata={"plan": "pro"})
    assert same.updated_at == created.updated_at, "an update that changes nothing keeps updated_at"
    updated = client.user_profiles.update(
        created.id, metadata={"plan": "team", "region": "", "seats": "5"}, name="Ada King"
    )
    assert updated.metadata == {"plan": "team", "seats": "5"}
    assert updated.name == "Ada King" and updated.updated_at > created.updated_at
    assert updated.external_user_details.reference_id == "cust-1", "absent fields untouched"

    url = client.user_profiles.action_urls.create(created.id, action={"type": "enroll_end_user"})
    assert url.type == "user_profile_action_url"
    assert url.url.startswith(uprof_server.base_url + "/")
    lifetime = url.expires_at - datetime.now(UTC)
    assert timedelta(minutes=14) < lifetime <= timedelta(minutes=15, seconds=5)
    page = httpx.get(url.url)
    assert page.status_code == 200 and 'data-state="valid"' in page.text

    listed = [p.id for p in client.user_profiles.list(limit=100)]
    assert created.id in listed

    deleted = client.user_profiles.delete(created.id)
    assert deleted.id == created.id and deleted.type == "user_profile_deleted"
    with pytest.raises(anthropic.NotFoundError) as err:
        client.user_profiles.retrieve(created.id)
    assert err.value.status_code == 404 and err.value.type == "not_found_error"
    assert err.value.request_id and err.value.request_id.startswith("req_")


@pytest.mark.parametrize("beta", BETAS)
def test_beta_namespace_every_method(client: Anthropic, beta: str) -> None:
    api = client.beta.user_profiles
    fields: dict[str, Any] = {"name": "Grace", "metadata": {"team": "compilers"}}
    if beta == "user-profiles-2026-09-04":
        fields["external_user_details"] = {"reference_id": "ext-9", "country": "US"}
    else:
        fields["external_id"] = "ext-9"
    if beta == "user-profiles-2026-08-18":
        fields["external_user_onboarded_at"] = "2026-05-01T10:00:00-04:00"
    if beta != "user-profiles-2026-03-24":
        fields["access_type"] = "application"

    created = api.create(betas=[beta], **fields)
    assert isinstance(created, anthropic.types.beta.BetaUserProfile)
    assert _fields(created) == BETA_KEYS[beta]
    assert created.trust_grants == {}
    if beta == "user-profiles-2026-09-04":
        assert created.external_user_details is not None
        assert created.external_user_details.reference_id == "ext-9"
    else:
        assert created.external_id == "ext-9"
    if beta == "user-profiles-2026-08-18":
        assert created.external_user_onboarded_at == datetime(2026, 5, 1, 14, tzinfo=UTC)

    assert api.retrieve(created.id, betas=[beta]) == created
    updated = api.update(created.id, betas=[beta], metadata={"team": "", "lang": "cobol"})
    assert updated.metadata == {"lang": "cobol"}
    assert created.id in {p.id for p in api.list(betas=[beta], limit=100)}

    enrollment = api.create_enrollment_url(created.id, betas=[beta])
    assert enrollment.type == "enrollment_url" and enrollment.url.startswith("http")
    assert httpx.get(enrollment.url).status_code == 200
    action = api.action_urls.create(created.id, betas=[beta], action={"type": "enroll_end_user"})
    assert action.type == "user_profile_action_url"

    assert api.delete(created.id, betas=[beta]).type == "user_profile_deleted"
    with pytest.raises(anthropic.NotFoundError):
        api.retrieve(created.id, betas=[beta])


def test_beta_namespace_defaults_to_its_own_header(client: Anthropic) -> None:
    """With no ``betas`` the SDK sends ``user-profiles-2026-08-18``, and that view comes back."""
    created = client.beta.user_profiles.create(external_id="x-1", access_type="passthrough")
    assert _fields(created) == BETA_KEYS["user-profiles-2026-08-18"]
    raw = client.beta.user_profiles.with_raw_response.retrieve(created.id)
    assert raw.http_request.headers["anthropic-beta"] == "user-profiles-2026-08-18"
    assert raw.headers["request-id"].startswith("req_")
    assert raw.parse().external_id == "x-1"


def test_one_profile_seen_through_every_version(client: Anthropic) -> None:
    created = client.user_profiles.create(
        external_user_details={"reference_id": "r-1", "onboarded_at": "2026-03-01T00:00:00Z"}
    )
    old = client.beta.user_profiles.retrieve(created.id, betas=["user-profiles-2026-03-24"])
    assert old.external_id == "r-1" and old.access_type is None
    mid = client.beta.user_profiles.retrieve(created.id, betas=["user-profiles-2026-08-18"])
    assert mid.external_user_onboarded_at == datetime(2026, 3, 1, tzinfo=UTC)
    new = client.beta.user_profiles.retrieve(created.id, betas=["user-profiles-2026-09-04"])
    assert new.external_user_details is not None
    assert new.external_user_details.reference_id == "r-1"

    # A write through an older version lands in the same record the GA view reads.
    client.beta.user_profiles.update(
        created.id, betas=["user-profiles-2026-03-24"], external_id="r-2"
    )
    assert client.user_profiles.retrieve(created.id).external_user_details.reference_id == "r-2"


def test_fields_a_version_does_not_accept_are_rejected(client: Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as err:
        client.beta.user_profiles.create(
            betas=["user-profiles-2026-03-24"], access_type="application"
        )
    assert err.value.type == "invalid_request_error" and "access_type" in str(err.value.api_message)
    with pytest.raises(anthropic.BadRequestError):
        client.beta.user_profiles.create(betas=["user-profiles-2026-09-04"], external_id="x")
    with pytest.raises(anthropic.BadRequestError):
        client.user_profiles.create(extra_body={"external_id": "x"})


def test_auto_pagination_walks_every_page_once(own_org: Anthropic) -> None:
    ids = [own_org.user_profiles.create(name=f"user {i:02d}").id for i in range(45)]

    newest_first = [p.id for p in own_org.user_profiles.list(limit=10)]
    assert newest_first == ids[::-1]

    first = own_org.user_profiles.list(limit=10, order="asc")
    assert [p.id for p in first.data] == ids[:10] and first.has_next_page()
    second = first.get_next_page()
    assert [p.id for p in second.data] == ids[10:20]

    by_name = [
        p.name or "" for p in own_org.user_profiles.list(limit=7, order_by="name", order="asc")
    ]
    assert by_name == sorted(by_name) and len(by_name) == 45

    beta = own_org.beta.user_profiles.list(betas=["user-profiles-2026-09-04"], limit=8)
    assert sorted(p.id for p in beta) == sorted(ids)

    last = own_org.user_profiles.list(limit=100)
    assert not last.has_next_page() and last.next_page is None


def test_pages_stay_complete_while_profiles_are_created(own_org: Anthropic) -> None:
    ids = {own_org.user_profiles.create().id for _ in range(30)}
    seen: list[str] = []
    for i, p in enumerate(own_org.user_profiles.list(limit=5, order="asc")):
        seen.append(p.id)
        # A newcomer sorts after everything seen so far. None while the last page is being read:
        # that page's `next_page: null` was decided before the newcomer existed.
        if i % 5 == 0 and i < 25:
            ids.add(own_org.user_profiles.create().id)
    assert len(seen) == len(set(seen)), "no profile twice"
    assert set(seen) == ids, "every profile, including those created during the walk"


def test_enforcement_status_filter(own_org: Anthropic) -> None:
    ids = {own_org.user_profiles.create().id for _ in range(3)}
    unrestricted = own_org.user_profiles.list(enforcement_status=["unrestricted", "pending"])
    assert {p.id for p in unrestricted} == ids
    assert list(own_org.user_profiles.list(enforcement_status=["banned", "restricted"])) == []
    with pytest.raises(anthropic.BadRequestError):
        own_org.beta.user_profiles.list(
            betas=["user-profiles-2026-09-04"],
            extra_query={"enforcement_status": ["banned"]},  # sent as enforcement_status[]
        )


def test_errors_are_the_sdks_exception_classes(
    client: Anthropic, uprof_server: RunningServer
) -> None:
    with (
        sdk(uprof_server, "sk-ant-uprof-not-a-key") as wrong,
        pytest.raises(anthropic.AuthenticationError) as auth,
    ):
        wrong.user_profiles.list()
    assert auth.value.status_code == 401 and auth.value.request_id
    assert auth.value.response.headers["x-should-retry"] == "false"

    with pytest.raises(anthropic.BadRequestError) as bad:
        client.user_profiles.create(metadata={f"k{i}": "v" for i in range(17)})
    assert bad.value.type == "invalid_request_error" and bad.value.request_id
    assert bad.value.body["error"]["details"]["error_code"] == "invalid_metadata"  # type: ignore[index]

    with pytest.raises(anthropic.BadRequestError):
        client.user_profiles.list(page="page_forged")
    with pytest.raises(anthropic.BadRequestError) as beta:
        client.beta.user_profiles.list(betas=["no-such-beta-2099-01-01"])
    assert "no-such-beta-2099-01-01" in str(beta.value.api_message)
    with pytest.raises(anthropic.NotFoundError):
        client.user_profiles.update("uprof_0000000000000000000000000", name="x")
    with pytest.raises(anthropic.NotFoundError):
        client.user_profiles.action_urls.create(
            "uprof_0000000000000000000000000", action={"type": "enroll_end_user"}
        )
    with pytest.raises(anthropic.NotFoundError):
        # The enrollment URL endpoint exists only under the betas (GA has action URLs).
        client.post("/v1/user_profiles/uprof_x/enrollment_url", cast_to=httpx.Response, body={})


def test_organizations_never_see_each_other(client: Anthropic, own_org: Anthropic) -> None:
    mine = client.user_profiles.create(name="mine")
    with pytest.raises(anthropic.NotFoundError):
        own_org.user_profiles.retrieve(mine.id)
    with pytest.raises(anthropic.NotFoundError):
        own_org.user_profiles.update(mine.id, metadata={"x": "y"})
    with pytest.raises(anthropic.NotFoundError):
        own_org.user_profiles.delete(mine.id)
    with pytest.raises(anthropic.NotFoundError):
        own_org.user_profiles.action_urls.create(mine.id, action={"type": "enroll_end_user"})
    assert mine.id not in {p.id for p in own_org.user_profiles.list(limit=100)}

    for _ in range(3):
        client.user_profiles.create()
    cursor = client.user_profiles.list(limit=1).next_page
    assert cursor is not None
    with pytest.raises(anthropic.BadRequestError):
        own_org.user_profiles.list(limit=1, page=cursor)
    assert client.user_profiles.retrieve(mine.id).metadata == {}, "untouched by the other org"


def test_async_client(uprof_server: RunningServer) -> None:
    async def flow() -> None:
        async with AsyncAnthropic(
            base_url=uprof_server.base_url,
            api_key=new_org_key(uprof_server),
            max_retries=0,
            _strict_response_validation=True,
        ) as c:
            made = await asyncio.gather(
                *(c.user_profiles.create(metadata={"n": str(i)}) for i in range(12))
            )
            seen = [p.id async for p in c.user_profiles.list(limit=5)]
            assert sorted(seen) == sorted(p.id for p in made)
            # Concurrent merges of different keys into one profile all survive.
            target = made[0].id
            await asyncio.gather(
                *(c.user_profiles.update(target, metadata={f"k{i}": "v"}) for i in range(10))
            )
            final = await c.user_profiles.retrieve(target)
            assert final.metadata == {"n": "0", **{f"k{i}": "v" for i in range(10)}}

    asyncio.run(flow())


@pytest.mark.parametrize("store", ["sqlite-full", "sqlite-normal", "postgresql"], ids=lambda s: s)
def test_acknowledged_writes_survive_kill_9(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Every write the SDK saw acknowledged is there after SIGKILL and a restart."""
    database_url: str | None = None
    extra: tuple[str, ...] = ()
    if store == "postgresql":
        database_url = str(request.getfixturevalue("postgres_url"))
    elif store == "sqlite-normal":
        extra = ("--sqlite-synchronous", "NORMAL")
    acknowledged: dict[str, str] = {}
    lock = threading.Lock()
    stop = threading.Event()

    with run_server(tmp_path / "data", database_url=database_url, extra_args=extra) as server:
        key = new_org_key(server)

        def writer(n: int) -> None:
            with sdk(server, key) as c:
                i = 0
                while not stop.is_set():
                    try:
                        p = c.user_profiles.create(metadata={"w": str(n), "i": str(i)})
                        c.user_profiles.update(p.id, metadata={"i": str(i + 1)})
                    except anthropic.APIConnectionError:
                        return  # the server died under us: this write was never acknowledged
                    with lock:
                        acknowledged[p.id] = str(i + 1)
                    i += 1

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        while len(acknowledged) < 200:
            threading.Event().wait(0.01)
        server.process.kill()  # SIGKILL: no shutdown hooks, no final flush
        server.process.wait()
        stop.set()
        for t in threads:
            t.join(timeout=30)
        database_url = server.database_url

    with (
        run_server(tmp_path / "data", database_url=database_url, extra_args=extra) as again,
        sdk(again, key) as c,
    ):
        stored = {p.id: p.metadata["i"] for p in c.user_profiles.list(limit=100)}
    missing = {pid for pid in acknowledged if pid not in stored}
    assert not missing, f"{len(missing)} acknowledged creates lost"
    stale = {pid for pid, i in acknowledged.items() if stored[pid] != i}
    assert not stale, f"{len(stale)} acknowledged updates lost"
