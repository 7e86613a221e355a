"""The SQLite library uprof runs on (docs/decisions.md O14).

``pysqlite3-binary`` where it is installed (the ``sqlite`` extra, which uprof's scripts
install; its wheels are for CPython on glibc Linux x86-64): a current SQLite with the lookaside
allocator and its mapping's cap raised from SQLite's default 2 GiB (``SQLITE_MAX_MMAP_SIZE``)
to 1 TiB, beside the Python ``sqlite3`` module it is a copy of. Debian's (and many
distributions') shared ``libsqlite3``, which the standard library's module loads, keeps the
2 GiB cap and is built without lookaside (``SQLITE_OMIT_LOOKASIDE``): a store larger than
2 GiB is then read through ``pread()`` into page cache that no process maps, which this VM's
guest reclaims after a minute unused, and every statement allocates from malloc. Without the
extra the standard library's module serves unchanged.

One process must use one SQLite library only: two copies in one process do not see each other's
POSIX locks, and closing a file in one drops the locks the other holds on it. Everything that
opens uprof's SQLite files inside uprof's process (the server, its tests) goes through
``dbapi``.
"""

from __future__ import annotations

import importlib
import logging
import sqlite3
from types import ModuleType
from typing import Any


def _load() -> ModuleType:
    try:
        return importlib.import_module("pysqlite3.dbapi2")
    except ModuleNotFoundError:
        return sqlite3  # not installed: the standard library's, as intended
    except ImportError as e:  # installed but broken: say so, then serve all the same
        logging.getLogger("uprof.store").warning(
            "pysqlite3 is installed but does not load (%s); using the standard library's sqlite3",
            e,
        )
        return sqlite3


dbapi: ModuleType = _load()

# Errors as the library in use raises them: its own classes, not the standard module's.
Error: Any = dbapi.Error
OperationalError: Any = dbapi.OperationalError
SQLITE_BUSY: int = dbapi.SQLITE_BUSY
