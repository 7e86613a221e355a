"""Request bodies as they arrive on the wire: one shape holding every version's fields.

Decoding checks only types and enum values; which fields a contract version accepts, and the
rules on their values, are applied afterwards (``versions.translate_profile_body``), so one
decoder serves every version and the rules exist once.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec import UNSET, UnsetType

from uprof.domain.model import AccessType, AccountStatus, EntityType


class DetailsBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    account_status: AccountStatus | UnsetType | None = UNSET
    country: str | UnsetType | None = UNSET
    email_hash: str | UnsetType | None = UNSET
    entity_type: EntityType | UnsetType | None = UNSET
    name_hash: str | UnsetType | None = UNSET
    onboarded_at: str | UnsetType | None = UNSET
    reference_id: str | UnsetType | None = UNSET


class ProfileBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Create and update bodies: the union of the fields of every contract version."""

    metadata: dict[str, str] | UnsetType = UNSET
    name: str | UnsetType | None = UNSET
    access_type: AccessType | UnsetType | None = UNSET
    external_user_details: DetailsBody | UnsetType = UNSET
    external_id: str | UnsetType | None = UNSET
    external_user_onboarded_at: str | UnsetType | None = UNSET
    relationship: Literal["external", "resold", "internal"] | UnsetType | None = UNSET


class EnrollEndUserAction(msgspec.Struct, forbid_unknown_fields=True):
    """The one action an action URL can carry today; ``type`` is required."""

    type: Literal["enroll_end_user"]


class ActionUrlBody(msgspec.Struct, forbid_unknown_fields=True):
    action: EnrollEndUserAction


class EmptyBody(msgspec.Struct, forbid_unknown_fields=True):
    """Bodies of DELETE and enrollment_url: nothing, ``{}``, or an empty object."""


def present_fields(body: msgspec.Struct) -> list[str]:
    return [f for f in body.__struct_fields__ if getattr(body, f) is not UNSET]
