"""Create, list, retrieve, update and delete user profiles."""

from __future__ import annotations

from sqlalchemy import Connection

from uprof.domain.cursor import decode_cursor, encode_cursor
from uprof.domain.errors import profile_not_found
from uprof.domain.ids import IdFactory, is_well_formed
from uprof.domain.model import ListQuery, Profile
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

    async def get(self, org_id: str, profile_id: str) -> Profile:
        if not is_well_formed(profile_id):
            raise profile_not_found(profile_id)
        profile = await self._db.read(lambda conn: store.get_profile(conn, org_id, profile_id))
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
                store.save_profile(conn, updated)
            return updated

        return await self._db.write(work)

    async def delete(self, org_id: str, profile_id: str) -> None:
        if not is_well_formed(profile_id):
            raise profile_not_found(profile_id)

        def work(conn: Connection) -> None:
            link_store.delete_links_of(conn, org_id, profile_id)
            if not store.delete_profile(conn, org_id, profile_id):
                raise profile_not_found(profile_id)

        await self._db.write(work)

    async def list(
        self, org_id: str, query: ListQuery, page: str | None
    ) -> tuple[list[Profile], str | None]:
        after = None if page is None else decode_cursor(self._cursor_secret, org_id, query, page)
        descending = query.order == "desc"
        wanted = set(query.enforcement_status)
        budget = max(FILTER_SCAN_BUDGET, query.limit) if wanted else query.limit
        # One row past the budget tells whether anything follows.
        rows = await self._db.read(
            lambda conn: store.scan(
                conn,
                org_id,
                order_by=query.order_by,
                descending=descending,
                after=after,
                n=budget + 1,
            )
        )
        more = len(rows) > budget
        examined = rows[:budget]
        if not wanted:
            page_rows, last = examined, (examined[-1] if examined else None)
        else:
            page_rows = []
            last = None
            for i, p in enumerate(examined):
                if p.enforcement_status in wanted:
                    page_rows.append(p)
                    if len(page_rows) == query.limit:
                        last = p
                        more = more or i + 1 < len(examined)
                        break
            else:
                last = examined[-1] if examined else None
        next_page = None
        if more and last is not None:
            next_page = encode_cursor(
                self._cursor_secret, org_id, query, store.position_of(last, query.order_by)
            )
        return page_rows, next_page
