"""The simulator's HTTP/1.1 server: an asyncio ``Protocol`` over httptools, no framework.

The simulator must never be the bottleneck of a game day. Under uvicorn and an ASGI app,
about half of its CPU per request went to the server (a task, message dicts, header
lists, awaits); here httptools' callbacks parse a request, a plain method call answers it,
and a response is one ``transport.write``. A streamed response is written by the engine's
callback as tokens come: no task or future per request or per token.

What clients see is what uvicorn (vLLM's server) shows them:

- keep-alive by default in HTTP/1.1; HTTP/1.0 and ``Connection: close`` close after the
  response; an idle keep-alive connection is closed after 5 s;
- pipelined requests are answered one after the other, in order; reads pause while too
  many wait;
- request bodies with ``Content-Length`` or chunked, in any number of reads;
  ``Expect: 100-continue`` is answered before the body is read;
- responses carry ``date`` and ``server: uvicorn``; fixed bodies have a
  ``content-length``, streams ``transfer-encoding: chunked``; HEAD gets the headers only;
- a malformed request gets 400 ``Invalid HTTP request received.`` and the connection is
  closed; an unhandled error in a handler gets 500 ``Internal Server Error``;
- a client that closes its connection (or half-closes it) while its request is being
  answered makes the handler's ``on_disconnect`` run (the simulator aborts the request).

Routing follows Starlette's (FastAPI's) rules where the simulator used FastAPI before:
404 ``{"detail":"Not Found"}``, 405 with ``Allow``, HEAD for every GET route, and a 307 to
the path without (or with) its trailing slash. Every response a handler gives is counted
in ``http_requests_total`` (and the instrumentator's size and latency families) by
:class:`~gameday.sim.metrics.HttpStats`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import http
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from email.utils import formatdate
from typing import TYPE_CHECKING, cast
from urllib.parse import unquote

import httptools

from gameday.sim.logs import server_logger

if TYPE_CHECKING:
    from gameday.sim.metrics import HttpStats

__all__ = ["HttpConnection", "HttpServer", "Request", "Route", "Router", "chunk"]

Handler = Callable[["Request"], None]

# uvicorn's default: idle keep-alive connections are closed after this long.
KEEP_ALIVE_S = 5
# Pipelined requests waiting on one connection before it stops reading more.
_MAX_PIPELINED = 16


def _status_line(status: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode()


_STATUS_LINE = {status: _status_line(status) for status in range(100, 600)}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_CLOSE = b"connection: close\r\n"
_CHUNKED = b"transfer-encoding: chunked\r\n\r\n"
_LAST_CHUNK = b"0\r\n\r\n"
_JSON = b"content-type: application/json\r\n"
_NOT_FOUND = b'{"detail":"Not Found"}'
_NOT_ALLOWED = b'{"detail":"Method Not Allowed"}'
_UNAUTHORIZED = b'{"error":"Unauthorized"}'
# the paths vLLM's --api-key guards (vllm/entrypoints/serve/middleware/authenticate.py)
_GUARDED = ("/v1", "/v2", "/inference", "/cohere")
_INVALID = b"Invalid HTTP request received."
_ERROR = b"Internal Server Error"
# Method names as metric labels, without a decode per request.
_METHODS = {m.encode(): m for m in ("GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH")}


def chunk(data: bytes) -> bytes:
    """``data`` as one chunk of a chunked body."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def _default_headers() -> bytes:
    # vLLM answers through uvicorn, whose responses say so.
    return b"date: " + formatdate(usegmt=True).encode() + b"\r\nserver: uvicorn\r\n"


