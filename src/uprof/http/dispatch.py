"""Dispatch of the API's own routes without Starlette's per-request machinery.

Starlette's router tries each route's regex in turn, then wraps the endpoint in a request/
response adapter and an exception-handling layer, and every middleware wraps ``send`` once
more; on a point lookup that costs more than the lookup itself. ``ApiDispatch`` is the app's
outermost layer: it matches the API routes (the same ``Route`` objects Starlette gets) by their
path segments in one dictionary probe, calls the endpoint directly, and does what the
middleware and exception handlers do for those routes, in place: the ``request-id`` header, an
``ApiError`` as the API's envelope, anything else as the 500 envelope.

Everything it does not match exactly, a method a route does not have (405), an unknown path
(404), a trailing slash, ``HEAD``, a ``root_path``, lifespan, goes on to the Starlette app
unchanged, which answers as before.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from uprof.domain.errors import ApiError
from uprof.domain.ids import random_id
from uprof.http.errors import error_response
from uprof.http.middleware import send_internal_error

log = logging.getLogger("uprof.http")

Endpoint = Callable[[Request], Awaitable[Response]]
# One route's shape: its segments, with None where a path parameter goes, and those names.
_Shape = tuple[tuple[str | None, ...], tuple[str, ...], Endpoint]


def _compile(route: Route) -> tuple[tuple[str | None, ...], tuple[str, ...]]:
    segments: list[str | None] = []
    names: list[str] = []
    for part in route.path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            name, _, convertor = part[1:-1].partition(":")
            if convertor not in ("", "str"):
                raise ValueError(f"{route.path}: only str path parameters are dispatched")
            segments.append(None)
            names.append(name)
        elif "{" in part:
            raise ValueError(f"{route.path}: a parameter must be a whole path segment")
        else:
            segments.append(part)
    return tuple(segments), tuple(names)


class ApiDispatch:
    def __init__(self, app: ASGIApp, routes: Sequence[Route], services: object) -> None:
        self.app = app
        self._services = services
        # (method, number of segments) -> the shapes that could match
        self._table: dict[tuple[str, int], list[_Shape]] = {}
        for route in routes:
            segments, names = _compile(route)
            for method in route.methods or ():
                if method == "HEAD":
                    continue
                shapes = self._table.setdefault((method, len(segments)), [])
                shapes.append((segments, names, route.endpoint))

    def _match(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]] | None:
        parts = path.split("/")
        for segments, names, endpoint in self._table.get((method, len(parts)), ()):
            params: list[str] = []
            for want, got in zip(segments, parts, strict=True):
                if want is None:
                    if not got:
                        break
                    params.append(got)
                elif want != got:
                    break
            else:
                return endpoint, dict(zip(names, params, strict=True))
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        found = self._match(scope["method"], scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        endpoint, scope["path_params"] = found
        request_id = random_id("req")
        scope["uprof.request_id"] = request_id
        scope["uprof.services"] = self._services
        scope["app"] = self.app
        try:
            response = await endpoint(Request(scope, receive))
            response.raw_headers.append((b"request-id", request_id.encode()))
        except ApiError as err:
            response = error_response(err, request_id)  # carries request-id itself
        except Exception:
            log.exception("unhandled error in request %s", request_id)
            await send_internal_error(send, request_id)
            return
        await response(scope, receive, send)
