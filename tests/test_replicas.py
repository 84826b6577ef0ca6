"""Stateless replicas: separate app processes over one PostgreSQL serve the same answers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from conftest import PATIENCE, ROOT, SEEDS, free_port, stop, wait_until_up

pytestmark = [pytest.mark.integration, pytest.mark.faults]

QUESTIONS = [
    "Why did users pick Xiaohongshu?",
    "Who makes Labubu?",
    "What did the US ban?",
    "What colour is the Zorblat lighthouse?",
]


def _call(url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=PATIENCE) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def replicas(pg_url, tmp_path_factory):
    """Two `redbook-qa api` processes and one `redbook-qa serve` page over one PostgreSQL."""
    root = tmp_path_factory.mktemp("replicas")
    corpus = root / "articles"
    shutil.copytree(SEEDS, corpus)
    env = {
        **os.environ,
        "REDBOOK_QA_STORE": pg_url,
        "REDBOOK_QA_STORE_SCHEMA": "replicas",
        "REDBOOK_QA_CORPUS_DIR": str(corpus),
        "HF_HUB_OFFLINE": "1",
    }
    started = []
    for command in ("api", "api", "serve"):
        port = free_port()
        # Separate folders: nothing but PostgreSQL is shared.
        env["REDBOOK_QA_INDEX_DIR"] = str(root / f"index-{port}")
        log = root / f"{command}-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "redbook_qa", command, "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        started.append((url, process, log, url + ("/health" if command == "api" else "/")))
    try:
        for _, process, log, probe in started:
            wait_until_up(probe, process, log, PATIENCE)
        yield corpus, [url for url, *_ in started]
    finally:
        for _, process, *_ in started:
            stop(process)


def test_replicas_serve_the_same_index_and_the_same_answers(replicas):
    _, (first, second, _) = replicas
    health = [_call(url + "/health") for url in (first, second)]
    assert health[0] == health[1]
    assert health[0]["store"] == "postgresql"
    for question in QUESTIONS:
        answers = [_call(url + "/ask", {"question": question}) for url in (first, second)]
        assert answers[0] == answers[1], question
    assert not answers[0]["citations"]  # the lighthouse is in no article yet


def test_a_refresh_through_one_replica_is_served_by_all(replicas):
    from gradio_client import Client

    corpus, (first, second, page) = replicas
    (corpus / "zorblat.txt").write_text(
        "The Zorblat lighthouse\n\nThe Zorblat lighthouse on Pemberly Point is painted "
        "bright violet, so that fishing boats can see it through the winter fog.\n",
        encoding="utf-8",
    )
    change = _call(first + "/refresh", {})
    assert change["added"] == ["zorblat.txt"]
    question = "What colour is the Zorblat lighthouse?"
    answer = _call(second + "/ask", {"question": question})  # second never refreshed
    assert {c["source"] for c in answer["citations"]} == {"zorblat.txt"}
    assert "violet" in answer["text"]
    assert _call(second + "/health")["documents"] == _call(first + "/health")["documents"]
    client = Client(page, verbose=False)
    history, sources, *_ = client.predict(question, [], 5, False, api_name="/ask")
    assert "zorblat.txt" in sources
    (part,) = history[-1]["content"]
    assert "violet" in part["text"]
