"""What the harness and the Locust runner process say to each other.

Pure standard library on purpose: both sides import it, and the harness side must
never pull in locust or gevent (importing locust monkey-patches the interpreter).

The runner (``python -m gameday.load.runner``) reads its :class:`LoadConfig` as one
JSON line on stdin (or from ``--config FILE``) and then JSON-line commands on stdin::

    {"op": "set_users", "users": 16, "spawn_rate": 8}
    {"op": "set_shape", "prompt_tokens": 4000, "max_tokens": 16}
    {"op": "stop"}

It writes exactly one JSON line per second to stdout, a :class:`LoadSample` of the
window that just ended, and nothing else; logs go to stderr, where the line
:data:`READY_LINE` says that the users have been started.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

if TYPE_CHECKING:
    from gameday.scenario.model import LoadSpec

__all__ = [
    "API_KEY_VARIABLE",
    "EXIT_BAD_CONFIG",
    "EXIT_LOCUST_MISSING",
    "PROFILES",
    "READY_LINE",
    "LoadConfig",
    "LoadSample",
    "Profile",
    "ThinkTime",
    "parse_command",
    "set_shape_command",
    "set_users_command",
    "sort_errors",
    "stop_command",
]

Profile = Literal["openai-chat", "openai-completions"]
PROFILES: tuple[Profile, ...] = ("openai-chat", "openai-completions")

READY_LINE = "gameday-load-runner: ready"
"""Written to stderr once the users have been started."""

# Exit codes of the runner, besides 0 (clean stop) and 1 (a crash with a traceback).
EXIT_BAD_CONFIG = 2
EXIT_LOCUST_MISSING = 3


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class ThinkTime:
    """Pause of each simulated user between two requests, drawn uniformly in seconds."""

    min: float = 0.1
    max: float = 0.5

    def __post_init__(self) -> None:
        _check(
            _finite(self.min) and self.min >= 0, f"think_time.min must be >= 0, got {self.min!r}"
        )
        _check(
            _finite(self.max) and self.max >= self.min,
            f"think_time.max must be >= think_time.min, got {self.max!r}",
        )


API_KEY_VARIABLE = "GAMEDAY_LOAD_API_KEY"
"""The variable that hands the load the server's ``--api-key``, sent as a bearer token."""


