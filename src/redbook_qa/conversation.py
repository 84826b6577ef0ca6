"""Follow-up questions rewritten into standalone ones, deterministically and without an LLM (pure).

"Which celebrity helped make it popular?" only makes sense after "Who makes Labubu?". A
follow-up is recognised by its wording (pronouns and references such as "it", "that", "the
other platform", a leading "and"/"what about", or no content words of its own); it is then
searched together with the topic words of the previous question, and the caller shows the
rewritten question as "searched for: …".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from redbook_qa.lexical import analyze

_REFERENCE = re.compile(
    r"\b(it|its|it's|they|them|their|this|that|these|those|he|she|him|her|his|there|"
    r"the (other|same|former|latter|first|second|platform|app|article|company|brand)|"
    r"one|ones)\b|^(and|but|so|also|what about|how about|why not|then)\b",
    re.IGNORECASE,
)
_MIN_OWN_TERMS = 2


def is_follow_up(question: str) -> bool:
    """Say whether a question leans on an earlier one."""
    return bool(_REFERENCE.search(question.strip())) or len(analyze(question)) < _MIN_OWN_TERMS


def standalone_question(question: str, history: Sequence[str]) -> str:
    """Return ``question`` made standalone using the previous user questions in ``history``.

    The newest earlier question that has topic words of its own supplies them; a question
    that is not a follow-up, or has no history, is returned unchanged.
    """
    if not history or not is_follow_up(question):
        return question
    for previous in reversed(history):
        topic = _topic(previous)
        if topic:
            return f"{question.rstrip()} ({topic})"
    return question


def _topic(question: str) -> str:
    words = re.findall(r"[\w'’-]+", question)
    kept = [w for w in words if analyze(w)]
    return " ".join(kept)
