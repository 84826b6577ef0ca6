"""The eight attacks of issue #24, re-run against the page and the API: each is refused within
its limit, the servers keep answering, and the corpus and index stay as they were.

1. a PDF whose content stream inflates past the reader's memory (PDFium aborts on it);
2. one upload of a ``.md`` taking a seed's article id plus that PDF, and ``kill -9`` at any
   point of an upload;
3. a page tree claiming a million pages, or more text than a document may hold;
4. a ``.docx`` that inflates past its part limit or lies about it, and an oversized page;
5. a huge body, declared or streamed, sent before any login;
6. a forged ``Host`` (DNS rebinding) or a foreign ``Origin``;
7. huge questions from many visitors;
8. votes on one answer, over and over.

Files are built at run time and kept small: each expands past a limit lowered in the test's
``Settings`` (the defaults, and the full-size attacks, are in README "Reliability"). Servers
run on a free loopback port in a thread; failures are injected at points the test picks.
"""

from __future__ import annotations

import contextlib
import html
import http.client
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from redbook_qa.api import RedbookQA
from redbook_qa.config import Settings
from redbook_qa.serving.chat import ChatSession
from redbook_qa.serving.cli import main as cli
from redbook_qa.serving.feedback import FeedbackLog
from redbook_qa.serving.guard import allowed_names

from conftest import PATIENCE, ROOT, SEEDS, free_port, wait_for, write
from documents import write_docx, write_docx_bomb, write_flate_bomb_pdf, write_page_tree_pdf

pytestmark = pytest.mark.faults

uvicorn = pytest.importorskip("uvicorn", reason="the servers need the app extra")

SEED = sorted(SEEDS.glob("*.txt"))[0]
QUESTION = "Why did users pick Xiaohongshu?"
LIMITS = {
    "embedding_model": "hash-32",
    "min_support": 0.0,  # hash vectors score low; every question gets quotes
    "parse_memory_mb": 64,
    "parse_seconds": PATIENCE,  # the memory limit, never the clock, stops the bombs here
    "max_document_chars": 20_000,
    "max_docx_part_bytes": 1_000_000,
    "max_html_bytes": 200_000,
    "max_request_bytes": 100_000,
}


def _settings(folder: Path) -> Settings:
    corpus = folder / "corpus"
    corpus.mkdir()
    for seed in SEEDS.glob("*.txt"):
        shutil.copy(seed, corpus / seed.name)
    return Settings(corpus_dir=corpus, index_dir=folder / "index", **LIMITS)


def _session(settings: Settings, folder: Path) -> ChatSession:
    qa = RedbookQA.open(settings)
    log = FeedbackLog(folder / "feedback.jsonl", max_bytes=settings.max_feedback_bytes)
    return ChatSession(qa, feedback=log)


@pytest.fixture
def settings(tmp_path):
    return _settings(tmp_path)


@pytest.fixture
def session(settings, tmp_path):
    return _session(settings, tmp_path)


@pytest.fixture(autouse=True)
def _hash_model_for_the_command_line(monkeypatch):
    monkeypatch.setenv("REDBOOK_QA_EMBEDDING_MODEL", LIMITS["embedding_model"])


def _ask(settings) -> int:
    """`redbook-qa ask` over the test's corpus and index, as a person would start it."""
    folders = ["--corpus", str(settings.corpus_dir), "--index-dir", str(settings.index_dir)]
    return cli(["ask", QUESTION, *folders])


def _state(settings) -> tuple[dict[str, bytes], dict[str, str]]:
    """The corpus folder's files and the saved index's documents, to compare before/after."""
    files = {p.name: p.read_bytes() for p in settings.corpus_dir.iterdir()}
    return files, dict(RedbookQA.load(settings.index_dir).store.manifest.documents)


def _still_answers(session) -> None:
    reply = session.respond(QUESTION, [])
    assert reply.turns, reply.history[-1]["content"]
    assert reply.turns[-1].answer.citations, "the page should still quote the articles"


