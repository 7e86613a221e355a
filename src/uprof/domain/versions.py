"""The contract versions, each a declared view over the one stored profile.

A version says which request fields it accepts, what each stored value is called on the wire,
and which optional surfaces it has (the enrollment URL, the enforcement filter). Handlers never
ask "which version is this?"; they hand the version to ``render`` and ``translate_profile_body``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import msgspec
from msgspec import UNSET

from uprof.domain.errors import InvalidRequest
from uprof.domain.model import DETAIL_FIELDS, Profile, ProfilePatch, ProfileText
from uprof.domain.requests import ProfileBody, present_fields
from uprof.domain.rules import check_country, check_text, parse_onboarded_at


class Detail(Enum):
    """How much a response reports of Anthropic-set state (programs), per the contract:
    retrieving a profile reports every program; a list reports none of the tiers and no EFS."""

    FULL = "full"
    LIST = "list"
    WRITE = "write"


@dataclass(frozen=True)
class ViewField:
    """One field of a version's response: its name on the wire and how it is computed from the
    stored profile, either ``expr`` (a Python expression over ``p``, the profile, and
    ``detail``, using the helpers in ``_HELPERS``) or ``fields`` (a nested object)."""

    name: str
    expr: str | None = None
    fields: tuple[ViewField, ...] = ()

    def __post_init__(self) -> None:
        if (self.expr is None) == (not self.fields):
            raise ValueError(f"{self.name}: give exactly one of expr and fields")


# A view renders a Profile or the ProfileText that stands for it (the same attributes).
Shown = Profile | ProfileText
Renderer = Callable[[Shown, Detail], msgspec.Struct]
PageRenderer = Callable[[Sequence[Shown], Detail], list[msgspec.Struct]]

_RELATIONSHIP_OF = {"application": "external", "passthrough": "resold"}

# What view expressions may use besides ``p`` and ``detail``. (Instants need no helper: they
# are datetimes, which the JSON encoder writes as RFC 3339.)
_HELPERS: dict[str, Any] = {
    "RELATIONSHIP_OF": _RELATIONSHIP_OF,
}


def _shape(name: str, fields: tuple[ViewField, ...], namespace: dict[str, Any]) -> str:
    """Declare the response object ``fields`` describe as a msgspec Struct (fields in view
    order, nested objects as Structs of their own) in ``namespace``; return the Python
    expression that builds one from ``p``."""
    struct = msgspec.defstruct(
        name,
        [(f.name, Any) for f in fields],
        # Instances hold strings, datetimes, the metadata dict and nested instances, never a
        # cycle: the collector need not track them (a page makes twenty of each).
        gc=False,
        module=__name__,
    )
    namespace[name] = struct
    args = []
    for f in fields:
        args.append(
            f.expr if f.expr is not None else _shape(f"{name}_{f.name}", f.fields, namespace)
        )
    return f"{name}({', '.join(args)})"


def compile_view(name: str, view: tuple[ViewField, ...]) -> tuple[Renderer, PageRenderer]:
    """The view as msgspec Structs and two generated functions: one profile to one Struct, and
    a page of profiles to a list of them in one comprehension. Every response renders one
    profile or a page of them: a function call per field (or per profile) would cost more than
    the field, and the encoder writes a Struct, whose keys it has encoded once, faster than a
    dict."""
    namespace = dict(_HELPERS)
    build = _shape(name, view, namespace)
    source = (
        f"def render(p, detail):\n    return {build}\n"
        f"def render_page(profiles, detail):\n    return [{build} for p in profiles]\n"
    )
    exec(compile(source, f"<view {name}>", "exec"), namespace)
    return namespace["render"], namespace["render_page"]


@dataclass(frozen=True)
class ContractVersion:
    key: str
    # Request body fields this version accepts; any other field present is a 400.
    request_fields: frozenset[str]
    view: tuple[ViewField, ...]
    enrollment_url: bool
    enforcement_filter: bool
    # What to tell a client who sent a field this version does not take.
    hints: tuple[tuple[str, str], ...] = ()
    renderer: Renderer = dataclasses.field(init=False, repr=False, compare=False)
    page_renderer: PageRenderer = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        name = "View_" + "".join(c if c.isalnum() else "_" for c in self.key)
        renderer, page_renderer = compile_view(name, self.view)
        object.__setattr__(self, "renderer", renderer)
        object.__setattr__(self, "page_renderer", page_renderer)

    @property
    def is_beta(self) -> bool:
        return self.key != "ga"


# --- how each stored value is shown ------------------------------------------------------------

ID = ViewField("id", "p.id")
TYPE = ViewField("type", "'user_profile'")
CREATED_AT = ViewField("created_at", "p.created_at")
UPDATED_AT = ViewField("updated_at", "p.updated_at")
METADATA = ViewField("metadata", "p.metadata")
NAME = ViewField("name", "p.name")
ACCESS_TYPE = ViewField("access_type", "p.access_type")
RELATIONSHIP = ViewField("relationship", "RELATIONSHIP_OF[p.access_type]")
EXTERNAL_ID = ViewField("external_id", "p.reference_id")
ONBOARDED_AT = ViewField("external_user_onboarded_at", "p.onboarded_at")
DETAILS = ViewField(
    "external_user_details",
    fields=(
        ViewField("account_status", "p.account_status"),
        ViewField("country", "p.country"),
        ViewField("email_hash", "p.email_hash"),
        ViewField("entity_type", "p.entity_type"),
        ViewField("name_hash", "p.name_hash"),
        ViewField("onboarded_at", "p.onboarded_at"),
        ViewField("reference_id", "p.reference_id"),
    ),
)
# Grants, programs and enforcement actions are set by the operator side; a profile with none
# in flight shows none.
TRUST_GRANTS = ViewField("trust_grants", "{}")
PROGRAMS = ViewField("programs", "{'cyber': None, 'efs': None}")
ENFORCEMENT_STATUS = ViewField("enforcement_status", "p.enforcement_status")
ENFORCEMENT_ACTIONS = ViewField("enforcement_actions", "[]")

_COMMON = (ID, TYPE, CREATED_AT, UPDATED_AT, METADATA, NAME)

_LEGACY_ID_HINT = ("external_id", "send external_user_details.reference_id instead")
_LEGACY_TS_HINT = ("external_user_onboarded_at", "send external_user_details.onboarded_at instead")
_DETAILS_HINT = (
    "external_user_details",
    "this beta header takes the top-level external_id instead; send user-profiles-2026-09-04 "
    "or no user-profiles beta header to use external_user_details",
)

V2026_03_24 = ContractVersion(
    key="user-profiles-2026-03-24",
    request_fields=frozenset({"metadata", "name", "external_id", "relationship"}),
    view=(*_COMMON, RELATIONSHIP, EXTERNAL_ID, TRUST_GRANTS),
    enrollment_url=True,
    enforcement_filter=False,
    hints=(
        ("access_type", "this beta header takes relationship instead"),
        _DETAILS_HINT,
        ("external_user_onboarded_at", "send user-profiles-2026-08-18 to use it"),
    ),
)
V2026_08_18 = ContractVersion(
    key="user-profiles-2026-08-18",
    request_fields=frozenset(
        {"metadata", "name", "access_type", "external_id", "external_user_onboarded_at"}
    ),
    view=(*_COMMON, ACCESS_TYPE, EXTERNAL_ID, ONBOARDED_AT, TRUST_GRANTS),
    enrollment_url=True,
    enforcement_filter=False,
    hints=(_DETAILS_HINT, ("relationship", "send access_type instead")),
)
V2026_09_04 = ContractVersion(
    key="user-profiles-2026-09-04",
    request_fields=frozenset({"metadata", "name", "access_type", "external_user_details"}),
    view=(*_COMMON, ACCESS_TYPE, DETAILS, TRUST_GRANTS),
    enrollment_url=True,
    enforcement_filter=False,
    hints=(_LEGACY_ID_HINT, _LEGACY_TS_HINT, ("relationship", "send access_type instead")),
)
GA = ContractVersion(
    key="ga",
    request_fields=frozenset({"metadata", "name", "access_type", "external_user_details"}),
    view=(*_COMMON, ACCESS_TYPE, DETAILS, PROGRAMS, ENFORCEMENT_STATUS, ENFORCEMENT_ACTIONS),
    enrollment_url=False,
    enforcement_filter=True,
    hints=(_LEGACY_ID_HINT, _LEGACY_TS_HINT, ("relationship", "send access_type instead")),
)

BETA_VERSIONS: dict[str, ContractVersion] = {
    v.key: v for v in (V2026_03_24, V2026_08_18, V2026_09_04)
}
ALL_VERSIONS: tuple[ContractVersion, ...] = (*BETA_VERSIONS.values(), GA)


def render(version: ContractVersion, profile: Shown, detail: Detail) -> msgspec.Struct:
    """The profile as the version shows it: a Struct that encodes to the response's JSON
    object (``msgspec.to_builtins`` makes it a dict)."""
    return version.renderer(profile, detail)


def render_page(
    version: ContractVersion, profiles: Sequence[Shown], detail: Detail
) -> list[msgspec.Struct]:
    return version.page_renderer(profiles, detail)


# --- requests ----------------------------------------------------------------------------------


def _reject_foreign_fields(version: ContractVersion, body: ProfileBody) -> None:
    foreign = [f for f in present_fields(body) if f not in version.request_fields]
    if not foreign:
        return
    hints = dict(version.hints)
    where = (
        f"the {version.key} beta" if version.is_beta else "requests without a user-profiles beta"
    )
    parts = []
    for field in foreign:
        hint = hints.get(field)
        parts.append(
            f"{field}: Extra inputs are not permitted under {where}" + (f"; {hint}" if hint else "")
        )
    raise InvalidRequest("; ".join(parts))


def _no_null(field: str) -> InvalidRequest:
    return InvalidRequest(f"{field}: once set, a value cannot be cleared; null is rejected")


def translate_profile_body(
    version: ContractVersion, body: ProfileBody, *, now_us: int, creating: bool
) -> ProfilePatch:
    """Turn a version's body into the version-neutral patch, applying each field's rule.

    ``null`` means "not supplied" on create. On update it clears ``name``, resets
    ``access_type`` to its default, and is rejected for the values that cannot be cleared.
    """
    _reject_foreign_fields(version, body)
    patch = ProfilePatch()
    if body.metadata is not UNSET:
        patch.metadata = body.metadata
    if body.name is not UNSET:
        patch.name = None if body.name is None else check_text("name", body.name)
    if body.access_type is not UNSET:
        patch.access_type = body.access_type or "application"
    if body.relationship is not UNSET:
        if body.relationship == "internal":
            raise InvalidRequest(
                "relationship: 'internal' is no longer supported: requests for your own "
                "organization need no user profile"
            )
        patch.access_type = "passthrough" if body.relationship == "resold" else "application"
    if body.external_id is not UNSET:
        if body.external_id is not None:
            patch.reference_id = check_text("external_id", body.external_id)
        elif not creating:
            raise _no_null("external_id")
    if body.external_user_onboarded_at is not UNSET:
        text = body.external_user_onboarded_at
        if text is not None:
            patch.onboarded_at = parse_onboarded_at("external_user_onboarded_at", text, now_us)
        elif not creating:
            raise _no_null("external_user_onboarded_at")
    if body.external_user_details is not UNSET:
        details = body.external_user_details
        for field in DETAIL_FIELDS:
            value = getattr(details, field)
            if value is UNSET:
                continue
            path = f"external_user_details.{field}"
            if value is None:
                if creating:
                    continue
                raise _no_null(path)
            if field == "onboarded_at":
                patch.onboarded_at = parse_onboarded_at(path, value, now_us)
            elif field == "country":
                patch.country = check_country(path, value)
            elif field in ("email_hash", "name_hash", "reference_id"):
                setattr(patch, field, check_text(path, value))
            else:
                setattr(patch, field, value)
    return patch
