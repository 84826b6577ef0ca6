"""A hard deadline over a whole HTTP exchange, which the SDK's per-read timeouts cannot give.

httpx2 (the ``openai`` SDK's HTTP library) applies its read timeout to each socket read, so a
server that trickles a keep-alive comment every second holds a stream open for ever. The client
sends every request with its timeout set to the time left of the call; :class:`DeadlineTransport`
reads that back and shuts the socket down when it runs out, which wakes a read blocked in the
kernel (closing the socket would not). The SDK then sees a read error and the client, finding
the deadline passed, reports a timeout.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2


class DeadlineTransport(httpx2.HTTPTransport):
    """Send requests as httpx2 does, but cut each exchange off when its timeout runs out.

    The cut-off is ``timeout["read"]`` seconds after the request is handed over, connecting,
    waiting for the status line and reading the whole body (or stream) included.
    """

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send ``request``; arm a timer that shuts its socket at the deadline."""
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        budget = timeouts.get("read")
        end = None if budget is None else time.monotonic() + budget
        response = super().handle_request(request)
        if end is None:
            return response
        content_type = response.headers.get("content-type", "")
        response.stream = _TimedStream(
            response.stream,
            _socket_of(response),
            end - time.monotonic(),
            is_event_stream=content_type.startswith("text/event-stream"),
        )
        return response


class _TimedStream(httpx2.SyncByteStream):
    """A response body that ends in a timeout at the deadline, and in an error when cut.

    A body delimited by the connection closing (no ``Content-Length``, not chunked) looks whole
    however it ends; an event stream is whole only if it ends with a line break.
    """

    def __init__(
        self, stream: Any, sock: socket.socket | None, left: float, *, is_event_stream: bool
    ) -> None:
        self._stream, self._is_event_stream = stream, is_event_stream
        self._expired = threading.Event()
        self._timer = threading.Timer(max(0.0, left), self._cut, (sock,))
        self._timer.daemon = True
        self._timer.start()

    def __iter__(self) -> Iterator[bytes]:
        last = b""
        try:
            for chunk in self._stream:
                last = chunk or last
                yield chunk
        except httpx2.TransportError as err:
            if self._expired.is_set():
                raise httpx2.ReadTimeout("the call's deadline passed") from err
            raise
        if self._expired.is_set():
            raise httpx2.ReadTimeout("the call's deadline passed")
        if self._is_event_stream and last and not last.endswith(b"\n"):
            raise httpx2.RemoteProtocolError("the event stream ended in the middle of an event")

    def close(self) -> None:
        self._timer.cancel()
        self._stream.close()

    def _cut(self, sock: socket.socket | None) -> None:
        self._expired.set()
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing left to interrupt
                sock.shutdown(socket.SHUT_RDWR)


def _socket_of(response: httpx2.Response) -> socket.socket | None:
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    return sock if isinstance(sock, socket.socket) else None
