"""Sentence segmentation with exact character offsets (pure)."""

from __future__ import annotations

import re

from redbook_qa.text.cjk import is_cjk_char

# A sentence ends at terminal punctuation (optionally followed by closing quotes/brackets)
# that is followed by whitespace, or at a CJK full stop, or at a line break.
_BOUNDARY = re.compile(r"""[.!?…]+["'”’)\]]*(?=\s)|[。！？]+["'”’」』)]*|\n""")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e u.s u.k a.m p.m no fig inc ltd co corp "  # noqa: SIM905
    "ca c cf al approx gen gov sen rep rev col lt sgt capt mt ft vol pp ed "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_DOTTED = re.compile(r"(?:[a-z]\.)+[a-z]")  # U.N., E.I., U.S.A. (lower-cased, last dot gone)
_OPENING = "([{\"'“‘"
_ENUMERATOR = re.compile(r"(?:^|\s)(?:\d{1,3}|[a-zA-Z])\.$")
_WORD = re.compile(r"\w+", re.UNICODE)
_NON_SPACE = re.compile(r"\S")
_NEXT_WORD = re.compile(r"[ \t]+[\"'“‘(\[]*(\w)")
_JOINER = re.compile(r"[-/–]")
_TAIL_CHARS = 64  # longer than any abbreviation, so its last word is whole


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` into sentences.

    Returns ``(start, end)`` offsets into ``text``, trimmed of surrounding whitespace, in
    order and non-overlapping. Abbreviations ("U.S.", "(e.g.", "ca."), initials ("W. E. B.
    Du Bois"), list enumerators ("1.") and a full stop followed by a lower-case word do not
    end a sentence; line breaks always do.

    Kept over pysbd 0.3.4, and measured (``benchmarks/bench_sentences.py --pysbd``): of the
    10,052 gold answer spans of SQuAD 2.0 dev (CS224N half), 0.35% were cut across two
    sentences before the rules for initials, dotted acronyms, "ca."/"approx."-style
    abbreviations and lower-case continuations, 0.10% after, pysbd 0.11% (what is left is
    mostly answers two sentences long). Of the seeds eval's 143 evidence quotes, 15.4% start
    and 9.1% end inside a sentence with either splitter (quotes that skip a "Summary:" lead-in,
    which neither splits at). Speed: 10-12k characters a millisecond (16-19k before the new
    rules), pysbd 140; and pysbd has had no release since 2021.
    """
    stop = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cursor = start
    for match in _BOUNDARY.finditer(text, start, stop):
        cut = match.end()
        if match.group() != "\n" and _is_false_boundary(text, cursor, match.start(), cut):
            continue
        _append_trimmed(text, cursor, cut, spans)
        cursor = cut
    _append_trimmed(text, cursor, stop, spans)
    return spans


def count_words(text: str) -> int:
    """Count word-like runs; CJK characters count one each."""
    return sum(len(w) if _is_cjk(w[0]) else 1 for w in _WORD.findall(text))


def _is_false_boundary(text: str, sentence_start: int, dot: int, cut: int) -> bool:
    # Look only at the end of the sentence so far: re-reading it from its start at every
    # candidate boundary is quadratic on a long run of abbreviations ("Dr. Dr. Dr. ...").
    tail = text[max(sentence_start, dot + 1 - _TAIL_CHARS) : dot + 1]
    token = tail.rsplit(maxsplit=1)[-1].rstrip(".").lstrip(_OPENING) if tail.strip() else ""
    word = _JOINER.split(token)[-1]  # Trinity-St. Paul's
    if word.lower() in _ABBREVIATIONS and (len(word) > 1 or word.islower()):
        return True  # "c. 1300" is circa, "in C." a letter
    if _DOTTED.fullmatch(word.lower()):
        return True
    if text[dot] == "." and _is_initial(word, tail):
        return True
    if text[dot] == "." and _starts_lower(text, cut):
        return True  # "E. I. du Pont", an abbreviation we do not list: sentences start upper
    # "1." or "a." alone at the start of a line is a list marker, not a sentence: at most
    # four characters, with only whitespace before them since the sentence began.
    if _NON_SPACE.search(text, sentence_start, max(sentence_start, dot - 3)):
        return False
    return bool(_ENUMERATOR.search(text[max(sentence_start, dot - 4) : dot + 1]))


def _is_initial(word: str, tail: str) -> bool:
    """Whether a capital letter is an initial: "William E. Simon", "W. E. B. Du Bois".

    Only after a capitalised word or another initial: after a lower-case word it more often
    ends a sentence ("hardest in C.", "vitamin D."), and "World War I." often does.
    """
    if len(word) != 1 or not word.isupper() or word == "I":
        return False
    before = tail.rsplit(maxsplit=2)[-2:-1]
    return not before or before[0][:1].isupper()


def _starts_lower(text: str, at: int) -> bool:
    """Whether the next word after ``at`` (on the same line) starts with a lower-case letter."""
    match = _NEXT_WORD.match(text, at)
    return match is not None and match.group(1).islower()


def _append_trimmed(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        spans.append((start, end))


def _is_cjk(char: str) -> bool:
    return is_cjk_char(char)
