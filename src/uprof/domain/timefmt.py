"""RFC 3339 on the wire, integer microseconds inside."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

from uprof.domain.errors import InvalidRequest

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# A complete RFC 3339 date-time: date, time and an explicit offset. Seconds may carry a fraction.
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


# The text of each whole second formatted lately: every response formats two or three
# timestamps, a page of a list sixty, and neighbouring profiles share their seconds. Bounded:
# emptied when full.
_SECONDS: dict[int, str] = {}
_SECONDS_MAX = 65_536


def _second_text(seconds: int) -> str:
    try:
        t = time.gmtime(seconds)  # several times cheaper than datetime + strftime
        return (
            f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
            f"T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        )
    except (OverflowError, OSError, ValueError):
        return (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")


def format_us(us: int) -> str:
    """Microseconds since the epoch to RFC 3339 in UTC with a ``Z`` suffix."""
    seconds, frac = divmod(us, 1_000_000)
    text = _SECONDS.get(seconds)
    if text is None:
        text = _second_text(seconds)
        if len(_SECONDS) >= _SECONDS_MAX:
            _SECONDS.clear()
        _SECONDS[seconds] = text
    if not frac:
        return text + "Z"
    if frac % 1000 == 0:
        # Whole seconds print none, whole milliseconds three digits (the API's own style).
        return f"{text}.{frac // 1000:03d}Z"
    return f"{text}.{frac:06d}Z"


def to_us(dt: datetime) -> int:
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_rfc3339(field: str, text: str) -> int:
    """Parse a complete RFC 3339 timestamp into UTC microseconds, or raise InvalidRequest."""
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
