"""The rules a profile obeys, as pure functions over the records in ``model``."""

from __future__ import annotations

from datetime import datetime

from msgspec import UNSET, structs

from uprof.domain.errors import InvalidRequest
from uprof.domain.model import REPLACED_FIELDS, Profile, ProfilePatch
from uprof.domain.timefmt import from_us, parse_rfc3339

METADATA_MAX_KEYS = 16
METADATA_MAX_KEY_CHARS = 64
METADATA_MAX_VALUE_CHARS = 512
TEXT_MAX_CHARS = 255
# "Must be a complete timestamp no more than 1 minute in the future."
FUTURE_TOLERANCE_US = 60 * 1_000_000


def unstorable(value: str) -> str | None:
    """Why a string cannot be stored as text, if it cannot: PostgreSQL text holds no NUL, and no
    store holds a lone UTF-16 surrogate (JSON can carry both as escapes)."""
    if "\x00" in value:
        return "must not contain the NUL character (U+0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must not contain unpaired surrogate code points"
    return None


def _metadata_error(problems: list[str]) -> InvalidRequest:
    return InvalidRequest("metadata: " + "; ".join(problems), error_code="invalid_metadata")


def _entry_problems(metadata: dict[str, str], *, allow_empty_values: bool) -> list[str]:
    problems: list[str] = []
    for key, value in metadata.items():
        bad = unstorable(key) or unstorable(value)
        if bad:
            problems.append(f"keys and values {bad}")
            continue
        if not key:
            problems.append("keys must be non-empty strings")
        elif len(key) > METADATA_MAX_KEY_CHARS:
            problems.append(
                f"key {key[:METADATA_MAX_KEY_CHARS]!r}... is {len(key)} characters long; "
                f"keys are at most {METADATA_MAX_KEY_CHARS}"
            )
        if len(value) > METADATA_MAX_VALUE_CHARS:
            problems.append(
                f"the value of {key!r} is {len(value)} characters long; "
                f"values are at most {METADATA_MAX_VALUE_CHARS}"
            )
        elif not value and not allow_empty_values:
            problems.append(f"the value of {key!r} is empty; values must be non-empty strings")
    return problems


def _count_problem(count: int, what: str) -> list[str]:
    if count > METADATA_MAX_KEYS:
        return [f"{what} has {count} keys; at most {METADATA_MAX_KEYS} are allowed"]
    return []


def check_new_metadata(metadata: dict[str, str]) -> None:
    """Metadata sent on create: at most 16 keys, every value non-empty."""
    problems = _entry_problems(metadata, allow_empty_values=False)
    problems += _count_problem(len(metadata), "metadata")
    if problems:
        raise _metadata_error(problems)


def merge_metadata(stored: dict[str, str], patch: dict[str, str]) -> dict[str, str]:
    """Merge an update into stored metadata: sent keys overwrite, ``""`` deletes, others stay.

    The 16-key limit applies to the merged result, so a patch may replace keys of a full map.
    Deleting a key that does not exist is a no-op.
    """
    problems = _entry_problems(patch, allow_empty_values=True)
    if problems:
        raise _metadata_error(problems)
    merged = dict(stored)
    for key, value in patch.items():
        if value:
            merged[key] = value
        else:
            merged.pop(key, None)
    count = _count_problem(len(merged), "the metadata after this update")
    if count:
        raise _metadata_error(count)
    return merged


def check_text(field: str, value: str) -> str:
    """Free-text fields hold 1 to 255 characters (Unicode code points)."""
    bad = unstorable(value)
    if bad:
        raise InvalidRequest(f"{field}: {bad}")
    if not value:
        raise InvalidRequest(f"{field}: must be at least 1 character long")
    if len(value) > TEXT_MAX_CHARS:
        raise InvalidRequest(
            f"{field}: must be at most {TEXT_MAX_CHARS} characters long; got {len(value)}"
        )
    return value


def check_country(field: str, value: str) -> str:
    if len(value) != 2 or not ("A" <= value[0] <= "Z" and "A" <= value[1] <= "Z"):
        raise InvalidRequest(
            f"{field}: must be an ISO 3166-1 alpha-2 code in upper case, "
            f"two letters A-Z such as 'US'; got {value!r}"
        )
    return value


def parse_onboarded_at(field: str, text: str, now_us: int) -> datetime:
    us = parse_rfc3339(field, text)
    if us > now_us + FUTURE_TOLERANCE_US:
        raise InvalidRequest(f"{field}: must be no more than 1 minute in the future")
    return from_us(us)


def name_sort_key(name: str | None) -> str | None:
    """Names sort ignoring the case of ASCII letters only; other characters are left as they are."""
    if name is None:
        return None
    return name.translate(_ASCII_LOWER)


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def new_profile(*, profile_id: str, org_id: str, now_us: int, patch: ProfilePatch) -> Profile:
    metadata = patch.metadata if patch.metadata is not UNSET else {}
    check_new_metadata(metadata)
    values = {f: getattr(patch, f) for f in REPLACED_FIELDS if getattr(patch, f) is not UNSET}
    now = from_us(now_us)
    return Profile(
        id=profile_id,
        org_id=org_id,
        created_at=now,
        updated_at=now,
        metadata=metadata,
        **values,
    )


def apply_patch(profile: Profile, patch: ProfilePatch, now_us: int) -> Profile:
    """The profile after ``patch``; ``updated_at`` moves only when a stored value changes."""
    changes: dict[str, object] = {}
    if patch.metadata is not UNSET:
        merged = merge_metadata(profile.metadata, patch.metadata)
        if merged != profile.metadata:
            changes["metadata"] = merged
    for field in REPLACED_FIELDS:
        value = getattr(patch, field)
        if value is not UNSET and value != getattr(profile, field):
            changes[field] = value
    if not changes:
        return profile
    return structs.replace(profile, updated_at=max(from_us(now_us), profile.updated_at), **changes)
