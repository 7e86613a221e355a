"""No input of any kind produces a 500: arbitrary bodies, ids, query strings and headers."""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Api

# Text that stores choke on: NUL, lone surrogates, astral characters, very long strings.
nasty_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "\udfff", "😀" * 3, "x" * 300, "", " "]),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), nasty_text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(nasty_text, inner, max_size=4)
    ),
    max_leaves=12,
)
fields = st.sampled_from(
    [
        "metadata",
        "name",
        "access_type",
        "external_user_details",
        "external_id",
        "external_user_onboarded_at",
        "relationship",
        "action",
    ]
)
detail_fields = st.sampled_from(
    [
        "account_status",
        "country",
        "email_hash",
        "entity_type",
        "name_hash",
        "onboarded_at",
        "reference_id",
    ]
)
bodies = st.one_of(
    json_values,
    st.dictionaries(fields, json_values, max_size=4),
    st.builds(lambda k, v: {"external_user_details": {k: v}}, detail_fields, json_values),
    st.builds(lambda m: {"metadata": m}, st.dictionaries(nasty_text, nasty_text, max_size=5)),
)
betas = st.sampled_from(
    [None, "user-profiles-2026-03-24", "user-profiles-2026-08-18", "user-profiles-2026-09-04"]
)
FUZZ = settings(
    max_examples=int(os.environ.get("UPROF_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _ok(r: Any) -> None:
    assert r.status_code < 500, (r.status_code, r.text)
    if r.status_code >= 400:
        assert r.json()["type"] == "error"


def _raw_json(value: Any) -> bytes:
    # json.dumps escapes lone surrogates as \udxxx, which is exactly the nasty input we want.
    return json.dumps(value).encode()


@FUZZ
@given(body=bodies, beta=betas)
def test_create_and_update_never_500(api: Api, body: Any, beta: str | None) -> None:
    headers = {**api.headers(beta), "content-type": "application/json"}
    r = api.client.post("/v1/user_profiles", content=_raw_json(body), headers=headers)
    _ok(r)
    pid = r.json()["id"] if r.status_code == 200 else api.create()["id"]
    _ok(api.client.post(f"/v1/user_profiles/{pid}", content=_raw_json(body), headers=headers))
    _ok(
        api.client.post(
            f"/v1/user_profiles/{pid}/action_urls", content=_raw_json(body), headers=headers
        )
    )


@FUZZ
@given(profile_id=nasty_text, beta=betas)
def test_any_path_id_is_404_not_500(api: Api, profile_id: str, beta: str | None) -> None:
    from urllib.parse import quote

    path = "/v1/user_profiles/" + quote(profile_id.encode("utf-8", "surrogatepass"), safe="")
    for method in ("GET", "POST", "DELETE"):
        r = api.call(method, path, beta=beta)
        _ok(r)


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["limit", "order", "order_by", "page", "enforcement_status[]", "x"]),
        nasty_text,
        max_size=4,
    ),
    beta=betas,
)
def test_any_list_query_never_500(api: Api, params: dict[str, str], beta: str | None) -> None:
    safe = {k: v.encode("utf-8", "surrogatepass").decode("latin-1") for k, v in params.items()}
    _ok(api.list(beta=beta, **safe))


@FUZZ
@given(
    headers=st.dictionaries(
        st.sampled_from(
            [
                "anthropic-beta",
                "anthropic-version",
                "x-api-key",
                "authorization",
                "content-type",
                "content-encoding",
                "content-length",
                "anthropic-workspace-id",
            ]
        ),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=30),
        max_size=4,
    )
)
def test_any_headers_never_500(api: Api, headers: dict[str, str]) -> None:
    merged = {**api.headers(), **headers}
    encoded = [(k.encode(), v.encode("latin-1")) for k, v in merged.items()]
    r = api.client.post("/v1/user_profiles", content=b"{}", headers=encoded)
    _ok(r)
