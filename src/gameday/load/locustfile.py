"""OpenAI-compatible Locust users: chat completions and completions, streamed or not.

Imported only inside the runner process (``python -m gameday.load.runner``):
importing locust monkey-patches the interpreter with gevent, which the harness
process must never suffer.

Each request is measured here and reported through ``events.request`` with two
extra fields the runner's windows use: ``ttft_ms`` (time to the first chunk that
carries content, streaming only) and ``output_tokens``. Failures carry a short,
stable message (``HTTP 503``, ``ConnectionRefusedError``, ``RemoteDisconnected``,
``timeout``, ``IncompleteStream``...) so that errors group and a diagnoser can
match them.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import gevent
from gevent.lock import Semaphore
from locust import FastHttpUser, task

from gameday.load.protocol import API_KEY_VARIABLE, LoadConfig
from gameday.load.window import RequestError, failure_message

__all__ = [
    "OpenAIChatUser",
    "OpenAICompletionsUser",
    "OpenAIUser",
    "Shape",
    "configure",
    "set_shape",
]

log = logging.getLogger(__name__)

# A failed user waits at least this long before its next request, whatever the think
# time: a refused port answers in microseconds, and a busy loop of refusals would starve
# the other users' greenlets and report a meaningless rps.
FAILURE_BACKOFF_S = 0.1
READ_SIZE = 16 * 1024
DRAIN_S = 1.0

_WORDS = (
    *("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while"),
    *("seven", "wizards", "quietly", "judge", "boxing", "matches", "under", "pale"),
    *("yellow", "lanterns", "near", "old", "stone", "bridges"),
)


def prompt_body(words: int) -> str:
    return " ".join(_WORDS[i % len(_WORDS)] for i in range(words))


@dataclass(frozen=True)
class Shape:
    """The request shape all users follow; replaced as a whole by ``set_shape``."""

    prompt_tokens: int
    max_tokens: int
    body: str
    """The prompt but its first word, which is unique per request (see ``prompt``)."""

    @classmethod
    def of(cls, prompt_tokens: int, max_tokens: int) -> Shape:
        return cls(prompt_tokens, max_tokens, prompt_body(prompt_tokens - 1))

    def prompt(self) -> str:
        # a unique first word defeats prefix caching, so long prompts really fill the KV cache
        nonce = uuid.uuid4().hex[:12]
        return f"{nonce} {self.body}" if self.body else nonce


class _Shared:
    """State all users of the process share (they are greenlets of one thread)."""

    config: LoadConfig | None = None
    shape: Shape = Shape.of(32, 32)
    model: str | None = None
    model_lock = Semaphore()
    authorization: str | None = None


_shared = _Shared()


def configure(config: LoadConfig) -> type[OpenAIUser]:
    """Set up the user classes for ``config``; returns the one its profile asks for."""
    _shared.config = config
    _shared.shape = Shape.of(config.prompt_tokens, config.max_tokens)
    _shared.model = config.model
    key = os.environ.get(API_KEY_VARIABLE)
    _shared.authorization = f"Bearer {key}" if key else None
    for cls in (OpenAIChatUser, OpenAICompletionsUser):
        cls.host = config.host.rstrip("/")
        # the whole-request deadline is enforced in _call; these bound each socket step
        cls.network_timeout = config.request_timeout
        cls.connection_timeout = config.request_timeout
    return OpenAIChatUser if config.profile == "openai-chat" else OpenAICompletionsUser


def set_shape(prompt_tokens: int, max_tokens: int) -> None:
    """Change the shape of every request started from now on."""
    _shared.shape = Shape.of(prompt_tokens, max_tokens)


@dataclass
class _Result:
    output_tokens: int = 0
    ttft_ms: float | None = None
    length: int = 0


class OpenAIUser(FastHttpUser):
    abstract = True
    path: ClassVar[str]
    # fail fast: a silent retry would hide exactly the failures being injected
    max_retries = 0

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self._backoff = 0.0

    def wait_time(self) -> float:
        config = _shared.config
        pause = random.uniform(config.think_time.min, config.think_time.max) if config else 0.0
        return max(pause, self._backoff)

    # -- what differs between chat and completions -------------------------------------

    def request_body(
        self, model: str, prompt: str, max_tokens: int, stream: bool
    ) -> dict[str, Any]:
        raise NotImplementedError

    def content(self, choice: dict[str, Any], *, streaming: bool) -> str:
        raise NotImplementedError

    # -- the task -------------------------------------------------------------------------

    @task
    def generate(self) -> None:
        config = _shared.config
        assert config is not None, "configure() must run before users start"
        model = self._model(config)
        if model is None:
            return
        shape = _shared.shape
        body = self.request_body(model, shape.prompt(), shape.max_tokens, config.stream)
        reader = self._read_stream if config.stream else self._read_whole
        ok = self._call("POST", self.path, json.dumps(body), reader, config.request_timeout)
        self._backoff = 0.0 if ok else FAILURE_BACKOFF_S

    def _model(self, config: LoadConfig) -> str | None:
        """The model to ask for: configured, or the first the server lists (asked once)."""
        if _shared.model is not None:
            return _shared.model
        with _shared.model_lock:
            if _shared.model is None:
                ok = self._call(
                    "GET", "/v1/models", None, self._read_models, config.request_timeout
                )
                if not ok:
                    self._backoff = FAILURE_BACKOFF_S
        return _shared.model

    def _call(
        self,
        method: str,
        path: str,
        payload: str | None,
        read: Callable[[Any, float, _Result], None],
        timeout: float,
    ) -> bool:
        """One request under a whole-request deadline, reported to ``events.request``."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if payload is not None and _shared.config and _shared.config.stream:
            headers["Accept"] = "text/event-stream"
        if _shared.authorization is not None:
            headers["Authorization"] = _shared.authorization
        url = f"{self.host}{path}"
        start_time = time.time()
        started = time.perf_counter()
        result = _Result()
        error: BaseException | None = None
        response = None
        timer = gevent.Timeout(timeout)
        timer.start()
        try:
            response = self.client.client.urlopen(
                url, method=method, headers=headers, payload=payload
            )
            read(response, started, result)
        except gevent.Timeout as e:
            if e is not timer:
                raise
            error = RequestError("timeout")
        except Exception as e:  # every failure is a finding; GreenletExit still passes
            error = e
            _log_unexpected(e)
        finally:
            timer.close()
            if response is not None:
                response.release()
        if error is not None and not isinstance(error, RequestError):
            error = RequestError(failure_message(error))
        self.environment.events.request.fire(
            request_type=method,
            name=path,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=result.length,
            response=None,
            context={},
            exception=error,
            start_time=start_time,
            url=url,
            ttft_ms=result.ttft_ms,
            output_tokens=result.output_tokens,
        )
        return error is None

    def _read_models(self, response: Any, started: float, result: _Result) -> None:
        raw = response.read()
        result.length = len(raw)
        data = _json_object(raw).get("data")
        if not isinstance(data, list) or not data or not isinstance(data[0], dict):
            raise RequestError("NoModels")
        model = data[0].get("id")
        if not isinstance(model, str):
            raise RequestError("NoModels")
        _shared.model = model
        log.info("model: %s (first listed at /v1/models)", model)

    def _read_whole(self, response: Any, started: float, result: _Result) -> None:
        try:
            raw = response.read()
        except gevent.Timeout:
            raise
        except Exception:
            raise RequestError("IncompleteResponse") from None
        result.length = len(raw)
        data = _json_object(raw)
        choice = _first_choice(data)
        text = self.content(choice, streaming=False)
        result.output_tokens = _usage_tokens(data) or len(text.split())

    def _read_stream(self, response: Any, started: float, result: _Result) -> None:
        """Read ``data: {...}`` server-sent events up to ``data: [DONE]``."""
        # readline, not read(n): read(n) waits for n bytes and would delay every token
        lines = response._response  # geventhttpclient's response under the compat wrapper
        chunks = 0
        usage: int | None = None
        while True:
            try:
                raw_line = lines.readline(b"\n")
            except gevent.Timeout:
                raise
            except Exception:
                raise RequestError("IncompleteStream") from None
            if not raw_line:
                raise RequestError("IncompleteStream")  # the body ended before [DONE]
            result.length += len(raw_line)
            line = raw_line.strip()
            if not line.startswith(b"data:"):
                continue  # blank separators, comments, event: and id: fields
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            event = _json_object(data)
            if "error" in event or event.get("object") == "error":
                raise RequestError("StreamError")
            usage = _usage_tokens(event) or usage
            choices = event.get("choices") or []
            if (
                choices
                and isinstance(choices[0], dict)
                and self.content(choices[0], streaming=True)
            ):
                chunks += 1
                result.output_tokens = chunks  # what arrived counts, even if the stream breaks
                if result.ttft_ms is None:
                    result.ttft_ms = (time.perf_counter() - started) * 1000
        result.output_tokens = usage or chunks
        # Drain the end of the chunked body so that the connection can be reused, briefly:
        # the answer is complete, and neither a server that keeps the stream open after
        # [DONE] nor the whole-request deadline firing now makes it a failure.
        try:
            with gevent.Timeout(DRAIN_S, False):
                while lines.read(READ_SIZE):
                    pass
        except (gevent.Timeout, Exception):
            return


