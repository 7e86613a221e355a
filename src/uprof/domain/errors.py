"""Errors as values of the domain.

Each error carries the HTTP status, the API's ``error.type`` and, where the contract defines one,
a stable ``details.error_code``. The HTTP layer renders them into the envelope in one place
(``uprof.http.errors``); nothing here knows about HTTP beyond the status number.
"""

from __future__ import annotations


class ApiError(Exception):
    status: int = 500
    type: str = "api_error"
    # Whether a client retry can change the outcome; rendered as ``x-should-retry``.
    retryable: bool = False

    def __init__(self, message: str, *, error_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code


class InvalidRequest(ApiError):
    status = 400
    type = "invalid_request_error"


class AuthenticationFailed(ApiError):
    status = 401
    type = "authentication_error"


class PermissionDenied(ApiError):
    status = 403
    type = "permission_error"


class NotFound(ApiError):
    status = 404
    type = "not_found_error"


class MethodNotAllowed(ApiError):
    # The API documents 4xx statuses without their own type as invalid_request_error.
    status = 405
    type = "invalid_request_error"


class RequestTooLarge(ApiError):
    status = 413
    type = "request_too_large"


class RateLimited(ApiError):
    status = 429
    type = "rate_limit_error"
    retryable = True


class InternalError(ApiError):
    status = 500
    type = "api_error"
    retryable = True


class Overloaded(ApiError):
    status = 529
    type = "overloaded_error"
    retryable = True


def profile_not_found(profile_id: str) -> NotFound:
    shown = profile_id if profile_id.isprintable() and len(profile_id) <= 128 else "(malformed id)"
    return NotFound(f"User profile not found: {shown}")
