"""A chat client for any OpenAI-compatible server (``/v1/chat/completions``), standard library only.

Every call has a hard deadline (``timeout`` seconds, retries and a whole stream included), a
connect timeout, and bounded retries with exponential backoff on connection errors, 5xx and
429. A stream is retried only before it has produced any text, so text is never repeated.
Each request opens its own connection, so one client can be shared by threads.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

from redbook_qa.errors import (
    LLMAuthError,
    LLMError,
    LLMNotFoundError,
    LLMResponseError,
    LLMUnavailableError,
)
from redbook_qa.llm.transport import Exchange, TransientError, server_sent_events

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

Message = dict[str, str]
"""One chat message: ``{"role": "system" | "user" | "assistant", "content": text}``."""

ROLES = ("system", "user", "assistant")
_T = TypeVar("_T")


class LLMClient(Protocol):
    """Anything that turns chat messages into text, whole or piece by piece."""

    @property
    def name(self) -> str:
        """Say which model on which server, e.g. ``openai-compatible:<model>@<base_url>``."""
        ...

    def complete(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0
    ) -> str:
        """Return the assistant's reply to ``messages``."""
        ...

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0
    ) -> Iterator[str]:
        """Yield the assistant's reply to ``messages`` in pieces as they are generated."""
        ...


