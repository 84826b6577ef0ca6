from __future__ import annotations

import json
import subprocess
import sys

import pytest

from redbook_qa.serving.cli import main

from conftest import write


@pytest.fixture
def folders(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    write(corpus, "pets.txt", "Pets\nCats sleep most of the day. Dogs bark at the mail carrier.\n")
    monkeypatch.setenv("REDBOOK_QA_EMBEDDING_MODEL", "hash-32")
    return corpus, tmp_path / "index"


def test_index_then_ask_as_json(folders, capsys):
    corpus, index = folders
    assert main(["index", str(corpus), "--index-dir", str(index)]) == 0
    assert "1 documents" in capsys.readouterr().out
    question = "Cats sleep most of the day."
    assert (
        main(["ask", question, "--json", "--corpus", str(corpus), "--index-dir", str(index)]) == 0
    )
    answer = json.loads(capsys.readouterr().out)
    assert answer["question"] == question
    assert set(answer) >= {"text", "citations", "abstained", "passages"}


def test_plain_ask_prints_the_answer_and_quotes(folders, capsys):
    corpus, index = folders
    assert (
        main(
            [
                "ask",
                "Dogs bark at the mail carrier.",
                "--corpus",
                str(corpus),
                "--index-dir",
                str(index),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.strip()


def test_errors_are_one_line_with_exit_status_2(tmp_path, capsys):
    assert main(["index", str(tmp_path / "missing"), "--index-dir", str(tmp_path / "i")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("redbook-qa: error:")
    assert "does not exist" in err


@pytest.mark.faults
def test_an_unreachable_llm_server_gives_the_quoted_answer_and_says_why(
    folders, capsys, monkeypatch
):
    corpus, index = folders
    monkeypatch.setenv("REDBOOK_QA_MIN_SUPPORT", "0")  # the hash embedder's scores are low
    args = ["ask", "Dogs bark at the mail carrier.", "--json", "--corpus", str(corpus)]
    args += ["--index-dir", str(index), "--llm-url", "http://127.0.0.1:9/v1"]
    assert main(args) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["mode"] == "llm-fallback"
    assert "language model failed" in answer["notice"]
    assert "connection refused" in answer["notice"]


def test_the_api_command_never_imports_gradio(tmp_path):
    # `redbook-qa api` parses --auth and builds its app without the page's toolkit: a
    # server-only install need not pay gradio's import (seconds) or carry it at all.
    probe = (
        "import sys\n"
        "from redbook_qa.serving import cli, http_api\n"
        "from redbook_qa.serving.auth import parse_auth\n"
        "assert parse_auth('alice:s3cret') == ('alice', 's3cret')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'gradio'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert result.stdout.strip() == "[]"
