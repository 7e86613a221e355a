"""What an API endpoint sees of a request, and the response it returns.

Starlette's ``Request`` and ``Response`` carry more machinery than an endpoint of this API uses
(a ``Headers`` view, a ``QueryParams`` multidict built per access, background tasks, cookie
and websocket support); on a point lookup that machinery costs more than the lookup. An
``ApiRequest`` holds the ASGI scope and ``receive`` and parses only what is asked of it, once;
a ``JsonResponse`` is a status, a body and the few headers this API sends.

``ApiDispatch`` builds both for the routes it matches. The routes Starlette dispatches itself
(``HEAD``, a ``root_path``) reach the same endpoints through ``uprof.http.routes``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.types import Receive, Scope, Send

from uprof.service.container import Services

if TYPE_CHECKING:
    from uprof.http.callers import CallerCache
    from uprof.http.rendered import RenderedViews


def parse_query(raw: bytes) -> dict[str, list[str]]:
    """Every value of every query parameter, in order, as Starlette's ``QueryParams`` reads
    them (latin-1 bytes, ``%``-escapes as UTF-8, ``+`` as space, blank values kept)."""
    if not raw:
        return {}
    text = raw.decode("latin-1")
    pairs: Any
    if "%" in text or "+" in text:
        pairs = parse_qsl(text, keep_blank_values=True)
    else:  # nothing to unescape (cursors are base64url): split it as parse_qsl would
        pairs = (part.partition("=")[::2] for part in text.split("&") if part)
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        found = values.get(name)
        if found is None:
            values[name] = [value]
        else:
            found.append(value)
    return values


class ApiRequest:
    __slots__ = ("_query", "callers", "path_params", "receive", "scope", "services", "views")

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        services: Services,
        callers: CallerCache,
        views: RenderedViews,
        path_params: dict[str, str],
    ) -> None:
        self.scope = scope
        self.receive = receive
        self.services = services
        self.callers = callers
        self.views = views
        self.path_params = path_params
        self._query: dict[str, list[str]] | None = None

    def query_values(self, name: str) -> list[str]:
        """Every value sent for the query parameter ``name`` (none: an empty list)."""
        query = self._query
        if query is None:
            query = self._query = parse_query(self.scope.get("query_string", b""))
        return query.get(name, [])

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """The raw header list (names in lower case, as ASGI servers send them)."""
        headers: list[tuple[bytes, bytes]] = self.scope["headers"]
        return headers


class JsonResponse:
    """A 200 JSON body for an organization's request."""

    __slots__ = ("body", "org_id")

    def __init__(self, body: bytes, org_id: str) -> None:
        self.body = body
        self.org_id = org_id

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"anthropic-organization-id", self.org_id.encode("latin-1")),
            (b"content-length", b"%d" % len(self.body)),
            (b"content-type", b"application/json"),
        ]

    async def send(self, send: Send, request_id: str) -> None:
        body = self.body
        headers = [
            (b"anthropic-organization-id", self.org_id.encode("latin-1")),
            (b"content-length", b"%d" % len(body)),
            (b"content-type", b"application/json"),
            (b"request-id", request_id.encode("latin-1")),
        ]  # headers() and the request id, built in one go
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


Endpoint = Callable[[ApiRequest], Awaitable[JsonResponse]]
