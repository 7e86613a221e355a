"""On SQLite a read statement is prepared once: executing it again only binds and runs it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from uprof.domain.ids import random_id
from uprof.store.compiled import Statement
from uprof.store.migrate import migrate
from uprof.store.profiles import _GET, _GET_TEXT, _INSERT, _SAVE, _SCANS
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


def _authorized(path: Path) -> tuple[Any, list[tuple[Any, ...]]]:
    """A connection to the store at ``path``, and the list of what SQLite asks its authorizer
    about every column a statement reads while preparing it, and only then: each call after
    the first execution is a statement prepared again."""
    conn = dbapi.connect(path, isolation_level=None)
    asked: list[tuple[Any, ...]] = []

    def authorizer(*args: Any) -> int:
        asked.append(args)
        return 0  # SQLITE_OK

    conn.set_authorizer(authorizer)
    return conn, asked


@pytest.mark.parametrize("variant", sorted(_SCANS), ids=str)
def test_a_list_page_is_not_prepared_again_for_each_limit(
    path: Path, variant: tuple[str, bool, str]
) -> None:
    """SQLite 3.45 and later prepare a statement again whenever a bare bound LIMIT changes
    (decisions O14): a page's LIMIT is an expression, so its statement is prepared once."""
    database = SqliteDatabase(f"sqlite:///{path}")
    compiled = _SCANS[variant].compiled(database.engine.dialect)
    database.close()
    conn, asked = _authorized(path)
    cursor = conn.cursor()
    start = variant[2]
    cursor.execute(compiled.text, compiled.bind(_params(start, 21))).fetchall()
    prepared_once = len(asked)
    assert prepared_once > 0
    for n in (2, 21, 1001, 7):
        cursor.execute(compiled.text, compiled.bind(_params(start, n))).fetchall()
    assert len(asked) == prepared_once
    conn.close()


_BY_ID: dict[str, tuple[Statement[Any], Callable[[str], dict[str, Any]]]] = {
    "get": (_GET[False], lambda i: {"id": i, "org_id": "org_x"}),
    "get_locked": (_GET[True], lambda i: {"id": i, "org_id": "org_x"}),
    "get_text": (_GET_TEXT, lambda i: {"id": i, "org_id": "org_x"}),
    "save": (_SAVE[("doc",)], lambda i: {"doc": "[]", "where_id": i, "where_org_id": "org_x"}),
}


@pytest.mark.parametrize("name", sorted(_BY_ID))
def test_a_statement_by_id_is_not_prepared_again_for_each_id(path: Path, name: str) -> None:
    """A statement that finds a row by its id's number (decisions O20) binds the number as a
    parameter, and its LIMIT 1 is a literal: it is prepared once, whichever id it is bound to
    (numbered or not)."""
    statement, params = _BY_ID[name]
    database = SqliteDatabase(f"sqlite:///{path}")
    compiled = statement.compiled(database.engine.dialect)
    database.close()
    conn, asked = _authorized(path)
    cursor = conn.cursor()
    cursor.execute(compiled.text, compiled.bind(params(random_id("uprof")))).fetchall()
    prepared_once = len(asked)
    assert prepared_once > 0
    for i in (random_id("uprof"), "uprof_of_another_form", random_id("uprof")):
        cursor.execute(compiled.text, compiled.bind(params(i))).fetchall()
    assert len(asked) == prepared_once
    conn.close()


def test_a_new_rows_number_is_bound_not_written_into_the_text(path: Path) -> None:
    database = SqliteDatabase(f"sqlite:///{path}")
    compiled = _INSERT.compiled(database.engine.dialect)
    database.close()
    made = random_id("uprof")
    assert made not in compiled.text and ":row" in compiled.text
    assert compiled.bind({"id": made})["row"] is not None
