"""Each stored profile's JSON as a version's view shows it, remembered by its stored text.

A retrieve or a list shows what is stored and nothing else: a view's JSON is a pure function of
the stored document (and of the version and the detail it is shown at). Decoding the document,
building the view's Structs and encoding them is most of what a list page costs in Python
(~2 us a profile against ~0.2 us for finding its JSON here: ``docs/performance.md``, round 7),
so the JSON is kept, keyed by the document's text itself. Nothing has to be invalidated: a
profile that changed has another document, which is another key, and the old entry ages out.
A document is the whole record (id and organization included), so two organizations' profiles
never share an entry.

The memory is bounded (``max_bytes``, the keys and the JSON counted at their size in memory);
the oldest entry goes first (FIFO: a hit costs one dictionary probe and changes nothing).
``max_bytes=0`` keeps nothing: every read renders afresh. Used from the event loop's thread only.

A page is kept at once: the clients that walk a list read the same pages. A profile retrieved
on its own is kept only the second time it is seen (a doorkeeper of recent texts' hashes, as
TinyLFU's): keeping costs a miss ~2.5 us more than rendering alone (fresh memory for the text
and its JSON, the insertion, an eviction), and retrieves spread over a large store mostly miss,
while a profile that is polled is seen again soon.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from uprof.domain.model import ProfileText, StoredText
from uprof.domain.versions import ALL_VERSIONS, ContractVersion, Detail, render

_encode = msgspec.json.Encoder().encode

# What an entry costs beyond the sizes of its key and its JSON (the dict's slot and node, the
# list), so a budget of small documents is not overrun by overhead.
_ENTRY_OVERHEAD = 200

# The views a stored text is shown at: retrieve (FULL) and list (LIST) of every version.
_SHOWN = (Detail.FULL, Detail.LIST)


class RenderedViews:
    def __init__(self, decode: Callable[[StoredText], ProfileText], max_bytes: int) -> None:
        self._decode = decode
        self._max_bytes = max(0, max_bytes)
        self._bytes = 0
        # text -> [size, JSON of slot 0, JSON of slot 1, ...] (None: not rendered yet)
        self._entries: OrderedDict[str, list[Any]] = OrderedDict()
        # (version, detail) -> the entry's index of its JSON (0 is the entry's size)
        self._slots = {
            (version.key, detail): i
            for i, (version, detail) in enumerate(
                ((v, d) for v in ALL_VERSIONS for d in _SHOWN), start=1
            )
        }
        self._width = 1 + len(self._slots)
        # Hashes of the texts retrieved once and not kept; forgotten all at once when full.
        self._seen: set[int] = set()
        self._seen_max = min(max(self._max_bytes // 1024, 1024), 1 << 16)

    @property
    def size_bytes(self) -> int:
        """What the entries kept now count against the budget."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def one(self, version: ContractVersion, text: StoredText, detail: Detail) -> bytes:
        """The JSON object of one stored profile as ``version`` shows it at ``detail``."""
        entry = self._entries.get(text)
        if entry is None and self._max_bytes and not self._seen_before(text):
            return self._render(version, text, detail)
        return self._json(self._slots[(version.key, detail)], version, text, detail, entry)

    def page(
        self,
        version: ContractVersion,
        texts: Sequence[StoredText],
        detail: Detail,
        before: bytes = b"",
        after: bytes = b"",
    ) -> bytes:
        """A JSON array of the stored profiles, in order, as ``version`` shows them, with
        ``before`` and ``after`` around it (the rest of a response's body).

        The body is copied once, by one join: wrapping a joined array (in brackets, then in
        the response's object) copied a page's ~13 KB six times more (~0.8 us a page)."""
        slot = self._slots[(version.key, detail)]
        entries = self._entries
        parts: list[bytes] = []
        append = parts.append
        for text in texts:
            entry = entries.get(text)
            found = None if entry is None else entry[slot]
            append(found if found is not None else self._json(slot, version, text, detail, entry))
        if not parts:
            return before + b"[]" + after
        # The brackets and the surroundings go onto the first and last views (small copies).
        parts[0] = before + b"[" + parts[0]
        parts[-1] = parts[-1] + b"]" + after
        return b",".join(parts)

    def _seen_before(self, text: StoredText) -> bool:
        """Whether a retrieve saw ``text`` recently; it is remembered as seen now."""
        seen = self._seen
        key = hash(text)  # computed by the probe before already: str caches it
        if key in seen:
            return True
        if len(seen) >= self._seen_max:
            seen.clear()
        seen.add(key)
        return False

    def _render(self, version: ContractVersion, text: StoredText, detail: Detail) -> bytes:
        return _encode(render(version, self._decode(text), detail))

    def _json(
        self,
        slot: int,
        version: ContractVersion,
        text: StoredText,
        detail: Detail,
        entry: list[Any] | None,
    ) -> bytes:
        """The JSON at ``slot`` of ``text``'s entry (``entry``, as the caller found it), rendered
        and kept if it is not there yet."""
        if entry is not None and entry[slot] is not None:
            found: bytes = entry[slot]
            return found
        data = self._render(version, text, detail)
        if not self._max_bytes:
            return data
        entries = self._entries
        if entry is None:
            # The text's size in memory, not its length: a text with characters beyond Latin-1
            # takes two or four bytes each.
            entry = [sys.getsizeof(text) + _ENTRY_OVERHEAD] + [None] * (self._width - 1)
            entries[text] = entry
            self._bytes += entry[0]
        entry[slot] = data
        size = sys.getsizeof(data)
        entry[0] += size
        self._bytes += size
        while self._bytes > self._max_bytes and entries:
            _text, oldest = entries.popitem(last=False)
            self._bytes -= oldest[0]
        return data
