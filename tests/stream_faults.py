"""A loopback proxy in front of an OpenAI-compatible server that breaks its streams on request.

Fault tests put it between the client and the real bundled LLM server, so that the fault lands
where the test says, after exactly ``after`` streamed pieces of text, however fast the CPU
writes them: ``"drop"`` ends the connection in the middle of the chunked body (what a client
sees when the server is killed mid-answer), ``"stall"`` keeps it open and silent until the
test ends. ``on_fault`` runs at that moment (``server.stop`` kills the real server there).
Everything else (``/v1/models``, whole completions) passes through untouched.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlsplit

Fault = Literal["drop", "stall"]
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class StreamFault(ThreadingHTTPServer):
    """Relay requests to ``upstream``; break an event stream after ``after`` text pieces.

    Args:
        upstream: The real server's API root (``http://127.0.0.1:PORT/v1``).
        after: Text pieces relayed before the fault (at least 1).
        fault: ``"drop"`` cuts the connection; ``"stall"`` goes silent until :meth:`close`.
        on_fault: Called once, just after the last piece is relayed and before the fault.
    """

    daemon_threads = True

    def __init__(
        self,
        upstream: str,
        *,
        after: int,
        fault: Fault = "drop",
        on_fault: Callable[[], object] | None = None,
    ) -> None:
        if after < 1:
            raise ValueError(f"after must be >= 1 piece, got {after}")
        super().__init__(("127.0.0.1", 0), _Relay)
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.prefix = parts.path.rstrip("/")
        self.after, self.fault, self.on_fault = after, fault, on_fault
        self.relayed: list[str] = []  # the text pieces the client was given
        self.faulted = threading.Event()
        self.released = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        """The proxy's API root, to give the client instead of the real server's."""
        return f"http://127.0.0.1:{self.server_address[1]}{self.prefix}"

    def describe(self) -> str:
        """One line for a failing assertion: what the proxy did."""
        state = f"{self.fault} after {self.after}" if self.faulted.is_set() else "no fault"
        return f"proxy relayed {len(self.relayed)} pieces {self.relayed!r}; {state}"

    def __enter__(self) -> StreamFault:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self.shutdown()
        self.server_close()


class _Relay(BaseHTTPRequestHandler):
    server: StreamFault
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._relay()

    def do_POST(self) -> None:
        self._relay()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=600)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            if response.getheader("Content-Type", "").startswith("text/event-stream"):
                self._relay_events(response)
            else:
                data = response.read()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
        finally:
            upstream.close()

    def _relay_events(self, response: http.client.HTTPResponse) -> None:
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        event = b""
        while line := response.readline():
            event += line
            if line.strip():
                continue
            self._chunk(event)
            piece = _text_of(event)
            event = b""
            if piece:
                self.server.relayed.append(piece)
                if len(self.server.relayed) == self.server.after:
                    self._break()
                    return
        self._chunk(event)
        self.wfile.write(b"0\r\n\r\n")  # a whole stream: the upstream finished first

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def _break(self) -> None:
        server = self.server
        server.faulted.set()
        if server.on_fault is not None:
            server.on_fault()
        if server.fault == "stall":
            server.released.wait(600)
        # Close with no closing chunk: the body ends mid-stream, as when the server dies.
        self.close_connection = True


def _text_of(event: bytes) -> str:
    """The text piece an SSE event carries (``choices[0].delta.content``), or ``""``."""
    for line in event.decode("utf-8", errors="replace").splitlines():
        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
            continue
        with contextlib.suppress(ValueError, LookupError, TypeError):
            return str(json.loads(line[5:])["choices"][0]["delta"].get("content") or "")
    return ""
