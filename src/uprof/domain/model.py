"""Plain records of the domain.

Times are integers, microseconds since the Unix epoch (UTC), where they are computed with, sorted
and stored in columns: the clock, cursors, links. The instants of a ``Profile`` are aware UTC
datetimes of the same microseconds: a profile is decoded from its stored document and encoded
into every response by msgspec, which reads and writes RFC 3339 in C (formatting three
timestamps a profile in Python cost more than the rest of a page of a list).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NewType

import msgspec
from msgspec import UNSET, UnsetType

AccessType = Literal["application", "passthrough"]
AccountStatus = Literal["active", "suspended", "blocked"]
EntityType = Literal["individual", "business", "non_profit", "government"]
EnforcementStatus = Literal["unrestricted", "pending", "restricted", "banned"]
ENFORCEMENT_STATUSES: tuple[str, ...] = ("unrestricted", "pending", "restricted", "banned")

# The seven keys of ``external_user_details``, in the order the API documents them.
DETAIL_FIELDS: tuple[str, ...] = (
    "account_status",
    "country",
    "email_hash",
    "entity_type",
    "name_hash",
    "onboarded_at",
    "reference_id",
)


class Profile(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """One stored user profile; every contract version is a view over this record.

    The store keeps it as msgspec encodes it: a JSON array of the fields in this order
    (``array_like``). The order is therefore a storage format: add fields only at the end,
    each with a default, so documents written before still decode
    (``tests/store/test_profile_rows.py`` pins the encoding).
    """

    id: str
    org_id: str
    created_at: datetime
    updated_at: datetime
    access_type: str = "application"
    name: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    reference_id: str | None = None
    onboarded_at: datetime | None = None
    account_status: str | None = None
    country: str | None = None
    email_hash: str | None = None
    entity_type: str | None = None
    name_hash: str | None = None
    enforcement_status: str = "unrestricted"


# A profile's stored document as a read finds it (a ``Profile`` as msgspec encodes it). Reads
# that only show a profile pass it on as it is: ``ProfileText`` is what it decodes to, and the
# views' JSON is remembered by it (``uprof.http.rendered``).
StoredText = NewType("StoredText", str)


class ProfileText(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A stored profile as a read finds it: the fields of ``Profile``, in its order, each value
    still the JSON text it is stored as (``msgspec.Raw``), except the two a read decides on.

    A retrieve or a list only passes values through to the response: every contract version's
    view names the same attributes, so it renders a ``ProfileText`` exactly as it renders the
    ``Profile`` it stands for, and the encoder copies each value's text instead of decoding it
    here and encoding it again there (``docs/performance.md``). Rules never see one: what is
    changed is read as a ``Profile``.
    """

    id: msgspec.Raw
    org_id: msgspec.Raw
    created_at: msgspec.Raw
    updated_at: msgspec.Raw
    access_type: str  # views map it (the 2026-03-24 relationship)
    name: msgspec.Raw
    metadata: msgspec.Raw
    reference_id: msgspec.Raw
    onboarded_at: msgspec.Raw
    account_status: msgspec.Raw
    country: msgspec.Raw
    email_hash: msgspec.Raw
    entity_type: msgspec.Raw
    name_hash: msgspec.Raw
    enforcement_status: str  # lists filter on it

    def decoded(self) -> Profile:
        """The ``Profile`` this text stands for."""
        return msgspec.convert(
            [
                msgspec.json.decode(v) if isinstance(v, msgspec.Raw) else v
                for v in msgspec.structs.astuple(self)
            ],
            Profile,
        )


class ProfilePatch(msgspec.Struct, kw_only=True):
    """A version-neutral change to a profile: UNSET leaves a field as it is.

    The contract versions name the same stored values differently (``external_id`` is
    ``external_user_details.reference_id``); requests are translated into this one shape before
    any rule runs, so the rules exist once.
    """

    metadata: dict[str, str] | UnsetType = UNSET
    name: str | UnsetType | None = UNSET
    access_type: str | UnsetType = UNSET
    reference_id: str | UnsetType = UNSET
    onboarded_at: datetime | UnsetType = UNSET
    account_status: str | UnsetType = UNSET
    country: str | UnsetType = UNSET
    email_hash: str | UnsetType = UNSET
    entity_type: str | UnsetType = UNSET
    name_hash: str | UnsetType = UNSET


# Fields of ProfilePatch that replace the stored value one for one (metadata merges instead).
REPLACED_FIELDS: tuple[str, ...] = (
    "name",
    "access_type",
    "reference_id",
    "onboarded_at",
    "account_status",
    "country",
    "email_hash",
    "entity_type",
    "name_hash",
)

OrderBy = Literal["created_at", "name"]
Order = Literal["asc", "desc"]


class ListQuery(msgspec.Struct, frozen=True, kw_only=True):
    limit: int = 20
    order: str = "desc"
    order_by: str = "created_at"
    # Empty means "no filter"; otherwise the enforcement statuses to keep, sorted.
    enforcement_status: tuple[str, ...] = ()


class Position(msgspec.Struct, frozen=True, array_like=True):
    """Where a keyset page ends: the sort key of the last row and its id.

    ``key`` is the created_at microseconds for ``order_by=created_at``, the case-folded name for
    ``order_by=name``, or None for a nameless profile (they come last in either direction).
    """

    key: int | str | None
    id: str


class Page(msgspec.Struct, frozen=True):
    profiles: list[Profile]
    next_position: Position | None


class LinkKind:
    ENROLLMENT = "enrollment"
    ACTION = "action"


class Link(msgspec.Struct, frozen=True, kw_only=True):
    """A short-lived URL handed to an end user (enrollment URL or action URL)."""

    token_hash: str
    org_id: str
    profile_id: str
    kind: str
    action: str | None
    created_at: int
    expires_at: int
