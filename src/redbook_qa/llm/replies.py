"""What an LLM server's reply means: the text it carries, or our error and whether to retry.

The ``openai`` SDK raises its own exceptions, whose messages quote the server (which may echo a
refused API key) and do not say what to do; these functions turn them into the
:mod:`redbook_qa.errors` hierarchy with messages that name the setting to change.
"""

from __future__ import annotations

import json
import socket
from typing import TYPE_CHECKING

from redbook_qa.errors import (
    LLMAuthError,
    LLMError,
    LLMNotFoundError,
    LLMResponseError,
    LLMUnavailableError,
)

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletion

START_HINT = "start one with `make run-local-llm` or set REDBOOK_QA_LLM_BASE_URL"


class TransientError(Exception):
    """A failure worth retrying; carries the error to raise once the retries run out."""

    def __init__(self, error: LLMUnavailableError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def status_error(
    err: openai.APIStatusError, url: str, model: str, api_key: str | None
) -> LLMError | TransientError:
    """Map an HTTP error status to our error (5xx and 429 are :class:`TransientError`)."""
    status = err.status_code
    detail = _server_message(err.body) or err.response.text.strip()
    if api_key:  # some servers echo the key they refused
        detail = detail.replace(api_key, "***")
    said = f": {detail[:300]}" if detail else ""
    if status in (401, 403):
        sent = "the API key was refused" if api_key else "no API key was sent"
        return LLMAuthError(
            f"HTTP {status} from {url} ({sent}){said}; check OPENAI_API_KEY / "
            "REDBOOK_QA_LLM_API_KEY"
        )
    if status == 404:
        return LLMNotFoundError(
            f"HTTP 404 from {url} for model {model!r}{said}; check "
            "REDBOOK_QA_LLM_MODEL and that the URL ends in /v1"
        )
    if status == 429 or status >= 500:
        what = "rate limited" if status == 429 else "server error"
        return TransientError(
            LLMUnavailableError(
                f"{what} (HTTP {status}) from {url}{said}; wait and try again, "
                "or check the server's log"
            ),
            retry_after=retry_after_seconds(err.response.headers.get("Retry-After")),
        )
    return LLMResponseError(
        f"HTTP {status} from {url}{said}; the server rejected the request (a prompt "
        "longer than the model's context? not an OpenAI-compatible server?)"
    )


def transport_error(
    err: BaseException, url: str, budget: float, *, expired: bool
) -> LLMUnavailableError | TransientError:
    """Map a failure to connect or to read (or the deadline passing) to our error."""
    import openai  # only ever called with one of its errors in hand, so already imported

    if expired or isinstance(err, TimeoutError | openai.APITimeoutError):
        return LLMUnavailableError(
            f"no complete reply from {url} within {budget:g} s (timed out): the server may be "
            "overloaded or the model too slow; ask for fewer tokens, raise "
            "REDBOOK_QA_LLM_TIMEOUT, or check the server"
        )
    causes = _causes(err)
    if any(isinstance(c, socket.gaierror) for c in causes):
        return LLMUnavailableError(
            f"cannot resolve the host of {url}; check REDBOOK_QA_LLM_BASE_URL"
        )
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        what = "connection refused"
    else:
        root = causes[-1]
        what = f"connection failed ({type(root).__name__}: {root})"
    return TransientError(
        LLMUnavailableError(f"{what} at {url}: is the server running? {START_HINT}")
    )


def retry_after_seconds(header: str | None) -> float | None:
    """Read a ``Retry-After`` header given in seconds (capped at a minute)."""
    try:
        return min(max(float(header), 0.0), 60.0) if header else None
    except ValueError:
        return None  # an HTTP date: fall back to exponential backoff


def _causes(err: BaseException) -> list[BaseException]:
    """The chain of causes, outermost first (httpx2 wraps the socket's own error)."""
    chain: list[BaseException] = []
    cause: BaseException | None = err
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    return chain


def _server_message(body: object) -> str:
    """Return the error text an OpenAI-style error body carries, else the body as text."""
    if isinstance(body, str | bytes):
        try:
            body = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
            return text.strip()
    error = body.get("error", body) if isinstance(body, dict) else body
    message = error.get("message") or error.get("detail") if isinstance(error, dict) else error
    return str(message or "")


def reply_text(completion: ChatCompletion | str) -> str:
    """Return ``choices[0].message.content`` of a chat completion."""
    if isinstance(completion, str):  # the SDK hands back a body it could not read as JSON
        raise LLMResponseError(
            f"the server's reply is not JSON ({show(completion)}); is the URL an "
            "OpenAI-compatible API ending in /v1?"
        )
    try:
        content = completion.choices[0].message.content
    except (AttributeError, IndexError, TypeError) as err:
        raise LLMResponseError(
            f"the reply has no choices[0].message.content ({show(completion)}); is the URL an "
            "OpenAI-compatible API ending in /v1?"
        ) from err
    if content is not None and not isinstance(content, str):
        raise LLMResponseError(f"the reply's content is not text: {show(content)}")
    return content or ""


def parse_completion(body: bytes) -> ChatCompletion | str:
    """Read a JSON chat completion; a body that is not JSON comes back as text."""
    from openai.types.chat import ChatCompletion

    try:
        return ChatCompletion.construct(**json.loads(body))
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError):
        return body.decode("utf-8", errors="replace")


def show(value: object) -> str:
    """Return a short ``repr`` of ``value`` for an error message."""
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "…"
