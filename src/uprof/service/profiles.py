"""Create, list, retrieve, update and delete user profiles."""

from __future__ import annotations

import builtins

from sqlalchemy import Connection

from uprof.domain.cursor import decode_cursor, encode_cursor
from uprof.domain.errors import profile_not_found
from uprof.domain.ids import IdFactory, is_well_formed
from uprof.domain.model import ListQuery, Position, Profile, StoredText
from uprof.domain.requests import ProfileBody
from uprof.domain.rules import apply_patch, new_profile
from uprof.domain.versions import ContractVersion, translate_profile_body
from uprof.service.clock import Clock
from uprof.store import links as link_store
from uprof.store import profiles as store
from uprof.store.database import Database

# With an enforcement_status filter, one request examines at most this many profiles; a page
# may then hold fewer than ``limit`` (even none) and still carry a cursor, as the API documents.
FILTER_SCAN_BUDGET = 1000


class ProfileService:
    def __init__(self, db: Database, clock: Clock, new_id: IdFactory, cursor_secret: bytes):
        self._db = db
        self._clock = clock
        self._new_id = new_id
        self._cursor_secret = cursor_secret

    async def create(self, org_id: str, version: ContractVersion, body: ProfileBody) -> Profile:
        now = self._clock()
        patch = translate_profile_body(version, body, now_us=now, creating=True)
        profile = new_profile(
            profile_id=self._new_id("uprof"), org_id=org_id, now_us=now, patch=patch
        )

        def work(conn: Connection) -> Profile:
            store.insert_profile(conn, profile)
            return profile

        return await self._db.write(work)

    async def get(self, org_id: str, profile_id: str) -> StoredText:
        """The profile's stored document (what a response shows of it)."""
        if not is_well_formed(profile_id):
            raise profile_not_found(profile_id)
        profile = await self._db.query(store.profile_text_by_id(org_id, profile_id))
        if profile is None:
            raise profile_not_found(profile_id)
        return profile

    async def update(
        self, org_id: str, profile_id: str, version: ContractVersion, body: ProfileBody
    ) -> Profile:
        now = self._clock()
        patch = translate_profile_body(version, body, now_us=now, creating=False)
        if not is_well_formed(profile_id):
            raise profile_not_found(profile_id)

        def work(conn: Connection) -> Profile:
            # Read, merge and write in one locked transaction: two concurrent updates of
            # different metadata keys both survive.
            current = store.get_profile(conn, org_id, profile_id, lock=True)
            if current is None:
                raise profile_not_found(profile_id)
            updated = apply_patch(current, patch, now)
            if updated is not current:
                store.save_profile(conn, updated, previous=current)
            return updated

        return await self._db.write(work, key=profile_id)

    async def delete(self, org_id: str, profile_id: str) -> None:
        if not is_well_formed(profile_id):
            raise profile_not_found(profile_id)

        def work(conn: Connection) -> None:
            link_store.delete_links_of(conn, org_id, profile_id)
            if not store.delete_profile(conn, org_id, profile_id):
                raise profile_not_found(profile_id)

        await self._db.write(work, key=profile_id)

    async def list(
        self, org_id: str, query: ListQuery, page: str | None
    ) -> tuple[builtins.list[StoredText], str | None]:
        """A page of stored documents in the listing order, and the cursor of the next page."""
        after = None if page is None else decode_cursor(self._cursor_secret, org_id, query, page)
        if not query.enforcement_status:
            # One row past the page tells whether anything follows.
            rows = await self._scan(org_id, query, after, query.limit + 1)
            more = len(rows) > query.limit
            if more:
                del rows[query.limit :]
            return rows, self._next_page(org_id, query, rows[-1] if rows else None, more)
        # With a filter, rows are examined in chunks until the page is full or the budget spent.
        wanted = set(query.enforcement_status)
        chunk = max(2 * query.limit, 100)
        budget = max(FILTER_SCAN_BUDGET, query.limit)
        page_rows: builtins.list[StoredText] = []
        examined = 0
        last: StoredText | None = None
        while True:
            n = min(chunk, budget - examined)
            rows = await self._scan(org_id, query, after, n + 1)
            more = len(rows) > n
            for i, text in enumerate(rows[:n]):
                examined += 1
                last = text
                if store.text_of(text).enforcement_status in wanted:
                    page_rows.append(text)
                    if len(page_rows) == query.limit:
                        more = more or i + 1 < n
                        return page_rows, self._next_page(org_id, query, text, more)
            if not more or examined >= budget or last is None:
                return page_rows, self._next_page(org_id, query, last, more)
            after = store.position_of(store.text_of(last), query.order_by)

    async def _scan(
        self, org_id: str, query: ListQuery, after: Position | None, n: int
    ) -> builtins.list[StoredText]:
        return await self._db.query(
            store.scan(
                org_id,
                order_by=query.order_by,
                descending=query.order == "desc",
                after=after,
                n=n,
            )
        )

    def _next_page(
        self, org_id: str, query: ListQuery, last: StoredText | None, more: bool
    ) -> str | None:
        if not more or last is None:
            return None
        position = store.position_of(store.text_of(last), query.order_by)
        return encode_cursor(self._cursor_secret, org_id, query, position)
