"""``load``: the load's figures stay within bounds over a window of seconds.

Holds once some window of ``window`` seconds after the phase start has all
its bounds met. Window figures: error ratio and request rate from the counts;
percentiles as the request-weighted mean of the per-second percentiles Locust
reports (an approximation, stated in the evidence).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, model_validator

from gameday.assertions.base import Bound, Expectation, Verdict, clock, expectations
from gameday.core.events import LoadSampled
from gameday.core.observations import Observations
from gameday.scenario.model import ExpectationParams
from gameday.scenario.units import Duration

__all__ = ["LoadExpectation", "LoadParams", "WindowFigures"]

FIGURES = ("error_ratio", "rps", "p50_ms", "p95_ms", "ttft_p95_ms")


class LoadParams(ExpectationParams):
    error_ratio: Bound | None = None
    rps: Bound | None = None
    p50_ms: Bound | None = None
    p95_ms: Bound | None = None
    ttft_p95_ms: Bound | None = None
    window: Duration = 10.0
    min_requests: int = Field(default=1, ge=0)
    """A window with fewer requests proves nothing and does not count."""

    @model_validator(mode="after")
    def _something(self) -> LoadParams:
        if all(getattr(self, name) is None for name in FIGURES):
            raise ValueError(f"give at least one bound: {', '.join(FIGURES)}")
        if self.window < 1:
            raise ValueError("window must be at least 1s (samples are per second)")
        return self

    def bounds(self) -> dict[str, Bound]:
        return {name: b for name in FIGURES if (b := getattr(self, name)) is not None}

    def describe(self) -> str:
        parts = [f"{name} {bound}" for name, bound in self.bounds().items()]
        return f"load {', '.join(parts)} over {self.window:g}s"


class WindowFigures:
    def __init__(self, samples: Sequence[LoadSampled]) -> None:
        self.samples = samples
        self.requests = sum(s.requests for s in samples)
        self.failures = sum(s.failures for s in samples)
        seconds = max(len(samples), 1)
        self.values: dict[str, float | None] = {
            "error_ratio": self.failures / self.requests if self.requests else None,
            "rps": self.requests / seconds,
            "p50_ms": self._weighted("p50_ms"),
            "p95_ms": self._weighted("p95_ms"),
            "ttft_p95_ms": self._weighted("ttft_p95_ms"),
        }

    def _weighted(self, name: str) -> float | None:
        pairs = [
            (value, s.requests - s.failures)
            for s in self.samples
            if (value := getattr(s, name)) is not None and s.requests > s.failures
        ]
        total = sum(w for _, w in pairs)
        return sum(v * w for v, w in pairs) / total if total else None

    def summary(self, names: Sequence[str]) -> str:
        shown = []
        for name in names:
            value = self.values[name]
            shown.append(f"{name}={'n/a' if value is None else f'{value:.3g}'}")
        return f"{', '.join(shown)} ({self.requests} requests, {self.failures} failed)"


@expectations.register("load")
class LoadExpectation(Expectation[LoadParams]):
    Params = LoadParams
    summary = "Load figures (error ratio, rps, latency, TTFT) within bounds over a window."

    def _windows(self, observed: Observations, since: float) -> list[WindowFigures]:
        samples = observed.load_since(since)
        size = max(round(self.params.window), 1)
        return [
            WindowFigures(samples[i : i + size]) for i in range(0, max(len(samples) - size + 1, 0))
        ]

    def _holds(self, window: WindowFigures) -> bool:
        if window.requests < self.params.min_requests:
            return False
        for name, bound in self.params.bounds().items():
            value = window.values[name]
            if value is None or not bound.holds(value):
                return False
        return True

    def check(self, observed: Observations, since: float) -> Verdict:
        names = list(self.params.bounds())
        for window in self._windows(observed, since):
            if self._holds(window):
                end = window.samples[-1].t
                return Verdict.held(
                    end,
                    f"window ending {clock(end, since)}: {window.summary(names)}",
                )
        return Verdict.pending()

    def explain(self, observed: Observations, since: float) -> list[str]:
        windows = self._windows(observed, since)
        if not windows:
            seen = len(observed.load_since(since))
            return [
                f"only {seen} second(s) of load samples; "
                f"a {self.params.window:g}s window needs more"
            ]
        names = list(self.params.bounds())

        # the closest miss: fewest bounds broken, then the latest
        def broken(window: WindowFigures) -> int:
            return sum(
                1
                for name, bound in self.params.bounds().items()
                if window.values[name] is None or not bound.holds(window.values[name] or 0.0)
            )

        best = min(reversed(windows), key=broken)
        return [
            f"no {self.params.window:g}s window met {self.describe()}",
            f"closest window, ending {clock(best.samples[-1].t, since)}: {best.summary(names)}",
        ]
