"""The servers' front door: the Host and Origin a request names, and how much body it sends.

Both servers (the page and ``redbook-qa api``) sit behind :class:`Guard`, a plain ASGI
wrapper that runs before any route, login or body parsing:

- **Host**: a request must name this server as one of its names (loopback by default:
  ``127.0.0.1``, ``localhost``, ``[::1]``, any port), so a page whose DNS name was rebound to
  127.0.0.1 gets a 403 and nothing else.
- **Origin**: a request a browser sends from another site (``Origin: http://evil.example``)
  gets a 403 before it can upload or ask, and no ``Access-Control-Allow-Origin`` is ever
  sent for such a site.
- **Body**: a body larger than its route allows is refused with a 413 from its
  ``Content-Length``, or, sent in chunks, at the first byte past the limit; the rest is
  never read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from redbook_qa.config import MAX_REQUEST_BYTES

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
"""The names a server answers to unless told more (``--allowed-host``)."""
ANY_HOST = "*"
"""An allowed name that turns the Host and Origin checks off (behind a proxy that checks)."""
_WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")
_SETTING = "REDBOOK_QA_MAX_REQUEST_BYTES"
_UPLOAD_SETTING = "REDBOOK_QA_MAX_UPLOAD_REQUEST_BYTES"


def allowed_names(extra: Iterable[str] = (), *, bound_to: str = "") -> frozenset[str]:
    """The host names a server answers to: loopback, ``extra``, and the address it binds.

    Names are compared lower-case, without a port or the brackets of an IPv6 address. A
    wildcard bind address (``0.0.0.0``) names nothing: pass the names clients use.
    """
    names = {*LOOPBACK_HOSTS, *(_bare(name) for name in extra if name.strip())}
    if bound_to not in _WILDCARD_ADDRESSES:
        names.add(_bare(bound_to))
    if ANY_HOST in names:
        logger.warning("any Host is allowed (%s): DNS rebinding is not guarded against", ANY_HOST)
    return frozenset(names)


class Guard:
    """Check Host, Origin and body size before ``app`` sees a request (see the module).

    Args:
        app: The ASGI application behind the door.
        hosts: The names this server answers to (see :func:`allowed_names`).
        max_body_bytes: The largest body a request may send.
        larger_bodies: Paths allowed a larger body (the page's upload route), and how large.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        hosts: frozenset[str],
        max_body_bytes: int = MAX_REQUEST_BYTES,
        larger_bodies: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.hosts = hosts
        self.max_body_bytes = max_body_bytes
        self.larger_bodies = dict(larger_bodies or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the request, or refuse it with a 403 or 413 that says why."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {key.lower(): value for key, value in scope.get("headers", ())}
        refusal = self._refusal(headers)
        if refusal is not None:
            await _refuse(scope, send, 403, refusal)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self.larger_bodies.get(path, self.max_body_bytes)
        setting = _UPLOAD_SETTING if path in self.larger_bodies else _SETTING
        declared = headers.get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > limit:
            size = declared.decode("latin-1")
            await _refuse(scope, send, 413, _too_large(size, limit, setting))
            return
        await self._bounded(scope, receive, send, limit, setting)

    def _refusal(self, headers: Mapping[bytes, bytes]) -> str | None:
        if ANY_HOST in self.hosts:
            return None
        host = headers.get(b"host", b"").decode("latin-1")
        if _bare(host) not in self.hosts:
            return (
                f"this server answers to {', '.join(sorted(self.hosts))}, not Host {host!r}; "
                "if that is its name, start it with --allowed-host NAME "
                "(or REDBOOK_QA_ALLOWED_HOSTS)"
            )
        origin = headers.get(b"origin")
        if origin is not None and _origin_name(origin.decode("latin-1")) not in self.hosts:
            return (
                f"requests from the web page at {origin.decode('latin-1')!r} are refused: "
                "only pages this server serves may call it"
            )
        return None

    async def _bounded(
        self, scope: Scope, receive: Receive, send: Send, limit: int, setting: str
    ) -> None:
        # A body sent without a length (chunked) is counted as it comes; at the first byte
        # past the limit the app is told the client left, its reply is dropped, ours is sent.
        received = 0
        over = False
        started = False

        async def counted() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def unless_over(message: Message) -> None:
            nonlocal started
            if over and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, unless_over)
        except Exception:
            if not over:
                raise
        if over and not started:
            await _refuse(scope, send, 413, _too_large(f"more than {limit:,}", limit, setting))


def _bare(host: str) -> str:
    # "Example.COM:8080" -> "example.com"; "[::1]:7860" -> "::1"; a trailing dot goes too.
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _origin_name(origin: str) -> str:
    try:
        return (urlsplit(origin).hostname or "").rstrip(".")  # "null" has none: refused
    except ValueError:
        return ""


def _too_large(size: str, limit: int, setting: str) -> str:
    return (
        f"the request body ({size} bytes) is over the {limit:,} bytes this server reads; "
        f"send less (a question is at most a few thousand characters), or raise {setting}"
    )


async def _refuse(scope: Scope, send: Send, status: int, detail: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})
        return
    body = json.dumps({"detail": detail}).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    logger.debug("refused a request (%d): %s", status, detail)
