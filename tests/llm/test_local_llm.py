from __future__ import annotations

import subprocess
import sys
import tempfile

import pytest

from redbook_qa.errors import LLMError, LLMUnavailableError
from redbook_qa.llm.client import OpenAICompatibleClient
from redbook_qa.llm.local import BUNDLED_MODEL_ID, LocalLLMServer, bundled_gguf

from conftest import PATIENCE

pytestmark = [pytest.mark.integration, pytest.mark.faults]

QUESTION = [
    {"role": "system", "content": "Answer in one short sentence."},
    {"role": "user", "content": "What colour is the sky on a clear day?"},
]


def test_bundled_model_file_is_found():
    path = bundled_gguf()
    assert path.suffix == ".gguf"
    assert path.stat().st_size > 10_000_000


def test_importing_local_llm_leaves_llama_cpp_unloaded():
    code = "import sys, redbook_qa.llm.local; print('llama_cpp' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_server_lists_the_bundled_model(local_llm):
    assert local_llm.base_url.startswith("http://127.0.0.1:")
    assert local_llm.base_url.endswith("/v1")
    assert local_llm.model == BUNDLED_MODEL_ID
    assert OpenAICompatibleClient(local_llm.base_url).models() == [BUNDLED_MODEL_ID]


def test_complete_returns_text(local_llm):
    client = OpenAICompatibleClient(local_llm.base_url, local_llm.model, timeout=PATIENCE)
    assert client.complete(QUESTION, max_tokens=32).strip()


def test_stream_yields_several_pieces(local_llm):
    client = OpenAICompatibleClient(local_llm.base_url, local_llm.model, timeout=PATIENCE)
    pieces = list(client.stream(QUESTION, max_tokens=32))
    assert len(pieces) > 1
    assert "".join(pieces).strip()


def test_stopped_server_makes_the_next_call_unavailable():
    server = LocalLLMServer(startup_timeout=PATIENCE).start()
    client = OpenAICompatibleClient(server.base_url, server.model, max_retries=0)
    assert client.models() == [server.model]
    server.stop()
    server.stop()  # twice is fine
    assert not server.is_running
    with pytest.raises(LLMUnavailableError, match="connection refused"):
        client.complete(QUESTION, max_tokens=4)


def test_server_that_cannot_load_its_model_reports_its_log(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the log it keeps lands here
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a model at all")
    server = LocalLLMServer(broken, startup_timeout=PATIENCE)
    with pytest.raises(LLMError, match="exited with status") as caught:
        server.start()
    assert "Failed to load model" in str(caught.value)  # the tail of the server's log
    assert not server.is_running


def test_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(LLMError, match="does not exist"):
        LocalLLMServer(tmp_path / "nothing.gguf").start()
