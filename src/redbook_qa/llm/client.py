"""A chat client for any OpenAI-compatible server (``/v1/chat/completions``), on the ``openai`` SDK.

The SDK does the HTTP, the server-sent events and the parsing; this module keeps the promises
the SDK does not make. Every call has a hard deadline (``timeout`` seconds, retries and a whole
stream included: :mod:`redbook_qa.llm.deadline`), while the SDK's own timeout bounds each read.
The SDK's retries are off (``max_retries=0``): ours retry connection errors, 5xx and 429 with
exponential backoff, and a stream only before its first piece, so text is never repeated.
Errors say what to do and never show the API key. One client can be shared by threads.

Measured (``benchmarks/bench_llm_client.py``: a local fake server that answers at once, 300
calls, 2 shared cores): the hand-written ``http.client`` + SSE transport this replaced took
1.0-1.7 ms per ``complete`` and 1.3-1.7 ms per 8-piece stream; the SDK takes 2.0-3.1 ms and
3.8-4.3 ms (it builds and validates more, plus a timer thread per request), nothing beside a
model's tens of milliseconds per token. Importing ``openai`` and building a client costs
0.8-0.9 s against 0.3 s, so it happens when a client is built, never on ``import redbook_qa``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

from redbook_qa.errors import LLMResponseError, LLMUnavailableError
from redbook_qa.llm.replies import (
    TransientError,
    parse_completion,
    reply_text,
    show,
    status_error,
    transport_error,
)

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletionChunk

logger = logging.getLogger(__name__)

Message = dict[str, str]
"""One chat message: ``{"role": "system" | "user" | "assistant", "content": text}``."""

ROLES = ("system", "user", "assistant")
INSTALL_HINT = 'pip install "redbook_qa[llm]"'
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

    Raises:
        ImportError: The ``openai`` package is missing (the message says how to install it).
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
        self._api_key = api_key or None
        self._sdk = _sdk_client(self.base_url, self._api_key)
        # The SDK refuses to send a request with no credentials unless told to omit them.
        self._headers = {} if self._api_key else {"Authorization": _omit()}

    @property
    def name(self) -> str:
        """Say which model on which server (never the key)."""
        return f"openai-compatible:{self.model}@{self.base_url}"

    def __repr__(self) -> str:
        return f"OpenAICompatibleClient({self.base_url!r}, {self.model!r})"

    def models(self) -> list[str]:
        """Return the ids of the models the server offers (``GET /models``): a health check."""
        url = f"{self.base_url}/models"
        page = self._retrying(
            url, lambda t: self._sdk.models.list(extra_headers=self._headers, timeout=t)
        )
        data = getattr(page, "data", None)
        if not isinstance(data, list) or not all(
            isinstance(getattr(m, "id", None), str) for m in data
        ):
            raise LLMResponseError(
                f"{self.base_url}/models did not return a model list ({show(page)}); "
                "is this an OpenAI-compatible server?"
            )
        return [m.id for m in data]

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
        params = self._params(messages, max_tokens, temperature)
        create = self._sdk.chat.completions.create
        url = f"{self.base_url}/chat/completions"
        return reply_text(self._retrying(url, lambda t: create(**params, stream=False, timeout=t)))

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0
    ) -> Iterator[str]:
        """Yield the reply to ``messages`` in pieces as the server generates them.

        Arguments are checked at once; the request is sent when the first piece is asked for.
        Errors are those of :meth:`complete`. A failure after some text has been yielded is
        raised, never retried, so no piece is ever repeated.
        """
        return self._stream(self._params(messages, max_tokens, temperature))

    def _stream(self, params: dict[str, Any]) -> Iterator[str]:
        end = time.monotonic() + self.timeout
        create = self._sdk.chat.completions.create
        for attempt in range(self.max_retries + 1):
            n_pieces = 0
            try:
                url = f"{self.base_url}/chat/completions"
                events = self._once(url, end, lambda t: create(**params, stream=True, timeout=t))
                with events:
                    for piece in self._pieces(events, url, end):
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

    def _pieces(
        self, events: openai.Stream[ChatCompletionChunk], url: str, end: float
    ) -> Iterator[str]:
        """Yield the text of each chunk; a server that ignored ``stream`` gives one piece."""
        import openai

        if events.response.headers.get("content-type", "").startswith("application/json"):
            yield reply_text(parse_completion(events.response.read()))
            return
        try:
            for chunk in events:
                content = chunk.choices[0].delta.content if chunk.choices else None
                if content is not None and not isinstance(content, str):
                    raise LLMResponseError(f"malformed stream event: {show(chunk)}")
                if content:
                    yield content
        except openai.APIConnectionError as err:
            raise transport_error(err, url, self.timeout, expired=time.monotonic() >= end) from err
        except openai.APIError as err:
            raise LLMResponseError(
                f"the server reported an error mid-stream: {show(err.body)}"
            ) from None
        except (json.JSONDecodeError, AttributeError, TypeError) as err:
            raise LLMResponseError(
                f"a stream event from {url} is not JSON of a chat chunk ({err}); is the URL an "
                "OpenAI-compatible API ending in /v1?"
            ) from err

    def _retrying(self, url: str, send: Callable[[openai.Timeout], _T]) -> _T:
        end = time.monotonic() + self.timeout
        attempt = 0
        while True:
            try:
                return self._once(url, end, send)
            except TransientError as failure:
                self._pause_or_raise(failure, attempt, end)
            attempt += 1

    def _once(self, url: str, end: float, send: Callable[[openai.Timeout], _T]) -> _T:
        """Send one request with the call's time left as its timeout; map the SDK's errors."""
        import openai

        left = end - time.monotonic()
        logger.debug("%s (model %s, %.1f s left)", url, self.model, left)
        try:
            if left <= 0:
                raise TimeoutError("deadline passed")
            return send(openai.Timeout(left, connect=min(self.connect_timeout, left)))
        except openai.APIStatusError as err:
            # Raised from None: the SDK's message quotes the server, which may echo the key.
            raise status_error(err, url, self.model, self._api_key) from None
        except (openai.APIConnectionError, TimeoutError) as err:
            raise transport_error(err, url, self.timeout, expired=time.monotonic() >= end) from err

    def _pause_or_raise(self, failure: TransientError, attempt: int, end: float) -> None:
        delay = max(self.backoff * 2**attempt, failure.retry_after or 0.0)
        if attempt >= self.max_retries or time.monotonic() + delay >= end:
            tries = f" (after {attempt + 1} attempts)" if attempt else ""
            raise LLMUnavailableError(f"{failure.error}{tries}") from failure.__cause__
        logger.debug("LLM request failed (%s); retrying in %.1f s", failure.error, delay)
        time.sleep(delay)

    def _params(
        self, messages: Sequence[Message], max_tokens: int, temperature: float
    ) -> dict[str, Any]:
        _check_messages(messages)
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens must be an integer >= 1, got {max_tokens!r}")
        if isinstance(temperature, bool) or not 0.0 <= temperature <= 2.0:
            raise ValueError(f"temperature must be between 0 and 2, got {temperature!r}")
        return {
            "model": self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "max_tokens": max_tokens,
            "temperature": float(temperature),
            "extra_headers": self._headers,
        }


def _sdk_client(base_url: str, api_key: str | None) -> openai.OpenAI:
    """Build the SDK client: our deadline transport, no SDK retries, nothing read from the env."""
    try:
        import openai

        from redbook_qa.llm.deadline import DeadlineTransport
    except ImportError as err:
        raise ImportError(
            f"generated answers need the openai package ({err.name} is missing); {INSTALL_HINT}"
        ) from err
    # Every credential is given, so that the SDK reads none from the environment (components
    # never do); without a key, each request omits the Authorization header (see _params).
    return openai.OpenAI(
        base_url=base_url,
        api_key=api_key or "",
        admin_api_key="",
        organization="",
        project="",
        webhook_secret="",
        max_retries=0,
        http_client=openai.DefaultHttpx2Client(transport=DeadlineTransport()),
    )


def _omit() -> Any:
    import openai

    return openai.omit


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