def _refused(session, *files) -> str:
    return html.unescape(session.upload(list(files)))


# 1-4: files that expand when read.


def test_1_a_pdf_that_inflates_past_the_readers_memory_is_refused_and_the_page_answers(
    session, settings, tmp_path
):
    before = _state(settings)
    bomb = write_flate_bomb_pdf(tmp_path / "bomb.pdf", expanded_bytes=10_000_000)
    status = _refused(session, bomb)
    assert "✗ bomb.pdf: this PDF expands past 64 MB while it is read" in status
    assert "Nothing was added" in status
    assert _state(settings) == before
    _still_answers(session)


def test_2_an_upload_with_a_bad_file_adds_nothing_and_the_next_start_works(
    session, settings, tmp_path
):
    before = _state(settings)
    clash = write(tmp_path / "in", SEED.stem + ".md", "# Clash\n\nSame article id as a seed.\n")
    bomb = write_flate_bomb_pdf(tmp_path / "in" / "bomb.pdf", expanded_bytes=10_000_000)
    status = _refused(session, clash, bomb)
    assert "✗ bomb.pdf: this PDF expands past 64 MB" in status
    assert f"· {clash.name}: not added" in status
    assert _state(settings) == before
    status = _refused(session, clash)  # alone, it would shadow the seed: refused too
    assert f"{clash.name} would give the article id '{SEED.stem}', which {SEED.name}" in status
    assert _state(settings) == before
    _still_answers(session)


@pytest.mark.parametrize("point", ["staged", "indexed", "half-moved"])
def test_2_a_kill_at_any_point_of_an_upload_leaves_a_corpus_that_opens(settings, tmp_path, point):
    RedbookQA.open(settings)  # the index of the seeds
    before, _ = _state(settings)
    write(tmp_path / "in", "aa.md", "# Apples\n\nApples grow on trees in orchards.\n")
    write(tmp_path / "in", "zz.md", "# Zebras\n\nZebras have black and white stripes.\n")
    run = _crash_upload(settings, tmp_path / "in", point)
    assert run.returncode == 9, f"the upload should have died when {point}: {run.stderr[-2000:]}"
    assert _ask(settings) == 0
    files, indexed = _state(settings)
    added = set(files) - set(before)
    assert added in (set(), {"aa.md", "zz.md"}), f"half an upload after a kill when {point}"
    assert {name: files[name] for name in before} == before
    assert set(indexed) == set(files)
    assert not (settings.corpus_dir / ".staging").exists()


def test_2_a_folder_whose_two_files_give_one_id_starts_and_serves_the_first(settings, caplog):
    clash = write(settings.corpus_dir, SEED.stem + ".md", "# Clash\n\nA later copy.\n")
    later = (settings.corpus_dir / SEED.name).stat().st_mtime_ns + 10**9
    os.utime(clash, ns=(later, later))
    assert _ask(settings) == 0
    assert f"{SEED.name} and {clash.name} both give the article id '{SEED.stem}'" in caplog.text
    assert f"serving {SEED.name}, which was there first" in caplog.text


def test_3_a_page_tree_of_a_million_pages_and_one_of_too_much_text_are_refused(
    session, settings, tmp_path
):
    before = _state(settings)
    tree = write_page_tree_pdf(tmp_path / "tree.pdf", levels=6)
    assert tree.stat().st_size < 2_000
    assert "✗ tree.pdf has 1,000,000 pages, more than the 2,000" in _refused(session, tree)
    text = write_page_tree_pdf(tmp_path / "text.pdf", levels=2)  # 100 pages, 50,000 chars
    status = _refused(session, text)
    assert "✗ text.pdf holds more than 20,000 characters of text" in status
    assert _state(settings) == before
    _still_answers(session)


