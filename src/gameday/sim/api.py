"""The OpenAI-compatible HTTP API, shaped like vLLM 0.32's.

Every response has vLLM 0.32.0's keys, in its order, with its types (tested against
responses recorded from it, tests/data/vllm/0.32.0/): the chat and completion bodies with
vLLM's extra fields (``stop_reason``, ``token_ids``, ``kv_transfer_params``,
``system_fingerprint``, ...), the streamed chunks (a role chunk, content chunks, the finish
chunk, the usage chunk with ``stream_options.include_usage``, ``data: [DONE]``), the model
card with its permission, and the error bodies with vLLM's wording, file paths replaced by
``<path>`` as vLLM's ``sanitize_message`` does.

Served by the simulator's own HTTP server (:mod:`gameday.sim.protocol`), which hands each
handler a parsed request. The simulator must never be the bottleneck of a game day, so an
inference request costs no task, future or pydantic model: it is validated from the JSON
body, added to the engine, and answered from the engine's callback; responses are built
as bytes from templates made once per request, and a stream writes each engine step's new
tokens in one chunk (one socket write per stream per step).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from dataclasses import dataclass
from typing import Any

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

__all__ = ["SimApi", "sanitize_message"]

# Inference answers (served in front of FastAPI before) name the type first; the other
# endpoints' headers are in Starlette's order.
_JSON_HEADERS = b"content-type: application/json\r\ncontent-length: %d\r\n"
_STARLETTE_JSON_HEADERS = b"content-length: %d\r\ncontent-type: application/json\r\n"
_SSE_HEADERS = b"content-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n"
_DONE = b"data: [DONE]\n\n"
# Identical error lines are logged at most this often, so an outage cannot flood the log.
_ERROR_LOG_INTERVAL = 1.0
_ERROR_LOG_MEMORY = 1024

# vLLM 0.32's ChatCompletionResponse and CompletionResponse, every field as it dumps them
# (an empty tool_calls list is left out of the message).
_USAGE = (
    b'"usage":{"prompt_tokens":%d,"total_tokens":%d,"completion_tokens":%d,'
    b'"prompt_tokens_details":null,"completion_tokens_details":null}'
)
_CHAT_BODY = (
    b'{"id":"%b","object":"chat.completion","created":%d,"model":%b,"choices":[{"index":0,'
    b'"message":{"role":"assistant","content":%b,"refusal":null,"annotations":null,'
    b'"audio":null,"function_call":null,"reasoning":null},"logprobs":null,'
    b'"finish_reason":"%b","stop_reason":null,"token_ids":null,"routed_experts":null}],'
    b'"service_tier":null,"system_fingerprint":"%b",' + _USAGE + b',"prompt_logprobs":null,'
    b'"prompt_token_ids":null,"prompt_text":null,"kv_transfer_params":null,'
    b'"ec_transfer_params":null,"metrics":null}'
)
_COMPLETION_BODY = (
    b'{"id":"%b","object":"text_completion","created":%d,"model":%b,"choices":[{"index":0,'
    b'"text":%b,"logprobs":null,"finish_reason":"%b","stop_reason":null,"token_ids":null,'
    b'"prompt_logprobs":null,"prompt_token_ids":null,"routed_experts":null}],'
    b'"service_tier":null,"system_fingerprint":"%b",' + _USAGE + b',"kv_transfer_params":null,'
    b'"ec_transfer_params":null,"metrics":null}'
)
# Streamed chunks are dumped with exclude_unset: only the fields vLLM sets, per chunk kind.
_CHAT_ROLE_CHOICE = (
    b',"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,'
    b'"finish_reason":null}],"prompt_token_ids":null,"prompt_text":null}\n\n'
)
_CHAT_OPEN_TAIL = b'},"logprobs":null,"finish_reason":null,"token_ids":null}]}\n\n'
_CHAT_FINISH_TAIL = b'},"logprobs":null,"finish_reason":"%b","stop_reason":null,"token_ids":null}]'
_TEXT_OPEN_TAIL = (
    b',"logprobs":null,"finish_reason":null,"stop_reason":null,"prompt_token_ids":null,'
    b'"token_ids":null}]}\n\n'
)
_TEXT_FINISH_TAIL = (
    b',"logprobs":null,"finish_reason":"%b","stop_reason":null,"prompt_token_ids":null,'
    b'"token_ids":null}]'
)
# vLLM's sanitize_message (vllm/entrypoints/serve/exception_handling/utils.py): error
# messages name no file path, memory address or traceback.
_SANITIZE = (
    (re.compile(r" at 0x[0-9a-fA-F]+>"), ">"),
    (re.compile(r'\n?\s*File "[^"]+", line \d+, in \S+(\n\s+.*)?'), ""),
    (re.compile(r"/(?:home|usr|opt|var|tmp|root|lib|mnt|srv)(?:/[\w.\-]+)+"), "<path>"),
    (re.compile(r"(?:/[\w\-]+)+/[\w\-]+\.\w+"), "<path>"),
)


def sanitize_message(message: str) -> str:
    """``message`` as vLLM's error bodies show it: paths as ``<path>``, no addresses."""
    for pattern, replacement in _SANITIZE:
        message = pattern.sub(replacement, message)
    return message.strip()


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class _BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def _validation_error(message: str, parameter: str, value: object) -> _BadRequest:
    """vLLM's VLLMValidationError as its 400 body words it: ``message (parameter=, value=)``."""
    return _BadRequest(f"{message} (parameter={parameter}, value={value})", parameter)


