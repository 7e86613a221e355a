"""Endpoints: decode the request, call the service, render the version's view. No rules here."""

from __future__ import annotations

import time
import weakref
from typing import Any, NamedTuple

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from uprof.domain.errors import AuthenticationFailed, InvalidRequest, NotFound
from uprof.domain.model import ENFORCEMENT_STATUSES, LinkKind, ListQuery
from uprof.domain.requests import ActionUrlBody, EmptyBody, ProfileBody
from uprof.domain.timefmt import format_us
from uprof.domain.versions import ContractVersion, Detail, render, render_page
from uprof.http.bodies import decode, read_body
from uprof.http.negotiation import check_api_version, contract_version
from uprof.service.container import Services
from uprof.service.keys import AUTH_CACHE_SECONDS, KeyService

_encode = msgspec.json.Encoder().encode


class Caller(NamedTuple):
    org_id: str
    version: ContractVersion


def services(request: Request) -> Services:
    # ApiDispatch puts them in the scope; routes Starlette dispatches find them on the app.
    svc: Services | None = request.scope.get("uprof.services")
    return svc if svc is not None else request.app.state.services


_CALLER_HEADERS = frozenset(
    {b"x-api-key", b"authorization", b"anthropic-version", b"anthropic-beta"}
)


class CallerHeaders:
    """The headers every API request is checked on, gathered in one pass over the raw list (a
    ``Headers`` lookup scans the whole list once per name); same ``get``/``getlist`` API."""

    __slots__ = ("_values",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        values: dict[str, list[str]] = {}
        for name, value in raw:
            name = name.lower()
            if name in _CALLER_HEADERS:
                values.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
        self._values = values

    def get(self, name: str) -> str | None:
        found = self._values.get(name)
        return found[0] if found else None

    def getlist(self, name: str) -> list[str]:
        return self._values.get(name, [])


class CallerCache:
    """Who sent a request, by the exact values of the headers that decide it.

    A client sends the same key and version headers on every request; checking them (SHA-256
    of the key, the key cache, version negotiation) costs more than a point lookup. Outcomes
    that succeeded are kept for as long as the key service caches a key
    (``AUTH_CACHE_SECONDS``) and dropped when a key is revoked through it (``revision``).
    Bounded: emptied when full."""

    MAX = 4096

    def __init__(self) -> None:
        self._hits: dict[tuple[tuple[bytes, bytes], ...], tuple[Caller, float, int]] = {}

    def get(self, key: tuple[tuple[bytes, bytes], ...], revision: int) -> Caller | None:
        hit = self._hits.get(key)
        if hit is None or hit[2] != revision or hit[1] <= time.monotonic():
            return None
        return hit[0]

    def put(self, key: tuple[tuple[bytes, bytes], ...], revision: int, caller: Caller) -> None:
        if len(self._hits) >= self.MAX:
            self._hits.clear()
        self._hits[key] = (caller, time.monotonic() + AUTH_CACHE_SECONDS, revision)


_caller_caches: weakref.WeakKeyDictionary[KeyService, CallerCache] = weakref.WeakKeyDictionary()


def _caller_cache(keys: KeyService) -> CallerCache:
    cache = _caller_caches.get(keys)
    if cache is None:
        cache = _caller_caches[keys] = CallerCache()
    return cache


async def _caller(request: Request) -> Caller:
    """Authenticate, check anthropic-version, pick the contract version."""
    raw: list[tuple[bytes, bytes]] = request.scope["headers"]
    # ASGI servers send header names in lower case.
    key = tuple([h for h in raw if h[0] in _CALLER_HEADERS])
    keys_service = services(request).keys
    cache = _caller_cache(keys_service)
    revision = keys_service.revision
    caller = cache.get(key, revision)
    if caller is None:
        caller = await _check_caller(request, raw)
        cache.put(key, revision, caller)
    return caller


async def _check_caller(request: Request, raw: list[tuple[bytes, bytes]]) -> Caller:
    headers = CallerHeaders(raw)
    keys: list[str] = []
    api_key = headers.get("x-api-key")
    if api_key:
        keys.append(api_key.strip())
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed("invalid authorization header: expected 'Bearer <key>'")
        keys.append(token.strip())
    if not keys:
        raise AuthenticationFailed("x-api-key header is required")
    authenticate = services(request).keys.authenticate
    if len(keys) == 1:
        org_id = await authenticate(keys[0])
    else:
        # Both headers may be sent (SDK 2.x plus a custom x-api-key); they must agree.
        orgs = {await authenticate(k) for k in set(keys)}
        org_id = orgs.pop() if len(orgs) == 1 else None
    if org_id is None:
        raise AuthenticationFailed("invalid x-api-key")
    return Caller(org_id, _negotiate(headers))


# Clients send the same anthropic-version and anthropic-beta headers on every request: the
# outcome of checking them is kept per distinct pair of values (only outcomes that succeed).
_VERSIONS: dict[tuple[tuple[str, ...], tuple[str, ...]], ContractVersion] = {}
_VERSIONS_MAX = 1024


def _negotiate(headers: CallerHeaders) -> ContractVersion:
    key = (tuple(headers.getlist("anthropic-version")), tuple(headers.getlist("anthropic-beta")))
    version = _VERSIONS.get(key)
    if version is None:
        check_api_version(headers)
        version = contract_version(headers)
        if len(_VERSIONS) >= _VERSIONS_MAX:
            _VERSIONS.clear()
        _VERSIONS[key] = version
    return version


class JsonResponse(Response):
    """A 200 JSON response with the organization header: the raw headers built directly."""

    media_type = "application/json"

    def __init__(self, body: bytes, org_id: str) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"anthropic-organization-id", org_id.encode("latin-1")),
            (b"content-length", str(len(body)).encode("latin-1")),
            (b"content-type", b"application/json"),
        ]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Starlette's version also serves websockets and runs background tasks: neither here.
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})


