"""Page numbers of extracted text: which page an offset falls on, carried in metadata (pure).

A PDF's pages become one text; where each page starts travels as metadata
(``"page_starts": "1@0 2@1834 3@3920"``), on the document in full and on each chunk only for
the pages it touches, so a quoted sentence's offset maps to the page it was printed on
without the whole page table in every chunk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

PAGE_STARTS_KEY = "page_starts"


def page_metadata(starts: Sequence[int]) -> dict[str, str]:
    """Metadata for a document whose page ``i + 1`` starts at ``starts[i]`` ({} if no pages)."""
    if not starts:
        return {}
    return {PAGE_STARTS_KEY: " ".join(f"{n}@{s}" for n, s in enumerate(starts, start=1))}


def page_at(metadata: Mapping[str, str], offset: int) -> int | None:
    """Return the page that ``offset`` falls on, or ``None`` for text without pages."""
    page = None
    for number, start in _pairs(metadata):
        if start > offset:
            break
        page = number
    return page


def pages_within(metadata: Mapping[str, str], start: int, end: int) -> dict[str, str]:
    """Return ``metadata`` with its page table cut to the pages ``[start, end)`` touches."""
    pairs = _pairs(metadata)
    if not pairs:
        return dict(metadata)
    first = page_at(metadata, start)
    kept = [(n, s) for n, s in pairs if (first is not None and n == first) or start < s < end]
    return {**metadata, PAGE_STARTS_KEY: " ".join(f"{n}@{s}" for n, s in kept)}


def _pairs(metadata: Mapping[str, str]) -> list[tuple[int, int]]:
    table = metadata.get(PAGE_STARTS_KEY, "")
    pairs = []
    for item in table.split():
        number, _, start = item.partition("@")
        pairs.append((int(number), int(start)))
    return pairs
