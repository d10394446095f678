"""``event``: a Kubernetes Event with this reason (and message pattern, object kind, type)
was recorded in the workload's namespace since the phase began."""

from __future__ import annotations

import re

from gameday.assertions.base import Expectation, Verdict, clock, expectations
from gameday.core.events import KubeEvent
from gameday.core.observations import Observations
from gameday.scenario.model import ExpectationParams
from gameday.scenario.units import Regex

__all__ = ["EventExpectation", "EventParams"]


class EventParams(ExpectationParams):
    reason: str
    """Failed, BackOff, FailedScheduling, FailedMount, ProvisioningFailed..."""
    message: Regex | None = None
    """A regular expression searched in the event's message."""
    kind: str | None = None
    """The involved object's kind (Pod, PersistentVolumeClaim, ReplicaSet)."""
    type: str | None = None
    """Normal or Warning."""
    name: Regex | None = None
    """A regular expression the involved object's name must match (``inference-server-``,
    ``gameday-claim-``)."""

    def describe(self) -> str:
        what = f" /{self.message}/" if self.message else ""
        on = " ".join(filter(None, (self.kind, f"/{self.name}/" if self.name else None)))
        return f"event {self.reason}{what}{' on ' + on if on else ''}"

    def holds(self, event: KubeEvent) -> bool:
        return (
            event.reason == self.reason
            and (self.kind is None or event.involved_kind == self.kind)
            and (self.type is None or event.type == self.type)
            and (self.name is None or re.search(self.name, event.involved_name) is not None)
            and (self.message is None or re.search(self.message, event.message) is not None)
        )


def describe_event(event: KubeEvent) -> str:
    return (
        f"{event.type} {event.reason} {event.involved_kind}/{event.involved_name}: {event.message}"
    )


@expectations.register("event")
class EventExpectation(Expectation[EventParams]):
    Params = EventParams
    summary = "A Kubernetes Event (reason, message pattern, object kind) was recorded."

    def check(self, observed: Observations, since: float) -> Verdict:
        for event in observed.kube_events:
            if event.ts >= since and self.params.holds(event):
                return Verdict.held(
                    event.ts,
                    f"{clock(event.ts, since)} {describe_event(event)}",
                    reporters=(event.reporter,) if event.reporter else (),
                )
        return Verdict.pending()

    def explain(self, observed: Observations, since: float) -> list[str]:
        seen = [e for e in observed.kube_events if e.ts >= since]
        if not seen:
            return ["no event was recorded in the namespace since the phase began"]
        return [
            f"none of {len(seen)} events matched; the last ones:",
            *(f"{clock(e.ts, since)} {describe_event(e)}" for e in seen[-6:]),
        ]
