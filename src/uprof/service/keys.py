"""Organizations and API keys: authentication, bootstrap and the operator's key commands."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time

from sqlalchemy import Connection

from uprof.domain.ids import IdFactory
from uprof.service.clock import Clock
from uprof.store import keys as store
from uprof.store.database import Database

DEFAULT_ORG = "default"
KEY_PREFIX = "sk-ant-uprof-"
# A revoked key stops working within this many seconds on every instance.
AUTH_CACHE_SECONDS = 5.0
_AUTH_CACHE_MAX = 10_000


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hint(raw: str) -> str:
    return raw[:12] + "..." + raw[-4:] if len(raw) > 20 else raw[:4] + "..."


class KeyService:
    def __init__(self, db: Database, clock: Clock, new_id: IdFactory):
        self._db = db
        self._clock = clock
        self._new_id = new_id
        self._cache: dict[str, tuple[str, float]] = {}
        # The lookups running now, by digest: the requests that miss the cache at one moment
        # (every request in flight, when a key's entry expires under load) share one.
        self._looking_up: dict[str, asyncio.Task[str | None]] = {}
        # Bumped by every revocation made through this service: caches of authentication
        # outcomes kept elsewhere (the HTTP layer's) compare it and drop what they hold.
        self.revision = 0

    async def authenticate(self, raw: str) -> str | None:
        """The organization a key belongs to, or None. Cached briefly: this runs per request."""
        digest = hash_key(raw)
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        lookup = self._looking_up.get(digest)
        if lookup is None or lookup.get_loop() is not asyncio.get_running_loop():
            lookup = asyncio.ensure_future(self._look_up(digest))
            self._looking_up[digest] = lookup
            lookup.add_done_callback(lambda done: self._looked_up(digest, done))
        # Shielded: a request that goes away (its client disconnected) does not cancel the
        # lookup the others wait for.
        return await asyncio.shield(lookup)

    async def _look_up(self, digest: str) -> str | None:
        revision = self.revision
        org_id = await self._db.read(lambda conn: store.org_for_key_hash(conn, digest))
        # A revocation while it ran may have made the answer stale: give it, but keep nothing.
        if org_id is not None and revision == self.revision:
            if len(self._cache) >= _AUTH_CACHE_MAX:
                self._cache.clear()
            self._cache[digest] = (org_id, time.monotonic() + AUTH_CACHE_SECONDS)
        return org_id

    def _looked_up(self, digest: str, done: asyncio.Task[str | None]) -> None:
        if self._looking_up.get(digest) is done:
            del self._looking_up[digest]
        if not done.cancelled():
            done.exception()  # retrieved: its waiters have it, or had gone

    # --- operator commands (synchronous: CLI and start-up) -------------------------------------

    def _org_id(self, conn: Connection, name: str) -> str:
        org_id = store.find_org_by_name(conn, name)
        if org_id is None:
            org_id = self._new_id("org")
            store.insert_org(conn, org_id, name, self._clock())
        return org_id

    def _add_key(self, conn: Connection, org_id: str, raw: str) -> str:
        key_id = self._new_id("key")
        store.insert_key(
            conn,
            key_id=key_id,
            org_id=org_id,
            key_hash=hash_key(raw),
            hint=key_hint(raw),
            now_us=self._clock(),
        )
        return key_id

    def create_key(self, org_name: str) -> tuple[str, str]:
        """A new key for the organization (created if new): (key id, the key, shown once)."""
        raw = generate_key()

        def work(conn: Connection) -> str:
            return self._add_key(conn, self._org_id(conn, org_name), raw)

        return self._db.write_sync(work), raw

    def ensure_key(self, raw: str, org_name: str = DEFAULT_ORG) -> bool:
        """Make sure this exact key exists (UPROF_BOOTSTRAP_API_KEY). True if it was added."""

        def work(conn: Connection) -> bool:
            if store.key_exists(conn, hash_key(raw)):
                return False
            self._add_key(conn, self._org_id(conn, org_name), raw)
            return True

        return self._db.write_sync(work)

    def bootstrap(self) -> str | None:
        """On an empty database: create the default organization and a key, returned once."""
        raw = generate_key()

        def work(conn: Connection) -> str | None:
            if store.any_org(conn):
                return None
            self._add_key(conn, self._org_id(conn, DEFAULT_ORG), raw)
            return raw

        return self._db.write_sync(work)

    def list_keys(self) -> list[dict[str, object]]:
        return self._db.read_sync(store.list_keys)

    def revoke(self, key_id: str) -> bool:
        revoked = self._db.write_sync(lambda conn: store.revoke_key(conn, key_id, self._clock()))
        self._cache.clear()
        self._looking_up.clear()  # the requests after it look the key up afresh
        self.revision += 1  # and so every cache keyed on it
        return revoked