def test_1_3_bombs_put_in_the_folder_by_hand_cost_only_themselves_at_start(
    settings, tmp_path, caplog
):
    _session(settings, tmp_path)  # the index of the seeds, built and saved
    before = dict(RedbookQA.load(settings.index_dir).store.manifest.documents)
    write_flate_bomb_pdf(settings.corpus_dir / "bomb.pdf", expanded_bytes=10_000_000)
    write_page_tree_pdf(settings.corpus_dir / "tree.pdf", levels=6)
    session = _session(settings, tmp_path)  # a restart over the folder as it now is
    assert "bomb.pdf: this PDF expands past 64 MB while it is read" in caplog.text
    assert "tree.pdf has 1,000,000 pages, more than the 2,000" in caplog.text
    assert dict(session.qa.store.manifest.documents) == before
    _still_answers(session)


def test_4_a_zip_bombed_docx_a_lying_one_a_long_one_and_a_huge_page_are_refused(
    session, settings, tmp_path
):
    before = _state(settings)
    bomb = write_docx_bomb(tmp_path / "bomb.docx", expanded_bytes=5_000_000)
    lie = write_docx_bomb(tmp_path / "lie.docx", expanded_bytes=5_000_000, declared=4_000)
    long = write_docx(tmp_path / "long.docx", "Long", [("Notes", ["A line of notes."] * 2_000)])
    page = tmp_path / "page.html"
    page.write_bytes(b"<html><body>" + b"<p>Filler.</p>" * 20_000 + b"</body></html>")
    status = _refused(session, bomb, lie, long, page)
    assert "✗ bomb.docx: its part word/document.xml expands to 5.0 MB, over the 1 MB" in status
    assert "✗ lie.docx: its part word/document.xml does not inflate to what it declares" in status
    assert "✗ long.docx holds more than 20,000 characters of text" in status
    assert "✗ page.html is 0.3 MB, over the 0.2 MB limit for a web page" in status
    assert _state(settings) == before
    _still_answers(session)


# 5-6: requests, against the page and the API on a loopback port.


