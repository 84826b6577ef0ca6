from __future__ import annotations

import html
import importlib.util
import itertools
import sys

import pytest

from redbook_qa.answering.extractive import ExtractiveAnswerer
from redbook_qa.api import RedbookQA
from redbook_qa.models import Answer, Citation
from redbook_qa.serving.auth import parse_auth
from redbook_qa.serving.chat import MAX_TURNS, ChatSession
from redbook_qa.serving.feedback import FeedbackLog
from redbook_qa.serving.guard import allowed_names
from redbook_qa.serving.ui import build_demo, build_server

from conftest import ROOT, write

HOSTILE = "<script>alert(1)</script> Cats **love** [boxes](javascript:alert(1))."


@pytest.fixture
def qa(hash_settings):
    write(
        hash_settings.corpus_dir,
        "pets.txt",
        f"Pets\nCats sleep most of the day. They hunt at night.\nHostile\n{HOSTILE}\n",
    )
    qa = RedbookQA.open(hash_settings)
    qa.answerer = _QuoteBestMatch()
    return qa


@pytest.fixture
def session(qa, tmp_path):
    return ChatSession(qa, feedback=FeedbackLog(tmp_path / "feedback.jsonl"))


class _QuoteBestMatch:
    """Quote the sentence sharing most words with the question (hash vectors mean nothing)."""

    def answer(self, question, context):
        best = max(context.evidence, key=lambda e: e.coverage)
        citation = Citation.quoting(best, 1)
        return Answer(
            question=question,
            text=f"{best.text} [1]",
            citations=(citation,),
            passages=context.passages,
        )


class _TypingAnswerer(_QuoteBestMatch):
    """Streams its answer's text in pieces, as an LLM would, then the answer."""

    def answer(self, question, context):
        return super().answer(question, context).model_copy(update={"mode": "llm"})

    def stream(self, question, context):
        final = self.answer(question, context)
        for word in final.text.split(" "):
            yield word + " "
        yield final


def test_the_handler_returns_history_sources_and_escapes_article_text(session):
    reply = session.respond(HOSTILE, [], k=5)
    assert [m["role"] for m in reply.history] == ["user", "assistant"]
    bubble = reply.history[-1]["content"]
    assert "<script>" not in bubble
    assert "<script>" not in reply.sources
    assert "&lt;script&gt;" in reply.sources or "&#60;script&#62;" in bubble
    assert "](javascript" not in bubble, "Markdown in article text must not render as a link"
    assert 'href="javascript' not in reply.sources
    assert "[1]" in bubble, "the hostile sentence itself is the best quote"
    assert 'href="#source-1"' in bubble
    assert 'id="source-1"' in reply.sources
    assert "<mark>" in reply.sources


def test_an_empty_question_gets_a_message_not_a_traceback(session):
    reply = session.respond("   ", [])
    assert "empty" in reply.history[-1]["content"]
    assert reply.sources == ""
    assert reply.turns == []


def test_follow_ups_are_rewritten_and_shown_as_searched_for_under_the_answer(session):
    first = session.respond("Do cats sleep a lot?", [])
    second = session.respond("And when do they hunt?", first.history, first.turns)
    assert second.turns[-1].searched_for.startswith("And when do they hunt? (")
    assert "cats sleep" in second.turns[-1].searched_for.lower()
    assert "searched for:" in second.history[-1]["content"]
    assert "searched for:" not in first.history[-1]["content"], "a standalone question is not"


def test_follow_ups_work_from_the_history_alone_as_an_api_caller_sends_it(session):
    history = [  # as Gradio 6 hands the Chatbot's value to a handler
        {"role": "user", "content": [{"type": "text", "text": "Do cats sleep a lot?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Cats sleep. [1]"}]},
    ]
    reply = session.respond("And when do they hunt?", history)
    assert "cats sleep" in reply.turns[-1].searched_for.lower()


def test_an_extractive_answer_arrives_at_once_after_the_placeholder(session):
    replies = list(session.stream("Do cats sleep a lot?", []))
    assert len(replies) == 2
    assert replies[0].history[-1]["content"] == "…"
    assert replies[-1].markdown.startswith("**Q:** Do cats sleep a lot?")


