"""On SQLite a read statement is prepared once: executing it again only binds and runs it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from uprof.store.migrate import migrate
from uprof.store.profiles import _SCANS
from uprof.store.sqlite import SqliteDatabase
from uprof.store.sqlite_driver import dbapi


@pytest.fixture
def path(tmp_path: Path) -> Iterator[Path]:
    database = SqliteDatabase(f"sqlite:///{tmp_path / 's.sqlite'}")
    migrate(database)
    database.close()
    yield tmp_path / "s.sqlite"


def _params(start: str, n: int) -> dict[str, Any]:
    params: dict[str, Any] = {"org_id": "org_x", "n": n}
    if start != "first":
        params["after_id"] = "uprof_x"
    if start == "named":
        params["after_key"] = 5
    return params


@pytest.mark.parametrize("variant", sorted(_SCANS), ids=str)
def test_a_list_page_is_not_prepared_again_for_each_limit(
    path: Path, variant: tuple[str, bool, str]
) -> None:
    """SQLite 3.45 and later prepare a statement again whenever a bare bound LIMIT changes
    (decisions O14): a page's LIMIT is an expression, so its statement is prepared once."""
    database = SqliteDatabase(f"sqlite:///{path}")
    compiled = _SCANS[variant].compiled(database.engine.dialect)
    database.close()
    conn = dbapi.connect(path, isolation_level=None)
    # SQLite asks the authorizer about every column a statement reads while preparing it, and
    # only then: each call after the first execution is a statement prepared again.
    asked: list[tuple[Any, ...]] = []

    def authorizer(*args: Any) -> int:
        asked.append(args)
        return 0  # SQLITE_OK

    conn.set_authorizer(authorizer)
    cursor = conn.cursor()
    start = variant[2]
    cursor.execute(compiled.text, compiled.bind(_params(start, 21))).fetchall()
    prepared_once = len(asked)
    assert prepared_once > 0
    for n in (2, 21, 1001, 7):
        cursor.execute(compiled.text, compiled.bind(_params(start, n))).fetchall()
    assert len(asked) == prepared_once
    conn.close()
