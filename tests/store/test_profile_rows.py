"""Row mapping of profiles: the stored document, and an update that names exactly the columns
whose stored values change."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from uprof.domain.model import Profile
from uprof.domain.timefmt import from_us
from uprof.store.profiles import _changed, _values, decode_doc, encode_doc

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
    after, before = _values(new), _values(old)
    changed = _changed(new, old)
    # every column it names differs, with the value the full row would store ...
    assert all(after[k] == v and before[k] != v for k, v in changed.items())
    # ... and every column it leaves out holds the same value
    assert all(after[k] == before[k] for k in after.keys() - changed.keys())


@given(_profiles)
def test_the_document_holds_the_whole_record(p: Profile) -> None:
    assert decode_doc(encode_doc(p)) == p
    row = _values(p)
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
