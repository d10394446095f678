"""The upstream dependency: a name the server resolves at startup and then on a timer.

Resolution is the real ``socket.getaddrinfo`` (it blocks, so it runs in a thread); a fault
that breaks DNS for the server breaks it here, with the resolver's own error.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from gameday.sim.options import Upstream

__all__ = ["UpstreamMonitor", "resolve"]

Resolver = Callable[[str, int], object]


def _getaddrinfo(host: str, port: int) -> object:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def resolve(upstream: Upstream, resolver: Resolver = _getaddrinfo) -> None:
    """Resolve ``upstream`` once; raises ``socket.gaierror`` (or another OSError) on failure."""
    resolver(upstream.host, upstream.port)


class UpstreamMonitor:
    """Re-resolves the upstream every ``interval`` seconds and reports each outcome.

    ``report`` is called from the monitor's thread with None (resolved) or the exception.
    """

    def __init__(
        self,
        upstream: Upstream,
        interval: float,
        report: Callable[[OSError | None], object],
        resolver: Resolver = _getaddrinfo,
    ) -> None:
        self.upstream = upstream
        self.interval = interval
        self._report = report
        self._resolver = resolver
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="upstream-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        # A resolution in progress is not interruptible; the daemon thread dies with us.
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                resolve(self.upstream, self._resolver)
            except OSError as exc:
                outcome: OSError | None = exc
            else:
                outcome = None
            if not self._stop.is_set():
                self._report(outcome)
