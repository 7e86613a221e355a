"""The route table."""

from __future__ import annotations

from typing import NamedTuple

from starlette.routing import Route

from uprof.http import endpoints as e
from uprof.http.request import Endpoint, starlette_endpoint
from uprof.web import pages

PROFILE = "/v1/user_profiles/{user_profile_id}"


class ApiRoute(NamedTuple):
    path: str
    method: str
    endpoint: Endpoint
    # Answered by a group commit: the batch settles its writes' responses together already,
    # so they are not held for the loop pass's other responses (``uprof.http.clusters``).
    group_committed: bool = False


# The API's routes: dispatched directly (``uprof.http.dispatch``), and given to Starlette too,
# which answers what the dispatch leaves to it (405, HEAD, a root_path).
api_routes = [
    ApiRoute("/v1/user_profiles", "POST", e.create_profile, group_committed=True),
    ApiRoute("/v1/user_profiles", "GET", e.list_profiles),
    ApiRoute(PROFILE, "GET", e.retrieve_profile),
    ApiRoute(PROFILE, "POST", e.update_profile, group_committed=True),
    ApiRoute(PROFILE, "DELETE", e.delete_profile, group_committed=True),
    ApiRoute(PROFILE + "/enrollment_url", "POST", e.create_enrollment_url, group_committed=True),
    ApiRoute(PROFILE + "/action_urls", "POST", e.create_action_url, group_committed=True),
]

routes = [
    *(Route(r.path, starlette_endpoint(r.endpoint), methods=[r.method]) for r in api_routes),
    Route("/user-profiles/enrollment/{token}", pages.enrollment_page, methods=["GET"]),
    Route("/user-profiles/actions/{token}", pages.action_page, methods=["GET"]),
    Route("/healthz", e.health, methods=["GET"]),
]
