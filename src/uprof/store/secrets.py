"""Server-wide secrets kept in the database, so every instance of one deployment shares them."""

from __future__ import annotations

import os

from sqlalchemy import Connection, insert, select

from uprof.store.tables import server_secrets


def ensure_secret(conn: Connection, name: str) -> bytes:
    row = conn.execute(select(server_secrets.c.value).where(server_secrets.c.name == name)).first()
    if row is not None:
        return bytes(row[0])
    value = os.urandom(32)
    conn.execute(insert(server_secrets).values(name=name, value=value))
    return value
