"""The SQLite library uprof runs on (docs/decisions.md O14).

``pysqlite3-binary`` where it is installed (the default on Linux x86-64): a current SQLite
built with SQLite's own defaults, beside the Python ``sqlite3`` module it is a copy of. Debian's
(and many distributions') shared ``libsqlite3``, which the standard library's module loads,
caps ``mmap_size`` at 2 GiB (``SQLITE_MAX_MMAP_SIZE``) and is built without the lookaside
allocator (``SQLITE_OMIT_LOOKASIDE``): a store larger than 2 GiB is then read through
``pread()`` into the page cache, where this VM's host evicts what is not mapped, and every
statement allocates from malloc. Elsewhere the standard library's module serves unchanged.

One process must use one SQLite library only: two copies in one process do not see each other's
POSIX locks, and closing a file in one drops the locks the other holds on it. Everything that
opens uprof's SQLite files inside uprof's process (the server, its tests) goes through
``dbapi``.
"""

from __future__ import annotations

import importlib
import sqlite3
from types import ModuleType
from typing import Any


def _load() -> ModuleType:
    try:
        return importlib.import_module("pysqlite3.dbapi2")
    except ImportError:
        return sqlite3


dbapi: ModuleType = _load()

# Errors as the library in use raises them: its own classes, not the standard module's.
Error: Any = dbapi.Error
OperationalError: Any = dbapi.OperationalError
SQLITE_BUSY: int = dbapi.SQLITE_BUSY