def _int_param(payload: dict[str, Any], name: str, minimum: int | None = None) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _BadRequest(f"{name} must be an integer, got {value!r}.", name)
    if minimum is not None and value < minimum:
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
        self._fingerprint = b""
        router = Router(uncounted=EXCLUDED_HANDLERS, api_keys=runtime.opts.api_keys)
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
        message = sanitize_message(message)
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

    @property
    def fingerprint(self) -> bytes:
        """``system_fingerprint``: ``vllm-<version>-<hash8>``, as vLLM's default "full" mode
        without parallelism spells it; the hash is of the served model and the settings
        (not where it listens), as vLLM's is of its config. Made once the model is known."""
        if not self._fingerprint:
            rt = self.rt
            settings = {k: v for k, v in rt.opts.non_default().items() if k not in ("host", "port")}
            config = json.dumps(
                {"model": rt.model_name, "max_model_len": rt.max_model_len, **settings},
                sort_keys=True,
                default=str,
            )
            digest = hashlib.sha256(config.encode()).hexdigest()[:8]
            self._fingerprint = f"vllm-{rt.opts.vllm_version_text}-{digest}".encode()
        return self._fingerprint

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
        # The vLLM release the simulator follows, marked as the simulator's with a local
        # version label (PEP 440: compares as that release).
        body = _dumps({"version": f"{self.rt.opts.vllm_version_text}+gameday.sim"})
        req.respond(200, _STARLETTE_JSON_HEADERS % len(body), body)

    def models(self, req: Request) -> None:
        rt = self.rt
        problem = rt.unavailable()
        if problem is not None:
            self.send_error(req, *problem, headers=_STARLETTE_JSON_HEADERS)
            return
        # vLLM builds the card for each request (created: now) from the model argument.
        now = int(time.time())
        card = {
            "id": rt.model_name,
            "object": "model",
            "created": now,
            "owned_by": "sglang" if rt.opts.flavor == "sglang" else "vllm",
            "root": rt.model.name if rt.model is not None else rt.model_name,
            "parent": None,
            "max_model_len": rt.max_model_len,
            "permission": [
                {
                    "id": f"modelperm-{random.getrandbits(64):016x}",
                    "object": "model_permission",
                    "created": now,
                    "allow_create_engine": False,
                    "allow_sampling": True,
                    "allow_logprobs": True,
                    "allow_search_indices": False,
                    "allow_view": True,
                    "allow_fine_tuning": False,
                    "organization": "*",
                    "group": None,
                    "is_blocking": False,
                }
            ],
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
                req,
                404,
                "NotFoundError",
                f"The model `{model}` does not exist. Valid aliases: {rt.model_name}.",
                "model",
            )
            return
        try:
            job = self._parse(payload, chat=chat, model=self.model_json(rt.model_name))
        except _BadRequest as exc:
            self.send_error(req, 400, "BadRequestError", str(exc), exc.param)
            return

        seq = Sequence(
            # vLLM's ids are 16 random hex digits too; getrandbits avoids a syscall.
            request_id=f"{'chatcmpl' if chat else 'cmpl'}-{random.getrandbits(64):016x}",
            prompt_tokens=job.prompt_tokens,
            max_tokens=job.max_tokens,
            stop_at=job.stop_at,
            arrival_time=time.monotonic(),
            stream=job.stream,
        )
        answer = _Stream(self, req, seq, job) if job.stream else _Completion(self, req, seq, job)
        answer.start()

    def _parse(self, payload: dict[str, Any], *, chat: bool, model: bytes) -> _Job:
        """Validate a request in vLLM 0.32's order and with its 400 texts
        (vllm/renderers/params.py, vllm/entrypoints/serve/utils/api_utils.py)."""
        # vLLM tokenizes text at most to max_model_len + 1 tokens ("at least" that many).
        truncated = True
        if chat:
            messages = payload.get("messages")
            if not isinstance(messages, list) or not messages:
                raise _BadRequest("messages must be a non-empty list.", "messages")
            try:
                prompt_tokens, seed_text = count_chat_tokens(messages)
            except ValueError as exc:
                raise _BadRequest(str(exc), "messages") from None
            requested = _int_param(payload, "max_completion_tokens")
            param = "max_completion_tokens"
            if requested is None:
                requested, param = _int_param(payload, "max_tokens"), "max_tokens"
        else:
            prompt = payload.get("prompt")
            if isinstance(prompt, list) and len(prompt) == 1:
                prompt = prompt[0]
            if isinstance(prompt, str):
                prompt_tokens, seed_text = count_prompt_tokens(prompt), prompt
            elif isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
                prompt_tokens, seed_text = len(prompt), " ".join(map(str, prompt))
                truncated = False
            else:
                raise _BadRequest(
                    "prompt must be a string, a list with one string, or a list of token ids.",
                    "prompt",
                )
            param = "max_tokens"
            # OpenAI's (and vLLM's) default for completions.
            requested = _int_param(payload, "max_tokens")
            if "max_tokens" not in payload:
                requested = 16
        n = _int_param(payload, "n", 1)
        if n is not None and n > 1:
            raise _BadRequest("The simulator serves n=1 only.", "n")
        min_tokens = _int_param(payload, "min_tokens", 0) or 0

        limit = self.rt.max_model_len
        if requested is not None and requested > limit:
            raise _validation_error(
                f"{param}={requested} cannot be greater than max_model_len={limit}. "
                "Please request fewer output tokens.",
                param,
                requested,
            )
        if prompt_tokens > limit:
            counted = min(prompt_tokens, limit + 1) if truncated else prompt_tokens
            qualifier = "at least " if counted == limit + 1 else ""
            raise _validation_error(
                f"This model's maximum context length is {limit} tokens. However, your prompt "
                f"contains {qualifier}{counted} input tokens, which exceeds this limit even "
                "without any output tokens. Please reduce the length of the input prompt.",
                "input_tokens",
                counted,
            )
        # What does not fit next to the prompt is cut off (finish_reason "length").
        room = limit - prompt_tokens
        max_tokens = room if requested is None else min(requested, room)
        if max_tokens < 1:
            raise _validation_error(
                f"max_tokens must be at least 1, got {max_tokens}.", "max_tokens", max_tokens
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
                self.api.fingerprint,
                p,
                p + n,
                n,
            )
            self.req.respond(200, _JSON_HEADERS % len(body), body)
        except BaseException:
            self.req.fail()
            raise


