"""Dispatch of the API's own routes without Starlette's per-request machinery.

Starlette's router tries each route's regex in turn, then wraps the endpoint in a request/
response adapter and an exception-handling layer, and every middleware wraps ``send`` once
more; on a point lookup that costs more than the lookup itself. ``ApiDispatch`` is the app's
outermost layer: it matches the API routes (the table Starlette's routes are made from) with
one dictionary probe or a compiled pattern per route, calls the endpoint directly with an
``ApiRequest``, and does what the middleware and exception handlers do for those routes, in
place: the ``request-id`` header, an ``ApiError`` as the API's envelope, anything else as the
500 envelope. Its responses are written together with the others of their loop pass
(``uprof.http.clusters``), each in one write to its socket (``uprof.http.whole``).

Everything it does not match exactly, a method a route does not have (405), an unknown path
(404), a trailing slash, ``HEAD``, a ``root_path``, lifespan, goes on to the Starlette app
unchanged, which answers as before.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from uprof.domain.errors import ApiError
from uprof.domain.ids import random_id
from uprof.http.callers import CallerCache
from uprof.http.clusters import ResponseClusters
from uprof.http.errors import error_response
from uprof.http.middleware import send_internal_error
from uprof.http.rendered import RenderedViews
from uprof.http.request import ApiRequest
from uprof.http.routes import ApiRoute
from uprof.http.whole import send_whole
from uprof.service.container import Services

log = logging.getLogger("uprof.http")


def _pattern(route: ApiRoute) -> re.Pattern[str] | None:
    """The route's path as a regular expression with one named group per parameter (a whole,
    non-empty segment, as Starlette's ``str`` convertor matches), or None for a path without
    parameters."""
    parts: list[str] = []
    has_params = False
    for part in route.path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            name, _, convertor = part[1:-1].partition(":")
            if convertor not in ("", "str") or not name.isidentifier():
                raise ValueError(f"{route.path}: only str path parameters are dispatched")
            parts.append(f"(?P<{name}>[^/]+)")
            has_params = True
        elif "{" in part or "}" in part:
            raise ValueError(f"{route.path}: a parameter must be a whole path segment")
        else:
            parts.append(re.escape(part))
    return re.compile("/".join(parts)) if has_params else None


class ApiDispatch:
    def __init__(
        self,
        app: ASGIApp,
        routes: Sequence[ApiRoute],
        services: Services,
        callers: CallerCache,
        views: RenderedViews,
    ) -> None:
        self.app = app
        self._services = services
        self._callers = callers
        self._views = views
        self._clusters = ResponseClusters()
        # Paths without parameters by (method, path); the others by method, in table order.
        self._static: dict[tuple[str, str], ApiRoute] = {}
        self._patterns: dict[str, list[tuple[re.Pattern[str], ApiRoute]]] = {}
        for route in routes:
            pattern = _pattern(route)
            if pattern is None:
                self._static[(route.method, route.path)] = route
            else:
                self._patterns.setdefault(route.method, []).append((pattern, route))

    def _match(self, method: str, path: str) -> tuple[ApiRoute, dict[str, str]] | None:
        route = self._static.get((method, path))
        if route is not None:
            return route, {}
        for pattern, route in self._patterns.get(method, ()):
            m = pattern.fullmatch(path)
            if m is not None:
                return route, m.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        found = self._match(scope["method"], scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        route, path_params = found
        request_id = random_id("req")
        try:
            request = ApiRequest(
                scope, receive, self._services, self._callers, self._views, path_params
            )
            response = await route.endpoint(request)
        except ApiError as err:
            await self._clusters.turn()
            # carries request-id itself
            await send_whole(send, error_response(err, request_id)(scope, receive, send))
            return
        except Exception:
            log.exception("unhandled error in request %s", request_id)
            await send_internal_error(send, request_id)
            return
        await self._clusters.turn()
        await send_whole(send, response.send(send, request_id))
