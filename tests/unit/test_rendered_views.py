"""The remembered JSON of profiles' views: the same bytes as rendering afresh, within its budget."""

from __future__ import annotations

import sys

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uprof.domain.model import Profile, ProfileText, StoredText
from uprof.domain.timefmt import from_us
from uprof.domain.versions import ALL_VERSIONS, ContractVersion, Detail, render
from uprof.http.rendered import RenderedViews
from uprof.store.profiles import decode_doc, encode_doc, text_of

DETAILS = (Detail.FULL, Detail.LIST)


def _profile(n: int, **changes: object) -> Profile:
    p = Profile(
        id=f"uprof_{n:024d}",
        org_id="org_a",
        created_at=from_us(n * 1_000_000),
        updated_at=from_us(n * 1_000_000 + 5),
        name=f"name {n}",
        metadata={"k": str(n)},
        reference_id=f"ref-{n}",
        onboarded_at=from_us(n),
        country="US",
    )
    return msgspec.structs.replace(p, **changes) if changes else p


def _text(p: Profile) -> StoredText:
    return StoredText(encode_doc(p))


def _fresh(version: ContractVersion, text: StoredText, detail: Detail) -> bytes:
    """What the response held before views were remembered: the decoded Profile, rendered."""
    return msgspec.json.encode(render(version, decode_doc(text), detail))


class CountingDecode:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, text: StoredText) -> ProfileText:
        self.calls += 1
        return text_of(text)


@pytest.mark.parametrize("detail", DETAILS)
@pytest.mark.parametrize("version", ALL_VERSIONS, ids=lambda v: v.key)
def test_one_and_page_are_the_bytes_of_a_fresh_render(
    version: ContractVersion, detail: Detail
) -> None:
    views = RenderedViews(text_of, 1 << 20)
    texts = [_text(_profile(n)) for n in range(3)]
    for _ in range(2):  # the first pass renders, the second answers from memory
        for text in texts:
            assert views.one(version, text, detail) == _fresh(version, text, detail)
        page = views.page(version, texts, detail)
        assert page == b"[" + b",".join(_fresh(version, t, detail) for t in texts) + b"]"
    assert views.page(version, [], detail) == b"[]"


@pytest.mark.parametrize("n", [0, 1, 3])
def test_a_page_comes_inside_what_goes_before_and_after_it(n: int) -> None:
    views = RenderedViews(text_of, 1 << 20)
    version = ALL_VERSIONS[-1]
    texts = [_text(_profile(i)) for i in range(n)]
    array = b"[" + b",".join(_fresh(version, t, Detail.LIST) for t in texts) + b"]"
    for _ in range(2):  # rendered, then remembered: what surrounds a page is not remembered
        assert views.page(version, texts, Detail.LIST, b'{"data":', b"}") == (
            b'{"data":' + array + b"}"
        )
        assert views.page(version, texts, Detail.LIST) == array


def test_a_remembered_view_is_not_decoded_again() -> None:
    decode = CountingDecode()
    views = RenderedViews(decode, 1 << 20)
    texts = [_text(_profile(n)) for n in range(5)]
    version = ALL_VERSIONS[-1]
    views.page(version, texts, Detail.LIST)
    assert decode.calls == 5
    views.page(version, texts, Detail.LIST)
    views.one(version, texts[0], Detail.LIST)
    assert decode.calls == 5
    # Another view of the same text is another slot: rendered once, then remembered.
    views.one(version, texts[0], Detail.FULL)
    views.one(version, texts[0], Detail.FULL)
    views.one(ALL_VERSIONS[0], texts[0], Detail.FULL)
    assert decode.calls == 7
    assert len(views) == 5


def test_a_changed_profile_shows_its_new_values() -> None:
    views = RenderedViews(text_of, 1 << 20)
    version = ALL_VERSIONS[-1]
    before = _text(_profile(1))
    after = _text(_profile(1, metadata={"k": "changed"}, name="renamed"))
    assert msgspec.json.decode(views.one(version, before, Detail.FULL))["name"] == "name 1"
    shown = msgspec.json.decode(views.one(version, after, Detail.FULL))
    assert shown["name"] == "renamed" and shown["metadata"] == {"k": "changed"}


def test_two_organizations_never_share_an_entry() -> None:
    views = RenderedViews(text_of, 1 << 20)
    version = ALL_VERSIONS[-1]
    a = _text(_profile(1))
    b = _text(_profile(1, org_id="org_b", name="theirs"))
    for _ in range(3):  # seen, kept, answered from memory
        assert msgspec.json.decode(views.one(version, a, Detail.FULL))["name"] == "name 1"
        assert msgspec.json.decode(views.one(version, b, Detail.FULL))["name"] == "theirs"
    assert len(views) == 2


def test_the_budget_holds_and_the_oldest_goes_first() -> None:
    decode = CountingDecode()
    texts = [_text(_profile(n)) for n in range(200)]
    version = ALL_VERSIONS[-1]
    one_entry = RenderedViews(text_of, 1 << 20)
    one_entry.page(version, texts[:1], Detail.FULL)
    budget = one_entry.size_bytes * 10  # room for about ten
    views = RenderedViews(decode, budget)
    for text in texts:
        views.page(version, [text], Detail.FULL)
        assert views.size_bytes <= budget
    assert 5 <= len(views) <= 10
    calls = decode.calls
    views.one(version, texts[-1], Detail.FULL)  # the newest is still there
    assert decode.calls == calls
    views.page(version, texts[:1], Detail.FULL)  # the oldest went first
    assert decode.calls == calls + 1
    assert views.size_bytes <= budget


