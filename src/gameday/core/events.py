"""Typed, timestamped events: everything a run does or observes is one of these.

Observers (the process supervisor, the load driver, the alert poller) and the
runner emit events on an :class:`EventBus`; handlers (console, journal, report
builder, the runner's own observation store) consume them. A handler that
raises is logged and kept out of the way: reporting must never break a run
that is in the middle of reverting a fault.

Events serialise to one JSON object each (``to_record``/``from_record``), which
is what ``journal.jsonl`` holds and what ``gameday report`` replays.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from gameday.core.redact import redact

__all__ = [
    "AlertChanged",
    "ApiRefused",
    "ComponentReady",
    "DeploymentObserved",
    "EndpointSliceObserved",
    "Event",
    "EventBus",
    "ExpectationResolved",
    "ExpectationStarted",
    "FaultApplied",
    "FaultFailed",
    "FaultReverted",
    "Handler",
    "KubeEvent",
    "LoadSampled",
    "LogLine",
    "Note",
    "PhaseStarted",
    "PodObserved",
    "ProcessBackoff",
    "ProcessExited",
    "ProcessStarted",
    "RemedyFinished",
    "RemedyStarted",
    "RemedyStep",
    "RulesLoaded",
    "RunFinished",
    "RunStarted",
    "ScenarioFinished",
    "ScenarioStarted",
    "event_from_record",
]

log = logging.getLogger(__name__)

_EVENT_TYPES: dict[str, type[Event]] = {}
_ADAPTERS: dict[str, TypeAdapter[Event]] = {}
"""Each event type's validator, built the first time a journal holds one."""


@dataclass(frozen=True, kw_only=True)
class Event:
    ts: float = field(default_factory=time.time)
    """Wall-clock time (Unix seconds) the event happened."""
    scenario: str = ""
    """The scenario it belongs to; empty for run-level events."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _EVENT_TYPES[cls.__name__] = cls  # so the journal reader can rebuild it by name

    def to_record(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        record["event"] = type(self).__name__
        return record


def event_from_record(record: dict[str, Any]) -> Event:
    """The event a journal record holds, its fields checked against the event's types.

    Raises KeyError for an event name this version does not know and ValueError naming
    the first field whose value does not fit (a journal edited by hand or written by
    another version): the readers of events (the diagnoser, the report) can then trust
    every field's type."""
    data = dict(record)
    name = data.pop("event")
    cls = _EVENT_TYPES[name]
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return _adapter(cls).validate_python({k: v for k, v in data.items() if k in names})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(the event)"
        raise ValueError(f"field {where}: {first['msg']}") from None


def _adapter(cls: type[Event]) -> TypeAdapter[Event]:
    # lax mode: JSON has no tuples, and the dataclasses hold tuples so events stay hashable
    if cls.__name__ not in _ADAPTERS:
        _ADAPTERS[cls.__name__] = TypeAdapter(cls)
    return _ADAPTERS[cls.__name__]


def redacted(event: Event) -> Event:
    """``event`` with the secrets its fields hold masked (itself if it holds none)."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, (str, list, tuple, dict)):
            masked = redact(value, key=f.name)
            if masked != value:
                changes[f.name] = masked
    return dataclasses.replace(event, **changes) if changes else event


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    run_id: str
    scenarios: tuple[str, ...]
    report_dir: str
    version: str
    host: str
    dry_run: bool = False


@dataclass(frozen=True, kw_only=True)
class ScenarioStarted(Event):
    source: str
    tier: str
    runbook: str | None
    description: str
    spec: dict[str, Any]
    simulated: tuple[str, ...] = ()
    """What on this tier is simulated rather than real, said plainly for the report."""


@dataclass(frozen=True, kw_only=True)
class PhaseStarted(Event):
    phase: str
    """up, steady_state, experiment, expect, recover, teardown."""


@dataclass(frozen=True, kw_only=True)
class ComponentReady(Event):
    component: str
    url: str | None
    pid: int | None
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class RulesLoaded(Event):
    """The alert rules a target's Prometheus evaluates, and how their time was compressed."""

    sources: tuple[str, ...]
    """The rule files as given (never modified)."""
    factor: float
    alerting_rules: int
    rewrites: tuple[str, ...] = ()
    """Each rewritten ``for:``, window or offset: 'alert: field before -> after'."""