class Request:
    """One HTTP request, and how its handler answers it (exactly once).

    A handler calls :meth:`respond` (a whole response), or :meth:`start_stream`, any
    number of :meth:`write`, then :meth:`end_stream`; or :meth:`abandon` when there is
    nobody left to answer. Writes to a connection that has gone are dropped, and the
    response still counts, so the handler's logic stays the same whatever the client does.
    """

    __slots__ = (
        "authorization",
        "body",
        "conn",
        "done",
        "host",
        "keep_alive",
        "label",
        "method",
        "on_disconnect",
        "on_writable",
        "path",
        "query",
        "response_bytes",
        "started",
        "status",
    )

    def __init__(
        self,
        conn: HttpConnection,
        method: str,
        path: str,
        query: bytes,
        body: bytes,
        host: bytes,
        keep_alive: bool,
        authorization: bytes = b"",
    ) -> None:
        self.authorization = authorization
        self.conn = conn
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        self.host = host
        self.keep_alive = keep_alive
        self.started = 0.0
        # The ``handler`` label of http_requests_total; None: not counted.
        self.label: str | None = None
        # Set once the status line is written (0 before).
        self.status = 0
        # The body's length, as a whole response's content-length says it (0 for a stream).
        self.response_bytes = 0
        self.done = False
        # Called if the client goes while the request is being answered.
        self.on_disconnect: Callable[[], None] | None = None
        # Called when a connection that pushed back (a slow reader) takes writes again.
        self.on_writable: Callable[[], None] | None = None

    @property
    def gone(self) -> bool:
        """The client has closed the connection."""
        return self.conn.closed

    @property
    def paused(self) -> bool:
        """The client reads slower than we write: hold back until ``on_writable``."""
        return self.conn.write_paused

    def _head(self, status: int, headers: bytes) -> bytes:
        self.status = status
        head = _STATUS_LINE[status] + self.conn.server.default_headers + headers
        return head if self.keep_alive else head + _CLOSE

    def respond(self, status: int, headers: bytes, body: bytes = b"") -> None:
        """The whole response; ``headers`` are complete lines, ``content-length`` included."""
        conn = self.conn
        self.response_bytes = len(body)
        if not conn.closed:
            head = self._head(status, headers)
            if self.method == "HEAD":
                conn.transport.write(head + b"\r\n")
            else:
                conn.transport.write(head + b"\r\n" + body)
        self._complete(status)

    def start_stream(self, status: int, headers: bytes, first: bytes) -> None:
        """Headers and the first piece of a chunked body, in one write."""
        conn = self.conn
        head = self._head(status, headers)
        if not conn.closed:
            conn.transport.write(head + _CHUNKED + chunk(first) if first else head + _CHUNKED)

    def write(self, framed: bytes) -> None:
        """Raw bytes of a started stream (already framed as chunks)."""
        conn = self.conn
        if not conn.closed:
            conn.transport.write(framed)

    def end_stream(self, framed: bytes = b"") -> None:
        """The stream's last framed bytes and its terminating chunk."""
        conn = self.conn
        if not conn.closed:
            conn.transport.write(framed + _LAST_CHUNK)
        self._complete(self.status)

    def abandon(self, status: int) -> None:
        """Count the request as answered with ``status`` without writing (nobody to read it)."""
        self._complete(status)

    def fail(self) -> None:
        """An error in the handler: 500 if nothing was written yet, else drop the connection."""
        if self.done:
            return
        if self.status:
            self.conn.close()
            self._complete(self.status)
            return
        self.keep_alive = False
        self.respond(
            500,
            b"content-type: text/plain; charset=utf-8\r\ncontent-length: 21\r\n",
            _ERROR,
        )

    def _complete(self, status: int) -> None:
        if self.done:
            return
        self.done = True
        self.on_disconnect = self.on_writable = None
        conn = self.conn
        label = self.label
        if label is not None:
            conn.server.stats.observe(
                label,
                self.method,
                status,
                time.perf_counter() - self.started,
                len(self.body),
                self.response_bytes,
            )
        conn.finished(self)


