"""Identifiers: prefixed, random, URL-safe. The generator is injected so tests can pin it."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable

_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"  # base58

IdFactory = Callable[[str], str]

_WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{1,128}")


def is_well_formed(identifier: str) -> bool:
    """Whether a client-supplied id could name anything at all; others are 404 without a query
    (and never reach a store that chokes on NUL bytes or lone surrogates)."""
    return _WELL_FORMED.fullmatch(identifier) is not None


def random_id(prefix: str, length: int = 24) -> str:
    """``prefix_`` + 24 base58 characters (~140 bits), like ``uprof_011CZkZCu8hGbp5mYRQgUmz9``."""
    n = int.from_bytes(os.urandom(18), "big")  # 144 bits, more than 24 base58 digits hold
    digits = []
    for _ in range(length):
        n, r = divmod(n, 58)
        digits.append(_ALPHABET[r])
    return f"{prefix}_" + "".join(digits)


def new_secret_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)
