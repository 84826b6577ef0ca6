from __future__ import annotations

import pytest

from redbook_qa.answering.answer_types import (
    has_type,
    negation_mismatch,
    question_shape,
    type_evidence,
)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many users joined?", "number"),
        ("What percentage of users moved?", "number"),
        ("When was it founded?", "time"),
        ("What year did it start?", "time"),
        ("Who makes Labubu?", "person"),
        ("Where is it headquartered?", "place"),
        ("Why did users pick it?", "reason"),
        ("Is it only for beauty?", "polar"),
        ("What does KOL stand for?", "other"),
        ("小红书有多少用户？", "number"),
        ("为什么用户离开？", "reason"),
        # The question's own wh-word decides, not one opening a relative clause: such a
        # "who" made a "what" question ask for a person, so a sentence without a new name
        # lost the type match it should not need.
        ("What is recommended to university students who know Java?", "other"),
        ("What year did the man who built it die?", "time"),
        ("How many people who signed up stayed?", "number"),
        ("Which city do the founders who left live in?", "place"),
        ("Who is ditching TikTok?", "person"),
    ],
)
def test_the_answer_type_is_read_from_the_question(question, kind):
    assert question_shape(question).answer_type == kind


@pytest.mark.parametrize(
    "text",
    [
        "They post on weekends.",
        "Sales peak each spring.",
        "It happens every Friday night.",
        "It launched in 2013.",
        "Users arrived in January.",
        "They met in the 1990s.",
    ],
)
def test_when_questions_accept_weekdays_seasons_and_recurring_times(text):
    shape = question_shape("When do sales peak?")
    strong, _ = type_evidence(text, shape)
    assert strong == 1.0
    assert has_type(text, shape)


def test_a_temporal_clause_is_a_weak_time_answer_and_a_bare_statement_none():
    shape = question_shape("When did users move?")
    assert type_evidence("Users moved after the ban.", shape) == (0.0, 1.0)
    assert type_evidence("Users moved to the app.", shape) == (0.0, 0.0)
    assert not has_type("Users moved to the app.", shape)


@pytest.mark.parametrize(
    "text",
    [
        "It has twelve offices.",
        "Dozens of brands joined.",
        "A few hundred people came.",
        "About 40% left.",
        "It has 300 million users.",
    ],
)
def test_how_many_questions_accept_spelled_out_and_approximate_numbers(text):
    shape = question_shape("How many people came?")
    assert type_evidence(text, shape)[0] == 1.0


def test_a_number_question_is_not_answered_by_a_sentence_without_a_number():
    shape = question_shape("How many people came?")
    assert not has_type("People came from everywhere.", shape)


def test_who_questions_want_a_name_the_question_does_not_already_hold():
    shape = question_shape("Who founded Xiaohongshu?")
    assert type_evidence("Its founder, Wang Ning, is a billionaire.", shape)[0] == 1.0
    assert type_evidence("Many users love Xiaohongshu.", shape)[0] == 0.0


def test_multi_aspect_questions_are_recognised():
    assert question_shape("Why are people leaving TikTok?").multi_aspect
    assert question_shape("What explains Labubu's success?").multi_aspect
    assert question_shape("What are the downsides of using it?").multi_aspect
    assert not question_shape("Who makes Labubu?").multi_aspect


def test_negation_mismatch_says_when_only_one_side_is_negated():
    assert negation_mismatch("It never rained.", "Did it rain?")
    assert not negation_mismatch("It didn't rain.", "Why didn't it rain?")
    assert not negation_mismatch("It rained.", "Did it rain?")