_logged: set[str] = set()


def _log_unexpected(exc: Exception) -> None:
    """Log, once per type, a failure that is neither the network nor the server's answer:
    a bug here must not hide behind an error count."""
    module = type(exc).__module__
    expected = isinstance(exc, OSError | RequestError) or module.startswith(
        ("geventhttpclient", "gevent", "locust", "ssl", "http")
    )
    name = f"{module}.{type(exc).__qualname__}"
    if not expected and name not in _logged:
        _logged.add(name)
        log.error("unexpected %s in a request", name, exc_info=exc)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError:
        raise RequestError("InvalidResponse") from None
    if not isinstance(data, dict):
        raise RequestError("InvalidResponse")
    return data


def _first_choice(data: dict[str, Any]) -> dict[str, Any]:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise RequestError("InvalidResponse")
    return choices[0]


def _usage_tokens(data: dict[str, Any]) -> int | None:
    usage = data.get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return tokens if isinstance(tokens, int) and tokens > 0 else None


def _streaming(stream: bool) -> dict[str, Any]:
    """A stream asks for its usage chunk: the tokens counted are the server's, not the
    chunks (a server merges deltas for a client that lags, as vLLM does)."""
    return (
        {"stream": True, "stream_options": {"include_usage": True}} if stream else {"stream": False}
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


class OpenAIChatUser(OpenAIUser):
    """``POST /v1/chat/completions`` with one user message."""

    path = "/v1/chat/completions"

    def request_body(
        self, model: str, prompt: str, max_tokens: int, stream: bool
    ) -> dict[str, Any]:
        return {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            **_streaming(stream),
        }

    def content(self, choice: dict[str, Any], *, streaming: bool) -> str:
        part = choice.get("delta" if streaming else "message")
        return _text(part.get("content")) if isinstance(part, dict) else ""


class OpenAICompletionsUser(OpenAIUser):
    """``POST /v1/completions`` with a plain prompt."""

    path = "/v1/completions"

    def request_body(
        self, model: str, prompt: str, max_tokens: int, stream: bool
    ) -> dict[str, Any]:
        return {"model": model, "prompt": prompt, "max_tokens": max_tokens, **_streaming(stream)}

    def content(self, choice: dict[str, Any], *, streaming: bool) -> str:
        return _text(choice.get("text"))
