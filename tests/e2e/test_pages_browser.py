"""The hosted link pages (enrollment and action URLs) in a real headless Chromium.

Uses Debian's ``chromium`` through the ``playwright`` package (Playwright's own browser download
is not needed). Without either this module is skipped with a message, unless ``CI`` is set:
there it fails.
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.prerequisites import require
from tests.support.server import RunningServer, run_server

try:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Response, sync_playwright
except ImportError:  # reported by the `browser` fixture
    HAVE_PLAYWRIGHT = False
else:
    HAVE_PLAYWRIGHT = True

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("chromium")]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
BETA = "user-profiles-2026-08-18"
VALID_TEXT = "This link is valid."
EXPIRED_TEXT = "This link has expired."
UNKNOWN_TEXT = "This link is not valid."


@pytest.fixture(scope="session")
def chromium() -> str:
    """Chromium and the playwright package, checked before any server starts (see pytestmark)."""
    require(HAVE_PLAYWRIGHT, "the playwright package is not installed (pip install -e '.[test]')")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    require(executable is not None, "chromium is not installed (apt-get install chromium)")
    assert executable is not None
    return executable


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    """Headless Chromium for this module only: while Playwright's sync API is started it keeps
    an asyncio loop running on the main thread, which breaks asyncio.run() in later tests."""
    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        except Exception as e:
            require(False, f"chromium at {chromium} does not start: {e}")
            raise
        try:
            yield b
        finally:
            b.close()


@dataclass
class Tab:
    """A fresh browser page that records every request it makes and every console error."""

    page: Page
    opened: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (message, url it is about)

    def open(self, url: str) -> Response:
        self.opened.append(url)
        response = self.page.goto(url, wait_until="load")
        assert response is not None, url
        return response

    def state(self) -> str | None:
        return self.page.locator("main").get_attribute("data-state")

    def status_text(self) -> str:
        status = self.page.locator("#status")
        assert status.is_visible()
        return status.inner_text().strip()

    def assert_only_origin(self, base_url: str) -> None:
        origin = urlsplit(base_url)[:2]
        assert self.requests, "no request was recorded"
        foreign = [u for u in self.requests if urlsplit(u)[:2] != origin]
        assert not foreign, f"the page loaded external resources: {foreign}"
        # Chromium logs a 404/410 document as a console error; the statuses are asserted
        # separately. The page declares an inline icon, so there is no /favicon.ico probe.
        # Anything else (a script error, a blocked resource, a CSP violation) fails.
        errors = [
            (message, url)
            for message, url in self.errors
            if not (message.startswith("Failed to load resource") and url in self.opened)
        ]
        assert not errors, f"console errors: {errors}"


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    context = browser.new_context()
    page = context.new_page()
    t = Tab(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            t.errors.append((message.text, message.location.get("url", "")))

    page.on("request", lambda r: t.requests.append(r.url))
    page.on("console", on_console)
    page.on("pageerror", lambda e: t.errors.append((str(e), "")))
    try:
        yield t
    finally:
        context.close()


class Api:
    def __init__(self, server: RunningServer) -> None:
        self.http = httpx.Client(
            base_url=server.base_url,
            headers={"x-api-key": server.api_key, "anthropic-version": "2023-06-01"},
            timeout=10,
        )

    def call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.http.request(method, path, **kw)
        assert r.status_code == 200, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()

    def create_profile(self, name: str) -> str:
        return str(self.call("POST", "/v1/user_profiles", json={"name": name})["id"])

    def enrollment_url(self, profile_id: str) -> Any:
        return self.call(
            "POST",
            f"/v1/user_profiles/{profile_id}/enrollment_url",
            headers={"anthropic-beta": BETA},
        )

    def action_url(self, profile_id: str) -> Any:
        return self.call(
            "POST",
            f"/v1/user_profiles/{profile_id}/action_urls",
            json={"action": {"type": "enroll_end_user"}},
        )


@pytest.fixture
def api(uprof_server: RunningServer) -> Iterator[Api]:
    a = Api(uprof_server)
    try:
        yield a
    finally:
        a.http.close()


def _assert_link_headers(response: Response, status: int) -> None:
    assert response.status == status, response.url
    headers = response.headers
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["content-type"].startswith("text/html")


def test_enrollment_and_action_pages_show_a_valid_link(
    tab: Tab, api: Api, uprof_server: RunningServer, tmp_path: Path
) -> None:
    profile_id = api.create_profile("Browser Ada")
    links = {
        "enrollment": (api.enrollment_url(profile_id), "Enroll in a program"),
        "actions": (api.action_url(profile_id), "Complete an action for your profile"),
    }
    for kind, (link, title) in links.items():
        assert link["url"].startswith(f"{uprof_server.base_url}/user-profiles/{kind}/")
        response = tab.open(link["url"])
        _assert_link_headers(response, 200)
        assert tab.state() == "valid"
        assert tab.status_text() == VALID_TEXT
        assert tab.page.locator("#profile").inner_text() == profile_id
        assert tab.page.locator("h1").inner_text() == title
        assert tab.page.title().startswith(title)
        assert tab.page.locator("time").get_attribute("datetime") == link["expires_at"]
        if kind == "actions":
            assert "enroll_end_user" in tab.page.locator("main").inner_text()
        shot = tmp_path / f"{kind}-valid.png"
        tab.page.screenshot(path=shot, full_page=True)
        assert shot.stat().st_size > 1000
    tab.assert_only_origin(uprof_server.base_url)

    # Deleting the profile kills its links (decisions P12).
    api.call("DELETE", f"/v1/user_profiles/{profile_id}")
    for link, _ in links.values():
        response = tab.open(link["url"])
        _assert_link_headers(response, 404)
        assert tab.state() == "unknown"
        assert tab.status_text() == UNKNOWN_TEXT
        assert profile_id not in tab.page.content()


def test_unknown_and_mismatched_tokens_show_not_valid(
    tab: Tab, api: Api, uprof_server: RunningServer, tmp_path: Path
) -> None:
    base = uprof_server.base_url
    action_token = api.action_url(api.create_profile("Mismatch"))["url"].rsplit("/", 1)[1]
    for url in [
        f"{base}/user-profiles/enrollment/{secrets.token_urlsafe(32)}",
        f"{base}/user-profiles/actions/{secrets.token_urlsafe(32)}",
        f"{base}/user-profiles/enrollment/{action_token}",  # a token of the other kind
    ]:
        response = tab.open(url)
        _assert_link_headers(response, 404)
        assert tab.state() == "unknown"
        assert tab.status_text() == UNKNOWN_TEXT
        assert tab.page.locator("#profile").count() == 0
    tab.page.screenshot(path=tmp_path / "unknown.png")
    tab.assert_only_origin(base)


def test_expired_links_show_expired(tab: Tab, tmp_path: Path) -> None:
    with run_server(tmp_path / "short-ttl", env={"UPROF_LINK_TTL_SECONDS": "1"}) as server:
        api = Api(server)
        try:
            profile_id = api.create_profile("Soon expired")
            links = [api.enrollment_url(profile_id), api.action_url(profile_id)]
        finally:
            api.http.close()
        latest = max(datetime.fromisoformat(link["expires_at"]).timestamp() for link in links)
        assert latest - time.time() <= 1.5, "UPROF_LINK_TTL_SECONDS=1 gives 1 s links"
        time.sleep(max(0.0, latest - time.time()) + 0.5)
        for link in links:
            response = tab.open(link["url"])
            _assert_link_headers(response, 410)
            assert tab.state() == "expired"
            assert tab.status_text() == EXPIRED_TEXT
            # An expired link no longer says which profile it was for.
            assert tab.page.locator("#profile").count() == 0
            assert profile_id not in tab.page.content()
            assert tab.page.locator("time").get_attribute("datetime") == link["expires_at"]
        tab.page.screenshot(path=tmp_path / "expired.png")
        tab.assert_only_origin(server.base_url)
