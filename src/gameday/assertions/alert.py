"""``alert``: an alert reaches a state (firing, pending, inactive) within the deadline.

Firing means firing in Prometheus *and* received as active by Alertmanager
(read through its v2 API): an alert that never reaches Alertmanager pages no
one. Inactive means neither pending nor firing in Prometheus and not active in
Alertmanager.
"""

from __future__ import annotations

from typing import Literal

from gameday.assertions.base import Expectation, Verdict, clock, expectations
from gameday.core.observations import AlertInterval, Observations
from gameday.scenario.model import ExpectationParams
from gameday.scenario.units import format_sample_value

__all__ = ["AlertExpectation", "AlertParams"]


class AlertParams(ExpectationParams):
    name: str
    """The alert name (the ``alert:`` of a rule)."""
    state: Literal["firing", "pending", "inactive"] = "firing"
    source: Literal["both", "prometheus", "alertmanager"] = "both"
    """Where the state must be seen; firing at both is what pages someone."""

    def describe(self) -> str:
        return f"alert {self.name} {self.state}"


def _earliest_overlap(sets: list[list[AlertInterval]], since: float) -> float | None:
    """Earliest time >= since inside one interval of every set."""
    candidates = sorted(
        {max(i.start, since) for intervals in sets for i in intervals if i.overlaps_from(since)}
    )
    for t in candidates:
        if all(
            any(i.start <= t and (i.end is None or t < i.end) for i in intervals)
            for intervals in sets
        ):
            return t
    return None


@expectations.register("alert")
class AlertExpectation(Expectation[AlertParams]):
    Params = AlertParams
    summary = "An alert is firing (Prometheus and Alertmanager), pending, or inactive."

    def _wanted(self, observed: Observations) -> list[list[AlertInterval]]:
        name, state = self.params.name, self.params.state
        prometheus_states = {
            "firing": {"firing"},
            "pending": {"pending"},
            "inactive": {"inactive"},
        }[state]
        manager_states = {"firing": {"active"}, "pending": None, "inactive": {"resolved"}}[state]
        sets: list[list[AlertInterval]] = []
        if self.params.source in ("both", "prometheus"):
            sets.append(
                [
                    i
                    for i in observed.alert_intervals("prometheus", name)
                    if i.state in prometheus_states
                ]
            )
        if self.params.source in ("both", "alertmanager") and manager_states is not None:
            sets.append(
                [
                    i
                    for i in observed.alert_intervals("alertmanager", name)
                    if i.state in manager_states
                ]
            )
        return sets

    def reported_by(self) -> tuple[str, ...]:
        sources = {"both": ("prometheus", "alertmanager")}
        return sources.get(self.params.source, (self.params.source,))

    def check(self, observed: Observations, since: float) -> Verdict:
        at = _earliest_overlap(self._wanted(observed), since)
        if at is None:
            return Verdict.pending()
        return Verdict.held(at, *self._timeline(observed, since))

    def explain(self, observed: Observations, since: float) -> list[str]:
        timeline = self._timeline(observed, since)
        if not timeline:
            return [f"{self.params.name} was never pending or firing in Prometheus"]
        return [f"{self.params.name} never {self.params.state} at {self._where()}", *timeline]

    def _where(self) -> str:
        return "Prometheus and Alertmanager" if self.params.source == "both" else self.params.source

    def _timeline(self, observed: Observations, since: float) -> list[str]:
        lines = []
        for change in observed.alert_history(self.params.name):
            value = f" value={format_sample_value(change.value)}" if change.value else ""
            lines.append(f"{clock(change.ts, since)} {change.source}: {change.state}{value}")
        return lines
