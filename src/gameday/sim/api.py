"""The OpenAI-compatible HTTP API, shaped like vLLM's (a FastAPI app on uvicorn).

The simulator must never be the bottleneck of a game day, so the two inference routes
(``POST /v1/chat/completions`` and ``POST /v1/completions``) run on a lean ASGI path in
front of the FastAPI app: no middleware stack, no pydantic models, responses written as
bytes, each SSE chunk built from a precomputed prefix. Everything else is plain FastAPI.
Both paths count every response in ``http_requests_total``.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from gameday import __version__
from gameday.sim.logs import logger
from gameday.sim.metrics import HttpMetricsMiddleware
from gameday.sim.runtime import SimRuntime
from gameday.sim.scheduler import Sequence
from gameday.sim.tokens import (
    count_chat_tokens,
    count_prompt_tokens,
    natural_length,
    prompt_seed,
    token_text,
)

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

__all__ = ["SimApp"]

_JSON = "application/json"
_JSON_TYPE = (b"content-type", b"application/json")
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
_DONE = b"data: [DONE]\n\n"
# A request watches for its client's disconnect once it has lasted this long.
_WATCH_AFTER_S = 1.0
# Identical error lines are logged at most this often, so an outage cannot flood the log.
_ERROR_LOG_INTERVAL = 1.0
_ERROR_LOG_MEMORY = 1024


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class _BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def _int_param(payload: dict[str, Any], name: str, minimum: int) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _BadRequest(f"{name} must be an integer, got {value!r}.", name)
    if value < minimum:
        raise _BadRequest(f"{name} must be at least {minimum}, got {value}.", name)
    return value


@dataclass(slots=True)
class _Job:
    """One validated inference request."""

    chat: bool
    model: str
    prompt_tokens: int
    seed: int
    max_tokens: int
    stop_at: int
    stream: bool
    include_usage: bool


class _ErrorLog:
    """Logs each distinct error line at most once a second, counting the rest."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, int]] = {}

    def __call__(self, status: int, message: str) -> None:
        now = time.monotonic()
        last, suppressed = self._last.get(message, (0.0, 0))
        if now - last < _ERROR_LOG_INTERVAL:
            self._last[message] = (last, suppressed + 1)
            return
        if len(self._last) >= _ERROR_LOG_MEMORY:
            self._last.clear()
        self._last[message] = (now, 0)
        more = f" ({suppressed} more since the last report)" if suppressed else ""
        log = logger.error if status >= 500 else logger.warning
        log("HTTP %d: %s%s", status, message, more)