@dataclass(frozen=True, kw_only=True)
class ProcessStarted(Event):
    process: str
    pid: int
    attempt: int
    command: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ProcessExited(Event):
    process: str
    pid: int
    exit_code: int
    """As a container runtime reports it: 128 + signal number for a signal death."""
    signal: str | None
    reason: str
    """Completed, Error, OOMKilled or Killed (by us), as a kubelet would name it."""
    restarts: int
    expected: bool = False
    """True when the harness itself stopped the process (teardown, a planned restart)."""


@dataclass(frozen=True, kw_only=True)
class ProcessBackoff(Event):
    process: str
    delay: float
    restarts: int
    """Restart count so far; the server is in CrashLoopBackOff while this is emitted."""


@dataclass(frozen=True, kw_only=True)
class LogLine(Event):
    source: str
    stream: str
    line: str


@dataclass(frozen=True, kw_only=True)
class PodObserved(Event):
    """A pod of the workload as the API server reported it (a watch event)."""

    pod: str
    namespace: str
    phase: str
    ready: bool
    containers: tuple[tuple[str, str, str, str, int | None, int], ...] = ()
    """(name, state, reason, message, exit code, restarts) per container: state is
    waiting, running or terminated; for a running container that restarted, reason
    and exit code are its last termination's."""
    unschedulable: str = ""
    """The scheduler's message while PodScheduled is False."""
    conditions: tuple[tuple[str, str, str], ...] = ()
    """(type, status, reason) per pod condition: PodScheduled, Initialized,
    ContainersReady, Ready, DisruptionTarget..."""
    deleted: bool = False
    resource_version: str = ""


@dataclass(frozen=True, kw_only=True)
class DeploymentObserved(Event):
    """A Deployment of the workload's namespace as the API server reported it (a watch
    event): its rollout, as the deployment controller writes it into its status."""

    deployment: str
    namespace: str
    workload: bool
    """It is the target's workload."""
    generation: int
    observed_generation: int
    """The generation the controller has acted on; below ``generation``, the status is old."""
    replicas: int
    """Wanted (spec.replicas)."""
    current: int
    """Pods the controller has (status.replicas), old and new."""
    updated: int
    ready: int
    available: int
    conditions: tuple[tuple[str, str, str, str], ...] = ()
    """(type, status, reason, message) per condition: Progressing (reason
    NewReplicaSetAvailable, ReplicaSetUpdated, ProgressDeadlineExceeded...), Available,
    ReplicaFailure."""
    deleted: bool = False
    resource_version: str = ""


@dataclass(frozen=True, kw_only=True)
class EndpointSliceObserved(Event):
    """An EndpointSlice of a Service in the workload's namespace (a watch event): the
    addresses the endpointslice controller found ready, and the others."""

    service: str
    """Its kubernetes.io/service-name label."""
    slice: str
    namespace: str
    ready: tuple[str, ...] = ()
    """Addresses of endpoints whose ready condition is true (or unset, which means ready)."""
    not_ready: tuple[str, ...] = ()
    deleted: bool = False
    resource_version: str = ""


@dataclass(frozen=True, kw_only=True)
class KubeEvent(Event):
    """A Kubernetes Event in the workload's namespace, when the watch delivered it."""

    reason: str
    message: str
    type: str
    involved_kind: str
    involved_name: str
    count: int = 1
    recorded: str = ""
    """The API server's own time for it (lastTimestamp or eventTime), as it wrote it."""
    resource_version: str = ""
    reporter: str = ""
    """Who recorded it: the reporting controller or source component (kubelet,
    default-scheduler, replicaset-controller; kwok_controller for a simulated kubelet)."""


@dataclass(frozen=True, kw_only=True)
class ApiRefused(Event):
    """A request the harness made that the Kubernetes API server refused, with its answer.

    Faults such as crd-schema-drift and rbac-denied make the API server say no; the
    refusal is the finding. ``account`` names who asked (the user name the API server
    authenticated); no credential is ever part of it."""

    status: int
    """The HTTP status: 400, 403, 404, 422..."""
    reason: str
    """The Status object's reason (BadRequest, Forbidden, NotFound) or the HTTP reason."""
    message: str
    """The API server's own message, as it answered."""
    verb: str
    """What was asked: create, patch, get..."""
    resource: str
    """The resource, with its group where it has one (deployments.apps)."""
    namespace: str = ""
    name: str = ""
    account: str = ""


@dataclass(frozen=True, kw_only=True)
class LoadSampled(Event):
    t: float
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


