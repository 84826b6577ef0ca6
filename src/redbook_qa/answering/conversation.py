"""Follow-up questions rewritten into standalone ones, deterministically and without an LLM (pure).

"Which celebrity helped make it popular?" only makes sense after "Who makes Labubu?". A
follow-up is recognised by its wording (pronouns and references such as "it", "that", "the
other platform", a leading "and"/"what about", or no content words of its own); it is then
searched together with the topic words of the previous question, and the caller shows the
rewritten question as "searched for: …".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from redbook_qa.text.terms import analyze

if TYPE_CHECKING:
    from redbook_qa.llm.client import LLMClient

_REFERENCE = re.compile(
    r"\b(it|its|it's|they|them|their|this|that|these|those|he|she|him|her|his|there|"
    r"the (other|same|former|latter|first|second|platform|app|article|company|brand)|"
    r"one|ones)\b|^(and|but|so|also|what about|how about|why not|then)\b",
    re.IGNORECASE,
)
_MIN_OWN_TERMS = 2
_REWRITE_PROMPT = (
    "Rewrite the user's last question so that it can be understood without the earlier "
    "questions. Keep its meaning; name what 'it', 'they' or 'that' refer to. Reply with the "
    "rewritten question only, on one line."
)
logger = logging.getLogger(__name__)


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


def rewrite_with_llm(question: str, history: Sequence[str], client: LLMClient) -> str:
    """Let a language model make a follow-up standalone; fall back to the deterministic rewrite.

    The model's reply is used only if it looks like a rewrite of this question: one line,
    ending in "?", not much longer than the question and its topic, and sharing a content
    word with them. Anything else (a small model answering instead, an error) falls back to
    :func:`standalone_question`, so a rewrite can never be worse than the default.
    """
    fallback = standalone_question(question, history)
    if fallback == question:  # not a follow-up: nothing to rewrite
        return question
    from redbook_qa.errors import RedbookQAError

    earlier = "\n".join(f"- {q}" for q in history[-3:])
    messages = [
        {"role": "system", "content": _REWRITE_PROMPT},
        {"role": "user", "content": f"Earlier questions:\n{earlier}\nLast question: {question}"},
    ]
    try:
        reply = client.complete(messages, max_tokens=48).strip().strip('"')
    except RedbookQAError as err:
        logger.info("LLM follow-up rewrite failed (%s); using the default rewrite", err)
        return fallback
    known = set(analyze(" ".join([question, *history[-3:]])))
    fits = (
        "\n" not in reply
        and reply.endswith("?")
        and len(reply) <= 2 * len(fallback) + 20
        and bool(set(analyze(reply)) & known)
    )
    return reply if fits else fallback