class _Api:
    def __init__(self, runtime: SimRuntime, loop: asyncio.AbstractEventLoop) -> None:
        self.rt = runtime
        # Kept: asyncio.get_running_loop() makes a getpid() system call each time.
        self.loop = loop
        self.log_error = _ErrorLog()

    # -- plumbing ----------------------------------------------------------------

    def error_body(self, status: int, err_type: str, message: str, param: str | None) -> bytes:
        self.log_error(status, message)
        return _dumps(
            {"error": {"message": message, "type": err_type, "param": param, "code": status}}
        )

    def error(self, status: int, err_type: str, message: str, param: str | None = None) -> Response:
        body = self.error_body(status, err_type, message, param)
        return Response(body, status_code=status, media_type=_JSON)

    async def send_error(
        self, send: Send, status: int, err_type: str, message: str, param: str | None = None
    ) -> int:
        await _send_json(send, status, self.error_body(status, err_type, message, param))
        return status

    # -- simple endpoints --------------------------------------------------------

    async def health(self, request: Request) -> Response:
        return Response(status_code=200 if self.rt.healthy else 503)

    async def metrics(self, request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(self.rt.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def version(self, request: Request) -> Response:
        return Response(_dumps({"version": f"{__version__}+gameday.sim"}), media_type=_JSON)

    async def models(self, request: Request) -> Response:
        rt = self.rt
        problem = rt.unavailable()
        if problem is not None:
            return self.error(*problem)
        root = str(rt.model.path) if rt.model is not None and rt.model.path else rt.model_name
        card = {
            "id": rt.model_name,
            "object": "model",
            "created": rt.created,
            "owned_by": "sglang" if rt.opts.flavor == "sglang" else "vllm",
            "root": root,
            "parent": None,
            "max_model_len": rt.max_model_len,
            "permission": [],
        }
        return Response(_dumps({"object": "list", "data": [card]}), media_type=_JSON)

    # -- inference (lean ASGI path) ---------------------------------------------

    async def generate(self, receive: Receive, send: Send, *, chat: bool) -> int:
        """Serve one inference request; the HTTP status it answered."""
        rt = self.rt
        raw = await _read_body(receive)
        if raw is None:
            return 499  # the client left before sending its body
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            return await self.send_error(send, 400, "BadRequestError", f"JSON decode error: {exc}")
        if not isinstance(payload, dict):
            return await self.send_error(
                send, 400, "BadRequestError", "The request body must be a JSON object."
            )
        problem = rt.unavailable()
        engine = rt.engine
        if problem is not None or engine is None:
            return await self.send_error(send, *(problem or _NOT_READY))
        model = payload.get("model") or rt.model_name
        if model != rt.model_name:
            return await self.send_error(
                send, 404, "NotFoundError", f"The model `{model}` does not exist.", "model"
            )
        try:
            job = self._parse(payload, chat=chat, model=model)
        except _BadRequest as exc:
            return await self.send_error(send, 400, "BadRequestError", str(exc), exc.param)

        seq = Sequence(
            # vLLM's ids are random too; getrandbits avoids uuid4's syscall.
            request_id=f"{'chatcmpl' if chat else 'cmpl'}-{random.getrandbits(128):032x}",
            prompt_tokens=job.prompt_tokens,
            max_tokens=job.max_tokens,
            stop_at=job.stop_at,
            arrival_time=time.monotonic(),
            stream=job.stream,
        )
        if job.stream:
            await _Stream(self, seq, job, send).run(receive)
            return 200
        done = self.loop.create_future()
        seq.listener = _resolver(done)
        engine.add(seq)
        await self.wait(seq, done, receive)
        if seq.finish_reason == "abort":
            # Aborted by a shutdown or a dead engine (say so), or for a client that has gone.
            problem = rt.unavailable()
            if problem is not None:
                return await self.send_error(send, *problem)
            return 499  # nginx's code for it; there is nobody to send it to
        await _send_json(send, 200, self._full_body(seq, job))
        return 200

    def _parse(self, payload: dict[str, Any], *, chat: bool, model: str) -> _Job:
        if chat:
            messages = payload.get("messages")
            if not isinstance(messages, list) or not messages:
                raise _BadRequest("messages must be a non-empty list.", "messages")
            try:
                prompt_tokens, seed_text = count_chat_tokens(messages)
            except ValueError as exc:
                raise _BadRequest(str(exc), "messages") from None
            max_tokens = _int_param(payload, "max_completion_tokens", 1) or _int_param(
                payload, "max_tokens", 1
            )
        else:
            prompt = payload.get("prompt")
            if isinstance(prompt, list) and len(prompt) == 1:
                prompt = prompt[0]
            if isinstance(prompt, str):
                prompt_tokens, seed_text = count_prompt_tokens(prompt), prompt
            elif isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
                prompt_tokens, seed_text = len(prompt), " ".join(map(str, prompt))
            else:
                raise _BadRequest(
                    "prompt must be a string, a list with one string, or a list of token ids.",
                    "prompt",
                )
            # OpenAI's (and vLLM's) default for completions.
            max_tokens = _int_param(payload, "max_tokens", 1) or 16
        n = _int_param(payload, "n", 1)
        if n is not None and n > 1:
            raise _BadRequest("The simulator serves n=1 only.", "n")
        min_tokens = _int_param(payload, "min_tokens", 0) or 0

        limit = self.rt.max_model_len
        if prompt_tokens >= limit:
            raise _BadRequest(
                f"This model's maximum context length is {limit} tokens. However, your request "
                f"has {prompt_tokens} input tokens. Please reduce the length of the input "
                "messages.",
                "input_tokens",
            )
        if max_tokens is None:
            max_tokens = limit - prompt_tokens
        elif prompt_tokens + max_tokens > limit:
            raise _BadRequest(
                f"'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. This "
                f"model's maximum context length is {limit} tokens and your request has "
                f"{prompt_tokens} input tokens ({max_tokens} > {limit} - {prompt_tokens}).",
                "max_tokens",
            )
        seed = prompt_seed(seed_text)
        stop_at = max_tokens if payload.get("ignore_eos") else natural_length(seed)
        stream = bool(payload.get("stream"))
        options = payload.get("stream_options")
        include_usage = stream and isinstance(options, dict) and bool(options.get("include_usage"))
        return _Job(
            chat=chat,
            model=model,
            prompt_tokens=prompt_tokens,
            seed=seed,
            max_tokens=max_tokens,
            stop_at=min(max(stop_at, min_tokens), max_tokens),
            stream=stream,
            include_usage=include_usage,
        )

    async def wait(self, seq: Sequence, done: asyncio.Future[None], receive: Receive) -> None:
        """Until ``done``; a client that disconnects meanwhile aborts ``seq``, as in vLLM.

        Watching for the disconnect costs a task per request, so it starts only once a
        request has lasted ``_WATCH_AFTER_S``: a client gone earlier is noticed then.
        """
        loop = self.loop
        watcher: asyncio.Task[None] | None = None

        def watch() -> None:
            nonlocal watcher
            watcher = loop.create_task(self._abort_on_disconnect(seq, receive))

        timer = loop.call_later(_WATCH_AFTER_S, watch)
        try:
            await done
        finally:
            timer.cancel()
            if watcher is not None:
                watcher.cancel()
            if not seq.finished and self.rt.engine is not None:
                self.rt.engine.abort(seq)

    async def _abort_on_disconnect(self, seq: Sequence, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if not seq.finished and self.rt.engine is not None:
                    self.rt.engine.abort(seq)
                return

    @staticmethod
    def _full_body(seq: Sequence, job: _Job) -> bytes:
        """The non-streaming response, as vLLM shapes it (built as text: json.dumps of the
        nested dict costs more than the rest of the request)."""
        n = seq.output_tokens
        text = json.dumps(token_text(job.seed, 0, n))
        model = json.dumps(job.model)
        p = job.prompt_tokens
        usage = (
            f'"usage":{{"prompt_tokens":{p},"total_tokens":{p + n},"completion_tokens":{n},'
            '"prompt_tokens_details":null}'
        )
        ending = f'"logprobs":null,"finish_reason":"{seq.finish_reason}","stop_reason":null'
        if job.chat:
            choice = (
                f'"message":{{"role":"assistant","content":{text},"reasoning_content":null,'
                f'"tool_calls":[]}},{ending}'
            )
            obj = "chat.completion"
        else:
            choice = f'"text":{text},{ending},"prompt_logprobs":null'
            obj = "text_completion"
        return (
            f'{{"id":"{seq.request_id}","object":"{obj}","created":{int(time.time())},'
            f'"model":{model},"choices":[{{"index":0,{choice}}}],{usage},"prompt_logprobs":null}}'
        ).encode()


class _Stream:
    """Server-sent events in OpenAI's chunk format, ending with ``data: [DONE]``.

    The engine calls :meth:`on_progress` after each step, and the new tokens are written
    right there: no task wakes up per token. ``send`` is driven eagerly, which completes
    at once unless the server applies flow control to a slow reader; then the write is
    finished in a task and the tokens produced meanwhile go out after it, in one chunk,
    as vLLM merges deltas for a reader that lags.
    """

    def __init__(self, api: _Api, seq: Sequence, job: _Job, send: Send) -> None:
        self.api = api
        self.seq = seq
        self.job = job
        self.send = send
        self.sent = 0
        # A write is being finished in a task; the next one waits for it.
        self.busy = False
        self.closed = False
        self.done: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        head = {
            "id": seq.request_id,
            "object": "chat.completion.chunk" if job.chat else "text_completion",
            "created": int(time.time()),
            "model": job.model,
        }
        # Every chunk is  prefix + <json string> + middle + <finish_reason> + suffix.
        start = _dumps(head)[:-1] + b',"choices":[{"index":0,'
        self._prefix = b"data: " + start + (b'"delta":{"content":' if job.chat else b'"text":')
        self._middle = b"}," if job.chat else b","
        self._head = head

    def _chunk(self, text: str, finish_reason: str | None) -> bytes:
        reason = b"null" if finish_reason is None else b'"' + finish_reason.encode() + b'"'
        tail = b',"stop_reason":null' if finish_reason is not None else b""
        return (
            self._prefix
            + json.dumps(text).encode()
            + self._middle
            + b'"logprobs":null,"finish_reason":'
            + reason
            + tail
            + b"}]}\n\n"
        )

    def _closing(self) -> bytes:
        out = b""
        if self.job.include_usage:
            n = self.seq.output_tokens
            usage = {
                "prompt_tokens": self.job.prompt_tokens,
                "total_tokens": self.job.prompt_tokens + n,
                "completion_tokens": n,
            }
            out += b"data: " + _dumps({**self._head, "choices": [], "usage": usage}) + b"\n\n"
        return out + _DONE

    async def run(self, receive: Receive) -> None:
        seq, api = self.seq, self.api
        engine = api.rt.engine
        assert engine is not None  # checked by the caller
        done = self.done = api.loop.create_future()
        engine.add(seq)
        await self.send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        if self.job.chat:
            role = _dumps({**self._head, "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""},
                 "logprobs": None, "finish_reason": None}
            ]})  # fmt: skip
            await self.send(
                {
                    "type": "http.response.body",
                    "body": b"data: " + role + b"\n\n",
                    "more_body": True,
                }
            )
        # From here on the engine drives the writes; catch up with what came meanwhile.
        seq.listener = self.on_progress
        self.on_progress(seq)
        await api.wait(seq, done, receive)

    def on_progress(self, seq: Sequence) -> None:
        if not self.busy and not self.closed:
            self._write()

    def _write(self) -> None:
        seq = self.seq
        final = seq.finished
        if seq.finish_reason == "abort":
            # The client is gone, or the server is stopping: end the response.
            body = b""
        else:
            produced = seq.output_tokens
            if final:
                body = self._chunk(
                    token_text(self.job.seed, self.sent, produced), seq.finish_reason
                )
                body += self._closing()
            elif produced > self.sent:
                body = self._chunk(token_text(self.job.seed, self.sent, produced), None)
            else:
                return
            self.sent = produced
        self.closed = final
        pending = self.send({"type": "http.response.body", "body": body, "more_body": not final})
        steps = pending.__await__()
        try:
            blocker = steps.send(None)
        except StopIteration:
            if final:
                self._end(None)
            return
        except Exception as exc:
            self._end(exc)
            return
        self.busy = True
        # Kept: the loop holds tasks only weakly.
        self._writer = self.api.loop.create_task(self._finish_write(steps, blocker))

    async def _finish_write(self, steps: Generator[Any, None, None], blocker: Any) -> None:
        # Drive the rest of ``send`` as a task would: wait for what it waits on, resume it.
        try:
            while True:
                if blocker is None:
                    await asyncio.sleep(0)
                else:
                    await blocker
                try:
                    blocker = steps.send(None)
                except StopIteration:
                    break
        except Exception as exc:
            self._end(exc)
            return
        self.busy = False
        if self.closed:
            self._end(None)
        else:
            self._write()

    def _end(self, error: BaseException | None) -> None:
        self.closed = True
        done = self.done
        if done is not None and not done.done():
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)


