"""Per-second windows of request outcomes, and the short names failures are grouped by.

Pure standard library: the runner feeds it from Locust's ``events.request``, unit
tests feed it directly.
"""

from __future__ import annotations

import errno
import math
import socket
from collections import Counter
from collections.abc import Sequence

from gameday.load.protocol import LoadSample, sort_errors

__all__ = ["RequestError", "Window", "failure_message", "percentile"]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) with linear interpolation between closest ranks,
    as numpy's default method; ``None`` for no values."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class Window:
    """Outcomes of the requests that completed between ``start`` and the window's close."""

    def __init__(self, start: float) -> None:
        self.start = start
        """Monotonic time the window opened (only durations are taken from it)."""
        self.latencies_ms: list[float] = []
        self.ttfts_ms: list[float] = []
        self.requests = 0
        self.output_tokens = 0
        self.errors: Counter[str] = Counter()

    def record(
        self,
        response_time_ms: float,
        *,
        error: str | None = None,
        ttft_ms: float | None = None,
        output_tokens: int = 0,
    ) -> None:
        self.requests += 1
        self.output_tokens += output_tokens
        if error is not None:
            self.errors[error] += 1
            return
        self.latencies_ms.append(response_time_ms)
        if ttft_ms is not None:
            self.ttfts_ms.append(ttft_ms)

    def close(self, *, end: float, t: float, users: int) -> LoadSample:
        """The sample of this window; ``end`` is monotonic, ``t`` the wall clock at the end."""
        failures = sum(self.errors.values())
        # a floor on the duration keeps rps finite if two closes land on the same tick
        duration = max(end - self.start, 1e-3)
        return LoadSample(
            t=round(t, 3),
            users=users,
            requests=self.requests,
            failures=failures,
            rps=round(self.requests / duration, 3),
            error_ratio=round(failures / self.requests, 4) if self.requests else 0.0,
            p50_ms=_ms(percentile(self.latencies_ms, 50)),
            p95_ms=_ms(percentile(self.latencies_ms, 95)),
            ttft_p50_ms=_ms(percentile(self.ttfts_ms, 50)),
            ttft_p95_ms=_ms(percentile(self.ttfts_ms, 95)),
            output_tokens=self.output_tokens,
            errors=sort_errors(self.errors),
        )


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


class RequestError(Exception):
    """A failure the user classes have already named (``HTTP 503``, ``IncompleteStream``)."""


_TIMEOUT_ERRNOS = {errno.ETIMEDOUT}


def failure_message(exc: BaseException) -> str:
    """A short, stable name for what went wrong, for grouping errors and matching them
    against runbook signatures: ``HTTP 503``, ``timeout``, ``ConnectionRefusedError``,
    ``RemoteDisconnected``...; never a message with a URL, a port or an address in it.

    geventhttpclient wraps the cause of a failed attempt in ``RetriesExceeded``
    (``original``) and reports statuses as ``BadStatusCode`` (``code``); both are
    recognised by attribute so this module need not import gevent.
    """
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, RequestError):
            return str(exc)
        code = getattr(exc, "code", None)
        if isinstance(code, int) and not isinstance(exc, OSError) and code >= 100:
            return f"HTTP {code}"
        original = getattr(exc, "original", None)
        if isinstance(original, BaseException):
            exc = original
            continue
        break
    if isinstance(exc, TimeoutError) or (isinstance(exc, OSError) and exc.errno in _TIMEOUT_ERRNOS):
        return "timeout"
    name = type(exc).__name__
    if name == "Timeout" and type(exc).__module__.startswith("gevent"):
        return "timeout"
    if name == "HTTPConnectionClosed":
        # the server closed the connection before answering: the name http.client uses
        return "RemoteDisconnected"
    if isinstance(exc, socket.gaierror):
        return "NameResolutionError"
    return name
