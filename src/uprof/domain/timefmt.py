"""RFC 3339 on the wire; inside, integer microseconds since the epoch (the clock, links, keys,
cursors) or aware UTC datetimes (the instants of a ``Profile``, which msgspec decodes from the
stored document and encodes into responses in C)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import msgspec

from uprof.domain.errors import InvalidRequest

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# A complete RFC 3339 date-time: date, time and an explicit offset. Seconds may carry a fraction.
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


_encode = msgspec.json.Encoder().encode


def from_us(us: int) -> datetime:
    """Microseconds since the epoch as an aware UTC datetime (exact: both count microseconds)."""
    return _EPOCH + timedelta(microseconds=us)


def format_dt(dt: datetime) -> str:
    """RFC 3339 in UTC as every response prints it: ``Z``, no fraction for a whole second, six
    digits otherwise. This is how msgspec encodes an aware UTC datetime, which is how the
    profiles in responses are rendered (in C, with the rest of the body); anything formatted
    one at a time uses the same rule through this function."""
    return _encode(dt.astimezone(UTC))[1:-1].decode("ascii")


def format_us(us: int) -> str:
    """Microseconds since the epoch to RFC 3339 in UTC (``format_dt``)."""
    return format_dt(from_us(us))


def to_us(dt: datetime) -> int:
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_rfc3339(field: str, text: str) -> int:
    """Parse a complete RFC 3339 timestamp into UTC microseconds, or raise InvalidRequest.
    Digits beyond microseconds are truncated."""
    m = _RFC3339.match(text)
    if m is None:
        raise InvalidRequest(
            f"{field}: must be a complete RFC 3339 timestamp with a time zone offset, "
            f"for example 2026-03-15T10:00:00Z; got {text!r}"
        )
    frac = (m.group(7) or "")[1:7].ljust(6, "0")
    offset = m.group(8)
    try:
        dt = datetime(
            int(m.group(1)),
            int(m.group(2)),
            int(m.group(3)),
            int(m.group(4)),
            int(m.group(5)),
            int(m.group(6)),
            int(frac),
            tzinfo=UTC,
        )
        if offset not in ("Z", "z"):
            sign = 1 if offset[0] == "+" else -1
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            if hours > 23 or minutes > 59:
                raise ValueError("offset out of range")
            dt -= sign * timedelta(hours=hours, minutes=minutes)
    except (ValueError, OverflowError):
        raise InvalidRequest(f"{field}: {text!r} is not a valid date-time") from None
    return to_us(dt)