def test_a_streaming_answerer_shows_its_draft_growing_then_the_checked_answer(hash_settings):
    write(hash_settings.corpus_dir, "pets.txt", "Pets\nCats sleep most of the day.\n")
    qa = RedbookQA.open(hash_settings)
    qa.llm_answerer = _TypingAnswerer()
    replies = list(ChatSession(qa).stream("Do cats sleep?", [], mode="llm"))
    drafts = [r.history[-1]["content"] for r in replies[1:-1]]
    assert len(drafts) >= 3
    assert all(len(a) < len(b) for a, b in itertools.pairwise(drafts))
    assert all(d.endswith("▍") for d in drafts)
    final = replies[-1]
    assert "▍" not in final.history[-1]["content"]
    assert 'href="#source-1"' in final.history[-1]["content"]
    assert final.turns[-1].answer.mode == "llm"


def test_asking_for_an_unconfigured_llm_says_how_to_configure_it(session):
    reply = session.respond("Do cats sleep?", [], mode="llm")
    assert "REDBOOK_QA_LLM_BASE_URL" in html.unescape(reply.history[-1]["content"])


def test_scores_are_shown_on_demand_for_each_cited_passage(session):
    reply = session.respond("Do cats sleep a lot?", [])
    assert "fused" not in reply.sources
    with_scores = session.sources(reply.turns, show_scores=True)
    for label in ("fused", "dense", "keyword", "support"):
        assert label in with_scores


def test_an_unanswerable_question_offers_related_passages(qa):
    qa.answerer = ExtractiveAnswerer(min_support=2.0)  # nothing can be supported
    reply = ChatSession(qa).respond("Do cats sleep a lot?", [])
    assert reply.turns[-1].answer.abstained
    assert "don't say" in html.unescape(reply.history[-1]["content"])
    assert "Related:" in reply.sources
    assert "don’t say" in reply.sources


def test_the_answer_can_be_copied_as_markdown_with_numbered_quotes(session):
    reply = session.respond(HOSTILE, [])
    assert "\n[1] Pets" in reply.markdown
    assert "> " in reply.markdown
    assert "\\<script\\>" in reply.markdown, "pasted elsewhere, the article text stays text"


def test_uploads_are_added_to_the_index_and_reported(session, tmp_path):
    upload = write(tmp_path / "in", "birds.md", "# Birds\n\nParrots can live for eighty years.\n")
    status = session.upload([upload])
    assert "birds.md: added" in status
    assert "Index: added birds.md" in status
    assert "birds.md" in [row[1] for row in session.articles()]
    reply = session.respond("How long can parrots live?", [])
    assert any(c.source == "birds.md" for c in reply.turns[-1].answer.citations)
    write(tmp_path / "in", "birds.md", "# Birds\n\nParrots can live for ninety years.\n")
    assert "birds.md: updated" in session.upload([upload])
    assert "no articles changed" in session.upload([upload])


def test_one_bad_file_in_an_upload_adds_none_of_them_and_says_which(session, tmp_path):
    bad = tmp_path / "in" / "photo.png"
    bad.parent.mkdir()
    bad.write_bytes(b"\x89PNG")
    good = write(tmp_path / "in", "fish.txt", "Fish\nSalmon swim upstream to spawn.\n")
    before = session.qa.store.manifest.documents
    status = session.upload([bad, good])
    assert "✗ photo.png" in status
    assert "fish.txt: not added" in status
    assert "Nothing was added" in status
    assert not (session.qa.corpus_dir / "fish.txt").exists()
    assert session.qa.store.manifest.documents == before


def test_an_upload_giving_an_article_id_already_taken_is_refused_whole(
    session, hash_settings, tmp_path
):
    # pets.md beside pets.txt would make the same article twice: nothing of it is saved.
    upload = write(tmp_path / "in", "pets.md", "# Pets\n\nDogs bark.\n")
    fish = write(tmp_path / "in", "fish.txt", "Fish\nSalmon swim upstream to spawn.\n")
    status = html.unescape(session.upload([fish, upload]))
    assert "✗ Nothing was added: pets.md would give the article id 'pets'" in status
    assert "pets.txt already gives" in status
    assert sorted(p.name for p in hash_settings.corpus_dir.iterdir()) == ["pets.txt"]
    assert RedbookQA.open(hash_settings).store.manifest.documents.keys() == {"pets.txt"}


