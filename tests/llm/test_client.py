from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from redbook_qa.errors import (
    LLMAuthError,
    LLMNotFoundError,
    LLMResponseError,
    LLMUnavailableError,
    RedbookQAError,
)
from redbook_qa.llm.client import OpenAICompatibleClient

from conftest import PATIENCE

HI = [{"role": "user", "content": "Say hi"}]
Reply = Callable[["_Handler"], None]


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenAI

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        headers = {k.lower(): v for k, v in self.headers.items()}  # httpx2 sends lowercase names
        self.server.requests.append((self.command, self.path, headers, body))
        replies = self.server.replies
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        # The client may give up first, as the timeout tests intend.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            reply(self)

    def log_message(self, format: str, *args: object) -> None:
        pass


class FakeOpenAI(ThreadingHTTPServer):
    """An OpenAI-compatible server in a thread; each request takes the next scripted reply."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str, dict[str, str], object]] = []
        self.replies: list[Reply] = [completion("Hello!")]
        self.released = threading.Event()  # lets hanging handlers end at teardown

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def script(self, *replies: Reply) -> None:
        """Answer requests with these replies in turn, repeating the last one."""
        self.replies = list(replies)


def send(handler: _Handler, status: int, body: bytes, content_type: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def json_reply(status: int, payload: object) -> Reply:
    return lambda h: send(h, status, json.dumps(payload).encode(), "application/json")


def completion(text: str) -> Reply:
    return json_reply(200, {"choices": [{"message": {"role": "assistant", "content": text}}]})


def events(pieces: list[str], *, done: bool = True, then: Reply | None = None) -> Reply:
    def reply(h: _Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()
        for piece in [{"role": "assistant"}, *({"content": p} for p in pieces)]:
            chunk = {"choices": [{"index": 0, "delta": piece, "finish_reason": None}]}
            h.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            h.wfile.flush()
        if done:
            h.wfile.write(b"data: [DONE]\n\n")
        if then is not None:
            then(h)

    return reply


def hang(h: _Handler) -> None:
    h.server.released.wait(PATIENCE)  # silent until the test ends


# The deadline tests give the client 1 s against a server that would take 600: their bound
# sits far from both, so a slow or busy CPU moves neither outcome across it.
CUT_WELL_BEFORE = 60.0


def trickle(h: _Handler) -> None:
    """Keep the connection busy with SSE comments forever: no read ever times out."""
    while not h.server.released.wait(0.1):
        h.wfile.write(b": still thinking\n")
        h.wfile.flush()


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    thread = threading.Thread(target=fake.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    fake.released.set()
    fake.shutdown()
    fake.server_close()


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_complete_returns_the_reply_and_sends_an_openai_request(server):
    client = OpenAICompatibleClient(server.url, "tiny", api_key="sk-test")
    assert client.complete(HI, max_tokens=12, temperature=0.2) == "Hello!"
    method, path, headers, body = server.requests[0]
    assert (method, path) == ("POST", "/v1/chat/completions")
    assert headers["authorization"] == "Bearer sk-test"
    assert body == {
        "model": "tiny",
        "messages": HI,
        "max_tokens": 12,
        "temperature": 0.2,
        "stream": False,
    }


def test_base_url_works_with_or_without_a_trailing_slash(server):
    with_slash = OpenAICompatibleClient(server.url + "/")
    assert with_slash.complete(HI) == OpenAICompatibleClient(server.url).complete(HI)
    assert with_slash.name == f"openai-compatible:default@{server.url}"
    assert [r[1] for r in server.requests] == ["/v1/chat/completions"] * 2


@pytest.mark.parametrize("url", ["ftp://example.com/v1", "127.0.0.1:8000/v1", "http:///v1"])
def test_base_url_must_be_http_or_https(url):
    with pytest.raises(ValueError, match="http:// or https://"):
        OpenAICompatibleClient(url)


def test_bad_arguments_fail_before_any_request(server):
    client = OpenAICompatibleClient(server.url)
    with pytest.raises(ValueError, match="max_tokens"):
        client.complete(HI, max_tokens=0)
    with pytest.raises(ValueError, match="temperature"):
        client.stream(HI, temperature=-1)
    with pytest.raises(ValueError, match=r"messages\[0\]"):
        client.complete([{"role": "robot", "content": "hi"}])
    with pytest.raises(ValueError, match="non-empty"):
        client.complete([])
    assert server.requests == []


def test_models_lists_the_server_model_ids(server):
    server.script(json_reply(200, {"object": "list", "data": [{"id": "a"}, {"id": "b"}]}))
    assert OpenAICompatibleClient(server.url).models() == ["a", "b"]
    assert server.requests[0][:2] == ("GET", "/v1/models")


def test_stream_yields_pieces_that_join_into_the_reply(server):
    server.script(events(["The ", "sky ", "is ", "blue."]))
    pieces = list(OpenAICompatibleClient(server.url).stream(HI))
    assert pieces == ["The ", "sky ", "is ", "blue."]
    assert server.requests[0][3]["stream"] is True


def test_stream_that_ends_without_done_keeps_its_text(server):
    server.script(events(["a", "b"], done=False))
    assert "".join(OpenAICompatibleClient(server.url).stream(HI)) == "ab"


def test_stream_from_a_server_that_ignores_stream_true_still_works(server):
    server.script(completion("all at once"))
    assert list(OpenAICompatibleClient(server.url).stream(HI)) == ["all at once"]


def test_malformed_stream_event_is_a_response_error(server):
    server.script(events(["ok"], done=False, then=lambda h: h.wfile.write(b"data: {oops\n\n")))
    with pytest.raises(LLMResponseError, match="not JSON"):
        list(OpenAICompatibleClient(server.url).stream(HI))


def test_unauthorized_names_the_env_vars_and_never_shows_the_key(server):
    key = "sk-very-secret-123"
    server.script(json_reply(401, {"error": {"message": f"Incorrect API key provided: {key}"}}))
    client = OpenAICompatibleClient(server.url, api_key=key)
    with pytest.raises(LLMAuthError, match="OPENAI_API_KEY / REDBOOK_QA_LLM_API_KEY") as caught:
        client.complete(HI)
    assert key not in str(caught.value)
    assert key not in client.name + repr(client)
    assert len(server.requests) == 1  # not retried


def test_the_environment_key_is_never_read_and_no_key_sends_no_header(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    assert OpenAICompatibleClient(server.url).complete(HI) == "Hello!"
    assert "authorization" not in server.requests[0][2]


def test_a_missing_openai_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ImportError, match=r'pip install "redbook_qa\[llm\]"'):
        OpenAICompatibleClient("http://127.0.0.1:1/v1")


def test_not_found_points_at_the_model_and_url(server):
    server.script(json_reply(404, {"error": {"message": "model 'gpt-9' not found"}}))
    with pytest.raises(LLMNotFoundError, match=r"REDBOOK_QA_LLM_MODEL.*ends in /v1"):
        OpenAICompatibleClient(server.url, "gpt-9").complete(HI)


def test_garbage_json_is_a_response_error(server):
    server.script(lambda h: send(h, 200, b"<html>hello</html>", "text/html"))
    with pytest.raises(LLMResponseError, match="not JSON"):
        OpenAICompatibleClient(server.url).complete(HI)


def test_reply_of_the_wrong_shape_is_a_response_error(server):
    server.script(json_reply(200, {"choices": []}))
    with pytest.raises(LLMResponseError, match=r"choices\[0\]\.message\.content"):
        OpenAICompatibleClient(server.url).complete(HI)


def test_server_error_then_success_is_retried(server):
    server.script(json_reply(500, {"error": "busy"}), completion("second time lucky"))
    client = OpenAICompatibleClient(server.url, backoff=0.01)
    assert client.complete(HI) == "second time lucky"
    assert len(server.requests) == 2


def test_stream_is_retried_while_it_has_produced_nothing(server):
    server.script(json_reply(503, {"error": "loading"}), events(["fine"]))
    client = OpenAICompatibleClient(server.url, backoff=0.01)
    assert list(client.stream(HI)) == ["fine"]
    assert len(server.requests) == 2


def test_server_error_forever_gives_up_after_the_retries(server):
    server.script(json_reply(500, {"error": {"message": "out of memory"}}))
    client = OpenAICompatibleClient(server.url, max_retries=2, backoff=0.01)
    with pytest.raises(LLMUnavailableError, match=r"HTTP 500.*out of memory.*after 3 attempts"):
        client.complete(HI)
    assert len(server.requests) == 3


@pytest.mark.faults
def test_connection_refused_fails_fast_with_a_hint(closed_port_url):
    client = OpenAICompatibleClient(closed_port_url, timeout=PATIENCE, backoff=0.05)
    started = time.monotonic()
    with pytest.raises(LLMUnavailableError, match=r"connection refused.*make run-local-llm"):
        client.complete(HI)
    took = time.monotonic() - started
    assert took < CUT_WELL_BEFORE, f"refused at once, yet the client waited {took:.1f} s"


@pytest.mark.faults
def test_hanging_server_times_out_within_the_deadline(server):
    server.script(hang)
    client = OpenAICompatibleClient(server.url, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(LLMUnavailableError, match="timed out"):
        client.complete(HI)
    took = time.monotonic() - started
    assert took < CUT_WELL_BEFORE, f"a 1 s deadline, yet the client waited {took:.1f} s"


@pytest.mark.faults
def test_trickling_stream_cannot_outlast_the_deadline(server):
    server.script(events(["thinking"], done=False, then=trickle))
    client = OpenAICompatibleClient(server.url, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(LLMUnavailableError, match="timed out"):
        list(client.stream(HI))
    took = time.monotonic() - started
    assert took < CUT_WELL_BEFORE, f"a 1 s deadline, yet the stream lasted {took:.1f} s"


@pytest.mark.faults
def test_stream_that_stalls_after_some_text_raises_and_is_not_retried(server):
    server.script(events(["Once ", "upon "], done=False, then=hang))
    client = OpenAICompatibleClient(server.url, timeout=1.0, backoff=0.01)
    received: list[str] = []
    with pytest.raises(LLMUnavailableError, match="timed out"):
        received.extend(client.stream(HI))
    assert received == ["Once ", "upon "]
    assert len(server.requests) == 1


@pytest.mark.faults
def test_stream_that_breaks_after_some_text_is_not_retried(server):
    def cut(h: _Handler) -> None:
        h.wfile.write(b'data: {"choices": [{"delta": {"content": "half')  # no newline
        h.close_connection = True

    server.script(events(["Once "], done=False, then=cut), events(["never"]))
    received: list[str] = []
    with pytest.raises(RedbookQAError):
        received.extend(OpenAICompatibleClient(server.url, backoff=0.01).stream(HI))
    assert received == ["Once "]
    assert len(server.requests) == 1


@pytest.mark.faults
def test_one_client_serves_many_threads(server):
    client = OpenAICompatibleClient(server.url)
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: client.complete(HI), range(8)))
    assert replies == ["Hello!"] * 8


def test_the_facade_builds_its_client_from_the_llm_settings(server, hash_settings):
    from redbook_qa.api import RedbookQA
    from redbook_qa.models import Document

    settings = hash_settings.model_copy(
        update={
            "llm_base_url": server.url,
            "llm_model": "m",
            "llm_api_key": "sk-x",
            "llm_timeout": 5.0,
            "llm_max_retries": 0,
        }
    )
    docs = [Document(id="a", title="A", text="Cats sleep a lot. Dogs bark at night.")]
    client = RedbookQA.from_documents(docs, settings=settings).llm_client
    assert isinstance(client, OpenAICompatibleClient)
    assert (client.model, client.timeout, client.max_retries) == ("m", 5.0, 0)
    assert client.complete(HI) == "Hello!"
    assert server.requests[0][2]["authorization"] == "Bearer sk-x"
