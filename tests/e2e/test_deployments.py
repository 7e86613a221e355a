"""Real processes: several workers, several instances on one PostgreSQL, restarts."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.server import RunningServer, run_server

pytestmark = pytest.mark.e2e


def _client(server: RunningServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url,
        headers={"x-api-key": server.api_key, "anthropic-version": "2023-06-01"},
        timeout=30,
    )


def _create_many(server: RunningServer, n: int, tag: str) -> set[str]:
    def one(i: int) -> str:
        with _client(server) as c:
            r = c.post("/v1/user_profiles", json={"name": f"{tag}-{i}", "metadata": {"tag": tag}})
            assert r.status_code == 200, r.text
            return str(r.json()["id"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        return set(pool.map(one, range(n)))


def _all_ids(c: httpx.Client) -> set[str]:
    ids: list[str] = []
    page = None
    while True:
        params = {"limit": 7, **({"page": page} if page else {})}
        body = c.get("/v1/user_profiles", params=params).json()
        ids += [p["id"] for p in body["data"]]
        page = body["next_page"]
        if page is None:
            assert len(ids) == len(set(ids))
            return set(ids)


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_two_workers_share_one_store(
    tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    url = None if store == "sqlite" else str(request.getfixturevalue("postgres_url"))
    with run_server(tmp_path, database_url=url, extra_args=("--workers", "2")) as server:
        created = _create_many(server, 60, f"w-{store}")
        with _client(server) as c:
            assert created <= _all_ids(c)
            # Every worker answers for every profile.
            for pid in list(created)[:20]:
                assert c.get(f"/v1/user_profiles/{pid}").status_code == 200


@contextlib.contextmanager
def _two_instances(
    tmp_path: Path, postgres_url: str, key: str
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Two uprof processes on one PostgreSQL database, the same key valid on both: a client of
    each."""
    with (
        run_server(tmp_path / "a", database_url=postgres_url, api_key=key) as a,
        run_server(tmp_path / "b", database_url=postgres_url, api_key=key) as b,
        _client(a) as ca,
        _client(b) as cb,
    ):
        yield ca, cb


def test_two_instances_on_one_postgresql(tmp_path: Path, postgres_url: str) -> None:
    with _two_instances(tmp_path, postgres_url, "sk-ant-uprof-shared-instances") as (ca, cb):
        ids = [ca.post("/v1/user_profiles", json={"name": f"p{i}"}).json()["id"] for i in range(5)]
        # A profile written through one instance is read through the other ...
        assert cb.get(f"/v1/user_profiles/{ids[0]}").json()["name"] == "p0"
        # ... and a cursor made by one instance pages on the other (the secret is shared).
        first = ca.get("/v1/user_profiles", params={"limit": 2}).json()
        second = cb.get("/v1/user_profiles", params={"limit": 2, "page": first["next_page"]})
        assert second.status_code == 200, second.text
        seen = {p["id"] for p in first["data"]} | {p["id"] for p in second.json()["data"]}
        assert len(seen) == 4


def test_postgresql_data_survives_restart(tmp_path: Path, postgres_url: str) -> None:
    with run_server(tmp_path, database_url=postgres_url) as server, _client(server) as c:
        pid = c.post("/v1/user_profiles", json={"metadata": {"k": "v"}}).json()["id"]
    with run_server(tmp_path, database_url=postgres_url) as server, _client(server) as c:
        assert c.get(f"/v1/user_profiles/{pid}").json()["metadata"] == {"k": "v"}


def test_concurrent_merges_through_two_instances_on_one_postgresql_all_survive(
    tmp_path: Path, postgres_url: str
) -> None:
    """Each instance group-commits its updates, locking a batch's profiles up front in id
    order; batches of the two instances that lock the same profiles wait for each other and
    lose no merge, and none fails."""
    with (
        _two_instances(tmp_path, postgres_url, "sk-ant-uprof-shared-merges") as (ca, cb),
        ThreadPoolExecutor(max_workers=32) as pool,
    ):
        for rnd in range(8):
            ids = [ca.post("/v1/user_profiles", json={}).json()["id"] for _ in range(2)]
            pairs = [(c, f"{name}{k}") for c, name in ((ca, "a"), (cb, "b")) for k in range(8)]
            jobs = [(c, meta_key, pid) for c, meta_key in pairs for pid in ids]
            # All at once (as many threads as jobs), so that the instances' batches overlap.
            start = threading.Barrier(len(jobs), timeout=30)

            def merge(job: tuple[httpx.Client, str, str], start: threading.Barrier = start) -> int:
                c, meta_key, pid = job
                start.wait()
                r = c.post(f"/v1/user_profiles/{pid}", json={"metadata": {meta_key: "x"}})
                return r.status_code

            assert list(pool.map(merge, jobs)) == [200] * len(jobs), rnd
            want = {f"{name}{k}": "x" for name in "ab" for k in range(8)}
            for pid in ids:
                assert ca.get(f"/v1/user_profiles/{pid}").json()["metadata"] == want, rnd
