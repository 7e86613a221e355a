"""The page behind an enrollment or action URL: says whether the link is valid."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from uprof.domain.model import LinkKind
from uprof.domain.timefmt import format_us
from uprof.service.container import Services

_env = Environment(
    loader=PackageLoader("uprof.web", "templates"),
    autoescape=select_autoescape(["html"]),
)

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"

_TITLES = {
    LinkKind.ENROLLMENT: "Enroll in a program",
    LinkKind.ACTION: "Complete an action for your profile",
}


async def _link_page(request: Request, kind: str) -> HTMLResponse:
    svc: Services = request.app.state.services
    link, valid = await svc.links.open(kind, str(request.path_params["token"]))
    if link is None:
        state, status = "unknown", 404
    elif not valid:
        state, status = "expired", 410
    else:
        state, status = "valid", 200
    html = _env.get_template("link.html").render(
        title=_TITLES[kind],
        state=state,
        kind=kind,
        action=link.action if link else None,
        profile_id=link.profile_id if link and valid else None,
        expires_at=format_us(link.expires_at) if link else None,
    )
    # A bearer link must not leak through caches or the Referer of anything the page loads.
    return HTMLResponse(
        html,
        status_code=status,
        headers={
            "cache-control": "no-store",
            "referrer-policy": "no-referrer",
            # The page is self-contained: inline styles, an inline icon, nothing to fetch.
            "content-security-policy": _CSP,
        },
    )


async def enrollment_page(request: Request) -> HTMLResponse:
    return await _link_page(request, LinkKind.ENROLLMENT)


async def action_page(request: Request) -> HTMLResponse:
    return await _link_page(request, LinkKind.ACTION)
