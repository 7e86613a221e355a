"""Version negotiation and the declared views."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from starlette.datastructures import Headers

from uprof.domain.errors import InvalidRequest
from uprof.domain.model import Profile
from uprof.domain.requests import ProfileBody
from uprof.domain.timefmt import from_us
from uprof.domain.versions import (
    GA,
    V2026_03_24,
    V2026_08_18,
    V2026_09_04,
    ContractVersion,
    Detail,
    render,
    render_page,
    translate_profile_body,
)
from uprof.http.negotiation import contract_version


def _version(*values: str) -> str:
    raw = [(b"anthropic-beta", v.encode()) for v in values]
    return contract_version(Headers(raw=raw)).key


def test_no_header_is_ga() -> None:
    assert _version() == "ga"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (("user-profiles-2026-03-24,user-profiles-2026-08-18",), "user-profiles-2026-03-24"),
        (("user-profiles-2026-08-18",), "user-profiles-2026-08-18"),
        (("message-batches-2024-09-24", "user-profiles-2026-09-04"), "user-profiles-2026-09-04"),
        ((" , user-profiles-2026-09-04 ,",), "user-profiles-2026-09-04"),
        (("user-profiles-billing-2026-10-01",), "ga"),
    ],
)
def test_first_user_profiles_value_wins(headers: tuple[str, ...], expected: str) -> None:
    assert _version(*headers) == expected


@pytest.mark.parametrize("bad", ["user-profiles-2026-03-25", "USER-PROFILES-2026-08-18", "x"])
def test_names_match_exactly(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        _version(bad)


PROFILE = Profile(
    id="uprof_1",
    org_id="org",
    created_at=from_us(0),
    updated_at=from_us(0),
    reference_id="r",
    onboarded_at=from_us(0),
)


def _view(version: ContractVersion) -> Any:
    return msgspec.to_builtins(render(version, PROFILE, Detail.FULL))


def test_views_name_one_stored_value_differently() -> None:
    assert _view(V2026_03_24)["external_id"] == "r"
    assert _view(V2026_08_18)["external_user_onboarded_at"] == "1970-01-01T00:00:00Z"
    for v in (V2026_09_04, GA):
        assert _view(v)["external_user_details"]["reference_id"] == "r"


@pytest.mark.parametrize("version", [V2026_03_24, V2026_08_18, V2026_09_04, GA])
def test_a_page_renders_as_its_profiles_do(version: ContractVersion) -> None:
    other = msgspec.structs.replace(PROFILE, id="uprof_2", name="B", metadata={"k": "v"})
    one = [msgspec.json.encode(render(version, p, Detail.LIST)) for p in (PROFILE, other)]
    page = msgspec.json.encode(render_page(version, [PROFILE, other], Detail.LIST))
    assert page == b"[" + b",".join(one) + b"]"


def test_every_version_translates_to_the_same_patch() -> None:
    new = translate_profile_body(V2026_08_18, ProfileBody(external_id="r"), now_us=0, creating=True)
    from uprof.domain.requests import DetailsBody

    ga = translate_profile_body(
        GA,
        ProfileBody(external_user_details=DetailsBody(reference_id="r")),
        now_us=0,
        creating=True,
    )
    assert new == ga
