"""Row mapping of profiles: an update writes exactly the columns whose stored text changes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from uprof.domain.model import Profile
from uprof.store.profiles import _changed, _values

_profiles = st.builds(
    Profile,
    id=st.just("uprof_x"),
    org_id=st.just("org_x"),
    created_at=st.just(1),
    updated_at=st.integers(1, 3),
    access_type=st.sampled_from(["application", "passthrough"]),
    name=st.one_of(st.none(), st.sampled_from(["Ada", "ada", "Zoë", ""])),
    metadata=st.dictionaries(st.sampled_from("abc"), st.sampled_from(["1", "2"]), max_size=3),
    reference_id=st.one_of(st.none(), st.just("ext")),
    onboarded_at=st.one_of(st.none(), st.integers(0, 2)),
    country=st.one_of(st.none(), st.sampled_from(["DE", "FR"])),
    enforcement_status=st.sampled_from(["unrestricted", "banned"]),
)


@given(_profiles, _profiles)
def test_changed_columns_are_the_columns_that_differ(new: Profile, old: Profile) -> None:
    after, before = _values(new), _values(old)
    changed = _changed(new, old)
    # every column it names differs, with the value the full row would store ...
    assert all(after[k] == v and before[k] != v for k, v in changed.items())
    # ... and every column it leaves out holds the same value (metadata: the same map)
    for k in after.keys() - changed.keys():
        assert after[k] == before[k] or (k == "metadata" and new.metadata == old.metadata)
