from __future__ import annotations

import pytest

fastapi = pytest.importorskip("fastapi", reason="the HTTP API needs the app extra (FastAPI)")
from fastapi.testclient import TestClient  # noqa: E402

from redbook_qa.serving.guard import allowed_names  # noqa: E402
from redbook_qa.serving.http_api import build_app, build_server  # noqa: E402


@pytest.fixture(scope="module")
def client(seeds_qa):
    return TestClient(build_app(seeds_qa))


def test_health_says_which_index_is_served(client, seeds_qa):
    body = client.get("/health").json()
    manifest = seeds_qa.store.manifest
    assert body["status"] == "ok"
    assert body["store"] == "process"
    assert body["corpus_fingerprint"] == manifest.corpus_fingerprint
    assert body["documents"] == len(manifest.documents)
    assert body["chunks"] == manifest.n_chunks


def test_ask_returns_the_cited_answer_the_library_gives(client, seeds_qa):
    question = "Why did users pick Xiaohongshu?"
    response = client.post("/ask", json={"question": question})
    assert response.status_code == 200
    body = response.json()
    expected = seeds_qa.ask(question)
    assert body["text"] == expected.text
    assert [c["text"] for c in body["citations"]] == [c.text for c in expected.citations]
    assert "[1]" in body["text"]
    assert not body["abstained"]


def test_retrieve_only_searches_the_sources_asked_for(client, seeds_qa):
    source = seeds_qa.store.manifest.documents and sorted(seeds_qa.store.manifest.documents)[0]
    response = client.post(
        "/retrieve", json={"question": "Why did users leave TikTok?", "k": 3, "sources": [source]}
    )
    passages = response.json()
    assert response.status_code == 200
    assert 1 <= len(passages) <= 3
    assert {p["source"] for p in passages} == {source}


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"question": ""}, 422, "at least 1 character"),
        ({"question": "hi", "k": 0}, 422, "greater than or equal to 1"),
        ({"question": "hi", "mode": "poetry"}, 422, "extractive"),
        ({"question": "hi", "colour": "red"}, 422, "Extra inputs are not permitted"),
        ({"question": "hi", "mode": "llm"}, 400, "REDBOOK_QA_LLM_BASE_URL"),
    ],
)
def test_bad_requests_get_a_clear_error(client, body, status, says):
    response = client.post("/ask", json=body)
    assert response.status_code == status
    assert says in response.text


def test_refresh_without_a_folder_is_refused_clearly(embedder):
    from redbook_qa.api import RedbookQA
    from redbook_qa.models import Document

    qa = RedbookQA.from_documents(
        [Document(id="a", source="a", title="A", text="Cats sleep most of the day.")],
        embedder=embedder,
    )
    response = TestClient(build_app(qa)).post("/refresh")
    assert response.status_code == 400
    assert "corpus folder" in response.json()["detail"]


def test_with_auth_every_endpoint_wants_the_login(seeds_qa):
    client = TestClient(build_app(seeds_qa, auth=("alice", "s3cret")))
    assert client.get("/health").status_code == 401
    assert client.post("/ask", json={"question": "Who makes Labubu?"}).status_code == 401
    assert client.get("/health", auth=("alice", "wrong")).status_code == 401
    assert client.get("/health", auth=("alice", "s3cret")).status_code == 200
    answer = client.post("/ask", json={"question": "Who makes Labubu?"}, auth=("alice", "s3cret"))
    assert answer.status_code == 200
    assert answer.json()["citations"]


def test_a_question_over_the_limit_is_refused_saying_so(client, seeds_qa):
    limit = seeds_qa.settings.max_question_chars
    response = client.post("/ask", json={"question": "why " * limit})
    assert response.status_code == 422
    assert f"over the {limit:,} this server reads" in response.json()["detail"]
    assert "REDBOOK_QA_MAX_QUESTION_CHARS" in response.json()["detail"]


@pytest.fixture(scope="module")
def served(seeds_qa):
    """The API as `redbook-qa api` serves it: behind its front door, with a login."""
    server = build_server(seeds_qa, auth=("alice", "s3cret"), hosts=allowed_names())
    return TestClient(server, base_url="http://127.0.0.1:8000")


def test_a_rebound_host_gets_a_403_and_nothing_else(served):
    response = served.get("/health", headers={"Host": "attacker.example:8000"})
    assert response.status_code == 403
    assert "attacker.example" in response.json()["detail"]
    assert served.get("/health", auth=("alice", "s3cret")).status_code == 200


def test_another_sites_page_cannot_call_the_api_and_gets_no_cors_header(served):
    response = served.post(
        "/ask",
        json={"question": "Who makes Labubu?"},
        headers={"Origin": "http://evil.example"},
        auth=("alice", "s3cret"),
    )
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers


def test_a_body_over_the_limit_is_refused_before_the_login_is_checked(served, seeds_qa):
    limit = seeds_qa.settings.max_request_bytes
    body = b'{"question": "' + b"a" * limit + b'"}'
    response = served.post("/ask", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413, "not 401: the body was refused first"
    assert "REDBOOK_QA_MAX_REQUEST_BYTES" in response.json()["detail"]
    assert served.post("/ask", json={"question": "hi"}).status_code == 401
