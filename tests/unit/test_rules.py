"""Pure rules: metadata, text, timestamps, patches. Hypothesis where the rules have edges."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from uprof.domain.errors import InvalidRequest
from uprof.domain.model import Profile, ProfilePatch
from uprof.domain.rules import (
    METADATA_MAX_KEYS,
    apply_patch,
    check_country,
    check_new_metadata,
    check_text,
    merge_metadata,
    name_sort_key,
    new_profile,
    parse_onboarded_at,
)
from uprof.domain.timefmt import format_us, from_us, parse_rfc3339, to_us

# Storable text: every code point but NUL and lone surrogates (see test_unstorable_text).
chars = st.characters(exclude_characters="\x00", exclude_categories=["Cs"])
keys = st.text(chars, min_size=1, max_size=64)
values = st.text(chars, min_size=1, max_size=512)
metadata = st.dictionaries(keys, values, max_size=METADATA_MAX_KEYS)
patches = st.dictionaries(keys, st.one_of(st.just(""), values), max_size=METADATA_MAX_KEYS)


@given(metadata, patches)
def test_merge_overwrites_deletes_and_keeps(stored: dict[str, str], patch: dict[str, str]) -> None:
    try:
        merged = merge_metadata(stored, patch)
    except InvalidRequest as e:
        # The only way a valid patch fails is the merged map growing past the limit.
        expected = {**stored, **patch}
        assert len({k: v for k, v in expected.items() if v}) > METADATA_MAX_KEYS
        assert e.error_code == "invalid_metadata"
        return
    for key, value in patch.items():
        if value:
            assert merged[key] == value
        else:
            assert key not in merged
    for key, value in stored.items():
        if key not in patch:
            assert merged[key] == value
    assert set(merged) <= set(stored) | set(patch)
    assert len(merged) <= METADATA_MAX_KEYS
    assert "" not in merged.values()


@given(metadata)
def test_merging_the_stored_map_into_itself_changes_nothing(stored: dict[str, str]) -> None:
    assert merge_metadata(stored, stored) == stored


@given(st.dictionaries(keys, values, min_size=METADATA_MAX_KEYS + 1, max_size=24))
def test_more_than_sixteen_keys_on_create_is_rejected(big: dict[str, str]) -> None:
    with pytest.raises(InvalidRequest):
        check_new_metadata(big)


@pytest.mark.parametrize(
    "bad",
    [{"": "v"}, {"k" * 65: "v"}, {"k": "v" * 513}, {"k": ""}, {"k": "a\x00"}, {"\ud800": "v"}],
)
def test_bad_entries_on_create(bad: dict[str, str]) -> None:
    with pytest.raises(InvalidRequest) as e:
        check_new_metadata(bad)
    assert e.value.error_code == "invalid_metadata"


def test_boundaries_are_inclusive() -> None:
    check_new_metadata({"k" * 64: "v" * 512})
    check_new_metadata({str(i): "v" for i in range(16)})


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2))
def test_any_two_upper_case_letters_is_a_country(code: str) -> None:
    assert check_country("country", code) == code


@pytest.mark.parametrize("bad", ["us", "U", "USA", "U1", "ÄB", "", "U "])
def test_not_a_country(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        check_country("country", bad)


@given(st.integers(min_value=-62135596800000000, max_value=253402300799999999))
def test_timestamps_round_trip(us: int) -> None:
    assert parse_rfc3339("t", format_us(us)) == us
    assert to_us(from_us(us)) == us


@given(st.integers(min_value=-62135596800000000, max_value=253402300799999999))
def test_one_format_for_every_instant(us: int) -> None:
    """What format_us prints is what a response prints for the same instant (msgspec encodes
    the datetimes of a profile): no fraction for a whole second, six digits otherwise."""
    text = format_us(us)
    assert msgspec.json.encode(from_us(us)).decode() == f'"{text}"'
    fraction = text[len("2026-01-01T00:00:00") : -1]
    assert text.endswith("Z") and fraction in ("", f".{us % 1_000_000:06d}")
    assert (fraction == "") == (us % 1_000_000 == 0)


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
        ("2026-01-01T00:00:00+02:00", "2025-12-31T22:00:00Z"),
        ("2026-01-01T00:00:00-05:30", "2026-01-01T05:30:00Z"),
        ("2026-01-01t00:00:00.5z", "2026-01-01T00:00:00.500000Z"),
        ("2026-01-01T00:00:00.000001Z", "2026-01-01T00:00:00.000001Z"),
        ("2026-01-01T00:00:00.123456789Z", "2026-01-01T00:00:00.123456Z"),
    ],
)
def test_offsets_normalize_to_utc(text: str, utc: str) -> None:
    assert format_us(parse_rfc3339("t", text)) == utc


@pytest.mark.parametrize(
    "bad",
    [
        "2026-01-01",
        "2026-01-01T00:00:00",
        "2026-01-01T00:00Z",
        "2026-02-29T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:00:00+25:00",
        "20260101T000000Z",
        " 2026-01-01T00:00:00Z",
    ],
)
def test_incomplete_or_impossible_timestamps(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_rfc3339("t", bad)


def test_one_minute_into_the_future_is_the_limit() -> None:
    now = parse_rfc3339("now", "2026-11-22T12:00:00Z")
    assert parse_onboarded_at("t", "2026-11-22T12:01:00Z", now) == from_us(now + 60_000_000)
    with pytest.raises(InvalidRequest):
        parse_onboarded_at("t", "2026-11-22T12:01:00.000001Z", now)


@given(st.text(max_size=20))
def test_name_key_folds_ascii_only(name: str) -> None:
    key = name_sort_key(name)
    assert key is not None and len(key) == len(name)
    for original, folded in zip(name, key, strict=True):
        if "A" <= original <= "Z":
            assert folded == original.lower()
        else:
            assert folded == original
    assert name_sort_key(None) is None


def _profile() -> Profile:
    return new_profile(
        profile_id="uprof_1", org_id="org_1", now_us=1_000, patch=ProfilePatch(name="A")
    )


def test_no_op_patch_returns_the_same_record() -> None:
    p = _profile()
    assert apply_patch(p, ProfilePatch(name="A", metadata={}), 5_000) is p


def test_change_moves_updated_at_only() -> None:
    p = _profile()
    q = apply_patch(p, ProfilePatch(country="US"), 5_000)
    assert (q.country, q.updated_at, q.created_at) == ("US", from_us(5_000), from_us(1_000))


def test_updated_at_never_goes_backwards() -> None:
    p = apply_patch(_profile(), ProfilePatch(name="B"), 9_000)
    assert apply_patch(p, ProfilePatch(name="C"), 2_000).updated_at == from_us(9_000)


@pytest.mark.parametrize("bad", ["\x00", "a\x00b", "\ud800", "x\udfff"])
def test_unstorable_text(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        check_text("name", bad)
    with pytest.raises(InvalidRequest):
        merge_metadata({}, {"k": bad})
