"""Section detection: headings, their spans, and digests that are articles of their own (pure).

Plain-text articles mark headings as short lines without end punctuation; Markdown marks
them with ``#``. A heading followed directly by another heading is a *group* heading
("More Articles", "Related"): every section after it is a separate article (a digest), titled
by its own heading, so answers about a digest cite the digest and not the host article.
"""

from __future__ import annotations

import re

from redbook_qa.models import Section

_MAX_HEADING_CHARS = 120
_MAX_HEADING_WORDS = 16
_TERMINAL = tuple(".!:;,…。！？：；，→")
_CLOSERS = "\"'”’)]」』"
_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
_LINE = re.compile(r"[^\n]*\n?")


def detect_sections(text: str, title: str) -> list[Section]:
    """Split a document into sections.

    Args:
        text: The document text; offsets refer to it.
        title: The document title. When the first line is the title, it heads the first
            section; otherwise the text before the first heading is headed by the title.

    Returns:
        Sections in order, covering ``text`` from the first heading (or 0) to the end.
    """
    lines = _lines(text)
    candidates = [_heading_text(line) for _, _, line in lines]
    headings: list[tuple[int, str, bool]] = []  # (offset, heading, opens a group)
    for i, (start, _, _) in enumerate(lines):
        heading = candidates[i]
        nxt = _next_nonblank(lines, i)
        if heading is None or nxt is None:
            continue
        is_markdown = lines[i][2].lstrip().startswith("#")
        if i == _first_nonblank(lines) or is_markdown or candidates[nxt] is None:
            headings.append((start, heading, False))
        elif _next_nonblank(lines, nxt) is not None:
            headings.append((start, heading, True))
    return _build_sections(text, title, headings)


def _build_sections(text: str, title: str, headings: list[tuple[int, str, bool]]) -> list[Section]:
    if not headings or text[: headings[0][0]].strip():
        headings.insert(0, (0, title, False))
    sections: list[Section] = []
    in_group = False
    for i, (start, heading, opens_group) in enumerate(headings):
        end = headings[i + 1][0] if i + 1 < len(headings) else len(text)
        section_title = heading if in_group and not opens_group else title
        sections.append(Section(title=section_title, heading=heading, start=start, end=end))
        in_group = in_group or opens_group
    return sections


def heading_end(text: str, section: Section) -> int:
    """Return the offset where a section's body starts (after its heading line)."""
    line_end = text.find("\n", section.start, section.end)
    first_line = text[section.start : section.end if line_end < 0 else line_end]
    if first_line.strip() and _heading_text(first_line) == section.heading:
        return section.end if line_end < 0 else line_end + 1
    return section.start


def _heading_text(line: str) -> str | None:
    stripped = line.strip()
    markdown = _MARKDOWN_HEADING.match(stripped)
    if markdown:
        return markdown.group(1) or None
    if not stripped or stripped.startswith("#") or len(stripped) > _MAX_HEADING_CHARS:
        return None
    if len(stripped.split()) > _MAX_HEADING_WORDS or not any(c.isalpha() for c in stripped):
        return None
    ending = stripped.rstrip(_CLOSERS)
    if ending.endswith(_TERMINAL) or (ending.endswith("?") and not _is_title_case(stripped)):
        return None
    return stripped


def _is_title_case(line: str) -> bool:
    # "Beyond the Algorithm: A User-Centric Experience?" is a heading; "Why not?" is not.
    words = [w.strip(_CLOSERS + "\"'(“‘") for w in line.split()]
    long_words = [w for w in words if len(w) > 3 and w[:1].isalpha()]
    return len(long_words) >= 2 and all(w[0].isupper() for w in long_words)


def _lines(text: str) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []
    for match in _LINE.finditer(text):
        if match.start() == match.end():
            break
        out.append((match.start(), match.end(), match.group()))
    return out


def _next_nonblank(lines: list[tuple[int, int, str]], i: int) -> int | None:
    return next((j for j in range(i + 1, len(lines)) if lines[j][2].strip()), None)


def _first_nonblank(lines: list[tuple[int, int, str]]) -> int:
    return next((j for j, line in enumerate(lines) if line[2].strip()), -1)
