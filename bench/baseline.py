"""The baseline: a bare ASGI app (no framework) that answers every request with one constant
JSON body the size of a real GA profile response, served exactly as ``uprof serve`` serves uprof
(uvicorn, uvloop, httptools, access log off, the same worker count).

It reads request bodies like any server must, and does nothing else: what it reaches is the
most the Python HTTP stack on this machine can do, and uprof's figures are ratios to it.

    python bench/baseline.py --port 8090 [--workers N]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import click

from bench.common import sample_response_body

BODY = sample_response_body()
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ],
}
_BODY = {"type": "http.response.body", "body": BODY}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:  # drain the request body, as every real endpoint must
        message = await receive()
        more = message.get("more_body", False)
    await send(_START)
    await send(_BODY)


@click.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", type=int, default=8090)
@click.option("--workers", type=int, default=1)
def main(host: str, port: int, workers: int) -> None:
    import uvicorn

    from uprof.cli import UVICORN_OPTIONS

    click.echo(f"baseline: {len(BODY)}-byte body on http://{host}:{port}, {workers} worker(s)")
    uvicorn.run(
        "bench.baseline:app",
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        **UVICORN_OPTIONS,
    )


if __name__ == "__main__":
    main()
