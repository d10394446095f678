"""The OpenAI-compatible HTTP API, shaped like vLLM's.

Served by the simulator's own HTTP server (:mod:`gameday.sim.protocol`), which hands each
handler a parsed request. The simulator must never be the bottleneck of a game day, so an
inference request costs no task, future or pydantic model: it is validated from the JSON
body, added to the engine, and answered from the engine's callback; responses are built
as bytes from templates made once per request, and a stream writes each engine step's new
tokens in one chunk (one socket write per stream per step).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from typing import Any

from gameday import __version__
from gameday.sim.logs import logger
from gameday.sim.metrics import EXCLUDED_HANDLERS
from gameday.sim.protocol import Request, Router
from gameday.sim.runtime import SimRuntime
from gameday.sim.scheduler import SeqStatus, Sequence
from gameday.sim.tokens import (
    count_chat_tokens,
    count_prompt_tokens,
    natural_length,
    prompt_seed,
    token_json,
)

__all__ = ["SimApi"]

# Inference answers (served in front of FastAPI before) name the type first; the other
# endpoints' headers are in Starlette's order.
_JSON_HEADERS = b"content-type: application/json\r\ncontent-length: %d\r\n"
_STARLETTE_JSON_HEADERS = b"content-length: %d\r\ncontent-type: application/json\r\n"
_SSE_HEADERS = b"content-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n"
_DONE = b"data: [DONE]\n\n"
# Identical error lines are logged at most this often, so an outage cannot flood the log.
_ERROR_LOG_INTERVAL = 1.0
_ERROR_LOG_MEMORY = 1024

_CHAT_BODY = (
    b'{"id":"%b","object":"chat.completion","created":%d,"model":%b,"choices":[{"index":0,'
    b'"message":{"role":"assistant","content":%b,"reasoning_content":null,"tool_calls":[]},'
    b'"logprobs":null,"finish_reason":"%b","stop_reason":null}],"usage":{"prompt_tokens":%d,'
    b'"total_tokens":%d,"completion_tokens":%d,"prompt_tokens_details":null},'
    b'"prompt_logprobs":null}'
)
_COMPLETION_BODY = (
    b'{"id":"%b","object":"text_completion","created":%d,"model":%b,"choices":[{"index":0,'
    b'"text":%b,"logprobs":null,"finish_reason":"%b","stop_reason":null,'
    b'"prompt_logprobs":null}],"usage":{"prompt_tokens":%d,"total_tokens":%d,'
    b'"completion_tokens":%d,"prompt_tokens_details":null},"prompt_logprobs":null}'
)


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
    model: bytes  # as a JSON string literal
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


_NOT_READY = (503, "ServiceUnavailableError", "The server is not ready.")


class SimApi:
    """The endpoints, and the router that serves them."""

    def __init__(self, runtime: SimRuntime) -> None:
        self.rt = runtime
        self.log_error = _ErrorLog()
        self._model_json = (b"", b"")
        router = Router(uncounted=EXCLUDED_HANDLERS)
        # Inference was served in front of FastAPI: other methods get 404, not 405.
        router.add("/v1/chat/completions", ["POST"], self.chat, lean=True)
        router.add("/v1/completions", ["POST"], self.completions, lean=True)
        router.add("/health", ["GET"], self.health, lean=False)
        router.add("/metrics", ["GET"], self.metrics, lean=False)
        router.add("/version", ["GET"], self.version, lean=False)
        router.add("/v1/models", ["GET"], self.models, lean=False)
        self.router = router

    # -- plumbing ----------------------------------------------------------------

    def error_body(self, status: int, err_type: str, message: str, param: str | None) -> bytes:
        self.log_error(status, message)
        return _dumps(
            {"error": {"message": message, "type": err_type, "param": param, "code": status}}
        )

    def send_error(
        self,
        req: Request,
        status: int,
        err_type: str,
        message: str,
        param: str | None = None,
        *,
        headers: bytes = _JSON_HEADERS,
    ) -> None:
        body = self.error_body(status, err_type, message, param)
        req.respond(status, headers % len(body), body)

    def model_json(self, name: str) -> bytes:
        """``name`` as a JSON string literal (cached: it is the served model's name)."""
        cached_name, cached = self._model_json
        if cached_name != name.encode():
            cached = json.dumps(name).encode()
            self._model_json = (name.encode(), cached)
        return cached

    # -- simple endpoints --------------------------------------------------------

    def health(self, req: Request) -> None:
        req.respond(200 if self.rt.healthy else 503, b"content-length: 0\r\n")

    def metrics(self, req: Request) -> None:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        body = generate_latest(self.rt.metrics.registry)
        headers = b"content-length: %d\r\ncontent-type: %b\r\n" % (
            len(body),
            CONTENT_TYPE_LATEST.encode(),
        )
        req.respond(200, headers, body)

    def version(self, req: Request) -> None:
        body = _dumps({"version": f"{__version__}+gameday.sim"})
        req.respond(200, _STARLETTE_JSON_HEADERS % len(body), body)

    def models(self, req: Request) -> None:
        rt = self.rt
        problem = rt.unavailable()
        if problem is not None:
            self.send_error(req, *problem, headers=_STARLETTE_JSON_HEADERS)
            return
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
        body = _dumps({"object": "list", "data": [card]})
        req.respond(200, _STARLETTE_JSON_HEADERS % len(body), body)

    # -- inference ---------------------------------------------------------------

    def chat(self, req: Request) -> None:
        self.generate(req, chat=True)

    def completions(self, req: Request) -> None:
        self.generate(req, chat=False)

    def generate(self, req: Request, *, chat: bool) -> None:
        """Validate an inference request and hand it to the engine, which answers it."""
        rt = self.rt
        try:
            # Decoding first skips json's encoding detection (Python code, per request)...
            payload = json.loads(req.body.decode())
        except ValueError:
            try:
                # ...which still decides for anything but plain UTF-8, and words the error.
                payload = json.loads(req.body)
            except ValueError as exc:
                self.send_error(req, 400, "BadRequestError", f"JSON decode error: {exc}")
                return
        if not isinstance(payload, dict):
            self.send_error(req, 400, "BadRequestError", "The request body must be a JSON object.")
            return
        problem = rt.unavailable()
        engine = rt.engine
        if problem is not None or engine is None:
            self.send_error(req, *(problem or _NOT_READY))
            return
        model = payload.get("model") or rt.model_name
        if model != rt.model_name:
            self.send_error(
                req, 404, "NotFoundError", f"The model `{model}` does not exist.", "model"
            )
            return
        try:
            job = self._parse(payload, chat=chat, model=self.model_json(rt.model_name))
        except _BadRequest as exc:
            self.send_error(req, 400, "BadRequestError", str(exc), exc.param)
            return

        seq = Sequence(
            # vLLM's ids are random too; getrandbits avoids uuid4's syscall.
            request_id=f"{'chatcmpl' if chat else 'cmpl'}-{random.getrandbits(128):032x}",
            prompt_tokens=job.prompt_tokens,
            max_tokens=job.max_tokens,
            stop_at=job.stop_at,
            arrival_time=time.monotonic(),
            stream=job.stream,
        )
        answer = _Stream(self, req, seq, job) if job.stream else _Completion(self, req, seq, job)
        answer.start()

    def _parse(self, payload: dict[str, Any], *, chat: bool, model: bytes) -> _Job:
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


class _Answer:
    """What answers one inference request as its sequence progresses in the engine."""

    __slots__ = ("api", "job", "req", "seq")

    def __init__(self, api: SimApi, req: Request, seq: Sequence, job: _Job) -> None:
        self.api = api
        self.req = req
        self.seq = seq
        self.job = job

    def start(self) -> None:
        raise NotImplementedError

    def on_disconnect(self) -> None:
        """The client has gone: abort the sequence (its KV blocks are freed), as vLLM does."""
        engine = self.api.rt.engine
        if engine is not None:
            engine.abort(self.seq)

    def let_go(self) -> None:
        """Drop the sequence's reference to this answer, once finished: the two would
        otherwise make a reference cycle per request, left for the cyclic GC (whose
        collections then took up to a second under load)."""
        self.seq.listener = None

    def on_aborted(self) -> bool:
        """Answer an aborted sequence; False if it was not aborted."""
        if self.seq.finish_reason != "abort":
            return False
        req = self.req
        if req.status:
            req.end_stream()  # the client is gone, or the server is stopping: end the stream
            return True
        # Aborted by a shutdown or a dead engine (say so), or for a client that has gone.
        problem = self.api.rt.unavailable()
        if problem is not None:
            self.api.send_error(req, *problem)
        else:
            req.abandon(499)  # nginx's code for it; there is nobody to send it to
        return True


class _Completion(_Answer):
    """A whole response, written when the sequence finishes."""

    __slots__ = ()

    def start(self) -> None:
        engine = self.api.rt.engine
        assert engine is not None  # checked by the caller
        self.seq.listener = self.on_progress
        self.req.on_disconnect = self.on_disconnect
        engine.add(self.seq)

    def on_progress(self, seq: Sequence) -> None:
        if seq.status is not SeqStatus.FINISHED:
            return
        self.let_go()
        try:
            if self.on_aborted():
                return
            job = self.job
            n = seq.output_tokens
            p = job.prompt_tokens
            body = (_CHAT_BODY if job.chat else _COMPLETION_BODY) % (
                seq.request_id.encode(),
                int(time.time()),
                job.model,
                token_json(job.seed, 0, n),
                (seq.finish_reason or "stop").encode(),
                p,
                p + n,
                n,
            )
            self.req.respond(200, _JSON_HEADERS % len(body), body)
        except BaseException:
            self.req.fail()
            raise


class _Stream(_Answer):
    """Server-sent events in OpenAI's chunk format, ending with ``data: [DONE]``.

    The engine calls :meth:`on_progress` after each step it flushes streams in, and the
    new tokens are written there and then, as one chunk. A client that reads slower than
    the tokens come makes the connection push back; its tokens then wait and go out
    merged in one chunk when it catches up, as vLLM merges deltas for a reader that lags.
    """

    __slots__ = ("_head", "_open_tail", "_prefix", "_size", "sent")

    def __init__(self, api: SimApi, req: Request, seq: Sequence, job: _Job) -> None:
        super().__init__(api, req, seq, job)
        self.sent = 0
        obj = b"chat.completion.chunk" if job.chat else b"text_completion"
        # '{"id":...,"object":...,"created":...,"model":...' of every chunk
        self._head = b'{"id":"%b","object":"%b","created":%d,"model":%b' % (
            seq.request_id.encode(),
            obj,
            int(time.time()),
            job.model,
        )
        # Every chunk is  prefix + <JSON string> + tail.
        self._prefix = (
            b"data: "
            + self._head
            + b',"choices":[{"index":0,'
            + (b'"delta":{"content":' if job.chat else b'"text":')
        )
        self._open_tail = (
            b"}," if job.chat else b","
        ) + b'"logprobs":null,"finish_reason":null}]}\n\n'
        self._size = len(self._prefix) + len(self._open_tail)

    def start(self) -> None:
        engine = self.api.rt.engine
        assert engine is not None  # checked by the caller
        req, seq = self.req, self.seq
        req.on_disconnect = self.on_disconnect
        req.on_writable = self.on_writable
        engine.add(seq)
        role = b""
        if self.job.chat:
            role = (
                b"data: " + self._head + b',"choices":[{"index":0,"delta":{"role":"assistant",'
                b'"content":""},"logprobs":null,"finish_reason":null}]}\n\n'
            )
        req.start_stream(200, _SSE_HEADERS, role)
        seq.listener = self.on_progress

    def on_writable(self) -> None:
        self.on_progress(self.seq)

    def on_progress(self, seq: Sequence) -> None:
        req = self.req
        try:
            if seq.status is SeqStatus.FINISHED:
                self.let_go()
                if not req.done and not self.on_aborted():
                    text = token_json(self.job.seed, self.sent, seq.output_tokens)
                    req.end_stream(self._last(text))
                return
            conn = req.conn
            if conn.write_paused or conn.closed:
                return  # on_writable catches up; or nobody is left to read
            produced = seq.output_tokens
            sent = self.sent
            if produced > sent:
                # Runs for every stream at every step: the chunk is framed in one go and
                # written straight to the transport.
                text = token_json(self.job.seed, sent, produced)
                self.sent = produced
                conn.transport.write(
                    b"%x\r\n%b%b%b\r\n"
                    % (self._size + len(text), self._prefix, text, self._open_tail)
                )
        except BaseException:
            req.fail()
            raise

    def _last(self, text: bytes) -> bytes:
        """The final chunk (with the finish reason), usage if asked for, and [DONE], framed."""
        seq, job = self.seq, self.job
        reason = (seq.finish_reason or "stop").encode()
        body = (
            self._prefix
            + text
            + (b"}," if job.chat else b",")
            + b'"logprobs":null,"finish_reason":"%b","stop_reason":null}]}\n\n' % reason
        )
        if job.include_usage:
            n = seq.output_tokens
            p = job.prompt_tokens
            body += (
                b"data: "
                + self._head
                + b',"choices":[],"usage":{"prompt_tokens":%d,"total_tokens":%d,'
                b'"completion_tokens":%d}}\n\n' % (p, p + n, n)
            )
        body += _DONE
        return b"%x\r\n%b\r\n" % (len(body), body)
