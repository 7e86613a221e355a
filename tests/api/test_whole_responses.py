"""Each API response reaches its socket in one write, through uvicorn's own protocols."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from tests.conftest import Api
from uprof.app import create_app
from uprof.http.whole import HeldWrites, hold_writes
from uprof.service.container import Services

PROTOCOLS = {"httptools": HttpToolsProtocol, "h11": H11Protocol}


class RecordingTransport(asyncio.Transport):
    """What a protocol did to its connection, in order: ("write", bytes) and ("close", b"")."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, bytes]] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def write(self, data: Any) -> None:
        self.events.append(("write", bytes(data)))

    def close(self) -> None:
        self.closed = True
        self.events.append(("close", b""))

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    @property
    def writes(self) -> list[bytes]:
        return [data for what, data in self.events if what == "write"]


def _responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The HTTP/1.1 responses in ``data`` (each with a content-length), in order."""
    found = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        length = int(headers["content-length"])
        found.append((int(status_line.split()[1]), headers, rest[:length]))
        data = rest[length:]
    return found


def _serve(services: Services, protocol: str, request: bytes, responses: int) -> RecordingTransport:
    """``request`` (one or more) through uvicorn's ``protocol`` on uprof's app, until the
    transport has seen ``responses`` responses."""
    app = create_app(services.settings, services=services)
    transport = RecordingTransport()

    async def run() -> None:
        config = Config(app=app, http=protocol, lifespan="off", log_level="warning")
        config.load()
        conn = PROTOCOLS[protocol](config=config, server_state=ServerState(), app_state={})
        conn.connection_made(transport)
        conn.data_received(request)
        for _ in range(2000):
            if len(_responses(b"".join(transport.writes))) >= responses:
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.01)  # nothing more comes after them
        conn.connection_lost(None)

    # On a thread of its own: the store's read connection of the thread that serves is that
    # thread's, and goes back to the pool when it ends, before the store is closed.
    served = threading.Thread(target=asyncio.run, args=(run(),))
    served.start()
    served.join()
    return transport


def _get(path: str, api: Api, *extra: str) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        "host: uprof.test",
        f"x-api-key: {api.key}",
        "anthropic-version: 2023-06-01",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_response_and_an_error_are_one_write_each(
    api: Api, services: Services, protocol: str
) -> None:
    pid = api.create({"name": "Ada"})["id"]
    found = _serve(services, protocol, _get(f"/v1/user_profiles/{pid}", api), 1)
    (write,) = found.writes  # uvicorn alone writes the head, then the body
    ((status, headers, body),) = _responses(write)
    assert status == 200 and json.loads(body)["name"] == "Ada"
    assert headers["request-id"].startswith("req_")

    missing = _serve(services, protocol, _get("/v1/user_profiles/uprof_missing", api), 1)
    (write,) = missing.writes
    ((status, headers, body),) = _responses(write)
    assert status == 404 and json.loads(body)["request_id"] == headers["request-id"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_closing_connection_gets_its_whole_response_before_the_close(
    api: Api, services: Services, protocol: str
) -> None:
    found = _serve(services, protocol, _get("/v1/user_profiles", api, "connection: close"), 1)
    # uvicorn closes once for the response and again as the connection goes; the response's
    # bytes are all written before the first
    assert [what for what, _ in found.events][:2] == ["write", "close"]
    assert "write" not in [what for what, _ in found.events][1:]
    ((status, headers, _body),) = _responses(found.writes[0])
    assert status == 200 and headers["connection"] == "close"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_pipelined_requests_are_answered_in_order_one_write_each(
    api: Api, services: Services
) -> None:
    a = api.create({"name": "first"})["id"]
    b = api.create({"name": "second"})["id"]
    request = _get(f"/v1/user_profiles/{a}", api) + _get(f"/v1/user_profiles/{b}", api)
    found = _serve(services, "httptools", request, 2)
    assert len(found.writes) == 2
    names = [json.loads(body)["name"] for w in found.writes for _, _, body in _responses(w)]
    assert names == ["first", "second"]


def test_the_stand_in_keeps_the_order_and_forwards_the_rest() -> None:
    class Cycle:
        def __init__(self) -> None:
            self.transport: Any = RecordingTransport()

        async def send(self, message: Any) -> None:
            raise AssertionError("not called")

    cycle = Cycle()
    real = cycle.transport
    held = hold_writes(cycle.send)
    assert isinstance(held, HeldWrites) and cycle.transport is held
    assert hold_writes(cycle.send) is None  # held already: no stand-in for the stand-in
    cycle.transport.write(b"head")
    cycle.transport.writelines([b"bo", b"dy"])
    assert cycle.transport.get_extra_info("peername") == ("127.0.0.1", 50000)
    assert real.events == []
    held.release()
    assert cycle.transport is real and real.events == [("write", b"headbody")]

    held = hold_writes(cycle.send)
    assert held is not None
    cycle.transport.write(b"last")
    cycle.transport.close()  # what is held goes before the close
    held.release()
    assert real.events[1:] == [("write", b"last"), ("close", b"")]


def test_a_send_that_is_not_a_servers_cycle_is_left_alone() -> None:
    async def send(message: Any) -> None:
        pass

    assert hold_writes(send) is None
    assert hold_writes(print) is None  # a bound builtin: its __self__ has no transport