def test_an_entry_larger_than_the_budget_is_answered_and_not_kept() -> None:
    views = RenderedViews(text_of, 100)
    text = _text(_profile(1, metadata={f"k{i}": "v" * 100 for i in range(16)}))
    version = ALL_VERSIONS[-1]
    assert views.one(version, text, Detail.FULL) == _fresh(version, text, Detail.FULL)
    assert len(views) == 0 and views.size_bytes == 0


def test_a_profile_retrieved_alone_is_kept_the_second_time() -> None:
    decode = CountingDecode()
    views = RenderedViews(decode, 1 << 20)
    version = ALL_VERSIONS[-1]
    once, twice = _text(_profile(1)), _text(_profile(2))
    views.one(version, once, Detail.FULL)
    views.one(version, twice, Detail.FULL)
    assert len(views) == 0  # seen once: rendered, not kept
    views.one(version, twice, Detail.FULL)  # seen again: kept
    assert len(views) == 1 and decode.calls == 3
    for _ in range(3):
        assert views.one(version, twice, Detail.FULL) == _fresh(version, twice, Detail.FULL)
    assert decode.calls == 3
    # A text a page keeps is kept for a retrieve too (another slot of the same entry).
    views.page(version, [once], Detail.LIST)
    views.one(version, once, Detail.FULL)
    views.one(version, once, Detail.FULL)
    assert decode.calls == 5


def test_the_doorkeeper_forgets_when_full() -> None:
    decode = CountingDecode()
    views = RenderedViews(decode, 1 << 20)  # remembers 1,024 hashes
    version = ALL_VERSIONS[-1]
    first = _text(_profile(0))
    views.one(version, first, Detail.FULL)
    for n in range(1, 1025):  # the 1,023rd other text fills it, the 1,024th clears it
        views.one(version, _text(_profile(n)), Detail.FULL)
    views.one(version, first, Detail.FULL)
    assert len(views) == 0  # forgotten: seen once again, not kept


def test_a_budget_of_zero_keeps_nothing() -> None:
    decode = CountingDecode()
    views = RenderedViews(decode, 0)
    texts = [_text(_profile(n)) for n in range(3)]
    version = ALL_VERSIONS[0]
    for _ in range(2):
        page = views.page(version, texts, Detail.LIST)
        assert page == b"[" + b",".join(_fresh(version, t, Detail.LIST) for t in texts) + b"]"
    assert decode.calls == 6
    assert len(views) == 0 and views.size_bytes == 0


_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
_OPTIONAL = st.none() | _TEXT
_TIME = st.integers(min_value=0, max_value=4_102_444_800_000_000).map(from_us)

_PROFILES = st.builds(
    Profile,
    id=st.from_regex(r"uprof_[0-9a-z]{4}", fullmatch=True),
    org_id=st.sampled_from(["org_a", "org_b"]),
    created_at=_TIME,
    updated_at=_TIME,
    access_type=st.sampled_from(["application", "passthrough"]),
    name=_OPTIONAL,
    metadata=st.dictionaries(_TEXT, _TEXT, max_size=4),
    reference_id=_OPTIONAL,
    onboarded_at=st.none() | _TIME,
    account_status=_OPTIONAL,
    country=_OPTIONAL,
    email_hash=_OPTIONAL,
    entity_type=st.none() | st.sampled_from(["individual", "business"]),
    name_hash=_OPTIONAL,
    enforcement_status=st.sampled_from(["unrestricted", "pending", "restricted", "banned"]),
)


def test_each_view_of_one_text_is_its_own() -> None:
    views = RenderedViews(text_of, 1 << 20)
    text = _text(_profile(1))
    shown = [(v, d) for v in ALL_VERSIONS for d in DETAILS]
    for _ in range(2):
        for version, detail in shown:
            assert views.one(version, text, detail) == _fresh(version, text, detail)
        for version, detail in reversed(shown):
            expected = b"[" + _fresh(version, text, detail) + b"]"
            assert views.page(version, [text], detail) == expected


@settings(max_examples=200, deadline=None)
@given(
    pool=st.lists(_PROFILES, min_size=1, max_size=5),
    reads=st.lists(
        st.tuples(
            st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=4),
            st.sampled_from(ALL_VERSIONS),
            st.sampled_from(DETAILS),
            st.booleans(),
        ),
        min_size=1,
        max_size=16,
    ),
    budget=st.sampled_from([0, 600, 3000, 1 << 20]),
)
def test_any_reads_in_any_order_show_what_a_fresh_render_shows(
    pool: list[Profile],
    reads: list[tuple[list[int], ContractVersion, Detail, bool]],
    budget: int,
) -> None:
    views = RenderedViews(text_of, budget)
    stored = [_text(p) for p in pool]
    for picks, version, detail, as_page in reads:
        texts = [stored[i % len(stored)] for i in picks]
        if as_page:
            got = views.page(version, texts, detail)
            assert got == b"[" + b",".join(_fresh(version, t, detail) for t in texts) + b"]"
        else:
            assert views.one(version, texts[0], detail) == _fresh(version, texts[0], detail)
        assert views.size_bytes <= budget


def test_the_budget_counts_what_a_text_takes_in_memory() -> None:
    # Characters beyond Latin-1 take two or four bytes each: counting characters would let
    # the memory grow past its budget.
    version = ALL_VERSIONS[-1]
    wide = [_text(_profile(n, metadata={"k": "\U0001f600" * 2000})) for n in range(40)]
    budget = 64 * 1024
    views = RenderedViews(text_of, budget)
    for text in wide:
        views.page(version, [text], Detail.FULL)
    assert views.size_bytes <= budget
    held = sum(sys.getsizeof(t) for t in views._entries)
    assert held <= budget
