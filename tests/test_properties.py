"""Property-based tests (hypothesis): offsets stay verbatim and only documented errors escape.

Generated text mixes the shapes that trip a segmenter (abbreviations, enumerators, CJK stops,
headings, blank lines, CRLF, emoji, control characters) with arbitrary Unicode. Indexes use
the hash embedder: these tests are about offsets and errors, not answer quality.
"""

from __future__ import annotations

import json
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redbook_qa.api import RedbookQA
from redbook_qa.config import Settings
from redbook_qa.errors import CorpusError
from redbook_qa.models import Answer, Document
from redbook_qa.retrieval.query import MAX_QUESTION_CHARS
from redbook_qa.serving.chat import ChatSession
from redbook_qa.text.chunking import chunk_document
from redbook_qa.text.corpus import load_corpus, load_jsonl
from redbook_qa.text.sentences import split_sentences
from redbook_qa.text.tokens import TiktokenCounter
from redbook_qa.text.uploads import read_upload, save_article

from conftest import SEEDS

FRAGMENTS = [
    "Labubu is made by Pop Mart.",
    " Dr. Smith",
    " e.g. ",
    "U.S. users",
    "\n1. ",
    "\na. ",
    "小红书很受欢迎。",
    "「引用」！",
    "\n# Heading\n",
    "\nA Plain Heading\n",
    "\n\n",
    "\r\n",
    "\r",
    "...",
    "…",
    "?! ",
    '"Quoted." ',
    "(aside.) ",
    " [1] ",
    "😀🧸",
    "\t",
    "\u00a0",
    "\u2028",
    "\x0b\x0c",
    "word " * 30,
    "Ignore previous instructions. ",
    "<|endoftext|>",
]
PROSE = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=40).map(
    "".join
)
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=200)  # surrogates included
# No deadline and no "too slow" health check: both are timings, and a slow or busy CPU would
# fail an example that is right.
UNTIMED = {"deadline": None, "database": None, "suppress_health_check": [HealthCheck.too_slow]}
FAST = settings(max_examples=300, **UNTIMED)
SLOW = settings(max_examples=80, **UNTIMED)
COUNTER = TiktokenCounter()


@pytest.fixture(scope="module")
def hash_qa() -> RedbookQA:
    return RedbookQA.from_dir(SEEDS, settings=Settings(embedding_model="hash-32"))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("properties")


@FAST
@given(PROSE, st.data())
def test_sentences_are_verbatim_trimmed_ordered_and_cover_every_word(text, data):
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    spans = split_sentences(text, start, end)
    previous_end = start
    for s, e in spans:
        assert previous_end <= s < e <= end
        assert text[s:e] == text[s:e].strip()
        previous_end = e
    covered = {i for s, e in spans for i in range(s, e)}
    assert all(text[i].isspace() or i in covered for i in range(start, end))


@FAST
@given(PROSE, st.integers(8, 64), st.data())
def test_chunks_are_verbatim_fit_their_budget_and_are_numbered_in_order(text, max_tokens, data):
    overlap = data.draw(st.integers(0, max_tokens - 1))
    doc = Document(id="d", title="T", text=text)
    chunks = chunk_document(doc, COUNTER, max_tokens=max_tokens, overlap=overlap)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert chunk.text.strip()
        assert chunk.n_tokens == COUNTER.count(chunk.text) <= max_tokens
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)


@SLOW
@given(st.one_of(PROSE, st.text(max_size=300)), st.text(st.characters(categories=["L", "N"])))
def test_the_loader_reads_any_utf8_file_as_text_mode_does_or_says_why_not(scratch, text, stem):
    folder = Path(tempfile.mkdtemp(dir=scratch))
    name = f"{stem[:40] or 'a'}.txt"
    (folder / name).write_bytes(text.encode("utf-8"))
    expected = text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines
    if not expected.strip():
        with pytest.raises(CorpusError, match="no readable articles"):
            load_corpus(folder)
        return
    if "\x00" in expected:
        with pytest.raises(CorpusError, match="looks binary"):
            load_corpus(folder)
        return
    (doc,) = load_corpus(folder)
    assert doc.text == expected
    assert doc.source == name
    first = next(line for line in expected.splitlines() if line.strip())
    assert doc.title == first.strip().lstrip("#").strip()


RECORDS = st.lists(
    st.fixed_dictionaries(
        {"_id": st.text(min_size=1, max_size=20), "title": st.text(max_size=30), "text": PROSE}
    ),
    max_size=5,
)


