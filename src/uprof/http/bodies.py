"""Reading and decoding request bodies: size cap, encoding, charset, JSON, wire types."""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec

from uprof.domain.errors import InvalidRequest, RequestTooLarge
from uprof.http.request import ApiRequest

T = TypeVar("T")

_ALLOWED_CHARSETS = frozenset(
    {"utf-8", "utf8", "iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii"}
)
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^\";\s]+)", re.IGNORECASE)
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `(.*)`")
_AT = re.compile(r"^(.*) - at `\$(.*)`$")


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"Request exceeds the maximum allowed number of bytes ({limit})")


_BODY_HEADERS = frozenset({b"content-encoding", b"content-type", b"content-length"})


def _body_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The three headers a body is checked on, in one pass (the first of each, as
    ``Headers.get`` would find)."""
    found: dict[str, str] = {}
    for name, value in raw:
        if name in _BODY_HEADERS:
            found.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return found


async def read_body(request: ApiRequest, limit: int) -> bytes:
    """The whole body, refusing more than ``limit`` bytes before reading them."""
    headers = _body_headers(request.headers)
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise InvalidRequest(
            f"Content-Encoding {encoding!r} is not supported; send the body uncompressed",
            error_code="request_body_encoding_unsupported",
        )
    content_type = headers.get("content-type", "")
    m = _CHARSET.search(content_type)
    if m and m.group(1).lower() not in _ALLOWED_CHARSETS:
        raise InvalidRequest(
            f"Content-Type charset {m.group(1)!r} is not supported; use UTF-8",
            error_code="unsupported_charset",
        )
    length = headers.get("content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise InvalidRequest("Content-Length is not a number") from None
        if declared > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] != "http.request":  # http.disconnect
            raise InvalidRequest("The client closed the connection before sending the body")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if m and m.group(1).lower() in ("iso-8859-1", "latin-1", "latin1"):
        body = body.decode("latin-1").encode("utf-8")
    return body


def _field_path(path: str) -> str:
    path = path.replace("[...]", "").lstrip(".")
    return path or "body"


def decode(body: bytes, type_: type[T]) -> T:
    """Decode JSON into a wire type; an empty body counts as ``{}``."""
    if not body.strip():
        body = b"{}"
    try:
        # msgspec passes invalid UTF-8 inside strings through; the API's bodies are UTF-8.
        body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidRequest(
            f"The request body is not valid UTF-8: {e.reason} at byte {e.start}"
        ) from None
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as e:
        raise InvalidRequest(_validation_message(str(e))) from None
    except msgspec.DecodeError as e:
        raise InvalidRequest(f"The request body is not valid JSON: {e}") from None


def _validation_message(text: str) -> str:
    m = _AT.match(text)
    message, path = (m.group(1), m.group(2)) if m else (text, "")
    unknown = _UNKNOWN_FIELD.match(message)
    if unknown:
        prefix = _field_path(path)
        field = unknown.group(1) if prefix == "body" else f"{prefix}.{unknown.group(1)}"
        return f"{field}: Extra inputs are not permitted"
    if message.startswith("Object missing required field"):
        field = message.split("`")[1]
        prefix = _field_path(path)
        return f"{field if prefix == 'body' else prefix + '.' + field}: Field required"
    where = _field_path(path)
    if where == "body" and message.startswith("Expected `object`"):
        return "The request body must be a JSON object"
    return f"{where}: {message}"
