"""Who sent an API request: the key's organization and the contract version its headers ask
for, checked once per distinct set of header values and then remembered."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

from uprof.domain.errors import AuthenticationFailed
from uprof.domain.versions import ContractVersion
from uprof.http.negotiation import check_api_version, contract_version
from uprof.service.keys import AUTH_CACHE_SECONDS, KeyService

if TYPE_CHECKING:
    from uprof.http.request import ApiRequest


class Caller(NamedTuple):
    org_id: str
    version: ContractVersion


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
    Bounded: emptied when full. One per app (``ApiRequest.callers``)."""

    MAX = 4096

    def __init__(self, keys: KeyService) -> None:
        self._keys = keys
        self._hits: dict[tuple[tuple[bytes, bytes], ...], tuple[Caller, float, int]] = {}

    @staticmethod
    def key(raw: list[tuple[bytes, bytes]]) -> tuple[tuple[bytes, bytes], ...]:
        # ASGI servers send header names in lower case.
        return tuple([h for h in raw if h[0] in _CALLER_HEADERS])

    def get(self, raw: list[tuple[bytes, bytes]]) -> Caller | None:
        hit = self._hits.get(tuple([h for h in raw if h[0] in _CALLER_HEADERS]))  # key(raw)
        if hit is not None and hit[2] == self._keys.revision and hit[1] > time.monotonic():
            return hit[0]
        return None

    def put(self, raw: list[tuple[bytes, bytes]], revision: int, caller: Caller) -> None:
        if len(self._hits) >= self.MAX:
            self._hits.clear()
        self._hits[self.key(raw)] = (caller, time.monotonic() + AUTH_CACHE_SECONDS, revision)


def known_caller(request: ApiRequest) -> Caller | None:
    """The caller of a request whose headers were checked lately: no await on the hot path
    (endpoints write ``known_caller(request) or await caller_of(request)``)."""
    return request.callers.get(request.headers)


async def caller_of(request: ApiRequest) -> Caller:
    """Authenticate, check anthropic-version, pick the contract version."""
    caller = request.callers.get(request.headers)
    if caller is None:
        revision = request.services.keys.revision
        caller = await _check_caller(request, request.headers)
        request.callers.put(request.headers, revision, caller)
    return caller


async def _check_caller(request: ApiRequest, raw: list[tuple[bytes, bytes]]) -> Caller:
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
    authenticate = request.services.keys.authenticate
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
