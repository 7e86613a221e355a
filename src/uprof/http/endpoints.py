"""Endpoints: decode the request, call the service, render the version's view. No rules here."""

from __future__ import annotations

from typing import Any

import msgspec

from uprof.domain.errors import InvalidRequest, NotFound
from uprof.domain.model import ENFORCEMENT_STATUSES, LinkKind, ListQuery
from uprof.domain.requests import ActionUrlBody, EmptyBody, ProfileBody
from uprof.domain.timefmt import format_us
from uprof.domain.versions import ContractVersion, Detail, render
from uprof.http.bodies import decode, read_body
from uprof.http.callers import Caller, caller_of, known_caller
from uprof.http.request import ApiRequest, JsonResponse

_encode = msgspec.json.Encoder().encode


def _json(data: Any, caller: Caller) -> JsonResponse:
    return JsonResponse(_encode(data), caller.org_id)


def _profile_id(request: ApiRequest) -> str:
    return request.path_params["user_profile_id"]


async def _body(request: ApiRequest, type_: type[Any]) -> Any:
    return decode(await read_body(request, request.services.settings.max_request_bytes), type_)


async def create_profile(request: ApiRequest) -> JsonResponse:
    caller = known_caller(request) or await caller_of(request)
    body = await _body(request, ProfileBody)
    profile = await request.services.profiles.create(caller.org_id, caller.version, body)
    return _json(render(caller.version, profile, Detail.WRITE), caller)


async def retrieve_profile(request: ApiRequest) -> JsonResponse:
    caller = known_caller(request) or await caller_of(request)
    text = await request.services.profiles.get(caller.org_id, _profile_id(request))
    return JsonResponse(request.views.one(caller.version, text, Detail.FULL), caller.org_id)


async def update_profile(request: ApiRequest) -> JsonResponse:
    caller = known_caller(request) or await caller_of(request)
    body = await _body(request, ProfileBody)
    profile = await request.services.profiles.update(
        caller.org_id, _profile_id(request), caller.version, body
    )
    return _json(render(caller.version, profile, Detail.WRITE), caller)


async def delete_profile(request: ApiRequest) -> JsonResponse:
    caller = known_caller(request) or await caller_of(request)
    await _body(request, EmptyBody)
    profile_id = _profile_id(request)
    await request.services.profiles.delete(caller.org_id, profile_id)
    return _json({"id": profile_id, "type": "user_profile_deleted"}, caller)


def _one(request: ApiRequest, name: str) -> str | None:
    values = request.query_values(name)
    if len(values) > 1:
        raise InvalidRequest(f"{name}: send the parameter at most once")
    return values[0] if values else None


def _choice(request: ApiRequest, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = _one(request, name)
    if value is None:
        return default
    if value not in allowed:
        raise InvalidRequest(
            f"{name}: must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}"
        )
    return value


def _list_query(request: ApiRequest, version: ContractVersion) -> ListQuery:
    raw_limit = _one(request, "limit")
    limit = 20
    if raw_limit is not None:
        try:
            limit = int(raw_limit)
        except ValueError:
            raise InvalidRequest(
                f"limit: must be an integer from 1 to 100; got {raw_limit!r}"
            ) from None
        if not 1 <= limit <= 100:
            raise InvalidRequest(f"limit: must be from 1 to 100; got {limit}")
    statuses = request.query_values("enforcement_status[]") + request.query_values(
        "enforcement_status"
    )
    if statuses and not version.enforcement_filter:
        raise InvalidRequest(
            f"enforcement_status[]: not accepted under the {version.key} beta; send no "
            "user-profiles beta header to filter by enforcement status"
        )
    for s in statuses:
        if s not in ENFORCEMENT_STATUSES:
            raise InvalidRequest(
                "enforcement_status[]: must be one of "
                f"{', '.join(repr(x) for x in ENFORCEMENT_STATUSES)}; got {s!r}"
            )
    return ListQuery(
        limit=limit,
        order=_choice(request, "order", ("asc", "desc"), "desc"),
        order_by=_choice(request, "order_by", ("created_at", "name"), "created_at"),
        enforcement_status=tuple(sorted(set(statuses))),
    )


async def list_profiles(request: ApiRequest) -> JsonResponse:
    caller = known_caller(request) or await caller_of(request)
    query = _list_query(request, caller.version)
    page = _one(request, "page")
    texts, next_page = await request.services.profiles.list(caller.org_id, query, page or None)
    # {"data": [...], "next_page": ...}, as the encoder writes a dict of the two
    body = request.views.page(
        caller.version,
        texts,
        Detail.LIST,
        before=b'{"data":',
        after=b',"next_page":' + _encode(next_page) + b"}",
    )
    return JsonResponse(body, caller.org_id)


async def create_enrollment_url(request: ApiRequest) -> JsonResponse:
    caller = known_caller(request) or await caller_of(request)
    if not caller.version.enrollment_url:
        # Beta-only: without a user-profiles beta the endpoint does not exist.
        raise NotFound(
            "Not found: the enrollment_url endpoint requires a user-profiles beta header "
            "(user-profiles-2026-03-24, user-profiles-2026-08-18 or user-profiles-2026-09-04)"
        )
    await _body(request, EmptyBody)
    url, expires_at = await request.services.links.create(
        caller.org_id, _profile_id(request), LinkKind.ENROLLMENT
    )
    return _json(
        {"type": "enrollment_url", "url": url, "expires_at": format_us(expires_at)}, caller
    )


async def create_action_url(request: ApiRequest) -> JsonResponse:
    caller = known_caller(request) or await caller_of(request)
    body: ActionUrlBody = await _body(request, ActionUrlBody)
    url, expires_at = await request.services.links.create(
        caller.org_id, _profile_id(request), LinkKind.ACTION, action="enroll_end_user"
    )
    del body  # one action type today; the body is validated, not branched on
    return _json(
        {"type": "user_profile_action_url", "url": url, "expires_at": format_us(expires_at)},
        caller,
    )
