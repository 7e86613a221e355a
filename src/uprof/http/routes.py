"""The route table, and the adapters through which Starlette reaches the API's endpoints.

The adapters live here, in a module that always runs interpreted: Starlette tells an endpoint
``f(request)`` from an ASGI app by ``inspect.isfunction``, which a function compiled by the
native build (``uprof.native``) is not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NamedTuple

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from uprof.http import endpoints as e
from uprof.http.request import ApiRequest, Endpoint
from uprof.web import pages

PROFILE = "/v1/user_profiles/{user_profile_id}"


class ApiRoute(NamedTuple):
    path: str
    method: str
    endpoint: Endpoint


# The API's routes: dispatched directly (``uprof.http.dispatch``), and given to Starlette too,
# which answers what the dispatch leaves to it (405, HEAD, a root_path).
api_routes = [
    ApiRoute("/v1/user_profiles", "POST", e.create_profile),
    ApiRoute("/v1/user_profiles", "GET", e.list_profiles),
    ApiRoute(PROFILE, "GET", e.retrieve_profile),
    ApiRoute(PROFILE, "POST", e.update_profile),
    ApiRoute(PROFILE, "DELETE", e.delete_profile),
    ApiRoute(PROFILE + "/enrollment_url", "POST", e.create_enrollment_url),
    ApiRoute(PROFILE + "/action_urls", "POST", e.create_action_url),
]


def starlette_endpoint(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint as Starlette calls it, for the requests Starlette routes itself."""

    async def run(request: Request) -> Response:
        state = request.app.state
        api_request = ApiRequest(
            request.scope,
            request.receive,
            state.services,
            state.callers,
            state.views,
            request.path_params,
        )
        result = await endpoint(api_request)
        response = Response(result.body)
        response.raw_headers = result.headers()  # RequestIdMiddleware adds the request-id
        return response

    run.__name__ = run.__qualname__ = endpoint.__name__
    return run


async def health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


routes = [
    *(Route(r.path, starlette_endpoint(r.endpoint), methods=[r.method]) for r in api_routes),
    Route("/user-profiles/enrollment/{token}", pages.enrollment_page, methods=["GET"]),
    Route("/user-profiles/actions/{token}", pages.action_page, methods=["GET"]),
    Route("/healthz", health, methods=["GET"]),
]
