from __future__ import annotations

import pytest

from redbook_qa.answering.conversation import is_follow_up, rewrite_with_llm, standalone_question
from redbook_qa.errors import LLMUnavailableError


def test_follow_ups_borrow_the_topic_of_the_previous_question():
    history = ["Who makes Labubu?"]
    assert standalone_question("Which celebrity helped make it popular?", history) == (
        "Which celebrity helped make it popular? (makes Labubu)"
    )
    assert standalone_question(
        "And why not Facebook?", ["Why did users pick Xiaohongshu?"]
    ).endswith("(users pick Xiaohongshu)")


def test_standalone_questions_are_left_alone():
    assert not is_follow_up("Why did American users pick Xiaohongshu?")
    assert standalone_question("Who makes Labubu?", ["Why leave TikTok?"]) == "Who makes Labubu?"
    assert standalone_question("What about it?", []) == "What about it?"


class _Rewriter:
    """A scripted LLM client for the follow-up rewrite (wiring only)."""

    name = "scripted"

    def __init__(self, reply: str | Exception) -> None:
        self.reply = reply
        self.calls = 0

    def complete(self, messages, **_):
        self.calls += 1
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply

    def stream(self, messages, **_):
        yield self.complete(messages)


HISTORY = ["Who makes Labubu?"]


def test_an_llm_rewrite_that_reads_as_the_question_is_used():
    client = _Rewriter("Which celebrity helped make Labubu popular?")
    question = "Which celebrity helped make it popular?"
    assert rewrite_with_llm(question, HISTORY, client) == (
        "Which celebrity helped make Labubu popular?"
    )


@pytest.mark.parametrize(
    "reply",
    [
        "Lisa of BLACKPINK made it popular.",  # an answer, not a question
        "What is the capital of France?",  # nothing of the conversation in it
        LLMUnavailableError("connection refused"),
    ],
)
def test_a_bad_llm_rewrite_falls_back_to_the_deterministic_one(reply):
    question = "Which celebrity helped make it popular?"
    expected = standalone_question(question, HISTORY)
    assert rewrite_with_llm(question, HISTORY, _Rewriter(reply)) == expected


def test_a_question_that_stands_alone_is_not_sent_to_the_llm():
    client = _Rewriter("Anything?")
    assert rewrite_with_llm("Who founded Pop Mart?", HISTORY, client) == "Who founded Pop Mart?"
    assert client.calls == 0
