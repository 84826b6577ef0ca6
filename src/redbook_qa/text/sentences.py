"""Sentence segmentation with exact character offsets (pure)."""

from __future__ import annotations

import re

from redbook_qa.text.cjk import is_cjk_char

# A sentence ends at terminal punctuation (optionally followed by closing quotes/brackets)
# that is followed by whitespace, or at a CJK full stop, or at a line break.
_BOUNDARY = re.compile(r"""[.!?…]+["'”’)\]]*(?=\s)|[。！？]+["'”’」』)]*|\n""")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e u.s u.k a.m p.m no fig inc ltd co corp".split()  # noqa: SIM905
)
_ENUMERATOR = re.compile(r"(?:^|\s)(?:\d{1,3}|[a-zA-Z])\.$")
_WORD = re.compile(r"\w+", re.UNICODE)
_NON_SPACE = re.compile(r"\S")
_TAIL_CHARS = 64  # longer than any abbreviation, so its last word is whole


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` into sentences.

    Returns ``(start, end)`` offsets into ``text``, trimmed of surrounding whitespace, in
    order and non-overlapping. Abbreviations ("U.S.", "e.g.") and list enumerators ("1.")
    do not end a sentence; line breaks always do.
    """
    stop = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cursor = start
    for match in _BOUNDARY.finditer(text, start, stop):
        cut = match.end()
        if match.group() != "\n" and _is_false_boundary(text, cursor, match.start()):
            continue
        _append_trimmed(text, cursor, cut, spans)
        cursor = cut
    _append_trimmed(text, cursor, stop, spans)
    return spans


def count_words(text: str) -> int:
    """Count word-like runs; CJK characters count one each."""
    return sum(len(w) if _is_cjk(w[0]) else 1 for w in _WORD.findall(text))


def _is_false_boundary(text: str, sentence_start: int, dot: int) -> bool:
    # Look only at the end of the sentence so far: re-reading it from its start at every
    # candidate boundary is quadratic on a long run of abbreviations ("Dr. Dr. Dr. ...").
    tail = text[max(sentence_start, dot + 1 - _TAIL_CHARS) : dot + 1]
    last_word = tail.rsplit(maxsplit=1)[-1].lower().rstrip(".") if tail.strip() else ""
    if last_word in _ABBREVIATIONS:
        return True
    # "1." or "a." alone at the start of a line is a list marker, not a sentence: at most
    # four characters, with only whitespace before them since the sentence began.
    if _NON_SPACE.search(text, sentence_start, max(sentence_start, dot - 3)):
        return False
    return bool(_ENUMERATOR.search(text[max(sentence_start, dot - 4) : dot + 1]))


def _append_trimmed(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        spans.append((start, end))


def _is_cjk(char: str) -> bool:
    return is_cjk_char(char)
