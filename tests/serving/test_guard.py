"""The front door of both servers, driven as an ASGI server would drive it: Host, Origin and
body size are checked before the app behind it runs, and a body is never read past its limit."""

from __future__ import annotations

import asyncio
import json

import pytest

from redbook_qa.serving.guard import Guard, allowed_names

LOOPBACK = allowed_names()


class _App:
    """An app that reads the whole body and answers 200 with its length; counts its calls."""

    def __init__(self):
        self.calls = 0

    async def __call__(self, scope, receive, send):
        self.calls += 1
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise OSError("client went away")  # as a framework would, mid-body
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})


def _call(guard, *, host="127.0.0.1:7860", headers=(), chunks=(), path="/ask"):
    """Run one request through ``guard``; return status, headers, body and chunks pulled."""
    pulled = 0
    chunks = list(chunks)

    async def receive():
        nonlocal pulled
        if pulled < len(chunks):
            pulled += 1
            return {"type": "http.request", "body": chunks[pulled - 1], "more_body": True}
        return {"type": "http.request", "body": b"", "more_body": False}

    sent = []

    async def send(message):
        sent.append(message)

    raw = [(b"host", host.encode())] if host is not None else []
    raw += [(k.encode(), v.encode()) for k, v in headers]
    scope = {"type": "http", "method": "POST", "path": path, "headers": raw}
    asyncio.run(guard(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body, pulled


@pytest.fixture
def app():
    return _App()


@pytest.mark.parametrize("host", ["127.0.0.1:7860", "localhost", "LocalHost.:80", "[::1]:7860"])
def test_loopback_names_are_served_on_any_port(app, host):
    status, _, body, _ = _call(Guard(app, hosts=LOOPBACK), host=host, chunks=[b"{}"])
    assert (status, body) == (200, b"2")


@pytest.mark.parametrize("host", ["evil.example:7860", "127.0.0.1.evil.example", "", None])
def test_a_request_naming_another_host_gets_a_403_and_never_reaches_the_app(app, host):
    status, headers, body, pulled = _call(Guard(app, hosts=LOOPBACK), host=host)
    assert status == 403
    assert "--allowed-host" in json.loads(body)["detail"]
    assert (app.calls, pulled) == (0, 0)
    assert b"access-control-allow-origin" not in headers


def test_names_a_deployment_serves_can_be_added_and_the_bound_address_counts(app):
    hosts = allowed_names(["qa.example.com", " "], bound_to="10.0.0.5")
    guard = Guard(app, hosts=hosts)
    assert _call(guard, host="QA.example.com:443")[0] == 200
    assert _call(guard, host="10.0.0.5:7860")[0] == 200
    assert _call(guard, host="evil.example")[0] == 403
    assert "0.0.0.0" not in allowed_names(bound_to="0.0.0.0"), "a wildcard names nothing"
    assert _call(Guard(app, hosts=allowed_names(["*"])), host="anything.example")[0] == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1.evil.example"])
def test_a_page_of_another_site_gets_a_403_and_no_cors_header(app, origin):
    status, headers, body, _ = _call(Guard(app, hosts=LOOPBACK), headers=[("Origin", origin)])
    assert status == 403
    assert "only pages this server serves may call it" in json.loads(body)["detail"]
    assert b"access-control-allow-origin" not in headers
    assert app.calls == 0


def test_the_servers_own_pages_may_call_it(app):
    guard = Guard(app, hosts=LOOPBACK)
    assert _call(guard, headers=[("Origin", "http://127.0.0.1:7860")], chunks=[b"x"])[0] == 200
    assert _call(guard, headers=[("Origin", "http://localhost:7860")], chunks=[b"x"])[0] == 200


def test_a_body_declared_over_the_limit_is_refused_before_a_byte_is_read(app):
    guard = Guard(app, hosts=LOOPBACK, max_body_bytes=1_000)
    declared = [("Content-Length", str(300_000_000))]
    status, _, body, pulled = _call(guard, headers=declared, chunks=[b"x" * 1_000] * 5)
    assert status == 413
    assert "300000000 bytes" in json.loads(body)["detail"]
    assert "REDBOOK_QA_MAX_REQUEST_BYTES" in json.loads(body)["detail"]
    assert (app.calls, pulled) == (0, 0)


def test_a_body_sent_in_chunks_is_refused_at_the_first_chunk_past_the_limit(app):
    guard = Guard(app, hosts=LOOPBACK, max_body_bytes=10_000)
    status, _, body, pulled = _call(guard, chunks=[b"x" * 4_000] * 1_000)  # 4 MB in all
    assert status == 413, body
    assert "more than 10,000 bytes" in json.loads(body)["detail"]
    assert pulled == 3, "read until the limit was passed, then no more"


def test_the_upload_route_may_take_a_larger_body(app):
    guard = Guard(app, hosts=LOOPBACK, max_body_bytes=1_000, larger_bodies={"/upload": 50_000})
    chunks = [b"x" * 10_000] * 3
    assert _call(guard, path="/upload", chunks=chunks)[0] == 200
    status, _, body, _ = _call(guard, path="/upload", chunks=chunks * 2)
    assert status == 413
    assert "REDBOOK_QA_MAX_UPLOAD_REQUEST_BYTES" in json.loads(body)["detail"]
    assert _call(guard, path="/ask", chunks=chunks)[0] == 413


def test_a_websocket_naming_another_host_is_closed_before_the_app_sees_it(app):
    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "websocket.connect"}

    scope = {"type": "websocket", "path": "/ws", "headers": [(b"host", b"evil.example")]}
    asyncio.run(Guard(app, hosts=LOOPBACK)(scope, receive, send))
    assert sent[0]["type"] == "websocket.close"
    assert app.calls == 0