def test_a_session_keeps_a_bounded_number_of_turns(session):
    turns: list = []
    history: list = []
    for _ in range(MAX_TURNS + 5):
        reply = session.respond("Do cats sleep a lot?", history, turns)
        history, turns = reply.history, reply.turns
    assert len(turns) == MAX_TURNS
    assert turns[-1].index == len(history) - 1  # the newest answer can still be rated


def test_thumbs_are_appended_to_the_feedback_file(session):
    reply = session.respond("Do cats sleep a lot?", [])
    index = reply.turns[-1].index
    said, turns = session.rate(reply.turns, index, rating="up")
    assert "saved" in said
    assert turns[-1].votes == 1
    assert "Only answers" in session.rate(turns, 0, rating="down")[0]
    (record,) = session.feedback.read()
    assert record.rating == "up"
    assert record.question == "Do cats sleep a lot?"
    assert record.citations == reply.turns[-1].answer.citations


def test_an_answer_takes_a_bounded_number_of_votes(session):
    reply = session.respond("Do cats sleep a lot?", [])
    turns, index = reply.turns, reply.turns[-1].index
    said = []
    for rating in ["up", "down", "up", "up", "down", "up"]:
        message, turns = session.rate(turns, index, rating=rating)
        said.append(message)
    limit = session.qa.settings.max_votes_per_answer
    assert len(session.feedback.read()) == limit == 3
    assert said[limit:] == ["This answer's votes are already recorded; thank you."] * 3
    assert turns[-1].votes == limit


def test_a_long_question_is_cut_before_the_session_or_the_feedback_keeps_it(session):
    limit = session.qa.settings.max_question_chars
    reply = session.respond("Do cats sleep a lot? " * 5_000, [])  # 105,000 characters
    kept = reply.turns[-1].question
    assert kept.endswith(f"… (cut to {limit:,} characters)")
    assert len(kept) < limit + 40
    assert len(reply.history[0]["content"]) < limit + 100
    session.rate(reply.turns, reply.turns[-1].index, rating="up")
    (record,) = session.feedback.read()
    assert len(record.question) < limit + 40


