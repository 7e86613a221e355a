"""Identifiers: prefixed, random, URL-safe. The generator is injected so tests can pin it."""

from __future__ import annotations

import os
import random
import re
import secrets
import time
from collections.abc import Callable

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


os.register_at_fork(after_in_child=_after_fork)


_TIME_CHARS = 8  # 58**8 milliseconds: beyond the year 6000
_last_ms_text: tuple[int, str] = (-1, "")


def _time_text(ms: int) -> str:
    """``ms`` in base58, fixed width: the alphabet is in ASCII order, so the text sorts as the
    number does."""
    global _last_ms_text
    if _last_ms_text[0] == ms:
        return _last_ms_text[1]
    chars = []
    n = ms
    for _ in range(_TIME_CHARS):
        n, r = divmod(n, 58)
        chars.append(_ALPHABET[r])
    text = "".join(reversed(chars))
    _last_ms_text = (ms, text)
    return text


def random_id(prefix: str, length: int = 24) -> str:
    """``prefix_`` + 24 base58 characters, like ``uprof_1Bq7RkT4mZCu8hGbp5mYRQgU``: 8 for the
    millisecond it was made, 16 random.

    Time first, so that ids made one after another sort together: a new profile's id then
    lands at the end of the primary-key index instead of on a random page of it, which on a
    store of millions is the difference between appending to one page and dirtying (and
    writing back) a different page for every insert. What that reveals, the creation time,
    every holder of a profile id can read in its ``created_at`` anyway. The 16 random
    characters (~93 bits) keep ids unique.

    Unique, not secret (every lookup is scoped by organization; keys and link tokens use
    ``secrets``): a private generator, seeded from the OS and reseeded in every forked worker,
    costs a fraction of an ``os.urandom`` system call; private, because code that seeds the
    global ``random`` (test tools do) must not make ids repeat.
    """
    return f"{prefix}_{_time_text(time.time_ns() // 1_000_000)}{_chars.take(length - _TIME_CHARS)}"


def new_secret_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)