@contextlib.contextmanager
def _serving(app):
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(
        f"a server on port {port} to start",
        lambda: "started" if server.started else "stopped" if not thread.is_alive() else "",
        lambda seen: seen != "",
    )
    assert server.started, f"the server on port {port} stopped before it started"
    try:
        yield port
    finally:
        server.should_exit = server.force_exit = True  # open event streams end with it
        thread.join(30)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A session over the seeds, shared by the tests that only send it requests."""
    folder = tmp_path_factory.mktemp("served")
    return _session(_settings(folder), folder)


@pytest.fixture(scope="module")
def servers(served):
    """The page (no login) and the API (with one), each behind its front door."""
    from redbook_qa.serving.http_api import build_server as api_server
    from redbook_qa.serving.ui import build_demo
    from redbook_qa.serving.ui import build_server as page_server

    session, hosts = served, allowed_names()
    page = page_server(build_demo(session), session.qa, hosts=hosts)
    api = api_server(session.qa, auth=("alice", "s3cret"), hosts=hosts)
    with _serving(page) as page_port, _serving(api) as api_port:
        yield {"page": page_port, "api": api_port}


def _request(port, method, path, *, headers=None, body=b""):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=PATIENCE)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _stream(port, path, *, total):
    """POST ``total`` bytes in chunks, stopping once the server answers; (status, bytes sent)."""
    with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json"
            "\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk, sent = b"x" * 16_384, 0
        with contextlib.suppress(OSError):  # the server may close once it has answered
            while sent < total and not select.select([sock], [], [], 0)[0]:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        reply = sock.recv(65_536).decode("latin-1")
    return int(reply.split(" ", 2)[1]), sent


def _answers(ports) -> None:
    from gradio_client import Client

    client = Client(f"http://127.0.0.1:{ports['page']}/", verbose=False)
    history, sources, *_ = client.predict(QUESTION, [], 5, False, api_name="/ask")
    assert 'id="source-1"' in sources, history
    body = json.dumps({"question": QUESTION}).encode()
    auth = {"Authorization": "Basic YWxpY2U6czNjcmV0", "Content-Type": "application/json"}
    status, _, answer = _request(ports["api"], "POST", "/ask", headers=auth, body=body)
    assert status == 200
    assert json.loads(answer)["citations"]


def test_5_a_huge_body_is_refused_before_it_is_read_or_a_login_is_asked(servers):
    declared = {"Content-Length": "300000000", "Content-Type": "application/json"}
    for name, path in (("api", "/ask"), ("page", "/gradio_api/queue/join")):
        connection = http.client.HTTPConnection("127.0.0.1", servers[name], timeout=PATIENCE)
        connection.putrequest("POST", path)
        for key, value in declared.items():
            connection.putheader(key, value)
        connection.endheaders()  # and not one byte of the 300 MB
        response = connection.getresponse()
        assert response.status == 413, f"{name}: {response.read()!r}"
        assert b"REDBOOK_QA_MAX_REQUEST_BYTES" in response.read()
        connection.close()
        status, sent = _stream(servers[name], path, total=64 << 20)
        assert status == 413, name
        assert sent < 32 << 20, f"{name}: {sent:,} bytes sent before the refusal"
    _answers(servers)


def test_6_a_rebound_host_or_a_foreign_page_gets_a_403_and_no_cors_header(servers):
    for name, path in (("api", "/health"), ("page", "/"), ("page", "/gradio_api/upload")):
        port = servers[name]
        status, headers, _ = _request(port, "GET", path, headers={"Host": f"evil.example:{port}"})
        assert status == 403, (name, path)
        status, headers, _ = _request(
            port,
            "OPTIONS",
            path,
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert status == 403, (name, path)
        assert not any(k.lower() == "access-control-allow-origin" for k in headers)
    _answers(servers)


# 7-8: what one visitor can make the server keep.


def test_7_huge_questions_are_refused_by_size_or_cut_before_they_are_kept(servers, served):
    question = json.dumps({"data": ["why " * 50_000, [], 5, False, "extractive"]}).encode()
    status, _, _ = _request(servers["page"], "POST", "/gradio_api/call/ask", body=question)
    assert status == 413, "a 200,000-character question is over the page's body limit"
    kept = [served.respond("why " * 20_000, []).turns[-1].question for _ in range(40)]
    assert max(len(question) for question in kept) < served.qa.settings.max_question_chars + 40
    _answers(servers)


def test_8_votes_on_one_answer_are_capped_and_each_record_is_small(session):
    reply = session.respond("why did users pick Xiaohongshu? " * 30_000, [])  # ~1 MB
    turns, index = reply.turns, reply.turns[-1].index
    for _ in range(50):
        _, turns = session.rate(turns, index, rating="up")
    records = session.feedback.path.read_text(encoding="utf-8").splitlines()
    assert len(records) == session.qa.settings.max_votes_per_answer
    assert max(len(record) for record in records) < 64_000
    _still_answers(session)


_CRASHING_UPLOAD = """
import os, sys
from pathlib import Path
from redbook_qa import api
from redbook_qa.config import Settings
from redbook_qa.text import staging
from redbook_qa.text.uploads import read_upload

settings = Settings.model_validate_json(sys.argv[1])
point = os.environ["KILL_AT"]
qa = api.RedbookQA.open(settings)
articles = [read_upload(path) for path in sorted(Path(sys.argv[2]).iterdir())]

def die(*args, **kwargs):
    os._exit(9)

if point == "staged":  # files written to staging, nothing indexed yet
    api.overlay = die
elif point == "indexed":  # the new index saved, no file moved yet
    staging.Staging.commit = die
else:  # one file moved into the corpus, the other not yet
    real_replace = os.replace
    def replace(source, target):
        real_replace(source, target)
        if Path(target).parent == settings.corpus_dir:
            os._exit(9)
    os.replace = replace
qa.refresh(adding=articles)
"""


def _crash_upload(settings, folder: Path, point: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _CRASHING_UPLOAD, settings.model_dump_json(), str(folder)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "KILL_AT": point, "HF_HUB_OFFLINE": "1"},
        check=False,
    )
