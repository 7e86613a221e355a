"""What the harness's parts share: the bench key, the shape of a bench profile, sizes."""

from __future__ import annotations

import hashlib
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import msgspec

from uprof.domain.model import Profile, ProfilePatch
from uprof.domain.rules import new_profile
from uprof.domain.timefmt import from_us
from uprof.domain.versions import GA, Detail, render

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DEFAULT_DATA_DIR = BENCH_DIR / ".data"
RESULTS_DIR = BENCH_DIR / "results"
WRK_DIR = BENCH_DIR / "wrk"

# The server is started with UPROF_BOOTSTRAP_API_KEY=BENCH_KEY; the loader puts the profiles
# into that key's organization (``default``).
BENCH_KEY = "sk-ant-uprof-bench-0123456789abcdef0123456789abcdef"

# Loaded profiles are created this far apart, ending before the load starts: everything the
# benchmark creates later sorts after them (and is removed again before the next run).
LOAD_SPACING_US = 1_000

T = TypeVar("T")

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([kKmM]?)$")


def parse_size(text: str) -> int:
    """``1k`` -> 1000, ``1M`` -> 1000000, ``2500`` -> 2500."""
    m = _SIZE.match(text.strip())
    if m is None:
        raise ValueError(f"not a size: {text!r} (use e.g. 1k, 1M, 10M)")
    mult = {"": 1, "k": 1_000, "K": 1_000, "m": 1_000_000, "M": 1_000_000}[m.group(2)]
    return int(float(m.group(1)) * mult)


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def bench_patch(i: int) -> ProfilePatch:
    """The i-th loaded profile: every field a real integration sets, about 700 bytes in GA."""
    return ProfilePatch(
        name=f"Bench User {i:08d}",
        metadata={"plan": "pro", "region": "eu-west-1", "cohort": str(i % 97)},
        reference_id=f"ref-{i:010d}",
        onboarded_at=from_us(1_767_225_600_000_000 + i * 1_000_000),  # 2026-01-01T00:00:00Z + i s
        account_status="active",
        country="US",
        email_hash=hashlib.sha256(b"user%d@example.com" % i).hexdigest(),
        entity_type="individual",
    )


def bench_profile(i: int, profile_id: str, org_id: str, now_us: int) -> Profile:
    return new_profile(profile_id=profile_id, org_id=org_id, now_us=now_us, patch=bench_patch(i))


def sample_response_body() -> bytes:
    """A real GA retrieve response of a loaded profile, rendered by uprof's own code."""
    p = bench_profile(12345, "uprof_" + "x" * 24, "org_" + "y" * 24, 1_767_225_600_123_456)
    return msgspec.json.encode(render(GA, p, Detail.FULL))


def in_turns(round_no: int, pair: tuple[T, T]) -> tuple[T, T]:
    """The order of a round's two runs: as given, then swapped, and so on, so that neither is
    always the one measured right after the other, and a host that speeds up or slows down
    within a round favours each side equally often."""
    return pair if round_no % 2 == 0 else (pair[1], pair[0])


def pair_ratios(first: Sequence[float], second: Sequence[float]) -> list[float]:
    """``second / first`` of each round: two runs measured seconds apart, in which the host's
    phase (which moves every throughput on this shared VM by a quarter between minutes) is
    nearly the same and cancels out."""
    if len(first) != len(second):
        raise ValueError(f"{len(first)} runs against {len(second)}: not one pair a round")
    return [b / a if a else 0.0 for a, b in zip(first, second, strict=True)]


def paired_ratio(first: Sequence[float], second: Sequence[float]) -> float:
    """The figure of a paired measurement: the median of its rounds' ratios."""
    return statistics.median(pair_ratios(first, second))


def spread(ratios: Sequence[float]) -> str:
    """The lowest and highest of the rounds' ratios (the noise a paired figure carries), or
    blank for fewer than two rounds."""
    if len(ratios) < 2:
        return ""
    return f"{min(ratios):.2f}-{max(ratios):.2f}"
