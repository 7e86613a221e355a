"""Connections the database server closes (a restart, an idle timeout, an operator's
pg_terminate_backend) cost the API nothing: the next requests succeed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import Api
from uprof.service.container import Services


def _close_every_connection_of_uprof(database_url: str) -> int:
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).all()
            )
    finally:
        admin.dispose()


def test_reads_and_writes_after_the_server_closed_the_connections(
    api: Api, services: Services, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("only PostgreSQL has server-side connections to lose")
    created = api.create({"name": "Ada", "metadata": {"k": "v"}})
    # Concurrent reads, so the query pool holds several connections when they are closed.
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = set(pool.map(lambda _: api.get(created["id"]).status_code, range(48)))
    assert codes == {200}
    assert api.list().status_code == 200
    assert _close_every_connection_of_uprof(database_url) >= 1

    r = api.get(created["id"])
    assert r.status_code == 200, r.text
    assert r.json()["metadata"] == {"k": "v"}
    r = api.list()
    assert r.status_code == 200 and [p["id"] for p in r.json()["data"]] == [created["id"]]
    r = api.update(created["id"], {"metadata": {"k": "w"}})
    assert r.status_code == 200, r.text
    assert api.get(created["id"]).json()["metadata"] == {"k": "w"}