def _resolver(done: asyncio.Future[None]) -> Callable[[Sequence], None]:
    """A listener that resolves ``done`` when its sequence finishes."""

    def resolve(seq: Sequence) -> None:
        if seq.finished and not done.done():
            done.set_result(None)

    return resolve


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body; None if the client disconnected first."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        body += chunk
        if not message.get("more_body", False):
            return body


async def _send_json(send: Send, status: int, body: bytes) -> None:
    headers = [_JSON_TYPE, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_NOT_READY = (503, "ServiceUnavailableError", "The server is not ready.")

_INFERENCE = {"/v1/chat/completions": True, "/v1/completions": False}
_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("/health", "GET", "health"),
    ("/metrics", "GET", "metrics"),
    ("/version", "GET", "version"),
    ("/v1/models", "GET", "models"),
)


class SimApp:
    """The ASGI app uvicorn runs: inference on the lean path, the rest on FastAPI."""

    def __init__(self, runtime: SimRuntime) -> None:
        """Build the app; call it in the event loop that will serve it."""
        from fastapi import FastAPI

        self.api = _Api(runtime, asyncio.get_running_loop())
        self.stats = runtime.metrics.http
        app = FastAPI(
            title="gameday sim (vLLM-compatible)",
            version=__version__,
            docs_url=None,
            redoc_url=None,
            openapi_url=None,
        )
        for path, method, name in _ROUTES:
            app.add_route(path, getattr(self.api, name), methods=[method], include_in_schema=False)
        app.add_middleware(
            HttpMetricsMiddleware,
            metrics=runtime.metrics,
            handlers=frozenset([*_INFERENCE, *(path for path, _, _ in _ROUTES)]),
        )
        self.fastapi = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            chat = _INFERENCE.get(path)
            if chat is not None:
                started = time.perf_counter()
                # An exception escapes to uvicorn, which answers 500; it is counted as such.
                status = 500
                try:
                    status = await self.api.generate(receive, send, chat=chat)
                finally:
                    self.stats.observe(path, "POST", status, time.perf_counter() - started)
                return
        await self.fastapi(scope, receive, send)
