from __future__ import annotations

import importlib.util

import pytest

from redbook_qa.api import RedbookQA
from redbook_qa.ui import ChatSession, build_demo

from conftest import ROOT, write


@pytest.fixture
def session(hash_settings):
    write(
        hash_settings.corpus_dir,
        "pets.txt",
        "Pets\nCats sleep most of the day. They hunt at night.\n"
        "Hostile\n<script>alert(1)</script> Cats **love** [boxes](javascript:alert(1)).\n",
    )
    qa = RedbookQA.open(hash_settings)
    return ChatSession(qa)


def test_the_handler_returns_history_sources_and_escapes_article_text(session):
    question = "<script>alert(1)</script> Cats **love** [boxes](javascript:alert(1))."
    history, sources, _ = session.respond(question, [], k=5)
    assert [m["role"] for m in history] == ["user", "assistant"]
    reply = history[-1]["content"]
    assert "<script>" not in reply
    assert "<script>" not in sources
    assert "&lt;script&gt;" in reply + sources
    assert "](javascript" not in reply, "Markdown in article text must not render as a link"
    assert 'href="javascript' not in sources
    if "[1]" in reply:
        assert 'id="source-1"' in sources
        assert "<mark>" in sources


def test_an_empty_question_gets_a_message_not_a_traceback(session):
    history, sources, note = session.respond("   ", [])
    assert "empty" in history[-1]["content"]
    assert sources == ""
    assert note == ""


def test_follow_ups_are_rewritten_and_shown_as_searched_for(session):
    history, _, _ = session.respond("Do cats sleep a lot?", [])
    _, _, note = session.respond("And when do they hunt?", history)
    assert note.startswith("searched for:")
    assert "cats sleep" in note.lower()


def test_the_page_builds_with_its_components(session):
    demo = build_demo(session)
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    assert {"rq-chat", "rq-question", "rq-ask", "rq-sources"} <= ids


def test_app_module_binds_loopback_by_default():
    spec = importlib.util.spec_from_file_location("app", ROOT / "app.py")
    assert spec
    assert spec.loader
    source = (ROOT / "app.py").read_text(encoding="utf-8")
    assert 'default="127.0.0.1"' in source


def test_the_page_answers_through_its_api_as_a_script_would(session):
    from gradio_client import Client

    demo = build_demo(session)
    demo.queue().launch(
        server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True
    )
    try:
        client = Client(demo.local_url, verbose=False)
        history, sources, _, box = client.predict(
            "Cats sleep most of the day.", [], 5, False, api_name="/ask"
        )
        assert history[0]["role"] == "user"
        assert history[-1]["role"] == "assistant"
        assert box == ""
        assert isinstance(sources, str)
    finally:
        demo.close()
