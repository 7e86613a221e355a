"""The composition root: the one place that wires settings, stores, services and HTTP."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from sqlalchemy import exc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from uprof.config import Settings, settings_from_env
from uprof.domain.errors import ApiError, InvalidRequest, MethodNotAllowed, NotFound
from uprof.domain.ids import IdFactory, random_id
from uprof.http.callers import CallerCache
from uprof.http.dispatch import ApiDispatch
from uprof.http.errors import error_response
from uprof.http.middleware import RequestIdMiddleware
from uprof.http.rendered import RenderedViews
from uprof.http.routes import api_routes, routes
from uprof.service.clock import Clock, system_clock
from uprof.service.container import Services
from uprof.service.keys import KeyService
from uprof.service.links import LinkService
from uprof.service.profiles import ProfileService
from uprof.store.database import Database, open_store
from uprof.store.migrate import migrate
from uprof.store.profiles import text_of
from uprof.store.secrets import ensure_secret


def _cursor_secret(db: Database) -> bytes:
    try:
        return db.write_sync(lambda conn: ensure_secret(conn, "cursor"))
    except exc.IntegrityError:  # another instance created it at the same moment
        return db.write_sync(lambda conn: ensure_secret(conn, "cursor"))


def build_services(
    settings: Settings, *, clock: Clock = system_clock, new_id: IdFactory = random_id
) -> Services:
    db = open_store(settings)
    migrate(db)
    return Services(
        settings=settings,
        db=db,
        clock=clock,
        profiles=ProfileService(db, clock, new_id, _cursor_secret(db)),
        keys=KeyService(db, clock, new_id),
        links=LinkService(db, clock, settings.base_url, settings.link_ttl_seconds),
    )


def _request_id(request: Request) -> str:
    return str(request.scope.get("uprof.request_id", ""))


async def _api_error(request: Request, err: Exception) -> Response:
    assert isinstance(err, ApiError)
    return error_response(err, _request_id(request))


async def _http_error(request: Request, err: Exception) -> Response:
    assert isinstance(err, HTTPException)
    api_err: ApiError
    if err.status_code == 404:
        api_err = NotFound(f"Not found: {request.method} {request.url.path}")
    elif err.status_code == 405:
        api_err = MethodNotAllowed(f"Method {request.method} is not allowed on {request.url.path}")
    else:
        api_err = InvalidRequest(str(err.detail))
        api_err.status = err.status_code
    return error_response(api_err, _request_id(request))


def create_app(settings: Settings, *, services: Services | None = None) -> ApiDispatch:
    svc = services or build_services(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        svc.db.start()
        try:
            yield
        finally:
            await svc.db.stop()
            svc.db.close()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )
    app.router.redirect_slashes = False
    app.state.services = svc
    app.state.callers = callers = CallerCache(svc.keys)
    app.state.views = views = RenderedViews(text_of, svc.settings.render_cache_mib * 1024 * 1024)
    app.add_middleware(RequestIdMiddleware)
    # The API's routes are dispatched before Starlette (it gets everything else).
    return ApiDispatch(app, api_routes, svc, callers, views)


YOUNG_GC_THRESHOLD = 10_000


def app_from_env() -> ApiDispatch:
    """Factory for ``uvicorn --factory`` (and so for ``--workers N``): settings from UPROF_*."""
    app = create_app(settings_from_env())
    # Everything alive now (modules, the app, the services) lives as long as the process: keep
    # it out of the collector's generations, so a full collection walks only per-request garbage
    # (tens of milliseconds less on the requests that trigger one).
    gc.collect()
    gc.freeze()
    # A young-generation collection every 10,000 net allocations of tracked objects instead of
    # 700. Serving makes no cyclic garbage (none found in a second of updates at 10k req/s),
    # but the requests in flight at each collection survive it, and their later release does
    # not count back: at 700 one ran every ~70 updates and found nothing, and every tenth
    # walked the middle generation too (2-2.5% of the loop's CPU, and a ~3 ms full collection
    # about once a second; docs/decisions.md O16, docs/performance.md "Round 12").
    gc.set_threshold(YOUNG_GC_THRESHOLD, *gc.get_threshold()[1:])
    return app