class _Stream(_Answer):
    """Server-sent events in vLLM's chunk format, ending with ``data: [DONE]``.

    Chat: a chunk with the role and empty content, content chunks, the finish chunk (the
    last tokens, ``finish_reason`` and ``stop_reason``); completions: text chunks and the
    finish chunk. Then, with ``stream_options.include_usage``, a chunk with no choices
    and the usage; ``system_fingerprint`` rides on the last of them.

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
        self._open_tail = _CHAT_OPEN_TAIL if job.chat else _TEXT_OPEN_TAIL
        self._size = len(self._prefix) + len(self._open_tail)

    def start(self) -> None:
        engine = self.api.rt.engine
        assert engine is not None  # checked by the caller
        req, seq = self.req, self.seq
        req.on_disconnect = self.on_disconnect
        req.on_writable = self.on_writable
        engine.add(seq)
        role = b"data: " + self._head + _CHAT_ROLE_CHOICE if self.job.chat else b""
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
        fingerprint = b',"system_fingerprint":"%b"' % self.api.fingerprint
        tail = _CHAT_FINISH_TAIL if job.chat else _TEXT_FINISH_TAIL
        body = self._prefix + text + tail % reason
        if job.include_usage:
            n = seq.output_tokens
            p = job.prompt_tokens
            body += (
                b'}\n\ndata: %b,"choices":[],"usage":{"prompt_tokens":%d,"total_tokens":%d,'
                b'"completion_tokens":%d}%b}\n\n' % (self._head, p, p + n, n, fingerprint)
            )
        else:
            body += fingerprint + b"}\n\n"
        body += _DONE
        return b"%x\r\n%b\r\n" % (len(body), body)
