"""HTTP to an LLM server with a hard deadline, and server-sent events (standard library only).

:class:`Exchange` is one request and its response: every socket read waits at most the time left,
and a timer shuts the socket at the deadline, so a server that hangs or trickles bytes forever
cannot hold the caller past it. Failures worth retrying (connection refused, 5xx, 429) come back as
:class:`TransientError`; :mod:`redbook_qa.llm.client` decides whether to retry.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from redbook_qa.errors import LLMResponseError, LLMUnavailableError

if TYPE_CHECKING:
    from types import TracebackType

MAX_BODY_BYTES = 16 * 1024 * 1024  # a completion is text; anything this big is not one
START_HINT = "start one with `make run-local-llm` or set REDBOOK_QA_LLM_BASE_URL"


class TransientError(Exception):
    """A failure worth retrying; carries the error to raise once the retries run out."""

    def __init__(self, error: LLMUnavailableError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class Exchange:
    """One HTTP request and its response, cut off at a hard deadline.

    Each socket read waits at most the time left; a timer also shuts the socket down at the
    deadline, so a server that trickles bytes forever cannot hold the caller past it.
    """

    def __init__(
        self, conn: http.client.HTTPConnection, url: str, end: float, budget: float
    ) -> None:
        self.url = url
        self.retry_after: float | None = None
        self.content_type = ""
        self._expired = False
        self._conn, self._end, self._budget = conn, end, budget
        self._sock: socket.socket | None = None
        self._response: http.client.HTTPResponse | None = None
        self._timer: threading.Timer | None = None

    def send(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> int:
        """Connect, send the request, read the status line and headers; return the status."""
        try:
            self._conn.connect()
            self._sock = self._conn.sock
            self._timer = threading.Timer(max(0.0, self._end - time.monotonic()), self._cut)
            self._timer.daemon = True
            self._timer.start()
            self._tighten()
            self._conn.request(method, target, body=body, headers=headers)
            self._tighten()
            self._response = self._conn.getresponse()
        except (OSError, http.client.HTTPException) as err:
            self.close()
            raise self._transport_error(err) from err
        self.retry_after = retry_after_seconds(self._response.getheader("Retry-After"))
        content_type = self._response.getheader("Content-Type") or ""
        self.content_type = content_type.split(";")[0].strip().lower()
        return self._response.status

    def read_all(self) -> bytes:
        """Read the whole body."""
        chunks: list[bytes] = []
        size = 0
        while chunk := self._read1():
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise LLMResponseError(f"the reply from {self.url} is over {MAX_BODY_BYTES} bytes")
        return b"".join(chunks)

    def lines(self) -> Iterator[bytes]:
        """Yield the body's lines as they arrive, without line endings."""
        buffer = b""
        while chunk := self._read1():
            *lines, buffer = (buffer + chunk).split(b"\n")
            yield from (line.rstrip(b"\r") for line in lines)
            if len(buffer) > MAX_BODY_BYTES:
                raise LLMResponseError(f"a line of the stream from {self.url} is too long")
        if buffer:
            yield buffer.rstrip(b"\r")

    def close(self) -> None:
        """Stop the timer and close the connection (safe to call twice)."""
        if self._timer is not None:
            self._timer.cancel()
        if self._response is not None:
            self._response.close()
        self._conn.close()

    def __enter__(self) -> Exchange:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _read1(self) -> bytes:
        if self._response is None:
            raise RuntimeError("send() the request before reading its reply")
        try:
            self._tighten()
            chunk = self._response.read1(65536)
        except (OSError, http.client.HTTPException) as err:
            raise self._transport_error(err) from err
        if not chunk and (self._expired or time.monotonic() >= self._end):
            raise self._transport_error(TimeoutError("deadline passed"))
        return chunk

    def _tighten(self) -> None:
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        if self._sock is not None:
            self._sock.settimeout(left)

    def _cut(self) -> None:
        self._expired = True
        if self._sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing left to interrupt
                self._sock.shutdown(socket.SHUT_RDWR)

    def _transport_error(self, err: BaseException) -> Exception:
        if isinstance(err, TimeoutError) or self._expired or time.monotonic() >= self._end:
            return LLMUnavailableError(
                f"no complete reply from {self.url} within {self._budget:g} s (timed out): the "
                "server may be overloaded or the model too slow; ask for fewer tokens, raise "
                "REDBOOK_QA_LLM_TIMEOUT, or check the server"
            )
        if isinstance(err, socket.gaierror):
            return LLMUnavailableError(
                f"cannot resolve the host of {self.url} ({err.strerror}); check "
                "REDBOOK_QA_LLM_BASE_URL"
            )
        if isinstance(err, ConnectionRefusedError):
            what = "connection refused"
        else:
            what = f"connection failed ({type(err).__name__}: {err})"
        return TransientError(
            LLMUnavailableError(f"{what} at {self.url}: is the server running? {START_HINT}")
        )


def server_sent_events(lines: Iterable[bytes]) -> Iterator[str]:
    """Yield the data of each server-sent event (``data:`` lines up to a blank line)."""
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8", errors="replace")
        if not line:
            if data:
                yield "\n".join(data)
            data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif not line.startswith((":", "event:", "id:", "retry:")):
            raise LLMResponseError(f"malformed stream line (not server-sent events): {line!r:.200}")
    if data:
        yield "\n".join(data)


def retry_after_seconds(header: str | None) -> float | None:
    """Read a ``Retry-After`` header given in seconds (capped at a minute)."""
    try:
        return min(max(float(header), 0.0), 60.0) if header else None
    except ValueError:
        return None  # an HTTP date: fall back to exponential backoff
