"""Cursors: round trip, and every alteration rejected."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uprof.domain.cursor import _tag, decode_cursor, encode_cursor
from uprof.domain.errors import InvalidRequest
from uprof.domain.model import ListQuery, Position

SECRET = b"s" * 32
queries = st.builds(
    ListQuery,
    limit=st.integers(1, 100),
    order=st.sampled_from(["asc", "desc"]),
    order_by=st.sampled_from(["created_at", "name"]),
    enforcement_status=st.sampled_from([(), ("banned",), ("pending", "restricted")]),
)
positions = st.builds(
    Position,
    key=st.one_of(st.none(), st.integers(0, 2**62), st.text(max_size=255)),
    id=st.text(min_size=1, max_size=40),
)


@given(queries, positions)
def test_round_trip(query: ListQuery, position: Position) -> None:
    cursor = encode_cursor(SECRET, "org_a", query, position)
    assert cursor.startswith("page_")
    assert all(c.isalnum() or c in "-_" for c in cursor)
    assert decode_cursor(SECRET, "org_a", query, cursor) == position


@given(queries, positions, st.data())
def test_any_flipped_bit_is_rejected(
    query: ListQuery, position: Position, data: st.DataObject
) -> None:
    cursor = encode_cursor(SECRET, "org_a", query, position)
    body = cursor[5:]
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    index = data.draw(st.integers(0, len(raw) - 1))
    bit = data.draw(st.integers(0, 7))
    raw[index] ^= 1 << bit
    forged = "page_" + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(InvalidRequest):
        decode_cursor(SECRET, "org_a", query, forged)


@given(queries, positions)
def test_bound_to_organization_and_secret(query: ListQuery, position: Position) -> None:
    cursor = encode_cursor(SECRET, "org_a", query, position)
    with pytest.raises(InvalidRequest):
        decode_cursor(SECRET, "org_b", query, cursor)
    with pytest.raises(InvalidRequest):
        decode_cursor(b"t" * 32, "org_a", query, cursor)


def test_bound_to_order_and_filter_but_not_limit() -> None:
    q = ListQuery(order="asc", order_by="name", enforcement_status=("banned",))
    cursor = encode_cursor(SECRET, "org", q, Position("bob", "uprof_1"))
    assert decode_cursor(
        SECRET,
        "org",
        ListQuery(order="asc", order_by="name", enforcement_status=("banned",), limit=99),
        cursor,
    )
    for other in (
        ListQuery(order="desc", order_by="name", enforcement_status=("banned",)),
        ListQuery(order="asc", order_by="created_at", enforcement_status=("banned",)),
        ListQuery(order="asc", order_by="name"),
    ):
        with pytest.raises(InvalidRequest):
            decode_cursor(SECRET, "org", other, cursor)


@given(st.text(max_size=300))
def test_arbitrary_text_never_decodes(text: str) -> None:
    with pytest.raises(InvalidRequest):
        decode_cursor(SECRET, "org", ListQuery(), text)


@given(queries, positions)
def test_the_text_is_base64url_of_the_payload_and_its_tag_as_before(
    query: ListQuery, position: Position
) -> None:
    # Cursors outlive a deploy in clients' hands: the base64url the standard module makes,
    # written without its wrappers since round 22, must be the same text, read the same way.
    cursor = encode_cursor(SECRET, "org_a", query, position)
    raw = base64.urlsafe_b64decode(cursor[5:] + "=" * (-len(cursor[5:]) % 4))
    assert cursor == "page_" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    for text in ("page_" + base64.urlsafe_b64encode(raw).decode("ascii"), cursor):
        assert decode_cursor(SECRET, "org_a", query, text) == position


@pytest.mark.parametrize("bad", ["page_é", "page_" + "\u2603" * 8, "page_===="])
def test_text_that_is_not_base64url_is_an_invalid_cursor(bad: str) -> None:
    with pytest.raises(InvalidRequest, match="invalid cursor"):
        decode_cursor(SECRET, "org_a", ListQuery(), bad)


@given(st.binary(min_size=1, max_size=100), st.binary(max_size=200))
def test_the_tag_is_keyed_blake2b_of_the_payload(secret: bytes, data: bytes) -> None:
    expected = hashlib.blake2b(data, key=secret[:64], digest_size=16).digest()
    assert _tag(secret, data) == expected
    assert _tag(secret, data) == expected  # the kept keyed state is copied, never changed
