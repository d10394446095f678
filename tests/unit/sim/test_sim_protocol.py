"""The simulator's HTTP/1.1 server, driven through a fake transport: framing, pipelining,
partial reads, keep-alive, errors, disconnects, flow control and what is counted."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import httptools
import pytest

from gameday.sim.metrics import EXCLUDED_HANDLERS, HttpStats
from gameday.sim.protocol import HttpConnection, HttpServer, Request, Router, chunk


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.closed = False
        self.reading = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "write after close"
        self.out += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def take(self) -> bytes:
        out = bytes(self.out)
        self.out.clear()
        return re.sub(rb"date: [^\r]*\r\n", b"", out)


def respond_text(text: bytes) -> Callable[[Request], None]:
    def handler(req: Request) -> None:
        req.respond(200, b"content-length: %d\r\n" % len(text), text)

    return handler


class Held:
    """Handlers that answer later, as the engine does."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.disconnected: list[Request] = []

    def __call__(self, req: Request) -> None:
        self.requests.append(req)
        req.on_disconnect = lambda: self.disconnected.append(req)


def make(held: Held | None = None) -> tuple[HttpConnection, FakeTransport, HttpStats]:
    router = Router(uncounted=EXCLUDED_HANDLERS)
    router.add("/health", ["GET"], respond_text(b""), lean=False)
    router.add("/v1/models", ["GET"], respond_text(b"models"), lean=False)
    router.add("/echo", ["POST"], lambda req: req.respond(
        200, b"content-length: %d\r\n" % len(req.body), req.body), lean=True)  # fmt: skip
    router.add("/held", ["POST"], held or Held(), lean=True)

    def boom(req: Request) -> None:
        raise RuntimeError("boom")

    router.add("/boom", ["GET"], boom, lean=False)
    stats = HttpStats()
    server = HttpServer(router, stats)
    server.default_headers = b"server: uvicorn\r\n"
    conn = HttpConnection(server)
    transport = FakeTransport()
    conn.connection_made(transport)
    return conn, transport, stats


def post(path: bytes, body: bytes, *extra: bytes) -> bytes:
    head = b"POST %b HTTP/1.1\r\nHost: sim\r\n" % path + b"".join(h + b"\r\n" for h in extra)
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def test_keep_alive_responses_in_order_even_fed_byte_by_byte() -> None:
    conn, transport, _ = make()
    data = post(b"/echo", b'{"a": 1}') + b"GET /v1/models HTTP/1.1\r\nHost: sim\r\n\r\n"
    for i in range(len(data)):
        conn.data_received(data[i : i + 1])
    assert transport.take() == (
        b"HTTP/1.1 200 OK\r\nserver: uvicorn\r\ncontent-length: 8\r\n\r\n"
        b'{"a": 1}'
        b"HTTP/1.1 200 OK\r\nserver: uvicorn\r\ncontent-length: 6\r\n\r\nmodels"
    )
    assert not transport.closed


def test_a_pipelined_request_waits_for_the_one_in_flight() -> None:
    held = Held()
    conn, transport, _ = make(held)
    conn.data_received(post(b"/held", b"1") + b"GET /health HTTP/1.1\r\n\r\n")
    assert transport.take() == b""  # /health is not answered before /held
    (first,) = held.requests
    first.respond(200, b"content-length: 4\r\n", b"held")
    assert transport.take() == (
        b"HTTP/1.1 200 OK\r\nserver: uvicorn\r\ncontent-length: 4\r\n\r\nheld"
        b"HTTP/1.1 200 OK\r\nserver: uvicorn\r\ncontent-length: 0\r\n\r\n"
    )


def test_too_many_pipelined_requests_pause_reading() -> None:
    held = Held()
    conn, transport, _ = make(held)
    conn.data_received(post(b"/held", b"x") * 20)
    assert not transport.reading
    for _ in range(20):
        held.requests[-1].respond(200, b"content-length: 0\r\n")
    assert transport.reading and len(held.requests) == 20


