"""Page layout to paragraphs: drop running headers and footers, rejoin wrapped lines (pure).

A PDF's text layer is a list of printed lines per page, each with its font size. The
sentence splitter ends a sentence at every line break, so wrapped lines are joined back
into one line per paragraph and a wrapped heading into one heading line; lines that repeat
at the top or bottom of most pages (running titles, "Page 3 of 9") are dropped before they
are quoted as if they were the article.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

Line = tuple[str, float]
"""A printed line: its text (whitespace collapsed) and the font size it starts in."""

ZONE_LINES = 3
"""Lines at the top and at the bottom of a page where headers and footers live."""
RECURRING_SHARE = 0.6
"""A line in that zone on at least this share of the pages is a header or footer."""
MIN_PAGES_FOR_RECURRING = 3
HEADING_SCALE = 1.15
"""A line printed at least this much larger than the body text is a heading."""
_TERMINAL = tuple(".!?…:;\"'”’)")
_NOT_HEADING_END = tuple(".!…:;,-")  # "?" may end one: "Why Xiaohongshu?"
_DIGITS = re.compile(r"\d+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffe\ufeff]")
_SHORT_LINE = 0.8  # of a page's typical line length: a paragraph's last line
_HEADING_LINE = 0.7
_MAX_HEADING_WORDS = 20


def clean_line(raw: str) -> str:
    """A printed line without control characters, its whitespace collapsed."""
    return " ".join(_CONTROL.sub("", raw).split())


def recurring_lines(pages: Sequence[Sequence[Line]]) -> frozenset[str]:
    """Return the keys (see :func:`line_key`) of lines that head or foot most pages.

    A key that also fills the body of the pages is content of one shape (table rows,
    "Line 3 of page 9"), not furniture: it is kept.
    """
    if len(pages) < MIN_PAGES_FOR_RECURRING:
        return frozenset()
    in_zone: Counter[str] = Counter()
    in_body: Counter[str] = Counter()
    for lines in pages:
        zone = _zone(lines)
        in_zone.update({line_key(text) for text, _ in zone})
        body = lines[ZONE_LINES:-ZONE_LINES] if len(zone) < len(lines) else []
        in_body.update({line_key(text) for text, _ in body})
    needed = math.ceil(RECURRING_SHARE * len(pages))
    return frozenset(key for key, n in in_zone.items() if n >= needed and in_body[key] < needed / 3)


def strip_recurring(lines: Sequence[Line], recurring: frozenset[str]) -> list[Line]:
    """Drop recurring lines from the top and bottom zones of one page."""
    n = len(lines)
    return [
        line
        for i, line in enumerate(lines)
        if not ((i < ZONE_LINES or i >= n - ZONE_LINES) and line_key(line[0]) in recurring)
    ]


def line_key(text: str) -> str:
    """A line with its numbers masked, so "Page 3" and "Page 4" are the same footer."""
    return _DIGITS.sub("#", text.lower())


def body_size(pages: Sequence[Sequence[Line]]) -> float | None:
    """The body text's font size, if some lines are printed larger (headings); else ``None``.

    The body size is the one most characters are printed in. Without larger lines the
    headings, if any, are the same size as the text and are told by their shape instead.
    """
    sizes: Counter[float] = Counter()
    for lines in pages:
        for text, size in lines:
            sizes[round(size, 1)] += len(text)
    if not sizes:
        return None
    body = sizes.most_common(1)[0][0]
    return body if any(s >= HEADING_SCALE * body for s in sizes) else None


def paragraphs(lines: Sequence[Line], *, body: float | None = None) -> list[str]:
    """Join a page's wrapped lines into paragraphs; each heading stands alone, on one line.

    With ``body`` (see :func:`body_size`), a heading is a line printed larger, and the
    lines after it in the same size are the rest of it. Without, a heading is a short line
    without end punctuation, continued by short unpunctuated lines (a title wrapped in a
    narrow column). A paragraph ends at a line that ends a sentence and stops short of the
    page's typical line length (its last line), or before a heading. A line ending in a
    hyphen is joined without a space ("well-" + "known").
    """
    typical = _typical_length([text for text, _ in lines]) if lines else 0.0
    out: list[str] = []
    current, heading_size = "", 0.0  # heading_size > 0 while a heading is being read
    for i, (text, size) in enumerate(lines):
        if heading_size and _continues_heading(current, text, size, heading_size, body, typical):
            current = _joined(current, text)
            continue
        is_heading = _is_heading(text, size, body, typical)
        if heading_size or (current and is_heading):
            out.append(current)
            current, heading_size = "", 0.0
        if is_heading:
            current, heading_size = text, size
            continue
        current = _joined(current, text)
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        if text.endswith(_TERMINAL) and (
            len(text) < _SHORT_LINE * typical
            or (nxt is not None and _is_heading(nxt[0], nxt[1], body, typical))
        ):
            out.append(current)
            current = ""
    if current:
        out.append(current)
    return out


def join_pages(pages: Sequence[Sequence[str]]) -> tuple[str, tuple[int, ...]]:
    """Join pages of paragraphs into one text, one paragraph per line; return the page starts.

    A sentence cut by a page break (no end punctuation, next page starting in lower case)
    is joined with a space, so it is quoted whole; the next page then starts mid-line.
    """
    text = ""
    starts: list[int] = []
    for page in pages:
        if page and text:
            continues = not text.endswith(_TERMINAL) and page[0][:1].islower()
            text += " " if continues else "\n"
        starts.append(len(text))
        text += "\n".join(page)
    return (text + "\n" if text else text), tuple(starts)


def _zone(lines: Sequence[Line]) -> list[Line]:
    if len(lines) <= 2 * ZONE_LINES:
        return list(lines)
    return [*lines[:ZONE_LINES], *lines[-ZONE_LINES:]]


def _typical_length(texts: Sequence[str]) -> float:
    lengths = sorted(len(text) for text in texts)
    return float(lengths[min(len(lengths) - 1, int(0.75 * len(lengths)))])


def _is_heading(text: str, size: float, body: float | None, typical: float) -> bool:
    if not any(c.isalpha() for c in text):
        return False
    if body is not None:
        return size >= HEADING_SCALE * body
    return (
        len(text) < _HEADING_LINE * typical
        and not text.endswith(_NOT_HEADING_END)
        and len(text.split()) <= _MAX_HEADING_WORDS
        and not text[:1].islower()
    )


def _continues_heading(
    heading: str, text: str, size: float, heading_size: float, body: float | None, typical: float
) -> bool:
    if len(heading.split()) + len(text.split()) > _MAX_HEADING_WORDS:
        return False
    if body is not None:
        return abs(size - heading_size) < 0.5
    return len(text) < _HEADING_LINE * typical and not text.endswith(_NOT_HEADING_END)


def _joined(current: str, text: str) -> str:
    if not current:
        return text
    if current.endswith("-") and current[-2:-1].isalpha():
        return current + text
    return f"{current} {text}"