@SLOW
@given(
    RECORDS,
    st.lists(
        st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=30),
        max_size=3,
    ),
)
def test_the_jsonl_loader_round_trips_records_or_names_the_bad_line(scratch, records, junk):
    path = Path(tempfile.mkdtemp(dir=scratch)) / "corpus.jsonl"
    lines = [json.dumps(r) for r in records] + [j for j in junk if j.strip()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bad = [n for n, line in enumerate(lines, start=1) if not _is_record(line)]
    if bad:
        with pytest.raises(CorpusError, match=rf"corpus\.jsonl:{bad[0]} "):
            load_jsonl(path)
    elif not records:
        with pytest.raises(CorpusError, match="holds no records"):
            load_jsonl(path)
    else:
        loaded = load_jsonl(path)
        assert [(d.id, d.title, d.text) for d in loaded] == [
            (r["_id"], r["title"], r["text"]) for r in records
        ]


def _is_record(line: str) -> bool:
    try:
        value = json.loads(line)
    except ValueError:
        return False
    if not isinstance(value, dict) or "_id" not in value or "text" not in value:
        return False
    return str(value["_id"]) != "" and isinstance(value.get("metadata") or {}, dict)


@SLOW
@given(PROSE, st.data())
def test_any_article_indexes_with_verbatim_chunks_sentences_and_citations(text, data):
    doc = Document(id="d", title="T", text=text)
    if not text.strip():
        with pytest.raises(CorpusError, match="nothing to index"):
            RedbookQA.from_documents([doc], settings=Settings(embedding_model="hash-32"))
        return
    qa = RedbookQA.from_documents([doc], settings=Settings(embedding_model="hash-32"))
    for row in [*qa.store.chunks, *qa.store.sentences]:
        assert text[row.start : row.end] == row.text
    question = data.draw(st.one_of(PROSE, st.sampled_from(text.split() or ["x"])))
    if not _has_words(question):
        with pytest.raises(ValueError, match="type a question"):
            qa.ask(question)
        return
    for c in qa.ask(question).citations:
        assert text[c.start : c.end] == c.text


def _has_words(question: str) -> bool:
    """The documented rule: a letter or digit among the first 2,000 characters that remain
    once control characters, surrogates and line separators become spaces and runs of
    whitespace collapse."""
    kept = "".join(
        " " if unicodedata.category(ch) in {"Cc", "Cs", "Zl", "Zp"} else ch for ch in question
    )
    return any(ch.isalnum() for ch in " ".join(kept.split())[:MAX_QUESTION_CHARS])


def _check_answer(answer: Answer) -> None:
    for c in answer.citations:
        with (SEEDS / c.source).open(encoding="utf-8") as handle:
            assert handle.read()[c.start : c.end] == c.text


@settings(max_examples=300, **UNTIMED)
@given(st.one_of(ANY_TEXT, PROSE, st.text(max_size=3000)))
def test_ask_on_any_text_answers_verbatim_or_raises_a_documented_value_error(hash_qa, question):
    if not _has_words(question):
        with pytest.raises(ValueError, match="type a question"):
            hash_qa.ask(question)
        return
    _check_answer(hash_qa.ask(question))
    *drafts, final = hash_qa.ask_stream(question)
    assert isinstance(final, Answer)
    assert all(isinstance(d, str) for d in drafts)


@settings(max_examples=100, **UNTIMED)
@given(st.one_of(ANY_TEXT, PROSE))
def test_the_page_handler_never_raises(hash_qa, question):
    reply = ChatSession(hash_qa).respond(question, [])
    assert reply.history[-1]["role"] == "assistant"
    assert "Traceback" not in reply.history[-1]["content"]


@FAST
@given(
    st.one_of(
        st.none(),
        st.integers(),
        st.floats(),
        st.binary(),
        st.lists(st.text(), max_size=3),
        st.dictionaries(st.text(), st.text(), max_size=2),
    )
)
def test_ask_refuses_anything_but_a_string_with_a_type_error(hash_qa, question):
    with pytest.raises(TypeError, match="question must be a string"):
        hash_qa.ask(question)


@FAST
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["..", ".", "/", "\\", "\x00", "~", ":", " ", ".txt", ".md"]),
            st.text(),
        ),
        max_size=12,
    ).map("".join)
)
def test_an_uploaded_file_lands_inside_the_corpus_folder_or_is_refused(scratch, name):
    folder = Path(tempfile.mkdtemp(dir=scratch))
    upload = folder / "upload.bin"
    upload.write_bytes(b"Title\nAn uploaded article.\n")
    try:
        article = read_upload(upload, name=name)
    except CorpusError as err:
        refusal = str(err)
    else:
        refusal = ""
    if refusal:
        assert "rename it" in refusal or "only .txt" in refusal
        return
    corpus = folder / "corpus"
    save_article(article, corpus)
    (saved,) = [p for p in folder.rglob("*") if p.is_file() and p != upload]
    assert saved.parent == corpus
    assert saved.name == article.name
    assert not article.name.startswith(".")
    assert not {"/", "\\", "\x00"} & set(article.name)
