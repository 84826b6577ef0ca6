"""A question as retrieval uses it: cleaned, expanded and analysed once, then handed on.

Everything a query needs from the question's text is derived here, once: the cleaned question
(control characters and instructions to a model dropped), the text that is embedded and
matched (the question plus the canonical names of its aliases, or, for a Chinese question
over English articles, its English gloss), its keyword terms, and the terms of the names and
numbers it mentions (its topic, as against the relation it asks about).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from redbook_qa.retrieval.translation import strip_cjk, translate_query
from redbook_qa.text.cjk import CJK_CHARS, has_cjk
from redbook_qa.text.names import AliasTable
from redbook_qa.text.screening import without_instructions
from redbook_qa.text.terms import analyze

MAX_QUESTION_CHARS = 2_000
"""A question is cut here: the page, the HTTP API and the command line alike (a question
is a sentence or two; a longer one is a pasted article, and each character costs time)."""
# A name in a question: a capitalised word after its first, a number, or a run of CJK.
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][\w'’-]*|\b\d[\d,.]*\b|[" + CJK_CHARS + "]+")
_INVISIBLE = frozenset({"Cc", "Cs", "Zl", "Zp"})


@dataclass(frozen=True)
class Query:
    """A question, and what retrieval and the answerers read of it.

    Attributes:
        question: The question as cleaned (what the answer repeats).
        text: What is embedded and searched for: the question with its aliases' canonical
            names, or the English gloss of a Chinese question.
        terms: Keyword terms of ``text``, with every name of a matched alias group.
        names: Canonical terms of the names and numbers the question mentions.
    """

    question: str
    text: str
    terms: tuple[str, ...]
    names: frozenset[str]


def clean_question(question: str, *, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """Return ``question`` cleaned: control characters out, whitespace folded, cut at ``max_chars``.

    Sentences that are instructions to a model ("Ignore previous instructions.") are dropped
    when something else remains.

    Raises:
        TypeError: ``question`` is not a string.
        ValueError: It holds no letter or digit.
    """
    if not isinstance(question, str):
        raise TypeError(f"question must be a string, got {type(question).__name__}")
    cleaned = "".join(" " if unicodedata.category(ch) in _INVISIBLE else ch for ch in question)
    cleaned = " ".join(cleaned.split())[:max_chars]
    if not any(ch.isalnum() for ch in cleaned):
        raise ValueError("the question is empty; type a question about the articles")
    return without_instructions(cleaned)


def make_query(
    question: str,
    aliases: AliasTable,
    *,
    corpus_is_cjk: bool,
    max_chars: int = MAX_QUESTION_CHARS,
) -> Query:
    """Derive the :class:`Query` of a question (cleaning it first).

    Args:
        question: The question as asked.
        aliases: Name variants that expand it.
        corpus_is_cjk: Whether the articles are mostly Chinese; a Chinese question over
            articles that are not is searched in English.
        max_chars: Where a long question is cut.
    """
    cleaned = clean_question(question, max_chars=max_chars)
    text = _search_text(cleaned, aliases, corpus_is_cjk)
    names = " ".join(_NAME.findall(text))
    return Query(
        question=cleaned,
        text=text,
        terms=tuple(aliases.expand(analyze(text))),
        names=frozenset(aliases.canonicalize(analyze(names))),
    )


def _search_text(question: str, aliases: AliasTable, corpus_is_cjk: bool) -> str:
    text = aliases.rewrite(question)
    if not has_cjk(question) or corpus_is_cjk:
        return text
    known = [name for group in aliases.groups for name in group]
    gloss = translate_query(question, known=known)
    return f"{strip_cjk(text)} {gloss}".strip() if gloss else text
