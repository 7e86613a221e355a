"""Identifiers: prefixed, random, URL-safe. The generator is injected so tests can pin it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable

_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"  # base58

IdFactory = Callable[[str], str]


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
