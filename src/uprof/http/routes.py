"""The route table."""

from __future__ import annotations

from starlette.routing import Route

from uprof.http import endpoints as e
from uprof.web import pages

PROFILE = "/v1/user_profiles/{user_profile_id}"

# The API's routes: dispatched directly (``uprof.http.dispatch``), and given to Starlette too.
api_routes = [
    Route("/v1/user_profiles", e.create_profile, methods=["POST"]),
    Route("/v1/user_profiles", e.list_profiles, methods=["GET"]),
    Route(PROFILE, e.retrieve_profile, methods=["GET"]),
    Route(PROFILE, e.update_profile, methods=["POST"]),
    Route(PROFILE, e.delete_profile, methods=["DELETE"]),
    Route(PROFILE + "/enrollment_url", e.create_enrollment_url, methods=["POST"]),
    Route(PROFILE + "/action_urls", e.create_action_url, methods=["POST"]),
]

routes = [
    *api_routes,
    Route("/user-profiles/enrollment/{token}", pages.enrollment_page, methods=["GET"]),
    Route("/user-profiles/actions/{token}", pages.action_page, methods=["GET"]),
    Route("/healthz", e.health, methods=["GET"]),
]
