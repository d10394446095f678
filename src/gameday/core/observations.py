"""What one scenario has observed so far, folded from its events; expectations read it.

Every timestamp is the event's wall-clock time, so when an expectation held is
the time the thing was observed, not the time the runner got round to checking.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from gameday.core.events import (
    AlertChanged,
    DeploymentObserved,
    EndpointSliceObserved,
    Event,
    FaultApplied,
    FaultReverted,
    KubeEvent,
    LoadSampled,
    LogLine,
    PodObserved,
    ProcessBackoff,
    ProcessExited,
    ProcessStarted,
)

__all__ = ["AlertInterval", "Observations"]


@dataclass(frozen=True)
class AlertInterval:
    state: str
    start: float
    end: float | None
    """None while the state lasts."""

    def overlaps_from(self, since: float) -> bool:
        return self.end is None or self.end >= since


@dataclass
class Observations:
    scenario: str
    alert_changes: dict[tuple[str, str], list[AlertChanged]] = field(
        default_factory=lambda: defaultdict(list)
    )
    load: list[LoadSampled] = field(default_factory=list)
    process_events: list[ProcessStarted | ProcessExited | ProcessBackoff] = field(
        default_factory=list
    )
    logs: list[LogLine] = field(default_factory=list)
    faults: list[FaultApplied | FaultReverted] = field(default_factory=list)
    pods: list[PodObserved] = field(default_factory=list)
    kube_events: list[KubeEvent] = field(default_factory=list)
    deployments: list[DeploymentObserved] = field(default_factory=list)
    endpoint_slices: list[EndpointSliceObserved] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    """Every event of the scenario, in order (the diagnoser reads them all)."""

    def __call__(self, event: Event) -> None:
        """The event-bus handler: keep what belongs to this scenario."""
        if event.scenario != self.scenario:
            return
        self.events.append(event)
        if isinstance(event, AlertChanged):
            self.alert_changes[(event.source, event.alert)].append(event)
        elif isinstance(event, LoadSampled):
            self.load.append(event)
        elif isinstance(event, ProcessStarted | ProcessExited | ProcessBackoff):
            self.process_events.append(event)
        elif isinstance(event, LogLine):
            self.logs.append(event)
        elif isinstance(event, FaultApplied | FaultReverted):
            self.faults.append(event)
        elif isinstance(event, PodObserved):
            self.pods.append(event)
        elif isinstance(event, KubeEvent):
            self.kube_events.append(event)
        elif isinstance(event, DeploymentObserved):
            self.deployments.append(event)
        elif isinstance(event, EndpointSliceObserved):
            self.endpoint_slices.append(event)

    # -- alerts --------------------------------------------------------------------

    def alert_intervals(self, source: str, alert: str) -> list[AlertInterval]:
        """The alert's states at ``source`` as back-to-back intervals.

        Before its first change an alert is inactive (resolved, at Alertmanager)."""
        changes = self.alert_changes.get((source, alert), [])
        intervals: list[AlertInterval] = []
        start, state = 0.0, "inactive" if source == "prometheus" else "resolved"
        for change in changes:
            intervals.append(AlertInterval(state, start, change.ts))
            start, state = change.ts, change.state
        intervals.append(AlertInterval(state, start, None))
        return [i for i in intervals if i.end is None or i.end > i.start]

    def alert_history(self, alert: str) -> list[AlertChanged]:
        return sorted(
            (
                c
                for (_, name), changes in self.alert_changes.items()
                if name == alert
                for c in changes
            ),
            key=lambda c: c.ts,
        )

    # -- processes -----------------------------------------------------------------

    def exits(self, process: str, since: float) -> list[ProcessExited]:
        return [
            e
            for e in self.process_events
            if isinstance(e, ProcessExited) and e.process == process and e.ts >= since
        ]

    def starts(self, process: str, since: float) -> list[ProcessStarted]:
        return [
            e
            for e in self.process_events
            if isinstance(e, ProcessStarted) and e.process == process and e.ts >= since
        ]

    def running_since(self, process: str) -> float | None:
        """When the current run of ``process`` started, if it is running now."""
        latest: float | None = None
        for event in self.process_events:
            if event.process != process:
                continue
            if isinstance(event, ProcessStarted):
                latest = event.ts
            elif isinstance(event, ProcessExited):
                latest = None
        return latest

    def load_since(self, since: float) -> list[LoadSampled]:
        return [s for s in self.load if s.t >= since]
