from tests.conftest import Api


def test_create_then_retrieve(api: Api) -> None:
    created = api.create({"name": "Ada", "metadata": {"plan": "pro"}})
    r = api.get(created["id"])
    assert r.status_code == 200
    assert r.json() == created
