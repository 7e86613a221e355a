"""Identifiers: prefixed, random, URL-safe. The generator is injected so tests can pin it."""

from __future__ import annotations

import os
import random
import re
import secrets
import time
from collections.abc import Callable
from typing import Final

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"  # Bitcoin base58

IdFactory = Callable[[str], str]

_WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{1,128}")


def is_well_formed(identifier: str) -> bool:
    """Whether a client-supplied id could name anything at all; others are 404 without a query
    (and never reach a store that chokes on NUL bytes or lone surrogates)."""
    return _WELL_FORMED.fullmatch(identifier) is not None


_rng = random.Random(os.urandom(32))

# Each random byte picks a character; 256 is not a multiple of 58, so the first 24 characters
# are slightly likelier (about 5.8 bits per character): one C call instead of a divmod loop,
# on the path of every request.
_TABLE = bytes((_ALPHABET[b % len(_ALPHABET)]).encode()[0] for b in range(256))


class _RandomChars:
    """Random base58 characters, cut from a buffer drawn 8 KiB at a time: every request takes
    16 for its id, and one slice costs less than a draw."""

    __slots__ = ("_at", "_buffer")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._buffer = ""
        self._at = 0

    def take(self, n: int) -> str:
        at = self._at
        if at + n > len(self._buffer):
            self._buffer = _rng.randbytes(max(8192, n)).translate(_TABLE).decode("ascii")
            at = 0
        self._at = at + n
        return self._buffer[at : at + n]


_chars = _RandomChars()


def _after_fork() -> None:
    # A forked worker must neither repeat the parent's sequence nor the characters it holds.
    _rng.seed(os.urandom(32))
    _chars.reset()
    _sequence.reset()


os.register_at_fork(after_in_child=_after_fork)


_TIME_CHARS = 8  # 58**8 milliseconds: beyond the year 6000
_SEQUENCE_CHARS = 3
_SEQUENCE_SPAN = 58**_SEQUENCE_CHARS
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # every two characters, in order
_PAIR_SPAN: Final = 58 * 58


def _time_text(ms: int) -> str:
    """``ms`` in base58, fixed width: the alphabet is in ASCII order, so the text sorts as the
    number does."""
    chars = []
    n = ms
    for _ in range(_TIME_CHARS):
        n, r = divmod(n, 58)
        chars.append(_ALPHABET[r])
    return "".join(reversed(chars))


class _Sequence:
    """The millisecond's text and a count of the ids this process makes in it, which starts
    at a random point of its first half every millisecond: ids one process makes one after
    another sort (and number, ``row_number``) in the order it made them, and two processes
    rarely count through the same values of one millisecond. Kept as the text of the time and
    the count's first character (``_head``) and the index of its last two (``_pair``): an id
    costs one concatenation."""

    __slots__ = ("_first", "_head", "_ms", "_pair")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._ms = -1
        self._head = ""
        self._first = 0
        self._pair = 0

    def text(self, ms: int) -> str:
        if ms != self._ms:
            self._ms = ms
            self._start(_rng.randrange(_SEQUENCE_SPAN // 2))
        elif self._pair + 1 < _PAIR_SPAN:
            self._pair += 1
        else:  # the count's first character moves on (or, past the last, starts over)
            self._start((self._first + 1) * _PAIR_SPAN % _SEQUENCE_SPAN)
        return self._head + _PAIRS[self._pair]

    def _start(self, value: int) -> None:
        """Count from ``value`` (a multiple of ``_PAIR_SPAN`` when the first character moves)."""
        first, pair = divmod(value, _PAIR_SPAN)
        self._first = first
        self._head = _time_text(self._ms) + _ALPHABET[first]
        self._pair = pair


_sequence = _Sequence()


def random_id(prefix: str, length: int = 24) -> str:
    """``prefix_`` + 24 base58 characters, like ``uprof_1Bq7RkT4mZCu8hGbp5mYRQgU``: 8 for the
    millisecond it was made, 3 counting the ids this process made in that millisecond (from
    a random point), 13 random.

    Time first, so that ids made one after another sort together: a new profile's id then
    lands at the end of the primary-key index instead of on a random page of it, which on a
    store of millions is the difference between appending to one page and dirtying (and
    writing back) a different page for every insert. The count makes that hold within a
    millisecond too (ids in random order there filled the pages of an index, and of a SQLite
    table filed by the id's number, decisions O20, only half each time one split: +12% of
    file). What that reveals, the creation time, every holder of a profile id can read in its
    ``created_at`` anyway. The 13 random characters (~76 bits) keep ids unique.

    Unique, not secret (every lookup is scoped by organization; keys and link tokens use
    ``secrets``): a private generator, seeded from the OS and reseeded in every forked worker,
    costs a fraction of an ``os.urandom`` system call; private, because code that seeds the
    global ``random`` (test tools do) must not make ids repeat.
    """
    ms = time.time_ns() // 1_000_000
    return f"{prefix}_{_sequence.text(ms)}{_chars.take(length - _TIME_CHARS - _SEQUENCE_CHARS)}"


_DIGIT = {c: i for i, c in enumerate(_ALPHABET)}
# The time and the count: every id made before the year 3400 has a number under 2**63 (the
# largest rowid SQLite takes).
_NUMBERED_CHARS = _TIME_CHARS + _SEQUENCE_CHARS
_NUMBER_LIMIT = 1 << 63


def row_number(identifier: str, length: int = 24) -> int | None:
    """A number drawn from an id that ``random_id`` made: its millisecond times 58**3 plus its
    count within the millisecond (None for any other text, or past 2**63). Ids one process
    makes get increasing numbers; ids of two processes share one rarely (two counts of one
    millisecond that overlap), and ids made before the count (which was random then) about
    once in 200,000 pairs of one millisecond. A store may file rows under it (SQLite's rowid,
    decisions O20) and look a row up by it, provided it checks the id and falls back to the
    id's own index for the rows filed elsewhere."""
    start = len(identifier) - length
    if start < 1 or identifier[start - 1] != "_":
        return None
    n = 0
    for ch in identifier[start : start + _NUMBERED_CHARS]:
        digit = _DIGIT.get(ch)
        if digit is None:
            return None
        n = n * 58 + digit
    return n if n < _NUMBER_LIMIT else None


def new_secret_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)