class HttpConnection(asyncio.Protocol):
    """One client connection: parses requests and hands them to the router in order."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        # A pipelined request after ``Connection: close`` is ignored, not an error.
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.transport: asyncio.Transport = cast(asyncio.Transport, None)
        self.closed = False
        self.write_paused = False
        self.reading_paused = False
        # No more requests are read (Connection: close, HTTP/1.0, shutdown).
        self.last = False
        self.current: Request | None = None
        self.pending: deque[Request] = deque()
        self.dispatching = False
        self.idle_since = server.tick
        # The request being parsed.
        self._url = b""
        self._host = b""
        self._authorization = b""
        self._body = b""
        self._parts: list[bytes] | None = None
        self._expect = False
        self._continue_due = False

    # -- asyncio.Protocol --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        self.pending.clear()
        req = self.current
        if req is not None and not req.done:
            callback = req.on_disconnect
            if callback is not None:
                try:
                    callback()
                except Exception:
                    server_logger.exception("Error while aborting %s %s", req.method, req.path)
            # The handler could not answer (a finished stream nobody read): count it now.
            if not req.done:
                req.abandon(req.status or 499)

    def eof_received(self) -> bool | None:
        # As uvicorn: a half-closed client is a gone client (the transport closes).
        return None

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        req = self.current
        if req is not None and req.on_writable is not None:
            try:
                req.on_writable()
            except Exception:
                server_logger.exception("Exception in request handler")
                req.fail()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            # No WebSocket (or h2c) here: the request was parsed as a plain one; go on
            # with what follows it.
            server_logger.warning("Unsupported upgrade request.")
            offset = exc.args[0]
            if isinstance(offset, int) and offset < len(data):
                self.data_received(data[offset:])
                return
        except httptools.HttpParserError:
            self._invalid()
            return
        if self.current is None and self.pending:
            self._next()

    # -- httptools callbacks -----------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._host = b""
        self._body = b""
        self._parts = None
        self._expect = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(name)
        if size == 4 and name.lower() == b"host":
            self._host = value
        elif size == 6 and name.lower() == b"expect" and value.lower() == b"100-continue":
            self._expect = True
        elif size == 13 and name.lower() == b"authorization":
            self._authorization = value

    def on_headers_complete(self) -> None:
        if self._expect:
            if self.current is None and not self.pending:
                self.transport.write(_CONTINUE)
            else:
                # Not in the middle of another response: after it.
                self._continue_due = True

    def on_body(self, body: bytes) -> None:
        if self._parts is not None:
            self._parts.append(body)
        elif self._body:
            self._parts = [self._body, body]
        else:
            self._body = body

    def on_message_complete(self) -> None:
        if self.last:
            return
        parser = self.parser
        raw_method = parser.get_method()
        method = _METHODS.get(raw_method) or raw_method.decode("latin-1")
        # uvicorn closes HTTP/1.0 connections whatever their Connection header says.
        keep_alive = parser.should_keep_alive() and parser.get_http_version() != "1.0"
        if not keep_alive:
            self.last = True
        path, query = _split_url(self._url)
        body = b"".join(self._parts) if self._parts is not None else self._body
        req = Request(self, method, path, query, body, self._host, keep_alive, self._authorization)
        self.pending.append(req)
        if len(self.pending) >= _MAX_PIPELINED and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    # -- requests ----------------------------------------------------------------

    def _next(self) -> None:
        """Answer pending requests in order, while none is in flight."""
        if self.dispatching:
            return  # the loop below, further up the stack, goes on
        self.dispatching = True
        try:
            server = self.server
            while self.current is None and self.pending and not self.closed:
                req = self.pending.popleft()
                self.current = req
                req.started = time.perf_counter()
                try:
                    server.router(req)
                except Exception:
                    server_logger.exception("Exception in request handler")
                    req.fail()
            if self.reading_paused and len(self.pending) < _MAX_PIPELINED // 2:
                self.reading_paused = False
                if not self.closed:
                    self.transport.resume_reading()
        finally:
            self.dispatching = False

    def finished(self, req: Request) -> None:
        """``req`` has been answered: close, or go on with the next request."""
        if self.current is req:
            self.current = None
        if self.closed:
            return
        if not req.keep_alive:
            self.close()
            return
        if self._continue_due:
            self._continue_due = False
            self.transport.write(_CONTINUE)
        if self.pending:
            self._next()
        else:
            self.idle_since = self.server.tick

    def _invalid(self) -> None:
        server_logger.warning("Invalid HTTP request received.")
        self.pending.clear()
        self.last = True
        if self.current is None:
            self.transport.write(
                _STATUS_LINE[400]
                + self.server.default_headers
                + b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
                % len(_INVALID)
                + _CLOSE
                + b"\r\n"
                + _INVALID
            )
        # Else a 400 cannot be told apart from the response in flight: just close (which
        # aborts that request, as uvicorn's 400 would).
        self.close()

    def close(self) -> None:
        """Close the connection; writes from now on are dropped."""
        self.closed = True
        self.transport.close()

    def shutdown(self) -> None:
        """Stop taking requests: close now if idle, else after the response in flight."""
        self.last = True
        self.pending.clear()
        if self.current is None:
            self.close()
        else:
            self.current.keep_alive = False


def _split_url(url: bytes) -> tuple[str, bytes]:
    """The decoded path and the raw query of a request target."""
    if url[:1] != b"/":
        # absolute-form (``POST http://host/v1/...``), as a proxy would send it
        try:
            parsed = httptools.parse_url(url)
        except httptools.HttpParserInvalidURLError:
            return url.decode("latin-1"), b""
        raw, query = parsed.path or b"/", parsed.query or b""
    else:
        raw, _, query = url.partition(b"?")
        raw = raw.partition(b"#")[0]
    path = raw.decode("latin-1")
    return (unquote(path) if "%" in path else path), query


class Route:
    """What one path serves: a handler per method."""

    __slots__ = ("handlers", "label", "starlette")

    def __init__(self, handlers: dict[str, Handler], label: str | None, starlette: bool) -> None:
        self.handlers = handlers
        self.label = label
        # Starlette's rules for other methods and slashes (405, 307) or plain 404s.
        self.starlette = starlette


class Router:
    """Paths to handlers, with FastAPI's answers for everything else."""

    def __init__(self, uncounted: Iterable[str] = (), api_keys: Iterable[str] = ()) -> None:
        self.routes: dict[str, Route] = {}
        # Paths vLLM's instrumentator leaves out of http_requests_total.
        self.uncounted = frozenset(uncounted)
        # --api-key: vLLM compares digests, so a key's length does not show in the timing
        self.key_digests = [hashlib.sha256(k.encode()).digest() for k in api_keys]

    def authorized(self, req: Request) -> bool:
        """vLLM's AuthenticationMiddleware: with keys set, the API's paths need
        ``Authorization: Bearer <one of them>``; OPTIONS and /health, /metrics do not."""
        if not self.key_digests or req.method == "OPTIONS" or not req.path.startswith(_GUARDED):
            return True
        scheme, _, token = req.authorization.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer":
            return False
        digest = hashlib.sha256(token.encode("latin-1")).digest()
        return any(hmac.compare_digest(digest, known) for known in self.key_digests)

    def add(self, path: str, methods: Iterable[str], handler: Handler, *, lean: bool) -> None:
        """Serve ``path``; ``lean`` routes answer other methods and slash variants 404 (they
        were served in front of FastAPI), the others as FastAPI does (405, HEAD, 307)."""
        names = list(methods)
        if not lean and "GET" in names and "HEAD" not in names:
            names.append("HEAD")
        label = None if path in self.uncounted else path
        self.routes[path] = Route({m: handler for m in names}, label, not lean)

    def __call__(self, req: Request) -> None:
        path = req.path
        route = self.routes.get(path)
        if self.key_digests and not self.authorized(req):
            req.label = route.label if route is not None else "none"
            req.respond(
                401, b"content-length: %d\r\n%b" % (len(_UNAUTHORIZED), _JSON), _UNAUTHORIZED
            )
            return
        if route is not None:
            req.label = route.label
            handler = route.handlers.get(req.method)
            if handler is not None:
                handler(req)
            elif route.starlette:
                allow = ", ".join(sorted(route.handlers, reverse=True)).encode()
                req.respond(
                    405,
                    b"allow: %b\r\ncontent-length: %d\r\n%b" % (allow, len(_NOT_ALLOWED), _JSON),
                    _NOT_ALLOWED,
                )
            else:
                _not_found(req)
            return
        req.label = None if path in self.uncounted else "none"
        other = path[:-1] if path.endswith("/") else path + "/"
        alternative = self.routes.get(other)
        if alternative is not None and alternative.starlette and path != "/":
            self._redirect(req, other)
        else:
            _not_found(req)

    def _redirect(self, req: Request, path: str) -> None:
        host = req.host.decode("latin-1") if req.host else req.conn.server.address
        location = f"http://{host}{path}"
        if req.query:
            location += "?" + req.query.decode("latin-1")
        req.respond(307, b"content-length: 0\r\nlocation: %b\r\n" % location.encode("latin-1"))


