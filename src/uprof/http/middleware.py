"""Pure ASGI middleware (BaseHTTPMiddleware costs most of Starlette's throughput)."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from uprof.domain.errors import InternalError
from uprof.domain.ids import random_id
from uprof.http.errors import error_body, error_headers

log = logging.getLogger("uprof.http")


class RequestIdMiddleware:
    """Gives every request a ``request-id``, stamps it on every response, and turns anything
    that escapes the app into the API's 500 envelope instead of a bare server error."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = random_id("req")
        scope["uprof.request_id"] = request_id
        header = (b"request-id", request_id.encode())
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", ()))
                if not any(name == b"request-id" for name, _ in headers):
                    headers.append(header)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error in request %s", request_id)
            if started:
                raise
            await send_internal_error(send, request_id)


async def send_internal_error(send: Send, request_id: str) -> None:
    """The API's 500 envelope, for anything that escaped the app before the response began."""
    err = InternalError("An internal error occurred; the request_id identifies it")
    await send(
        {
            "type": "http.response.start",
            "status": err.status,
            "headers": [
                (b"content-type", b"application/json"),
                *((k.encode(), v.encode()) for k, v in error_headers(err, request_id).items()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": error_body(err, request_id)})
