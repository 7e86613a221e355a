"""Enrollment URLs and action URLs: short-lived bearer links to a hosted page."""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection

from uprof.domain.errors import profile_not_found
from uprof.domain.ids import is_well_formed, new_secret_token
from uprof.domain.model import Link, LinkKind
from uprof.service.clock import Clock
from uprof.store import links as store
from uprof.store import profiles as profile_store
from uprof.store.database import Database

PATHS = {LinkKind.ENROLLMENT: "user-profiles/enrollment", LinkKind.ACTION: "user-profiles/actions"}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LinkService:
    def __init__(self, db: Database, clock: Clock, public_url: str, ttl_seconds: int):
        self._db = db
        self._clock = clock
        self._public_url = public_url.rstrip("/")
        self._ttl_us = ttl_seconds * 1_000_000

    async def create(
        self, org_id: str, profile_id: str, kind: str, action: str | None = None
    ) -> tuple[str, int]:
        """A new link for the profile: (url, expires_at). Earlier links stay valid."""
        if not is_well_formed(profile_id):
            raise profile_not_found(profile_id)
        token = new_secret_token()
        now = self._clock()
        link = Link(
            token_hash=token_hash(token),
            org_id=org_id,
            profile_id=profile_id,
            kind=kind,
            action=action,
            created_at=now,
            expires_at=now + self._ttl_us,
        )

        def work(conn: Connection) -> None:
            if profile_store.get_profile(conn, org_id, profile_id) is None:
                raise profile_not_found(profile_id)
            store.insert_link(conn, link)

        await self._db.write(work, key=profile_id)
        return f"{self._public_url}/{PATHS[kind]}/{token}", link.expires_at

    async def open(self, kind: str, token: str) -> tuple[Link | None, bool]:
        """The link behind a token and whether it is still valid now."""
        if not is_well_formed(token):
            return None, False
        link = await self._db.read(lambda conn: store.find_link(conn, token_hash(token)))
        if link is None or link.kind != kind:
            return None, False
        return link, self._clock() < link.expires_at