def _json(data: Any, caller: Caller) -> Response:
    return JsonResponse(_encode(data), caller.org_id)


def _profile_id(request: Request) -> str:
    return str(request.path_params["user_profile_id"])


async def _body(request: Request, type_: type[Any]) -> Any:
    return decode(await read_body(request, services(request).settings.max_request_bytes), type_)


async def create_profile(request: Request) -> Response:
    caller = await _caller(request)
    body = await _body(request, ProfileBody)
    profile = await services(request).profiles.create(caller.org_id, caller.version, body)
    return _json(render(caller.version, profile, Detail.WRITE), caller)


async def retrieve_profile(request: Request) -> Response:
    caller = await _caller(request)
    profile = await services(request).profiles.get(caller.org_id, _profile_id(request))
    return _json(render(caller.version, profile, Detail.FULL), caller)


async def update_profile(request: Request) -> Response:
    caller = await _caller(request)
    body = await _body(request, ProfileBody)
    profile = await services(request).profiles.update(
        caller.org_id, _profile_id(request), caller.version, body
    )
    return _json(render(caller.version, profile, Detail.WRITE), caller)


async def delete_profile(request: Request) -> Response:
    caller = await _caller(request)
    await _body(request, EmptyBody)
    profile_id = _profile_id(request)
    await services(request).profiles.delete(caller.org_id, profile_id)
    return _json({"id": profile_id, "type": "user_profile_deleted"}, caller)


def _one(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise InvalidRequest(f"{name}: send the parameter at most once")
    return values[0] if values else None


def _choice(request: Request, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = _one(request, name)
    if value is None:
        return default
    if value not in allowed:
        raise InvalidRequest(
            f"{name}: must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}"
        )
    return value


def _list_query(request: Request, version: ContractVersion) -> ListQuery:
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
    statuses = request.query_params.getlist("enforcement_status[]") + request.query_params.getlist(
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


async def list_profiles(request: Request) -> Response:
    caller = await _caller(request)
    query = _list_query(request, caller.version)
    page = _one(request, "page")
    profiles, next_page = await services(request).profiles.list(caller.org_id, query, page or None)
    data = render_page(caller.version, profiles, Detail.LIST)
    return _json({"data": data, "next_page": next_page}, caller)


async def create_enrollment_url(request: Request) -> Response:
    caller = await _caller(request)
    if not caller.version.enrollment_url:
        # Beta-only: without a user-profiles beta the endpoint does not exist.
        raise NotFound(
            "Not found: the enrollment_url endpoint requires a user-profiles beta header "
            "(user-profiles-2026-03-24, user-profiles-2026-08-18 or user-profiles-2026-09-04)"
        )
    await _body(request, EmptyBody)
    url, expires_at = await services(request).links.create(
        caller.org_id, _profile_id(request), LinkKind.ENROLLMENT
    )
    return _json(
        {"type": "enrollment_url", "url": url, "expires_at": format_us(expires_at)}, caller
    )


async def create_action_url(request: Request) -> Response:
    caller = await _caller(request)
    body: ActionUrlBody = await _body(request, ActionUrlBody)
    url, expires_at = await services(request).links.create(
        caller.org_id, _profile_id(request), LinkKind.ACTION, action="enroll_end_user"
    )
    del body  # one action type today; the body is validated, not branched on
    return _json(
        {"type": "user_profile_action_url", "url": url, "expires_at": format_us(expires_at)},
        caller,
    )


async def health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")