def test_chunked_body_and_expect_100_continue() -> None:
    conn, transport, _ = make()
    conn.data_received(
        b"POST /echo HTTP/1.1\r\nHost: sim\r\nExpect: 100-continue\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    assert transport.take() == b"HTTP/1.1 100 Continue\r\n\r\n"
    conn.data_received(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    assert transport.take().endswith(b"content-length: 5\r\n\r\nabcde")


def test_http_1_0_and_connection_close_end_the_connection() -> None:
    for request in (
        b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\nGET /health HTTP/1.1\r\n\r\n",
    ):
        conn, transport, _ = make()
        conn.data_received(request)
        assert transport.take() == (
            b"HTTP/1.1 200 OK\r\nserver: uvicorn\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
        assert transport.closed


def test_a_malformed_request_is_uvicorns_400(caplog: pytest.LogCaptureFixture) -> None:
    conn, transport, stats = make()
    conn.data_received(b"HELLO\r\n\r\n")
    assert transport.take() == (
        b"HTTP/1.1 400 Bad Request\r\nserver: uvicorn\r\n"
        b"content-type: text/plain; charset=utf-8\r\ncontent-length: 30\r\n"
        b"connection: close\r\n\r\nInvalid HTTP request received."
    )
    assert transport.closed and stats.requests == {}


def test_fastapi_answers_for_unknown_paths_and_methods() -> None:
    conn, transport, _ = make()
    conn.data_received(b"GET /nowhere HTTP/1.1\r\n\r\n")
    assert transport.take().endswith(
        b"404 Not Found\r\nserver: uvicorn\r\ncontent-length: 22\r\n"
        b'content-type: application/json\r\n\r\n{"detail":"Not Found"}'
    )
    conn.data_received(post(b"/health", b""))
    assert transport.take().endswith(
        b"405 Method Not Allowed\r\nserver: uvicorn\r\nallow: HEAD, GET\r\ncontent-length: 31\r\n"
        b'content-type: application/json\r\n\r\n{"detail":"Method Not Allowed"}'
    )
    # Served in front of FastAPI before: other methods were FastAPI's 404.
    conn.data_received(b"GET /echo HTTP/1.1\r\n\r\n")
    assert b"404 Not Found" in transport.take()
    conn.data_received(b"GET /v1/models/?x=1 HTTP/1.1\r\nHost: sim:8000\r\n\r\n")
    assert transport.take() == (
        b"HTTP/1.1 307 Temporary Redirect\r\nserver: uvicorn\r\ncontent-length: 0\r\n"
        b"location: http://sim:8000/v1/models?x=1\r\n\r\n"
    )
    conn.data_received(b"HEAD /v1/models HTTP/1.1\r\n\r\n")
    assert transport.take() == b"HTTP/1.1 200 OK\r\nserver: uvicorn\r\ncontent-length: 6\r\n\r\n"
    conn.data_received(b"GET /v1/%6Dodels?q HTTP/1.1\r\n\r\n")
    assert transport.take().endswith(b"\r\n\r\nmodels")


def test_every_response_is_counted_by_status_class_even_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    held = Held()
    conn, transport, stats = make(held)
    for request in (
        b"GET /v1/models HTTP/1.1\r\n\r\n",
        b"POST /v1/models HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        b"GET /nowhere HTTP/1.1\r\n\r\n",
        b"GET /health HTTP/1.1\r\n\r\n",  # left out, as vLLM's instrumentator does
        b"GET /boom HTTP/1.1\r\n\r\n",
    ):
        conn.data_received(request)
    out = transport.take()
    assert out.endswith(
        b"HTTP/1.1 500 Internal Server Error\r\nserver: uvicorn\r\n"
        b"content-type: text/plain; charset=utf-8\r\ncontent-length: 21\r\n"
        b"connection: close\r\n\r\nInternal Server Error"
    )
    assert "Exception in request handler" in caplog.text
    assert stats.requests == {
        ("/v1/models", "GET", "2xx"): 1,
        ("/v1/models", "POST", "4xx"): 1,
        ("none", "GET", "4xx"): 1,
        ("/boom", "GET", "5xx"): 1,
    }


def test_a_client_gone_mid_request_is_reported_and_counted() -> None:
    held = Held()
    conn, transport, stats = make(held)
    conn.data_received(post(b"/held", b"1") + post(b"/held", b"2"))
    (req,) = held.requests
    conn.connection_lost(None)
    assert held.disconnected == [req] and req.done and req.gone
    assert stats.requests == {("/held", "POST", "4xx"): 1}  # 499: the pipelined one is dropped
    req.respond(200, b"content-length: 0\r\n")  # a late answer is dropped, not an error
    assert transport.take() == b""


def test_a_stream_is_chunked_and_waits_while_the_client_pushes_back() -> None:
    held = Held()
    conn, transport, stats = make(held)
    conn.data_received(post(b"/held", b"{}"))
    (req,) = held.requests
    resumed: list[bool] = []
    req.on_writable = lambda: resumed.append(True)
    req.start_stream(200, b"content-type: text/event-stream; charset=utf-8\r\n", b"data: a\n\n")
    req.write(chunk(b"data: b\n\n"))
    conn.pause_writing()
    assert req.paused
    conn.resume_writing()
    assert resumed == [True] and not req.paused
    req.end_stream(chunk(b"data: [DONE]\n\n"))
    raw = transport.take()
    assert raw == (
        b"HTTP/1.1 200 OK\r\nserver: uvicorn\r\ncontent-type: text/event-stream; charset=utf-8"
        b"\r\ntransfer-encoding: chunked\r\n\r\n"
        b"9\r\ndata: a\n\n\r\n9\r\ndata: b\n\n\r\ne\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"
    )
    assert stats.requests == {("/held", "POST", "2xx"): 1}
    # What an HTTP client makes of it.
    parsed: list[bytes] = []
    complete: list[bool] = []

    class Client:
        def on_body(self, body: bytes) -> None:
            parsed.append(body)

        def on_message_complete(self) -> None:
            complete.append(True)

    httptools.HttpResponseParser(Client()).feed_data(raw)
    assert b"".join(parsed) == b"data: a\n\ndata: b\n\ndata: [DONE]\n\n" and complete


def test_idle_keep_alive_connections_are_closed_after_five_seconds() -> None:
    conn, transport, _ = make()
    conn.data_received(b"GET /health HTTP/1.1\r\n\r\n")
    server = conn.server
    server.connections.add(conn)
    loop = asyncio.new_event_loop()
    try:
        for _ in range(4):
            loop.run_until_complete(_tick(server))
        assert not transport.closed
        loop.run_until_complete(_tick(server))
        assert transport.closed
    finally:
        loop.close()


async def _tick(server: HttpServer) -> None:
    server._on_tick()
    if server._timer is not None:
        server._timer.cancel()
