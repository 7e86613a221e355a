"""The one mapping from errors to the API's envelope."""

from __future__ import annotations

import msgspec
from starlette.responses import Response

from uprof.domain.errors import ApiError

_encode = msgspec.json.Encoder().encode


def error_body(err: ApiError, request_id: str) -> bytes:
    error: dict[str, object] = {"type": err.type, "message": err.message}
    if err.error_code is not None:
        error["details"] = {"error_code": err.error_code}
    return _encode({"type": "error", "error": error, "request_id": request_id})


def error_headers(err: ApiError, request_id: str) -> dict[str, str]:
    # The SDKs retry 408/409/429/5xx unless told otherwise; say so explicitly either way.
    return {
        "request-id": request_id,
        "x-should-retry": "true" if err.retryable else "false",
    }


def error_response(err: ApiError, request_id: str) -> Response:
    return Response(
        error_body(err, request_id),
        status_code=err.status,
        media_type="application/json",
        headers=error_headers(err, request_id),
    )
