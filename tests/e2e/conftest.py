from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import RunningServer, run_server


@pytest.fixture(scope="session")
def uprof_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real ``uprof serve`` process on SQLite for the whole e2e session."""
    data_dir: Path = tmp_path_factory.mktemp("uprof-e2e")
    with run_server(data_dir) as server:
        yield server