class OpenAICompatibleClient:
    """Talk to an OpenAI-compatible chat server: OpenAI, llama.cpp, vLLM, Ollama, LM Studio.

    Example:
        >>> client = OpenAICompatibleClient("http://127.0.0.1:8000/v1")  # doctest: +SKIP
        >>> client.complete([{"role": "user", "content": "Hi"}], max_tokens=8)  # doctest: +SKIP
        'Hello! How can I help?'

    Args:
        base_url: The API root, ending in ``/v1`` like ``https://api.openai.com/v1``.
        model: The model name sent with each request.
        api_key: Sent as ``Authorization: Bearer``; never logged nor put in messages.
        timeout: Hard deadline in seconds for one call, retries and a whole stream included.
        connect_timeout: Longest wait for a connection to open.
        max_retries: Extra attempts after a connection error, 5xx or 429.
        backoff: First wait between attempts in seconds; it doubles each time.
    """

    def __init__(
        self,
        base_url: str,
        model: str = "default",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        max_retries: int = 2,
        backoff: float = 0.5,
    ) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "the LLM base URL must be http:// or https:// with a host, such as "
                f"http://127.0.0.1:8000/v1; got {base_url!r}"
            )
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be a non-empty name, got {model!r}")
        if not (timeout > 0 and connect_timeout > 0 and backoff >= 0):
            raise ValueError(
                f"timeout and connect_timeout must be > 0 and backoff >= 0 (seconds); got "
                f"{timeout!r}, {connect_timeout!r}, {backoff!r}"
            )
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        self.base_url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self.model = model
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self._https = parts.scheme == "https"
        self._host, self._port, self._path = parts.hostname, parts.port, parts.path.rstrip("/")
        self._api_key = api_key or None

    @property
    def name(self) -> str:
        """Say which model on which server (never the key)."""
        return f"openai-compatible:{self.model}@{self.base_url}"

    def __repr__(self) -> str:
        return f"OpenAICompatibleClient({self.base_url!r}, {self.model!r})"

    def models(self) -> list[str]:
        """Return the ids of the models the server offers (``GET /models``): a health check."""
        body = self._retrying(lambda end: _json(self._request("GET", "/models", None, end)))
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or not all(isinstance(m, dict) and "id" in m for m in data):
            raise LLMResponseError(
                f"{self.base_url}/models did not return a model list ({_show(body)}); "
                "is this an OpenAI-compatible server?"
            )
        return [str(m["id"]) for m in data]

    def complete(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0
    ) -> str:
        """Return the assistant's reply to ``messages``.

        Raises:
            LLMUnavailableError: No server, a timeout, or 5xx/429 after every retry.
            LLMAuthError: The API key was refused.
            LLMNotFoundError: Wrong URL or model name.
            LLMResponseError: The reply was not a chat completion.
        """
        payload = self._payload(messages, max_tokens, temperature, stream=False)
        return self._retrying(
            lambda end: _content(_json(self._request("POST", "/chat/completions", payload, end)))
        )

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0
    ) -> Iterator[str]:
        """Yield the reply to ``messages`` in pieces as the server generates them.

        Arguments are checked at once; the request is sent when the first piece is asked for.
        Errors are those of :meth:`complete`. A failure after some text has been yielded is
        raised, never retried, so no piece is ever repeated.
        """
        payload = self._payload(messages, max_tokens, temperature, stream=True)
        return self._stream(payload)

    def _stream(self, payload: bytes) -> Iterator[str]:
        end = time.monotonic() + self.timeout
        for attempt in range(self.max_retries + 1):
            n_pieces = 0
            try:
                with self._exchange("POST", "/chat/completions", payload, end) as exchange:
                    if exchange.content_type == "application/json":  # the server ignored stream
                        yield _content(_json(exchange.read_all()))
                        return
                    for piece in _pieces(exchange.lines()):
                        n_pieces += 1
                        yield piece
                return
            except TransientError as failure:
                if n_pieces:
                    raise LLMUnavailableError(
                        f"{failure.error} (the stream broke after {n_pieces} pieces; not "
                        "retried, so no text is repeated: ask again)"
                    ) from failure.__cause__
                self._pause_or_raise(failure, attempt, end)

    def _retrying(self, attempt_once: Callable[[float], _T]) -> _T:
        end = time.monotonic() + self.timeout
        attempt = 0
        while True:
            try:
                return attempt_once(end)
            except TransientError as failure:
                self._pause_or_raise(failure, attempt, end)
            attempt += 1

    def _pause_or_raise(self, failure: TransientError, attempt: int, end: float) -> None:
        delay = max(self.backoff * 2**attempt, failure.retry_after or 0.0)
        if attempt >= self.max_retries or time.monotonic() + delay >= end:
            tries = f" (after {attempt + 1} attempts)" if attempt else ""
            raise LLMUnavailableError(f"{failure.error}{tries}") from failure.__cause__
        logger.debug("LLM request failed (%s); retrying in %.1f s", failure.error, delay)
        time.sleep(delay)

    def _payload(
        self, messages: Sequence[Message], max_tokens: int, temperature: float, *, stream: bool
    ) -> bytes:
        _check_messages(messages)
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens must be an integer >= 1, got {max_tokens!r}")
        if isinstance(temperature, bool) or not 0.0 <= temperature <= 2.0:
            raise ValueError(f"temperature must be between 0 and 2, got {temperature!r}")
        body = {
            "model": self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "max_tokens": max_tokens,
            "temperature": float(temperature),
            "stream": stream,
        }
        return json.dumps(body, ensure_ascii=False).encode("utf-8")

    def _request(self, method: str, endpoint: str, body: bytes | None, end: float) -> bytes:
        with self._exchange(method, endpoint, body, end) as exchange:
            return exchange.read_all()

    def _exchange(self, method: str, endpoint: str, body: bytes | None, end: float) -> Exchange:
        """Send one request; return it once a 2xx status came back, else raise a mapped error."""
        url = f"{self.base_url}{endpoint}"
        logger.debug("%s %s (model %s)", method, url, self.model)
        connect_timeout = max(0.001, min(self.connect_timeout, end - time.monotonic()))
        conn_type = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = conn_type(self._host, self._port, timeout=connect_timeout)
        exchange = Exchange(conn, url, end, self.timeout)
        headers = {"Accept": "application/json, text/event-stream", "User-Agent": "redbook_qa"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        status = exchange.send(method, self._path + endpoint, body, headers)
        if 200 <= status < 300:
            return exchange
        with exchange:
            try:
                text = exchange.read_all()
            except (LLMError, TransientError):
                text = b""
        raise self._status_error(status, exchange.retry_after, text, url)

    def _status_error(
        self, status: int, retry_after: float | None, body: bytes, url: str
    ) -> Exception:
        detail = _server_message(body)
        if self._api_key:  # some servers echo the key they refused
            detail = detail.replace(self._api_key, "***")
        said = f": {detail[:300]}" if detail else ""
        if status in (401, 403):
            sent = "the API key was refused" if self._api_key else "no API key was sent"
            return LLMAuthError(
                f"HTTP {status} from {url} ({sent}){said}; check OPENAI_API_KEY / "
                "REDBOOK_QA_LLM_API_KEY"
            )
        if status == 404:
            return LLMNotFoundError(
                f"HTTP 404 from {url} for model {self.model!r}{said}; check "
                "REDBOOK_QA_LLM_MODEL and that the URL ends in /v1"
            )
        if status == 429 or status >= 500:
            what = "rate limited" if status == 429 else "server error"
            return TransientError(
                LLMUnavailableError(
                    f"{what} (HTTP {status}) from {url}{said}; wait and try again, "
                    "or check the server's log"
                ),
                retry_after=retry_after,
            )
        return LLMResponseError(
            f"HTTP {status} from {url}{said}; the server rejected the request (a prompt "
            "longer than the model's context? not an OpenAI-compatible server?)"
        )


def _content(body: Any) -> str:
    """Return ``choices[0].message.content`` of a chat completion."""
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as err:
        raise LLMResponseError(
            f"the reply has no choices[0].message.content ({_show(body)}); is the URL an "
            "OpenAI-compatible API ending in /v1?"
        ) from err
    if content is not None and not isinstance(content, str):
        raise LLMResponseError(f"the reply's content is not text: {_show(content)}")
    return content or ""


def _pieces(lines: Iterable[bytes]) -> Iterator[str]:
    """Yield the text of each chat-completion chunk in a server-sent event stream."""
    for data in server_sent_events(lines):
        if data.strip() == "[DONE]":
            return
        event = _json(data.encode("utf-8"))
        if isinstance(event, dict) and "error" in event:
            raise LLMResponseError(f"the server reported an error mid-stream: {_show(event)}")
        try:
            choices = event["choices"]
            content = (choices[0].get("delta") or {}).get("content") if choices else None
        except (KeyError, IndexError, TypeError, AttributeError) as err:
            raise LLMResponseError(f"malformed stream event: {_show(data)}") from err
        if content is not None and not isinstance(content, str):
            raise LLMResponseError(f"malformed stream event: {_show(data)}")
        if content:
            yield content


def _check_messages(messages: Sequence[Message]) -> None:
    if isinstance(messages, str | bytes) or not messages:
        raise ValueError("messages must be a non-empty list of {'role': ..., 'content': ...}")
    for i, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or message.get("role") not in ROLES
            or not isinstance(message.get("content"), str)
        ):
            raise ValueError(
                f"messages[{i}] must be {{'role': one of {ROLES}, 'content': str}}; "
                f"got {message!r:.200}"
            )


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LLMResponseError(
            f"the server's reply is not JSON ({_show(body)}); is the URL an OpenAI-compatible "
            "API ending in /v1?"
        ) from err


def _server_message(body: bytes) -> str:
    """Return the error text an OpenAI-style error body carries, else the body as text."""
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return body.decode("utf-8", errors="replace").strip()
    error = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
    message = error.get("message") or error.get("detail") if isinstance(error, dict) else error
    return str(message or "")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "…"
