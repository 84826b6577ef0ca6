from __future__ import annotations

from redbook_qa.conversation import is_follow_up, standalone_question


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