@dataclass(frozen=True)
class LoadConfig:
    """Everything the runner needs; validated on construction, on both sides."""

    host: str
    """Base URL of the OpenAI-compatible server, e.g. ``http://127.0.0.1:8000``."""
    model: str | None = None
    """Model to request; ``None``: the first id the server lists at ``/v1/models``."""
    profile: Profile = "openai-chat"
    users: int = 8
    spawn_rate: float = 8.0
    stream: bool = True
    prompt_tokens: int = 32
    """Approximate prompt length, in whitespace-separated words."""
    max_tokens: int = 32
    think_time: ThinkTime = field(default_factory=ThinkTime)
    request_timeout: float = 30.0
    """Deadline of one whole request, streaming included, in seconds."""

    def __post_init__(self) -> None:
        _check(
            isinstance(self.host, str) and self.host.startswith(("http://", "https://")),
            f"host must be an http(s) URL, got {self.host!r}",
        )
        _check(self.model is None or isinstance(self.model, str), "model must be a string or null")
        _check(self.profile in PROFILES, f"profile must be one of {PROFILES}, got {self.profile!r}")
        _check(
            isinstance(self.users, int) and not isinstance(self.users, bool) and self.users >= 0,
            f"users must be an integer >= 0, got {self.users!r}",
        )
        _check(
            _finite(self.spawn_rate) and self.spawn_rate > 0,
            f"spawn_rate must be > 0, got {self.spawn_rate!r}",
        )
        _check(isinstance(self.stream, bool), "stream must be true or false")
        _check(
            _positive_int(self.prompt_tokens),
            f"prompt_tokens must be >= 1, got {self.prompt_tokens!r}",
        )
        _check(_positive_int(self.max_tokens), f"max_tokens must be >= 1, got {self.max_tokens!r}")
        _check(isinstance(self.think_time, ThinkTime), "think_time must be a ThinkTime")
        _check(
            _finite(self.request_timeout) and self.request_timeout > 0,
            f"request_timeout must be > 0, got {self.request_timeout!r}",
        )

    @classmethod
    def from_spec(cls, spec: LoadSpec, *, host: str) -> LoadConfig:
        """The config for a scenario's ``load:`` section against ``host``."""
        return cls(
            host=host,
            model=spec.model,
            profile=spec.profile,
            users=spec.users,
            spawn_rate=spec.spawn_rate,
            stream=spec.stream,
            prompt_tokens=spec.prompt_tokens,
            max_tokens=spec.max_tokens,
            think_time=ThinkTime(min=spec.think_time.min, max=spec.think_time.max),
            request_timeout=spec.request_timeout,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> LoadConfig:
        """Parse and validate; any problem is a :class:`ValueError` naming the field."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"load config is not JSON: {e}") from None
        _check(isinstance(data, dict), "load config must be a JSON object")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        _check(not unknown, f"unknown load config field(s): {', '.join(unknown)}")
        _check("host" in data, "load config needs a host")
        think = data.get("think_time", {})
        _check(isinstance(think, dict), "think_time must be an object {min, max}")
        unknown = sorted(set(think) - {"min", "max"})
        _check(not unknown, f"unknown think_time field(s): {', '.join(unknown)}")
        data["think_time"] = ThinkTime(**think)
        return cls(**data)


@dataclass(frozen=True)
class LoadSample:
    """What the load did during one window (normally the last second); not cumulative.

    Latency percentiles cover successful requests only: a refused connection fails in
    microseconds and would otherwise drag p50 towards zero exactly when things break.
    They are ``None`` when no request succeeded in the window, as are the TTFT
    percentiles when nothing streamed a first token. ``error_ratio`` is 0.0 when no
    request completed at all; look at ``requests`` to tell that apart.
    """

    t: float
    """Unix time at the end of the window."""
    users: int
    requests: int
    failures: int
    rps: float
    error_ratio: float
    p50_ms: float | None
    p95_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    output_tokens: int
    errors: tuple[tuple[str, int], ...] = ()
    """(message, count) pairs, most frequent first; messages are short and stable
    (``HTTP 503``, ``ConnectionRefusedError``, ``timeout``, ``IncompleteStream``)."""

    @property
    def error_counts(self) -> dict[str, int]:
        return dict(self.errors)

    def to_json(self) -> str:
        record: dict[str, Any] = asdict(self)
        record["errors"] = dict(self.errors)
        return json.dumps(record, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> LoadSample:
        """Parse one stdout line of the runner; :class:`ValueError` if it is not one."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"not a load sample: {e}") from None
        if not isinstance(data, dict):
            raise ValueError("not a load sample: expected a JSON object")
        try:
            errors = data.get("errors") or {}
            if not isinstance(errors, Mapping):
                raise TypeError("errors must be an object")
            return cls(
                t=float(data["t"]),
                users=int(data["users"]),
                requests=int(data["requests"]),
                failures=int(data["failures"]),
                rps=float(data["rps"]),
                error_ratio=float(data["error_ratio"]),
                p50_ms=_opt_float(data.get("p50_ms")),
                p95_ms=_opt_float(data.get("p95_ms")),
                ttft_p50_ms=_opt_float(data.get("ttft_p50_ms")),
                ttft_p95_ms=_opt_float(data.get("ttft_p95_ms")),
                output_tokens=int(data["output_tokens"]),
                errors=sort_errors(cast(Mapping[str, int], errors)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not a load sample: {e!r}") from None


def sort_errors(counts: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    """Most frequent first, then by message, so equal windows compare equal."""
    return tuple(sorted(((str(m), int(c)) for m, c in counts.items()), key=lambda p: (-p[1], p[0])))


def _opt_float(value: object) -> float | None:
    return None if value is None else float(cast(float, value))


def _command(op: str, **fields: object) -> str:
    return json.dumps({"op": op, **fields}, separators=(",", ":"))


def set_users_command(users: int, spawn_rate: float) -> str:
    _check(
        isinstance(users, int) and not isinstance(users, bool) and users >= 0,
        f"users must be an integer >= 0, got {users!r}",
    )
    _check(_finite(spawn_rate) and spawn_rate > 0, f"spawn_rate must be > 0, got {spawn_rate!r}")
    return _command("set_users", users=users, spawn_rate=spawn_rate)


def set_shape_command(prompt_tokens: int, max_tokens: int) -> str:
    _check(_positive_int(prompt_tokens), f"prompt_tokens must be >= 1, got {prompt_tokens!r}")
    _check(_positive_int(max_tokens), f"max_tokens must be >= 1, got {max_tokens!r}")
    return _command("set_shape", prompt_tokens=prompt_tokens, max_tokens=max_tokens)


def stop_command() -> str:
    return _command("stop")


def parse_command(text: str) -> tuple[str, dict[str, Any]]:
    """``(op, arguments)`` of one command line; :class:`ValueError` if it is not valid."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"command is not JSON: {e}") from None
    _check(isinstance(data, dict) and isinstance(data.get("op"), str), 'command needs an "op"')
    op = data.pop("op")
    if op == "set_users":
        # spawn_rate may be left out: the runner then keeps the one it has
        set_users_command(data.get("users"), data.get("spawn_rate", 1.0))
    elif op == "set_shape":
        set_shape_command(data.get("prompt_tokens"), data.get("max_tokens"))
    elif op != "stop":
        raise ValueError(f"unknown command {op!r}; known: set_users, set_shape, stop")
    return op, data
