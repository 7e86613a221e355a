"""Row mapping of profiles: the stored document, and an update that names exactly the columns
whose stored values change."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from uprof.domain.model import Profile, ProfileText
from uprof.domain.timefmt import from_us
from uprof.domain.versions import GA, V2026_03_24, V2026_08_18, V2026_09_04, Detail, render
from uprof.store.profiles import _changed, decode_doc, encode_doc, position_of, values

_profiles = st.builds(
    Profile,
    id=st.just("uprof_x"),
    org_id=st.just("org_x"),
    created_at=st.just(from_us(1)),
    updated_at=st.sampled_from([from_us(1), from_us(2), from_us(1_000_000)]),
    access_type=st.sampled_from(["application", "passthrough"]),
    name=st.one_of(st.none(), st.sampled_from(["Ada", "ada", "Zoë", ""])),
    metadata=st.dictionaries(st.sampled_from("abc"), st.sampled_from(["1", "2"]), max_size=3),
    reference_id=st.one_of(st.none(), st.just("ext")),
    onboarded_at=st.one_of(st.none(), st.integers(-(10**15), 10**17).map(from_us)),
    country=st.one_of(st.none(), st.sampled_from(["DE", "FR"])),
    enforcement_status=st.sampled_from(["unrestricted", "banned"]),
)


@given(_profiles, _profiles)
def test_changed_columns_are_the_columns_that_differ(new: Profile, old: Profile) -> None:
    after, before = values(new), values(old)
    changed = _changed(new, old)
    # every column it names differs, with the value the full row would store ...
    assert all(after[k] == v and before[k] != v for k, v in changed.items())
    # ... and every column it leaves out holds the same value (the document: the same record;
    # metadata maps equal in another key order are the same record, and are not rewritten)
    for k in after.keys() - changed.keys():
        same = (
            decode_doc(after[k]) == decode_doc(before[k]) if k == "doc" else after[k] == before[k]
        )
        assert same, k


@given(_profiles)
def test_the_document_holds_the_whole_record(p: Profile) -> None:
    assert decode_doc(encode_doc(p)) == p
    row = values(p)
    assert (row["id"], row["org_id"], row["created_at"]) == (p.id, p.org_id, 1)


# The stored form is a format: documents already written must keep decoding. Changing the
# order or the meaning of Profile's fields breaks this test; adding one at the end with a
# default does not.
_PINNED = (
    '["uprof_1","org_1","2023-11-14T22:13:20.123456Z","2023-11-14T22:13:20Z","passthrough",'
    '"Ada",{"plan":"pro"},"ext-1","2020-09-13T12:26:40.500000Z","active","DE","eh","business",'
    '"nh","banned"]'
)


def test_the_document_format_is_pinned() -> None:
    p = Profile(
        id="uprof_1",
        org_id="org_1",
        created_at=from_us(1_700_000_000_123_456),
        updated_at=from_us(1_700_000_000_000_000),
        access_type="passthrough",
        name="Ada",
        metadata={"plan": "pro"},
        reference_id="ext-1",
        onboarded_at=from_us(1_600_000_000_500_000),
        account_status="active",
        country="DE",
        email_hash="eh",
        entity_type="business",
        name_hash="nh",
        enforcement_status="banned",
    )
    assert encode_doc(p) == _PINNED
    assert decode_doc(_PINNED) == p


def test_the_text_form_has_the_fields_of_the_record() -> None:
    assert ProfileText.__struct_fields__ == Profile.__struct_fields__


_texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
_rich_profiles = st.builds(
    Profile,
    id=st.just("uprof_x"),
    org_id=st.just("org_x"),
    created_at=st.integers(-(10**15), 10**17).map(from_us),
    updated_at=st.integers(0, 10**17).map(from_us),
    access_type=st.sampled_from(["application", "passthrough"]),
    name=st.one_of(st.none(), _texts),
    metadata=st.dictionaries(_texts, _texts, max_size=4),
    reference_id=st.one_of(st.none(), _texts),
    onboarded_at=st.one_of(st.none(), st.integers(-(10**15), 10**17).map(from_us)),
    account_status=st.one_of(st.none(), st.sampled_from(["active", "blocked"])),
    country=st.one_of(st.none(), st.just("DE")),
    email_hash=st.one_of(st.none(), _texts),
    entity_type=st.one_of(st.none(), st.just("business")),
    name_hash=st.one_of(st.none(), _texts),
    enforcement_status=st.sampled_from(["unrestricted", "banned"]),
)


@given(_rich_profiles)
def test_every_view_renders_the_text_form_byte_for_byte_as_the_record(p: Profile) -> None:
    """Reads render the stored text without decoding it: the bytes must be exactly those of
    rendering the decoded record, in every version and detail."""
    text = msgspec.json.decode(encode_doc(p), type=ProfileText)
    assert text.decoded() == p
    for version in (V2026_03_24, V2026_08_18, V2026_09_04, GA):
        for detail in Detail:
            assert msgspec.json.encode(render(version, text, detail)) == msgspec.json.encode(
                render(version, p, detail)
            )
    for order_by in ("created_at", "name"):
        assert position_of(text, order_by) == position_of(p, order_by)