@dataclass(frozen=True, kw_only=True)
class AlertChanged(Event):
    alert: str
    state: str
    """inactive, pending or firing (Prometheus); active or resolved (Alertmanager)."""
    source: str
    """prometheus or alertmanager."""
    labels: tuple[tuple[str, str], ...] = ()
    active_at: str | None = None
    value: str | None = None


@dataclass(frozen=True, kw_only=True)
class FaultApplied(Event):
    fault: str
    fault_type: str
    description: str
    started: float
    """When applying began (a fault may take seconds to apply: several kills, a restart)."""
    offset: float
    details: tuple[tuple[str, str], ...] = ()
    runbook: str | None = None
    duration: float | None = None
    """Seconds it stays applied (start-ups resolved); None for a one-shot fault."""


@dataclass(frozen=True, kw_only=True)
class FaultReverted(Event):
    fault: str
    fault_type: str
    details: tuple[tuple[str, str], ...] = ()
    started: float | None = None
    """When reverting began (the fault's end); ``ts`` is when it was done."""


@dataclass(frozen=True, kw_only=True)
class FaultFailed(Event):
    fault: str
    fault_type: str
    stage: str
    """apply or revert."""
    error: str


@dataclass(frozen=True, kw_only=True)
class RemedyStarted(Event):
    """The runner began the runbook's remediation for ``runbook``."""

    runbook: str
    title: str
    budget: float
    """Seconds the runbook allows to recover."""
    budget_source: str
    """Where the budget comes from: the seed's section, or 'default (...)'."""
    steps: tuple[str, ...]
    """Every step of the remediation, as 'kind: what it does', run or not."""


@dataclass(frozen=True, kw_only=True)
class RemedyStep(Event):
    """One remediation step: announced before it acts, then done, failed or not run."""

    runbook: str
    index: int
    kind: str
    description: str
    outcome: str
    """started, done, failed, or skipped (a human's step, a conditional one, or one this
    target cannot take)."""
    details: tuple[tuple[str, str], ...] = ()
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class RemedyFinished(Event):
    runbook: str
    started: float
    outcome: str
    """done (every step it could run succeeded) or failed."""
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class ExpectationStarted(Event):
    """The runner began waiting for an expectation (for live views)."""

    phase: str
    index: int
    kind: str
    description: str
    deadline: float
    """Seconds after the start of its phase (see PhaseStarted)."""
    severity: str = "critical"


@dataclass(frozen=True, kw_only=True)
class ExpectationResolved(Event):
    phase: str
    index: int
    kind: str
    description: str
    outcome: str
    """passed, failed or skipped."""
    deadline: float
    """Seconds after the start of the phase."""
    phase_started: float
    met_at: float | None
    """Wall-clock time it held, when it did."""
    evidence: tuple[str, ...] = ()
    severity: str = "critical"
    observed_from: tuple[str, ...] = ()
    """Who reported what made it hold, each with whether it is real on this tier:
    ``kube-scheduler: real``, ``kubelet: simulated by kwok stages``."""


@dataclass(frozen=True, kw_only=True)
class Note(Event):
    level: str
    message: str


@dataclass(frozen=True, kw_only=True)
class ScenarioFinished(Event):
    outcome: str
    """passed, failed, aborted or error."""
    reason: str
    time_to_detect: float | None
    time_to_recover: float | None
    detect_budget: float | None = None
    recover_budget: float | None = None


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    outcome: str
    exit_code: int


Handler = Callable[[Event], None]


class EventBus:
    """Delivers each event to every handler, in order, from whichever thread emitted it.

    Delivery is serialised by a lock so handlers need no locking of their own;
    ``wait`` lets the runner sleep until something new was observed.
    """

    def __init__(self) -> None:
        self._handlers: list[Handler] = []
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._sequence = 0

    def subscribe(self, handler: Handler) -> None:
        with self._lock:
            self._handlers.append(handler)

    def unsubscribe(self, handler: Handler) -> None:
        with self._lock:
            if handler in self._handlers:
                self._handlers.remove(handler)

    def emit(self, event: Event) -> None:
        event = redacted(event)  # every handler (journal, report, console) gets it masked
        with self._lock:
            for handler in list(self._handlers):
                try:
                    handler(event)
                except Exception:
                    log.exception("event handler %r failed on %s", handler, type(event).__name__)
            self._sequence += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        """Block until an event newer than ``seen`` was delivered, or ``timeout``; new sequence."""
        with self._changed:
            if self._sequence == seen:
                self._changed.wait(timeout)
            return self._sequence

    @property
    def sequence(self) -> int:
        return self._sequence
