"""Enrollment URLs, action URLs, and the hosted page behind them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_transport import V0324, V0818, V0904, assert_error
from tests.conftest import PUBLIC_URL, Api
from uprof.service.clock import ManualClock

ACTION = {"action": {"type": "enroll_end_user"}}


def _enroll(api: Api, pid: str, beta: str | None = V0818) -> Any:
    return api.call("POST", f"/v1/user_profiles/{pid}/enrollment_url", beta=beta)


def _action(api: Api, pid: str, body: Any = ACTION, beta: str | None = None) -> Any:
    return api.call("POST", f"/v1/user_profiles/{pid}/action_urls", beta=beta, json=body)


@pytest.mark.parametrize("beta", [V0324, V0818, V0904])
def test_enrollment_url_under_each_beta(api: Api, beta: str) -> None:
    pid = api.create()["id"]
    r = _enroll(api, pid, beta)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"type", "url", "expires_at"}
    assert body["type"] == "enrollment_url"
    assert body["url"].startswith(f"{PUBLIC_URL}/user-profiles/enrollment/")
    assert body["expires_at"] == "2026-11-22T12:15:00Z"  # 15 minutes after the test clock


def test_enrollment_url_does_not_exist_without_a_beta(api: Api) -> None:
    pid = api.create()["id"]
    assert_error(_enroll(api, pid, None), 404, "not_found_error")


@pytest.mark.parametrize("beta", [None, V0324, V0818, V0904])
def test_action_url_under_every_version(api: Api, beta: str | None) -> None:
    pid = api.create()["id"]
    r = _action(api, pid, beta=beta)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "user_profile_action_url"
    assert body["url"].startswith(f"{PUBLIC_URL}/user-profiles/actions/")
    assert body["expires_at"] == "2026-11-22T12:15:00Z"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"action": None},
        {"action": {}},
        {"action": {"type": "delete_everything"}},
        {"action": {"type": "enroll_end_user", "extra": 1}},
        {"action": "enroll_end_user"},
        {"action": {"type": "enroll_end_user"}, "more": True},
    ],
)
def test_action_url_body_is_validated(api: Api, body: Any) -> None:
    pid = api.create()["id"]
    assert_error(_action(api, pid, body), 400, "invalid_request_error")


def test_each_call_makes_a_new_link_and_old_ones_stay_valid(api: Api) -> None:
    pid = api.create()["id"]
    first, second = (_action(api, pid).json()["url"] for _ in range(2))
    assert first != second
    for url in (first, second):
        assert api.client.get(url).status_code == 200


def _path(url: str) -> str:
    return url.removeprefix(PUBLIC_URL)


def test_page_says_valid_then_expired(api: Api, clock: ManualClock) -> None:
    pid = api.create()["id"]
    url = _enroll(api, pid).json()["url"]
    page = api.client.get(_path(url))
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert 'data-state="valid"' in page.text and pid in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    clock.advance(15 * 60 - 1)
    assert api.client.get(_path(url)).status_code == 200
    clock.advance(1)
    expired = api.client.get(_path(url))
    assert expired.status_code == 410
    assert 'data-state="expired"' in expired.text and pid not in expired.text


def test_page_for_unknown_or_mismatched_tokens(api: Api) -> None:
    pid = api.create()["id"]
    url = _enroll(api, pid).json()["url"]
    token = url.rsplit("/", 1)[1]
    r = api.client.get("/user-profiles/enrollment/not-a-token")
    assert r.status_code == 404 and 'data-state="unknown"' in r.text
    # An enrollment token does not open the action page.
    assert api.client.get(f"/user-profiles/actions/{token}").status_code == 404


def test_deleting_the_profile_kills_its_links(api: Api) -> None:
    pid = api.create()["id"]
    url = _action(api, pid).json()["url"]
    api.call("DELETE", f"/v1/user_profiles/{pid}")
    assert api.client.get(_path(url)).status_code == 404
