"""Reads answered from remembered views: every write shown at once; the setting of its memory."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.conftest import PUBLIC_URL, Api, new_org_key
from uprof.app import build_services, create_app
from uprof.config import DEFAULT_RENDER_CACHE_MIB, Settings, settings_from_env


@pytest.mark.parametrize("bad", ["-1", "lots", "2000000"])
def test_a_bad_value_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("UPROF_RENDER_CACHE_MIB", bad)
    with pytest.raises(ValueError, match="UPROF_RENDER_CACHE_MIB"):
        settings_from_env()


def test_the_default_and_a_chosen_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UPROF_RENDER_CACHE_MIB", raising=False)
    assert settings_from_env().render_cache_mib == DEFAULT_RENDER_CACHE_MIB == 16
    monkeypatch.setenv("UPROF_RENDER_CACHE_MIB", "0")
    assert settings_from_env().render_cache_mib == 0
    assert settings_from_env(render_cache_mib=64).render_cache_mib == 64


@pytest.mark.parametrize("mib", [0, 1])
def test_the_app_keeps_views_within_its_setting(tmp_path: Path, mib: int) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'r.db'}", public_url=PUBLIC_URL, render_cache_mib=mib
    )
    services = build_services(settings)
    try:
        app = create_app(settings, services=services)
        with TestClient(app, base_url=PUBLIC_URL) as client:
            api = Api(client, new_org_key(services))
            ids = [api.create({"metadata": {"pad": "x" * 400}})["id"] for _ in range(40)]
            for pid in ids * 2:  # a retrieve is kept the second time (O9)
                assert api.get(pid).status_code == 200
            assert isinstance(app.app, Starlette)  # what the dispatch passes the rest to
            views = app.app.state.views
            assert views.size_bytes <= mib << 20
            assert len(views) == (len(ids) if mib else 0)
    finally:
        services.db.close()


@pytest.mark.parametrize("beta", [None, "user-profiles-2026-03-24", "user-profiles-2026-09-04"])
def test_reads_show_each_write_at_once(api: Api, beta: str | None) -> None:
    pid = api.create({"name": "first", "metadata": {"a": "1"}}, beta=beta)["id"]
    for round_ in range(3):
        api.get(pid, beta=beta)
        api.list(beta=beta)  # both views are remembered now
        r = api.update(pid, {"name": f"n{round_}", "metadata": {"a": str(round_)}}, beta=beta)
        assert r.status_code == 200, r.text
        shown = api.get(pid, beta=beta).json()
        listed = api.list(beta=beta).json()["data"][0]
        for view in (shown, listed):
            assert view["name"] == f"n{round_}" and view["metadata"] == {"a": str(round_)}
            assert view["updated_at"] == r.json()["updated_at"]
    assert api.call("DELETE", f"/v1/user_profiles/{pid}").status_code == 200
    assert api.get(pid, beta=beta).status_code == 404
    assert api.list(beta=beta).json()["data"] == []