def _not_found(req: Request) -> None:
    req.respond(404, b"content-length: %d\r\n%b" % (len(_NOT_FOUND), _JSON), _NOT_FOUND)


class HttpServer:
    """The listening socket, its connections, and what they share (date header, stats)."""

    def __init__(self, router: Callable[[Request], None], stats: HttpStats) -> None:
        self.router = router
        self.stats = stats
        self.connections: set[HttpConnection] = set()
        self.default_headers = _default_headers()
        # Seconds since start, for the keep-alive timeout without a timer per request.
        self.tick = 0
        self.address = ""
        self._server: asyncio.AbstractServer | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def start(self, sock: socket.socket, backlog: int = 2048) -> None:
        """Serve on an already listening socket (``backlog`` as uvicorn's default)."""
        host, port = sock.getsockname()[:2]
        self.address = f"{host}:{port}"
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: HttpConnection(self), sock=sock, backlog=backlog
        )
        self._timer = loop.call_later(1.0, self._on_tick)

    def _on_tick(self) -> None:
        self.tick += 1
        self.default_headers = _default_headers()
        expired = self.tick - KEEP_ALIVE_S
        for conn in [c for c in self.connections if c.idle_since <= expired]:
            if conn.current is None and not conn.pending and not conn.closed:
                conn.close()
        self._timer = asyncio.get_running_loop().call_later(1.0, self._on_tick)

    async def shutdown(self, timeout: float) -> None:
        """Stop listening, let the responses in flight finish (up to ``timeout``), close."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.shutdown()
        deadline = time.monotonic() + timeout
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.abort_all()
        if self._timer is not None:
            self._timer.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def abort_all(self) -> None:
        """Drop every connection now."""
        for conn in list(self.connections):
            conn.transport.abort()
