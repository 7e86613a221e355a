"""Headers, authentication, version negotiation, bodies and the error envelope."""

from __future__ import annotations

import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import Api

V0324, V0818, V0904 = (
    "user-profiles-2026-03-24",
    "user-profiles-2026-08-18",
    "user-profiles-2026-09-04",
)


def assert_error(r: Any, status: int, type_: str, *, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == type_
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["request_id"].startswith("req_")
    assert r.headers["request-id"] == body["request_id"]
    if code is not None:
        assert body["error"]["details"]["error_code"] == code
    return body


# --- authentication ------------------------------------------------------------------------------


def test_missing_key_is_401_with_the_apis_wording(client: TestClient) -> None:
    r = client.get("/v1/user_profiles", headers={"anthropic-version": "2023-06-01"})
    body = assert_error(r, 401, "authentication_error")
    assert body["error"]["message"] == "x-api-key header is required"
    assert r.headers["x-should-retry"] == "false"


def test_wrong_key_is_401(client: TestClient) -> None:
    r = client.get(
        "/v1/user_profiles", headers={"anthropic-version": "2023-06-01", "x-api-key": "sk-nope"}
    )
    assert assert_error(r, 401, "authentication_error")["error"]["message"] == "invalid x-api-key"


def test_bearer_token_authenticates(client: TestClient, api: Api) -> None:
    headers = {"anthropic-version": "2026-10-21", "authorization": f"Bearer {api.key}"}
    assert client.get("/v1/user_profiles", headers=headers).status_code == 200


def test_both_headers_must_name_the_same_organization(
    client: TestClient, api: Api, other_api: Api
) -> None:
    same = {"anthropic-version": "2023-06-01", "x-api-key": api.key}
    r = client.get("/v1/user_profiles", headers={**same, "authorization": f"Bearer {api.key}"})
    assert r.status_code == 200
    r = client.get(
        "/v1/user_profiles", headers={**same, "authorization": f"Bearer {other_api.key}"}
    )
    assert_error(r, 401, "authentication_error")
    r = client.get("/v1/user_profiles", headers={**same, "authorization": "Basic abc"})
    assert_error(r, 401, "authentication_error")


def test_revoked_key_stops_working(client: TestClient, services: Any) -> None:
    key_id, raw = services.keys.create_key("revocable")
    headers = {"anthropic-version": "2023-06-01", "x-api-key": raw}
    assert client.get("/v1/user_profiles", headers=headers).status_code == 200
    assert services.keys.revoke(key_id)
    # revoke() through the service drops the cached outcomes at once
    assert_error(client.get("/v1/user_profiles", headers=headers), 401, "authentication_error")


def test_key_revoked_elsewhere_stops_working_when_the_cache_expires(
    client: TestClient, services: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another instance (or `uprof keys revoke`) revokes in the database only: this instance
    keeps the outcome at most AUTH_CACHE_SECONDS."""
    from uprof.service.keys import AUTH_CACHE_SECONDS
    from uprof.store import keys as key_store

    key_id, raw = services.keys.create_key("revoked-elsewhere")
    headers = {"anthropic-version": "2023-06-01", "x-api-key": raw}
    assert client.get("/v1/user_profiles", headers=headers).status_code == 200
    services.db.write_sync(lambda conn: key_store.revoke_key(conn, key_id, 0))
    assert client.get("/v1/user_profiles", headers=headers).status_code == 200  # still cached
    later = time.monotonic() + AUTH_CACHE_SECONDS + 0.1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert_error(client.get("/v1/user_profiles", headers=headers), 401, "authentication_error")


# --- anthropic-version ---------------------------------------------------------------------------


def test_missing_version_is_400(client: TestClient, api: Api) -> None:
    r = client.get("/v1/user_profiles", headers={"x-api-key": api.key})
    body = assert_error(r, 400, "invalid_request_error")
    assert body["error"]["message"] == "anthropic-version: header is required"


@pytest.mark.parametrize("value", ["2024-01-01", "latest", ""])
def test_unknown_version_is_400(client: TestClient, api: Api, value: str) -> None:
    r = client.get("/v1/user_profiles", headers={"x-api-key": api.key, "anthropic-version": value})
    body = assert_error(r, 400, "invalid_request_error")
    assert body["error"]["message"] == f'anthropic-version: "{value}" is not a valid version'


@pytest.mark.parametrize("value", ["2023-06-01", "2026-10-21"])
def test_both_current_versions_are_served_alike(api: Api, value: str) -> None:
    r = api.call("GET", "/v1/user_profiles", headers={"anthropic-version": value})
    assert r.status_code == 200


# --- anthropic-beta ------------------------------------------------------------------------------


def _shape(api: Api, profile_id: str, **headers: Any) -> set[str]:
    r = api.client.get(f"/v1/user_profiles/{profile_id}", headers={**api.headers(), **headers})
    assert r.status_code == 200, r.text
    return set(r.json())


def test_unknown_beta_is_400_naming_it(api: Api) -> None:
    r = api.list(beta=f"{V0818},not-a-beta-2020-01-01")
    body = assert_error(r, 400, "invalid_request_error")
    assert body["error"]["message"] == (
        "Unexpected value(s) `not-a-beta-2020-01-01` for the `anthropic-beta` header. Please "
        "consult our documentation at docs.claude.com or try again without the header."
    )


def test_first_user_profiles_beta_listed_wins(api: Api) -> None:
    pid = api.create()["id"]
    # What the SDK sends for betas=["user-profiles-2026-03-24"]: the choice, then its default.
    keys = _shape(api, pid, **{"anthropic-beta": f"{V0324},{V0818}"})
    assert "relationship" in keys and "access_type" not in keys
    keys = _shape(api, pid, **{"anthropic-beta": f" {V0904} , {V0324}"})
    assert "external_user_details" in keys and "trust_grants" in keys


def test_repeated_beta_headers_are_all_read(api: Api) -> None:
    pid = api.create()["id"]
    r = api.client.get(
        f"/v1/user_profiles/{pid}",
        headers=[
            ("x-api-key", api.key),
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "message-batches-2024-09-24"),
            ("anthropic-beta", V0904),
        ],
    )
    assert r.status_code == 200
    assert "external_user_details" in r.json() and "programs" not in r.json()
    r = api.client.get(
        f"/v1/user_profiles/{pid}",
        headers=[
            ("x-api-key", api.key),
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", V0818),
            ("anthropic-beta", "bogus-beta"),
        ],
    )
    assert_error(r, 400, "invalid_request_error")


def test_unrelated_known_betas_leave_ga(api: Api) -> None:
    pid = api.create()["id"]
    keys = _shape(
        api,
        pid,
        **{"anthropic-beta": "message-batches-2024-09-24,user-profiles-billing-2026-10-01"},
    )
    assert {"programs", "enforcement_status", "enforcement_actions"} <= keys


def test_beta_query_flag_and_stainless_headers_are_ignored(api: Api) -> None:
    r = api.call(
        "POST",
        "/v1/user_profiles?beta=true",
        beta=V0818,
        json={"name": "n"},
        headers={"x-stainless-retry-count": "0", "x-stainless-lang": "python"},
    )
    assert r.status_code == 200
    r = api.call("GET", "/v1/user_profiles?beta=true&limit=2&unknown=x", beta=V0818)
    assert r.status_code == 200


def test_workspace_header_is_accepted(api: Api) -> None:
    r = api.call("GET", "/v1/user_profiles", headers={"anthropic-workspace-id": "wrkspc_1"})
    assert r.status_code == 200


# --- every response, routing ---------------------------------------------------------------------


def test_success_carries_request_id_and_organization(api: Api) -> None:
    r = api.list()
    assert r.headers["request-id"].startswith("req_")
    assert r.headers["anthropic-organization-id"].startswith("org_")
    assert r.headers["content-type"] == "application/json"


def test_unknown_path_is_404_envelope(api: Api) -> None:
    assert_error(api.call("GET", "/v1/nothing_here"), 404, "not_found_error")
    assert_error(api.call("GET", "/v1/user_profiles/"), 404, "not_found_error")
    assert_error(api.call("GET", "/v1/user_profiles/x/y/z"), 404, "not_found_error")


def test_head_and_root_path_reach_the_same_endpoints_through_starlette(api: Api) -> None:
    """What the fast dispatch leaves to Starlette (HEAD, a root_path) is answered by the same
    endpoints: same status and headers, no body for HEAD."""
    pid = api.create({"name": "Ada"})["id"]
    head = api.call("HEAD", f"/v1/user_profiles/{pid}")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["request-id"].startswith("req_")
    assert head.headers["anthropic-organization-id"].startswith("org_")
    missing = api.call("HEAD", "/v1/user_profiles/uprof_missing")
    assert missing.status_code == 404 and missing.headers["x-should-retry"] == "false"
    with TestClient(api.client.app, base_url="http://uprof.test", root_path="/base") as mounted:
        got = mounted.get(f"/base/v1/user_profiles/{pid}", headers=api.headers())
    assert got.status_code == 200 and got.json()["id"] == pid
    assert got.headers["request-id"].startswith("req_")


def test_empty_path_segments_are_404(api: Api) -> None:
    for method, path in [
        ("GET", "/v1/user_profiles//"),
        ("POST", "/v1/user_profiles//action_urls"),
        ("POST", "/v1/user_profiles//enrollment_url"),
        ("DELETE", "/v1/user_profiles/"),
    ]:
        assert api.call(method, path, json={}).status_code in (404, 405), (method, path)


def test_wrong_method_is_405_envelope(api: Api) -> None:
    r = api.call("PATCH", "/v1/user_profiles/uprof_x", json={})
    assert_error(r, 405, "invalid_request_error")
    assert_error(api.call("PUT", "/v1/user_profiles"), 405, "invalid_request_error")


def test_unknown_profile_is_404(api: Api) -> None:
    for method, path in [
        ("GET", "/v1/user_profiles/uprof_missing"),
        ("POST", "/v1/user_profiles/uprof_missing"),
        ("DELETE", "/v1/user_profiles/uprof_missing"),
        ("POST", "/v1/user_profiles/uprof_missing/action_urls"),
    ]:
        body = {"action": {"type": "enroll_end_user"}} if "action" in path else None
        r = api.call(method, path, json=body)
        assert_error(r, 404, "not_found_error")
        assert r.headers["x-should-retry"] == "false"


# --- bodies ---------------------------------------------------------------------------------


def _raw(api: Api, path: str, content: bytes, **headers: str) -> Any:
    return api.client.post(path, content=content, headers={**api.headers(), **headers})


@pytest.mark.parametrize(
    "content",
    [b"{", b'{"name": }', b"nul", b"\xff\xfe{}", b'{"name": "\xc3\x28"}', b"[1, 2]", b'"text"'],
)
def test_malformed_bodies_are_400(api: Api, content: bytes) -> None:
    r = _raw(api, "/v1/user_profiles", content, **{"content-type": "application/json"})
    assert_error(r, 400, "invalid_request_error")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 5}, "name"),
        ({"metadata": {"a": 1}}, "metadata"),
        ({"metadata": ["a"]}, "metadata"),
        ({"access_type": "reseller"}, "access_type"),
        ({"external_user_details": {"entity_type": "alien"}}, "external_user_details.entity_type"),
        ({"external_user_details": None}, "external_user_details"),
        ({"unknown_field": 1}, "unknown_field"),
        ({"external_user_details": {"nickname": "x"}}, "external_user_details.nickname"),
    ],
)
def test_wrong_types_name_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    r = api.call("POST", "/v1/user_profiles", json=body)
    message = assert_error(r, 400, "invalid_request_error")["error"]["message"]
    assert message.startswith(f"{field}:"), message


def test_empty_bodies_are_accepted_with_or_without_content_type(api: Api) -> None:
    for headers in ({"content-type": "application/json"}, {}):
        pid = api.create()["id"]
        r = api.client.request(
            "DELETE", f"/v1/user_profiles/{pid}", content=b"", headers={**api.headers(), **headers}
        )
        assert r.status_code == 200, r.text
        pid = api.create()["id"]
        r = _raw(
            api,
            f"/v1/user_profiles/{pid}/enrollment_url",
            b"",
            **headers,
            **{"anthropic-beta": V0818},
        )
        assert r.status_code == 200, r.text
        r = _raw(api, "/v1/user_profiles", b"", **headers)
        assert r.status_code == 200, r.text


def test_delete_with_a_body_field_is_400(api: Api) -> None:
    pid = api.create()["id"]
    r = api.client.request(
        "DELETE", f"/v1/user_profiles/{pid}", content=b'{"force": true}', headers=api.headers()
    )
    assert_error(r, 400, "invalid_request_error")


def test_body_over_32_mb_is_413_without_reading_it(api: Api) -> None:
    declared = {"content-type": "application/json", "content-length": str(32 * 1024 * 1024 + 1)}
    r = api.client.post("/v1/user_profiles", content=b"{}", headers={**api.headers(), **declared})
    assert_error(r, 413, "request_too_large")


def test_streamed_body_over_32_mb_is_413(api: Api) -> None:
    chunk = b" " * (1024 * 1024)

    def chunks() -> Any:
        yield b'{"name": "x"'
        for _ in range(33):
            yield chunk
        yield b"}"

    r = api.client.post("/v1/user_profiles", content=chunks(), headers=api.headers())
    assert_error(r, 413, "request_too_large")


def test_unsupported_charset_and_encoding(api: Api) -> None:
    r = _raw(
        api, "/v1/user_profiles", b"{}", **{"content-type": "application/json; charset=utf-16"}
    )
    assert_error(r, 400, "invalid_request_error", code="unsupported_charset")
    r = _raw(api, "/v1/user_profiles", b"{}", **{"content-encoding": "br"})
    assert_error(r, 400, "invalid_request_error", code="request_body_encoding_unsupported")


def test_latin1_charset_is_decoded(api: Api) -> None:
    r = _raw(
        api,
        "/v1/user_profiles",
        '{"name": "Zoë"}'.encode("latin-1"),
        **{"content-type": "application/json; charset=ISO-8859-1"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Zoë"
