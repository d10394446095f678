"""``log``: a line matching a pattern appears in a process's output (the server's by default)."""

from __future__ import annotations

import re

from gameday.assertions.base import Expectation, Verdict, clock, expectations
from gameday.core.observations import Observations
from gameday.scenario.model import ExpectationParams
from gameday.scenario.units import Regex

__all__ = ["LogExpectation", "LogParams"]


class LogParams(ExpectationParams):
    pattern: Regex
    """A regular expression (Python syntax), searched in each line."""
    source: str = "server"

    def describe(self) -> str:
        return f"log of {self.source} matches /{self.pattern}/"


@expectations.register("log")
class LogExpectation(Expectation[LogParams]):
    Params = LogParams
    summary = "A log line of the server (or another process) matches a regular expression."

    def check(self, observed: Observations, since: float) -> Verdict:
        pattern = re.compile(self.params.pattern)
        for line in observed.logs:
            if line.ts >= since and line.source == self.params.source and pattern.search(line.line):
                return Verdict.held(line.ts, f"{clock(line.ts, since)} {line.source}: {line.line}")
        return Verdict.pending()

    def explain(self, observed: Observations, since: float) -> list[str]:
        lines = [
            line for line in observed.logs if line.ts >= since and line.source == self.params.source
        ]
        if not lines:
            return [f"{self.params.source} logged nothing since the phase began"]
        return [
            f"no line of {len(lines)} matched; the last ones:",
            *(f"{clock(line.ts, since)} {line.line}" for line in lines[-5:]),
        ]