def test_the_page_server_checks_hosts_and_keeps_a_bounded_number_of_sessions(session):
    from fastapi.testclient import TestClient
    from gradio.routes import App

    demo = build_demo(session)
    server = build_server(demo, session.qa, hosts=allowed_names())
    client = TestClient(server, base_url="http://127.0.0.1:7860")
    assert client.get("/").status_code == 200
    rebound = client.get("/", headers={"Host": "attacker.example:7860"})
    assert rebound.status_code == 403
    preflight = client.options(
        "/gradio_api/upload",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers
    (page,) = [route.app for route in server.app.routes if isinstance(route.app, App)]
    holder = page.state_holder
    assert holder.capacity == session.qa.settings.max_sessions
    for n in range(holder.capacity + 50):
        holder[f"visitor-{n}"]
    assert len(holder.session_data) == holder.capacity
    assert "visitor-0" not in holder.session_data, "the oldest session made way"


def test_the_page_builds_with_its_components(session):
    demo = build_demo(session)
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    assert {"rq-chat", "rq-question", "rq-ask", "rq-sources", "rq-upload", "rq-articles"} <= ids
    assert {"rq-markdown", "rq-copy", "rq-settings"} <= ids


def test_auth_is_user_colon_password():
    assert parse_auth("alice:s3:cret") == ("alice", "s3:cret")
    for bad in ("alice", ":pw", "alice:"):
        with pytest.raises(ValueError, match="user:password"):
            parse_auth(bad)


def _app_main(monkeypatch, *argv):
    spec = importlib.util.spec_from_file_location("app", ROOT / "app.py")
    assert spec
    assert spec.loader
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    launched = {}
    monkeypatch.setattr(app, "launch", lambda **kwargs: launched.update(kwargs))
    monkeypatch.setattr(sys, "argv", ["app.py", *argv])
    app.main()
    return launched


def test_app_binds_loopback_without_auth_by_default(monkeypatch):
    monkeypatch.delenv("REDBOOK_QA_AUTH", raising=False)
    launched = _app_main(monkeypatch)
    assert launched["host"] == "127.0.0.1"
    assert launched["auth"] is None
    assert "share=True" not in (ROOT / "app.py").read_text(encoding="utf-8")


def test_app_takes_auth_from_the_flag_or_the_environment(monkeypatch):
    assert _app_main(monkeypatch, "--auth", "ann:pw", "--port", "9")["auth"] == ("ann", "pw")
    monkeypatch.setenv("REDBOOK_QA_AUTH", "bob:pw2")
    assert _app_main(monkeypatch)["auth"] == ("bob", "pw2")


def test_app_rejects_a_malformed_auth(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _app_main(monkeypatch, "--auth", "nopassword")
    assert exit_info.value.code == 2
    assert "user:password" in capsys.readouterr().err


@pytest.mark.faults
def test_the_page_answers_through_its_api_as_a_script_would(session):
    from gradio_client import Client

    demo = build_demo(session)
    demo.queue().launch(
        server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True
    )
    try:
        client = Client(demo.local_url, verbose=False)
        api = client.view_api(print_info=False, return_format="dict")
        assert list(api["named_endpoints"]) == ["/ask"], "the other events stay private"
        history, sources, markdown, box = client.predict(
            "Cats sleep most of the day.", [], 5, False, api_name="/ask"
        )
        assert history[0]["role"] == "user"
        assert history[-1]["role"] == "assistant"
        assert box == ""
        assert 'id="source-1"' in sources
        assert markdown.startswith("**Q:** Cats sleep most of the day.")
        follow_up, *_ = client.predict(
            "And at night?", history, 5, True, "extractive", api_name="/ask"
        )
        (part,) = follow_up[-1]["content"]  # Gradio 6 sends message content as parts
        assert "searched for:" in part["text"]
    finally:
        demo.close()


def test_an_uploaded_pdf_is_kept_and_answers_with_a_page_and_a_link(qa, tmp_path):
    from documents import write_pdf

    links = []
    session = ChatSession(qa, link=lambda path: links.append(path) or f"/file={path}")
    pages = [
        ("Ferry Timetable", [("Ferry Timetable", ["The first ferry leaves the harbour at dawn."])]),
        ("Lighthouse", [("Lighthouse", ["Zebulon polishes the brass lamp daily."])]),
    ]  # fmt: skip
    (tmp_path / "in").mkdir()
    upload = write_pdf(tmp_path / "in" / "coast.pdf", pages)
    status = session.upload([upload])
    assert "coast.pdf: added" in status
    assert (qa.corpus_dir / "coast.pdf").read_bytes() == upload.read_bytes()
    reply = session.respond("Who polishes the brass lamp, Zebulon?", [])
    (citation,) = reply.turns[-1].answer.citations
    assert (citation.source, citation.page) == ("coast.pdf", 2)
    assert "coast.pdf · p. 2" in reply.sources
    assert f"/file={qa.corpus_dir.resolve() / 'coast.pdf'}#page=2" in reply.sources
    assert "<mark>Zebulon polishes the brass lamp daily.</mark>" in reply.sources
    assert links == [(qa.corpus_dir / "coast.pdf").resolve()]


def test_a_bad_document_upload_is_refused_and_nothing_indexed_is_lost(session, qa, tmp_path):
    from documents import write_image_pdf

    before = qa.store.manifest.documents
    scan = write_image_pdf(tmp_path / "scan.pdf")
    fake = write(tmp_path, "fake.docx", "just text\n")
    status = session.upload([scan, fake])
    assert "✗ scan.pdf: no text layer: run OCR first" in status
    assert "✗ fake.docx is named .docx but its content is plain text" in status
    assert not (qa.corpus_dir / "scan.pdf").exists()
    assert qa.store.manifest.documents == before
