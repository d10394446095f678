"""``process``: the server exited (with a code, a reason such as OOMKilled), restarted, or runs."""

from __future__ import annotations

from pydantic import Field, model_validator

from gameday.assertions.base import Expectation, Verdict, clock, expectations
from gameday.core.events import ProcessExited
from gameday.core.observations import Observations
from gameday.scenario.model import ExpectationParams, StrictModel
from gameday.scenario.units import Duration

__all__ = ["ExitMatch", "ProcessExpectation", "ProcessParams"]


class ExitMatch(StrictModel):
    code: int | None = None
    """Exit code as a container runtime reports it (137 for SIGKILL)."""
    reason: str | None = None
    """Completed, Error or OOMKilled."""
    signal: str | None = None

    def matches(self, exited: ProcessExited) -> bool:
        return (
            (self.code is None or exited.exit_code == self.code)
            and (self.reason is None or exited.reason == self.reason)
            and (self.signal is None or exited.signal == self.signal)
        )

    def __str__(self) -> str:
        parts = [f"{k}={v}" for k, v in self.model_dump().items() if v is not None]
        return ", ".join(parts) or "any exit"


class ProcessParams(ExpectationParams):
    name: str = "server"
    exited: ExitMatch | None = None
    """An exit of the process matching this (not one the harness itself caused)."""
    restarts: int | None = Field(default=None, ge=1)
    """At least this many restarts since the phase started."""
    running_for: Duration | None = None
    """Running, without exiting, for at least this long."""

    @model_validator(mode="after")
    def _one(self) -> ProcessParams:
        given = [n for n in ("exited", "restarts", "running_for") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of exited, restarts, running_for")
        return self

    def describe(self) -> str:
        if self.exited is not None:
            return f"process {self.name} exited ({self.exited})"
        if self.restarts is not None:
            return f"process {self.name} restarted >= {self.restarts} time(s)"
        return f"process {self.name} running for {self.running_for:g}s"


@expectations.register("process")
class ProcessExpectation(Expectation[ProcessParams]):
    Params = ProcessParams
    summary = "The server exited (code, reason such as OOMKilled), restarted N times, or stays up."

    def check(self, observed: Observations, since: float) -> Verdict:
        p = self.params
        if p.exited is not None:
            for exited in observed.exits(p.name, since):
                if not exited.expected and p.exited.matches(exited):
                    return Verdict.held(exited.ts, self._exit_line(exited, since))
            return Verdict.pending()
        if p.restarts is not None:
            starts = observed.starts(p.name, since)
            if len(starts) >= p.restarts:
                at = starts[p.restarts - 1].ts
                return Verdict.held(
                    at, f"{len(starts)} restart(s); restart {p.restarts} at {clock(at, since)}"
                )
            return Verdict.pending()
        assert p.running_for is not None
        started = observed.running_since(p.name)
        now = self.now()
        if started is not None and now - max(started, since) >= p.running_for:
            at = max(started, since) + p.running_for
            return Verdict.held(
                at, f"running since {clock(started, since)} (pid up {now - started:.1f}s)"
            )
        return Verdict.pending()

    def explain(self, observed: Observations, since: float) -> list[str]:
        lines = [self._exit_line(e, since) for e in observed.exits(self.params.name, since)]
        starts = observed.starts(self.params.name, since)
        lines.append(f"{len(starts)} start(s) since the phase began")
        return lines

    @staticmethod
    def _exit_line(exited: ProcessExited, since: float) -> str:
        by_us = " (stopped by the harness)" if exited.expected else ""
        sig = f" {exited.signal}" if exited.signal else ""
        return (
            f"{clock(exited.ts, since)} pid {exited.pid} exited {exited.exit_code}{sig} "
            f"reason={exited.reason}{by_us}"
        )
