"""Listing: order, order_by, keyset pages, cursors bound to their query, the enforcement filter."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.api.test_transport import V0324, V0818, V0904, assert_error
from tests.conftest import START, Api
from uprof.domain.model import Profile
from uprof.domain.timefmt import from_us
from uprof.service.clock import ManualClock
from uprof.service.container import Services
from uprof.store import profiles as profile_store


def _make(api: Api, clock: ManualClock, names: list[str | None]) -> list[str]:
    ids = []
    for name in names:
        ids.append(api.create({"name": name} if name is not None else {})["id"])
        clock.advance(1)
    return ids


def test_defaults_newest_first_twenty_per_page(api: Api, clock: ManualClock) -> None:
    ids = _make(api, clock, [None] * 23)
    first = api.list().json()
    assert [p["id"] for p in first["data"]] == ids[::-1][:20]
    assert first["next_page"].startswith("page_")
    second = api.list(page=first["next_page"]).json()
    assert [p["id"] for p in second["data"]] == ids[::-1][20:]
    assert second["next_page"] is None


def test_exact_multiple_of_limit_ends_with_null_cursor(api: Api, clock: ManualClock) -> None:
    _make(api, clock, [None] * 4)
    first = api.list(limit=2).json()
    second = api.list(limit=2, page=first["next_page"]).json()
    assert len(second["data"]) == 2 and second["next_page"] is None
    assert api.list(limit=4).json()["next_page"] is None


def test_empty_organization(api: Api) -> None:
    assert api.list().json() == {"data": [], "next_page": None}


def test_ascending_and_ties_broken_by_id(api: Api) -> None:
    # Same created_at for all: the id orders them, consistently in both directions.
    ids = sorted(api.create()["id"] for _ in range(5))
    assert [p["id"] for p in api.list_all(order="asc", limit=2)] == ids
    assert [p["id"] for p in api.list_all(order="desc", limit=2)] == ids[::-1]


def test_order_by_name_ignores_ascii_case_and_puts_nameless_last(
    api: Api, clock: ManualClock
) -> None:
    names = ["bob", None, "Alice", "carol", None, "alice", "Émile", "Bob", "zed"]
    ids = dict(zip(_make(api, clock, names), names, strict=True))

    def walk(order: str) -> list[str | None]:
        return [p["name"] for p in api.list_all(order_by="name", order=order, limit=2)]

    asc = walk("asc")
    # Names equal but for ASCII case tie; the id breaks the tie.
    assert [n.lower() for n in asc[:7] if n is not None] == [
        "alice",
        "alice",
        "bob",
        "bob",
        "carol",
        "zed",
        "émile",
    ]
    assert asc[7:] == [None, None]
    desc = walk("desc")
    assert [n.lower() for n in desc[:7] if n is not None] == [
        "émile",
        "zed",
        "carol",
        "bob",
        "bob",
        "alice",
        "alice",
    ]
    assert desc[7:] == [None, None]
    assert len(ids) == 9


@pytest.mark.parametrize("order_by", ["created_at", "name"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_walking_pages_sees_every_profile_once_during_inserts(
    api: Api, clock: ManualClock, order: str, order_by: str
) -> None:
    before = set(_make(api, clock, [f"n{i % 7}" if i % 3 else None for i in range(30)]))
    seen: list[str] = []
    page = None
    while True:
        params: dict[str, Any] = {"limit": 4, "order": order, "order_by": order_by}
        body = api.list(**params, **({"page": page} if page else {})).json()
        seen += [p["id"] for p in body["data"]]
        # Others keep arriving while we page.
        _make(api, clock, ["late", None])
        page = body["next_page"]
        if page is None:
            break
    assert len(seen) == len(set(seen)), "a profile was returned twice"
    assert before <= set(seen), "a profile that existed before the walk was skipped"


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "1.5", ""])
def test_bad_limit_is_400(api: Api, limit: str) -> None:
    assert_error(api.list(limit=limit), 400, "invalid_request_error")


@pytest.mark.parametrize("param", [{"order": "up"}, {"order_by": "email"}, {"order": "ASC"}])
def test_bad_enums_are_400(api: Api, param: dict[str, str]) -> None:
    assert_error(api.list(**param), 400, "invalid_request_error")


def test_limit_bounds(api: Api, clock: ManualClock) -> None:
    _make(api, clock, [None] * 3)
    assert len(api.list(limit=1).json()["data"]) == 1
    assert len(api.list(limit=100).json()["data"]) == 3


def _cursor(api: Api, clock: ManualClock, **params: Any) -> str:
    _make(api, clock, [None] * 3)
    cursor: str = api.list(limit=1, **params).json()["next_page"]
    assert cursor
    return cursor


def test_cursor_is_url_safe_and_opaque(api: Api, clock: ManualClock) -> None:
    cursor = _cursor(api, clock)
    assert cursor.startswith("page_")
    assert all(c.isalnum() or c in "-_" for c in cursor)


def test_tampered_cursor_is_400(api: Api, clock: ManualClock) -> None:
    cursor = _cursor(api, clock)
    raw = bytearray(base64.urlsafe_b64decode(cursor[5:] + "=" * (-len(cursor[5:]) % 4)))
    raw[3] ^= 1
    forged = "page_" + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for bad in (forged, "page_garbage", "garbage", cursor[:-2], "page_" + "A" * 5000):
        assert_error(api.list(limit=1, page=bad), 400, "invalid_request_error")


def test_cursor_of_another_organization_is_400(
    api: Api, other_api: Api, clock: ManualClock
) -> None:
    cursor = _cursor(api, clock)
    assert_error(other_api.list(limit=1, page=cursor), 400, "invalid_request_error")


def test_cursor_is_bound_to_its_query(api: Api, clock: ManualClock) -> None:
    cursor = _cursor(api, clock, order="asc")
    assert_error(api.list(page=cursor, order="desc"), 400, "invalid_request_error")
    assert_error(api.list(page=cursor), 400, "invalid_request_error")  # default desc
    assert_error(api.list(page=cursor, order="asc", order_by="name"), 400, "invalid_request_error")
    # The same query with another limit continues where it left off.
    r = api.list(page=cursor, order="asc", limit=50)
    assert r.status_code == 200 and len(r.json()["data"]) == 2


def test_cursor_works_across_versions(api: Api, clock: ManualClock) -> None:
    cursor = _cursor(api, clock)
    r = api.list(beta=V0904, limit=1, page=cursor)
    assert r.status_code == 200 and len(r.json()["data"]) == 1


# --- enforcement_status[] ------------------------------------------------------------------------


def test_enforcement_filter_under_ga(api: Api, clock: ManualClock) -> None:
    ids = _make(api, clock, [None] * 3)
    r = api.call("GET", "/v1/user_profiles?enforcement_status%5B%5D=unrestricted&limit=2")
    body = r.json()
    assert [p["id"] for p in body["data"]] == ids[::-1][:2]
    r2 = api.call(
        "GET",
        f"/v1/user_profiles?enforcement_status%5B%5D=unrestricted&limit=2&page={body['next_page']}",
    )
    assert [p["id"] for p in r2.json()["data"]] == ids[::-1][2:]
    none = api.call(
        "GET", "/v1/user_profiles?enforcement_status[]=banned&enforcement_status[]=restricted"
    ).json()
    assert none == {"data": [], "next_page": None}
    # The plain repeated form is accepted too.
    plain = api.call("GET", "/v1/user_profiles?enforcement_status=unrestricted").json()
    assert len(plain["data"]) == 3


def test_enforcement_filter_cursor_keeps_the_filter(api: Api, clock: ManualClock) -> None:
    _make(api, clock, [None] * 3)
    body = api.call("GET", "/v1/user_profiles?enforcement_status[]=unrestricted&limit=1").json()
    assert_error(api.list(page=body["next_page"], limit=1), 400, "invalid_request_error")


@pytest.mark.parametrize("beta", [V0324, V0818, V0904])
def test_enforcement_filter_is_rejected_under_betas(api: Api, beta: str) -> None:
    r = api.call("GET", "/v1/user_profiles?enforcement_status[]=banned", beta=beta)
    assert_error(r, 400, "invalid_request_error")


def test_bad_enforcement_status_is_400(api: Api) -> None:
    r = api.call("GET", "/v1/user_profiles?enforcement_status[]=evil")
    assert_error(r, 400, "invalid_request_error")


def test_list_shape_under_every_version(api: Api) -> None:
    api.create({"name": "x"}, beta=V0818)
    for beta in (V0324, V0818, V0904, None):
        body = api.list(beta=beta).json()
        assert set(body) == {"data", "next_page"}


def _seed(services: Services, org_id: str, statuses: list[str]) -> list[str]:
    """Profiles straight into the store, with the given enforcement statuses (the operator side
    that sets them is a later issue)."""
    profiles = [
        Profile(
            id=f"uprof_seed{i:08d}{org_id[-6:]}",
            org_id=org_id,
            created_at=from_us(START + i),
            updated_at=from_us(START + i),
            enforcement_status=s,
        )
        for i, s in enumerate(statuses)
    ]
    services.db.write_sync(lambda conn: profile_store.insert_many(conn, profiles))
    return [p.id for p in profiles]


def _org(api: Api) -> str:
    return str(api.list().headers["anthropic-organization-id"])


def test_enforcement_filter_keeps_only_matching_profiles(api: Api, services: Services) -> None:
    statuses = ["unrestricted", "banned", "restricted", "pending"] * 30
    ids = _seed(services, _org(api), statuses)
    expected = [i for i, s in zip(ids, statuses, strict=True) if s in ("banned", "pending")]
    seen: list[str] = []
    page = None
    while True:
        q = "enforcement_status[]=banned&enforcement_status[]=pending&limit=7&order=asc"
        body = api.call("GET", f"/v1/user_profiles?{q}" + (f"&page={page}" if page else "")).json()
        seen += [p["id"] for p in body["data"]]
        assert all(p["enforcement_status"] in ("banned", "pending") for p in body["data"])
        page = body["next_page"]
        if page is None:
            break
    assert seen == expected


def test_enforcement_filter_examines_a_bounded_number_per_request(
    api: Api, services: Services
) -> None:
    _seed(services, _org(api), ["unrestricted"] * 1500 + ["banned"])
    pages = []
    page = None
    while True:
        q = "enforcement_status[]=banned&order=asc" + (f"&page={page}" if page else "")
        body = api.call("GET", f"/v1/user_profiles?{q}").json()
        pages.append(len(body["data"]))
        page = body["next_page"]
        if page is None:
            break
    # An empty first page with a cursor (1,000 examined), then the match.
    assert pages == [0, 1]
