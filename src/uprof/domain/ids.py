"""Identifiers: prefixed, random, URL-safe. The generator is injected so tests can pin it."""

from __future__ import annotations

import os
import random
import re
import secrets
from collections.abc import Callable

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"  # Bitcoin base58

IdFactory = Callable[[str], str]

_WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{1,128}")


def is_well_formed(identifier: str) -> bool:
    """Whether a client-supplied id could name anything at all; others are 404 without a query
    (and never reach a store that chokes on NUL bytes or lone surrogates)."""
    return _WELL_FORMED.fullmatch(identifier) is not None


_rng = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _rng.seed(os.urandom(32)))

# Each random byte picks a character; 256 is not a multiple of 58, so the first 24 characters
# are slightly likelier (about 5.8 bits per character, ~139 bits per id): one C call instead of
# a divmod loop, on the path of every request.
_TABLE = bytes((_ALPHABET[b % len(_ALPHABET)]).encode()[0] for b in range(256))


def random_id(prefix: str, length: int = 24) -> str:
    """``prefix_`` + 24 base58 characters, like ``uprof_011CZkZCu8hGbp5mYRQgUmz9``.

    Ids must be unique, not secret (every lookup is scoped by organization; keys and link
    tokens use ``secrets``). A private generator, seeded from the OS and reseeded in every
    forked worker, costs a fraction of an ``os.urandom`` system call; private, because code
    that seeds the global ``random`` (test tools do) must not make ids repeat.
    """
    return f"{prefix}_" + _rng.randbytes(length).translate(_TABLE).decode("ascii")


def new_secret_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)
