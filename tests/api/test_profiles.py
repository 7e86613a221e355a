"""Create, retrieve, update and delete across the contract versions, and the rules on values."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.api.test_transport import V0324, V0818, V0904, assert_error
from tests.conftest import Api
from uprof.domain.model import ListQuery
from uprof.domain.requests import ProfileBody
from uprof.domain.versions import GA
from uprof.service.clock import ManualClock
from uprof.service.container import Services
from uprof.store import profiles as store

COMMON = {"id", "type", "created_at", "updated_at", "metadata", "name"}
SHAPES = {
    V0324: COMMON | {"relationship", "external_id", "trust_grants"},
    V0818: COMMON | {"access_type", "external_id", "external_user_onboarded_at", "trust_grants"},
    V0904: COMMON | {"access_type", "external_user_details", "trust_grants"},
    None: COMMON
    | {
        "access_type",
        "external_user_details",
        "programs",
        "enforcement_status",
        "enforcement_actions",
    },
}
DETAIL_KEYS = {
    "account_status",
    "country",
    "email_hash",
    "entity_type",
    "name_hash",
    "onboarded_at",
    "reference_id",
}


@pytest.mark.parametrize("beta", list(SHAPES))
def test_each_version_has_its_exact_shape(api: Api, beta: str | None) -> None:
    created = api.create(beta=beta)
    assert set(created) == SHAPES[beta]
    retrieved = api.get(created["id"], beta=beta).json()
    assert set(retrieved) == SHAPES[beta]
    listed = api.list(beta=beta).json()["data"][0]
    assert set(listed) == SHAPES[beta]
    assert created["type"] == "user_profile" and created["id"].startswith("uprof_")
    assert created["created_at"] == created["updated_at"]
    assert created["metadata"] == {} and created["name"] is None


def test_defaults_of_a_new_profile_in_every_version(api: Api) -> None:
    pid = api.create()["id"]
    ga = api.get(pid).json()
    assert ga["access_type"] == "application"
    assert set(ga["external_user_details"]) == DETAIL_KEYS
    assert all(v is None for v in ga["external_user_details"].values())
    assert ga["programs"] == {"cyber": None, "efs": None}
    assert ga["enforcement_status"] == "unrestricted" and ga["enforcement_actions"] == []
    assert api.get(pid, beta=V0818).json()["trust_grants"] == {}
    legacy = api.get(pid, beta=V0818).json()
    assert legacy["external_id"] is None and legacy["external_user_onboarded_at"] is None
    assert api.get(pid, beta=V0324).json()["relationship"] == "external"


def test_one_stored_profile_many_views(api: Api) -> None:
    pid = api.create(
        {
            "external_id": "row-42",
            "external_user_onboarded_at": "2026-01-02T03:04:05+01:00",
            "access_type": "passthrough",
            "name": "Acme",
        },
        beta=V0818,
    )["id"]
    ga = api.get(pid).json()
    assert ga["external_user_details"]["reference_id"] == "row-42"
    assert ga["external_user_details"]["onboarded_at"] == "2026-01-02T02:04:05Z"
    assert ga["access_type"] == "passthrough"
    old = api.get(pid, beta=V0324).json()
    assert old["external_id"] == "row-42" and old["relationship"] == "resold"
    v0904 = api.get(pid, beta=V0904).json()
    assert v0904["external_user_details"] == ga["external_user_details"]


def test_full_external_user_details_round_trip(api: Api) -> None:
    details = {
        "account_status": "suspended",
        "country": "DE",
        "email_hash": "e" * 64,
        "entity_type": "non_profit",
        "name_hash": "n" * 255,
        "onboarded_at": "2025-05-14T02:00:00.25+02:00",
        "reference_id": "ref-1",
    }
    created = api.create({"external_user_details": details})
    # The instant comes back in UTC, with six digits of fraction (decision P10).
    assert created["external_user_details"] == {
        **details,
        "onboarded_at": "2025-05-14T00:00:00.250000Z",
    }
    assert api.get(created["id"], beta=V0818).json()["external_id"] == "ref-1"


# --- fields a version does not accept ------------------------------------------------------------


@pytest.mark.parametrize(
    ("beta", "body"),
    [
        (V0324, {"access_type": "application"}),
        (V0324, {"external_user_details": {}}),
        (V0324, {"external_user_onboarded_at": "2026-01-01T00:00:00Z"}),
        (V0818, {"external_user_details": {"country": "US"}}),
        (V0818, {"relationship": "external"}),
        (V0904, {"external_id": "x"}),
        (V0904, {"external_user_onboarded_at": "2026-01-01T00:00:00Z"}),
        (None, {"external_id": "x"}),
        (None, {"external_user_onboarded_at": "2026-01-01T00:00:00Z"}),
        (None, {"relationship": "resold"}),
    ],
)
def test_fields_a_version_does_not_accept_are_400(
    api: Api, beta: str | None, body: dict[str, Any]
) -> None:
    field = next(iter(body))
    r = api.call("POST", "/v1/user_profiles", beta=beta, json=body)
    message = assert_error(r, 400, "invalid_request_error")["error"]["message"]
    assert message.startswith(f"{field}: Extra inputs are not permitted"), message
    pid = api.create()["id"]
    r = api.update(pid, body, beta=beta)
    assert_error(r, 400, "invalid_request_error")


def test_relationship_under_the_original_beta(api: Api) -> None:
    created = api.create({"relationship": "resold", "external_id": "c1"}, beta=V0324)
    assert created["relationship"] == "resold"
    assert api.get(created["id"]).json()["access_type"] == "passthrough"
    r = api.call("POST", "/v1/user_profiles", beta=V0324, json={"relationship": "internal"})
    assert_error(r, 400, "invalid_request_error")


# --- value rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "x" * 256},
        {"external_user_details": {"country": "us"}},
        {"external_user_details": {"country": "USA"}},
        {"external_user_details": {"country": "Ü1"}},
        {"external_user_details": {"email_hash": ""}},
        {"external_user_details": {"name_hash": "h" * 256}},
        {"external_user_details": {"reference_id": "r" * 256}},
        {"external_user_details": {"onboarded_at": "2026-01-01"}},
        {"external_user_details": {"onboarded_at": "2026-01-01T00:00:00"}},
        {"external_user_details": {"onboarded_at": "2026-13-01T00:00:00Z"}},
        {"external_user_details": {"onboarded_at": "2026-02-30T00:00:00Z"}},
        {"external_user_details": {"onboarded_at": "yesterday"}},
        {"external_user_details": {"onboarded_at": "2026-11-22T12:01:01Z"}},
    ],
)
def test_invalid_values_are_400(api: Api, body: dict[str, Any]) -> None:
    assert_error(api.call("POST", "/v1/user_profiles", json=body), 400, "invalid_request_error")


def test_text_limits_count_characters_not_bytes(api: Api) -> None:
    created = api.create({"name": "é" * 255, "metadata": {"k" * 64: "ü" * 512}})
    assert created["name"] == "é" * 255


def test_onboarded_at_up_to_one_minute_ahead(api: Api) -> None:
    # The test clock stands at 2026-11-22T12:00:00Z.
    ok = api.create({"external_user_details": {"onboarded_at": "2026-11-22T13:01:00+01:00"}})
    assert ok["external_user_details"]["onboarded_at"] == "2026-11-22T12:01:00Z"
    r = api.call(
        "POST",
        "/v1/user_profiles",
        json={"external_user_details": {"onboarded_at": "2026-11-22T12:01:00.001Z"}},
    )
    assert_error(r, 400, "invalid_request_error")


def test_metadata_rules_on_create(api: Api) -> None:
    full = {f"k{i}": "v" for i in range(16)}
    assert api.create({"metadata": full})["metadata"] == full
    for bad in (
        {**full, "k16": "v"},
        {"a": ""},
        {"k" * 65: "v"},
        {"a": "v" * 513},
        {"": "v"},
    ):
        r = api.call("POST", "/v1/user_profiles", json={"metadata": bad})
        assert_error(r, 400, "invalid_request_error", code="invalid_metadata")


def test_metadata_error_names_every_problem(api: Api) -> None:
    r = api.call("POST", "/v1/user_profiles", json={"metadata": {"k" * 65: "v", "e": ""}})
    message = assert_error(r, 400, "invalid_request_error", code="invalid_metadata")["error"][
        "message"
    ]
    assert "at most 64" in message and "'e' is empty" in message


def test_metadata_merge_on_update(api: Api) -> None:
    pid = api.create({"metadata": {"a": "1", "b": "2", "c": "3"}})["id"]
    r = api.update(pid, {"metadata": {"a": "10", "b": "", "d": "4", "nope": ""}})
    assert r.status_code == 200
    assert r.json()["metadata"] == {"a": "10", "c": "3", "d": "4"}


def test_metadata_limit_applies_to_the_merged_result(api: Api) -> None:
    pid = api.create({"metadata": {f"k{i}": "v" for i in range(16)}})["id"]
    # Replacing and deleting within a full map is fine ...
    r = api.update(pid, {"metadata": {"k0": "new", "k1": "", "x": "y"}})
    assert r.status_code == 200 and len(r.json()["metadata"]) == 16
    # ... growing it past 16 is not, and changes nothing.
    r = api.update(pid, {"metadata": {"z": "1"}})
    assert_error(r, 400, "invalid_request_error", code="invalid_metadata")
    assert api.get(pid).json()["metadata"]["k0"] == "new"


# --- update semantics ----------------------------------------------------------------------------


def test_updated_at_moves_only_when_something_changes(api: Api, clock: ManualClock) -> None:
    created = api.create({"name": "A", "metadata": {"a": "1"}})
    pid = created["id"]
    clock.advance(5)
    for noop in (
        {},
        {"name": "A"},
        {"metadata": {"a": "1"}},
        {"metadata": {"gone": ""}},
        {"access_type": "application"},
    ):
        r = api.update(pid, noop)
        assert r.status_code == 200
        assert r.json()["updated_at"] == created["updated_at"], noop
    r = api.update(pid, {"name": "B"})
    assert r.json()["updated_at"] == "2026-11-22T12:00:05Z"
    assert r.json()["created_at"] == created["created_at"]
    assert api.get(pid).json()["updated_at"] == "2026-11-22T12:00:05Z"


def test_update_replaces_only_what_is_sent(api: Api) -> None:
    pid = api.create(
        {
            "name": "A",
            "access_type": "passthrough",
            "external_user_details": {"country": "FR", "reference_id": "r1"},
        }
    )["id"]
    r = api.update(pid, {"external_user_details": {"country": "IT"}})
    body = r.json()
    assert body["external_user_details"]["country"] == "IT"
    assert body["external_user_details"]["reference_id"] == "r1"
    assert body["name"] == "A" and body["access_type"] == "passthrough"


def test_null_semantics_on_update(api: Api) -> None:
    pid = api.create(
        {
            "name": "A",
            "access_type": "passthrough",
            "external_user_details": {"country": "FR", "onboarded_at": "2026-01-01T00:00:00Z"},
        }
    )["id"]
    r = api.update(pid, {"name": None, "access_type": None})
    assert r.status_code == 200
    assert r.json()["name"] is None and r.json()["access_type"] == "application"
    for body, beta in (
        ({"external_user_details": {"country": None}}, None),
        ({"external_user_details": {"onboarded_at": None}}, V0904),
        ({"external_user_onboarded_at": None}, V0818),
        ({"external_id": None}, V0818),
    ):
        message = assert_error(api.update(pid, body, beta=beta), 400, "invalid_request_error")[
            "error"
        ]["message"]
        assert "null is rejected" in message
    assert api.get(pid).json()["external_user_details"]["country"] == "FR"


def test_null_on_create_means_not_supplied(api: Api) -> None:
    created = api.create(
        {"name": None, "external_user_details": {"country": None, "reference_id": None}}
    )
    assert created["name"] is None and created["external_user_details"]["country"] is None
    legacy = api.create({"external_id": None}, beta=V0818)
    assert legacy["external_id"] is None


def test_delete_removes_the_profile_everywhere(api: Api) -> None:
    pid = api.create()["id"]
    r = api.call("DELETE", f"/v1/user_profiles/{pid}")
    assert r.status_code == 200
    assert r.json() == {"id": pid, "type": "user_profile_deleted"}
    assert_error(api.get(pid), 404, "not_found_error")
    assert_error(api.update(pid, {"name": "x"}), 404, "not_found_error")
    assert_error(api.call("DELETE", f"/v1/user_profiles/{pid}"), 404, "not_found_error")
    assert pid not in {p["id"] for p in api.list_all()}


def test_delete_works_under_every_version(api: Api) -> None:
    for beta in SHAPES:
        pid = api.create()["id"]
        r = api.call("DELETE", f"/v1/user_profiles/{pid}", beta=beta)
        assert r.status_code == 200 and r.json()["type"] == "user_profile_deleted"


# --- organizations -------------------------------------------------------------------------------


def test_organizations_never_see_each_other(api: Api, other_api: Api) -> None:
    mine = api.create({"name": "mine"})["id"]
    theirs = other_api.create({"name": "theirs"})["id"]
    assert_error(other_api.get(mine), 404, "not_found_error")
    assert_error(other_api.update(mine, {"name": "stolen"}), 404, "not_found_error")
    assert_error(other_api.call("DELETE", f"/v1/user_profiles/{mine}"), 404, "not_found_error")
    r = other_api.call(
        "POST",
        f"/v1/user_profiles/{mine}/action_urls",
        json={"action": {"type": "enroll_end_user"}},
    )
    assert_error(r, 404, "not_found_error")
    assert [p["id"] for p in api.list_all()] == [mine]
    assert [p["id"] for p in other_api.list_all()] == [theirs]
    assert api.get(mine).json()["name"] == "mine"


# --- concurrency ---------------------------------------------------------------------------------


def test_concurrent_updates_of_different_metadata_keys_all_survive(
    api: Api, services: Services
) -> None:
    created = api.create({"metadata": {"base": "x"}})
    org_id = api.get(created["id"]).headers["anthropic-organization-id"]

    async def hammer() -> None:
        services.db.start()  # the writer thread (the app's lifespan does this in a server)
        await asyncio.gather(
            *(
                services.profiles.update(
                    org_id, created["id"], GA, ProfileBody(metadata={f"k{i}": str(i)})
                )
                for i in range(15)
            )
        )

    asyncio.run(hammer())
    metadata = api.get(created["id"]).json()["metadata"]
    assert metadata == {"base": "x", **{f"k{i}": str(i) for i in range(15)}}


def test_the_same_page_asked_for_at_once_gives_every_caller_the_whole_page(
    api: Api, services: Services
) -> None:
    # On PostgreSQL equal pages asked for together are read once (decisions O7): each caller
    # still gets all of its rows and the cursor that the row past the limit gives it.
    ids = [api.create({"name": f"p{i}"})["id"] for i in range(7)]
    org_id = api.get(ids[0]).headers["anthropic-organization-id"]
    query = ListQuery(limit=3)

    async def walk_together() -> list[Any]:
        first = await services.profiles.list(org_id, query, None)
        second = await asyncio.gather(
            *(services.profiles.list(org_id, query, first[1]) for _ in range(6))
        )
        try:
            return [first, *second]
        finally:
            await services.db.stop()  # what the reads opened on this loop

    first, *second = asyncio.run(walk_together())
    newest = list(reversed(ids))
    assert [store.text_of(t).decoded().id for t in first[0]] == newest[:3]
    for rows, cursor in second:
        assert [store.text_of(t).decoded().id for t in rows] == newest[3:6]
        assert cursor is not None
    after = api.list(limit=3, page=second[-1][1]).json()
    assert [p["id"] for p in after["data"]] == newest[6:]
