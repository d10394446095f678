"""The diagnoser: which documented failures a run's observations match, ranked, with evidence.

Events become *signals* (a log line, a process exit, a crash-loop back-off, an error the
load saw, an alert that fired, a request the API server refused); each signal is matched
against every catalog signature of its kind. A match is worth

- 3 for a specific signature that names a cause (an error line, an exit reason, an event
  or scheduler message: the things a runbook says "look for this"),
- 1 for a specific symptom (an alert, a load error, a waiting reason),
- 0.25 for a signature the catalog marks ``specific: false`` (a symptom many failures share).

A signal that matches several entries is shared between them in proportion to what each
match is worth, so the one log line that names the cause is not outvoted by a symptom
every failure shows. An entry scores the sum over its signatures (each counted once,
however often it matched), and an entry with no specific match is never a diagnosis: a
shared symptom supports one but does not make one.

Metric signatures need a Prometheus to ask and are not read from events; the alert that
evaluates the same condition stands in for them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gameday.core.events import (
    AlertChanged,
    ApiRefused,
    Event,
    FaultApplied,
    KubeEvent,
    LoadSampled,
    LogLine,
    PhaseStarted,
    PodObserved,
    ProcessBackoff,
    ProcessExited,
    ScenarioStarted,
)
from gameday.core.journal import read_events
from gameday.runbooks.model import (
    AlertFiring,
    ApiError,
    Catalog,
    ContainerTerminated,
    ContainerWaiting,
    Entry,
    KubernetesEvent,
    LoadError,
    ProcessExit,
    SchedulerMessage,
    Signature,
)
from gameday.runbooks.model import LogLine as LogSignature
from gameday.scenario.units import format_sample_value

__all__ = [
    "CAUSE_WEIGHT",
    "SHARED_WEIGHT",
    "SYMPTOM_WEIGHT",
    "Confusion",
    "Diagnoser",
    "Diagnosis",
    "Evidence",
    "ScenarioDiagnosis",
    "Signal",
    "diagnose_events",
    "diagnose_journal",
]

FIX_PHASES = ("remedy", "recover", "teardown")
"""Phases that end the fault window: from them on, what is seen is the fix at work."""
CAUSE_WEIGHT = 3.0
SYMPTOM_WEIGHT = 1.0
SHARED_WEIGHT = 0.25
CAUSE_KINDS = frozenset(
    {
        "log",
        "process-exit",
        "container-terminated",
        "k8s-event",
        "scheduler",
        "api-error",
        "command-output",
    }
)


def weight_of(signature: Signature) -> float:
    if not signature.specific:
        return SHARED_WEIGHT
    return CAUSE_WEIGHT if signature.kind in CAUSE_KINDS else SYMPTOM_WEIGHT


@dataclass(frozen=True)
class Signal:
    """One thing observed, in the shape signatures are matched against."""

    kind: str
    """The signature kind it can match: log, process-exit, container-waiting, ..."""
    ts: float
    text: str
    """What was seen, as the report quotes it."""
    line: str = ""
    """The text patterns are searched in (a log line, a load error's name, a message)."""
    reason: str | None = None
    code: int | None = None
    signal: str | None = None
    name: str | None = None
    count: int = 1
    reporter: str = ""
    """Who reported it (kubelet, kube-scheduler, kube-apiserver, prometheus, the server)."""


def signals_of(event: Event) -> list[Signal]:
    """The signals an event carries (none for the runner's own bookkeeping)."""
    if isinstance(event, LogLine):
        text = f"{event.source} {event.stream}: {event.line}"
        return [Signal("log", event.ts, text, event.line, reporter=event.source)]
    if isinstance(event, ProcessExited) and not event.expected:
        how = f"signal {event.signal}" if event.signal else f"code {event.exit_code}"
        return [
            Signal(
                "process-exit",
                event.ts,
                f"{event.process} exited ({how}, {event.reason}) after {event.restarts} restarts",
                reason=event.reason,
                code=event.exit_code,
                signal=event.signal,
                reporter="supervisor",
            )
        ]
    if isinstance(event, ProcessBackoff):
        # the supervisor restarts like a kubelet; this is its CrashLoopBackOff
        message = f"back-off {event.delay:g}s restarting failed container"
        return [
            Signal(
                "container-waiting",
                event.ts,
                f"{event.process} CrashLoopBackOff: {message} ({event.restarts} restarts)",
                message,
                reason="CrashLoopBackOff",
                reporter="supervisor",
            )
        ]
    if isinstance(event, PodObserved):
        return _pod_signals(event)
    if isinstance(event, KubeEvent):
        return [
            Signal(
                "k8s-event",
                event.ts,
                f"event {event.type} {event.reason} {event.involved_kind}/"
                f"{event.involved_name}: {event.message}",
                event.message,
                reason=event.reason,
                name=event.involved_kind,
                signal=event.type,
                reporter=event.reporter,
            )
        ]
    if isinstance(event, ApiRefused):
        what = f"{event.namespace}/{event.name}" if event.namespace else event.name
        who = f" as {event.account}" if event.account else ""
        return [
            Signal(
                "api-error",
                event.ts,
                f"API server refused {event.verb} {event.resource} {what}{who}: "
                f"{event.status} {event.reason}: {event.message}",
                event.message,
                reason=event.reason,
                code=event.status,
                reporter="kube-apiserver",
            )
        ]
    if isinstance(event, LoadSampled):
        return [
            Signal(
                "load-error",
                event.ts,
                f"load: {name} x{count}",
                name,
                count=count,
                reporter="locust",
            )
            for name, count in event.errors
        ]
    if (
        isinstance(event, AlertChanged)
        and event.source == "prometheus"
        and event.state in ("firing", "pending")
    ):
        value = f" (value {format_sample_value(event.value)})" if event.value else ""
        return [
            Signal(
                "alert",
                event.ts,
                f"alert {event.alert} {event.state}{value}",
                name=event.alert,
                reason=event.state,
                reporter="prometheus",
            )
        ]
    return []


def _pod_signals(pod: PodObserved) -> list[Signal]:
    found = []
    if pod.unschedulable:
        found.append(
            Signal(
                "scheduler",
                pod.ts,
                f"{pod.pod} unschedulable: {pod.unschedulable}",
                pod.unschedulable,
                reporter="kube-scheduler",
            )
        )
    for name, state, reason, message, code, _ in pod.containers:
        if not reason:
            continue
        if state == "waiting":
            text = f"{pod.pod}/{name} waiting {reason}" + (f": {message}" if message else "")
            found.append(
                Signal(
                    "container-waiting", pod.ts, text, message, reason=reason, reporter="kubelet"
                )
            )
        else:  # terminated now, or last time before this run
            text = f"{pod.pod}/{name} terminated {reason} (exit {code})"
            found.append(
                Signal(
                    "container-terminated",
                    pod.ts,
                    text,
                    message,
                    reason=reason,
                    code=code,
                    reporter="kubelet",
                )
            )
    return found


def _search(pattern: str | None, text: str) -> bool:
    return pattern is None or re.search(pattern, text) is not None


def _log(sig: LogSignature, signal: Signal) -> bool:
    return _search(sig.pattern, signal.line)


def _process_exit(sig: ProcessExit, signal: Signal) -> bool:
    return (
        (sig.code is None or sig.code == signal.code)
        and (sig.reason is None or sig.reason == signal.reason)
        and (sig.signal is None or sig.signal == signal.signal)
    )


def _waiting(sig: ContainerWaiting, signal: Signal) -> bool:
    return sig.reason == signal.reason and _search(sig.message, signal.line)


def _terminated(sig: ContainerTerminated, signal: Signal) -> bool:
    return (
        sig.reason == signal.reason
        and (sig.exit_code is None or sig.exit_code == signal.code)
        and _search(sig.message, signal.line)
    )


def _load_error(sig: LoadError, signal: Signal) -> bool:
    return _search(sig.pattern, signal.line)


def _k8s_event(sig: KubernetesEvent, signal: Signal) -> bool:
    return (
        sig.reason == signal.reason
        and sig.type == signal.signal
        and (sig.involved_kind is None or sig.involved_kind == signal.name)
        and _search(sig.message, signal.line)
    )


def _scheduler(sig: SchedulerMessage, signal: Signal) -> bool:
    return _search(sig.message, signal.line)


def _api_error(sig: ApiError, signal: Signal) -> bool:
    return (sig.status is None or sig.status == signal.code) and _search(sig.message, signal.line)


def _alert(sig: AlertFiring, signal: Signal) -> bool:
    return sig.name == signal.name and sig.state == signal.reason


_MATCHERS: dict[str, Callable[[object, Signal], bool]] = {
    "log": _log,  # type: ignore[dict-item]
    "process-exit": _process_exit,  # type: ignore[dict-item]
    "container-waiting": _waiting,  # type: ignore[dict-item]
    "container-terminated": _terminated,  # type: ignore[dict-item]
    "load-error": _load_error,  # type: ignore[dict-item]
    "alert": _alert,  # type: ignore[dict-item]
    "k8s-event": _k8s_event,  # type: ignore[dict-item]
    "scheduler": _scheduler,  # type: ignore[dict-item]
    "api-error": _api_error,  # type: ignore[dict-item]
}
"""Signature kinds the event stream can show; the others (command output, metrics) wait
for observers that produce them."""


def describe_signature(signature: Signature) -> str:
    """A signature as one short phrase: 'log /\\[Errno 98\\]/', 'alert InferenceTargetDown'."""
    data = signature.model_dump(
        exclude={"kind", "specific", "examples"}, exclude_none=True, exclude_defaults=True
    )
    parts = [f"{key}={value}" for key, value in data.items()]
    return f"{signature.kind} " + ", ".join(parts) if parts else signature.kind


@dataclass(frozen=True)
class Evidence:
    """A signature of an entry and the first signal that matched it."""

    signature: str
    observed: str
    ts: float
    """When the first matching signal was observed."""
    count: int
    """How many signals matched (load errors count their requests)."""
    points: float
    specific: bool
    reporter: str = ""
    """Who reported the first matching signal."""

    def quote(self, since: float | None = None) -> str:
        """'+3.2s log pattern=...: server stderr: ... (x7)'; the offset only with ``since``."""
        when = f"{self.ts - since:+.1f}s " if since is not None else ""
        times = f" (x{self.count})" if self.count > 1 else ""
        return f"{when}{self.signature}: {self.observed}{times}"


@dataclass(frozen=True)
class Diagnosis:
    code: str
    title: str
    score: float
    evidence: tuple[Evidence, ...]
    """Ordered by time."""

    @property
    def since(self) -> float:
        return min(e.ts for e in self.evidence)

    def summary(self) -> str:
        return f"{self.code} ({self.title}; score {self.score:.2f})"


@dataclass
class _Match:
    code: str
    index: int
    """The signature's position in its entry."""
    signal: Signal
    points: float


@dataclass
class Diagnoser:
    """Feed it one scenario's events (in any number of calls); ask for the ranking of any
    time window, or of the fault window it saw go by."""

    catalog: Catalog
    matches: list[_Match] = field(default_factory=list)
    fault_started: float | None = None
    """When the first fault began to be applied."""
    fault_window_end: float | None = None
    """The start of the first remedy, recover or teardown phase after it."""
    last_seen: float = 0.0
    _by_kind: dict[str, list[tuple[Entry, int, Signature]]] = field(default_factory=dict)
    _described: dict[tuple[str, int], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for entry in self.catalog.entries:
            for index, signature in enumerate(entry.signatures):
                if signature.kind in _MATCHERS:
                    self._by_kind.setdefault(signature.kind, []).append((entry, index, signature))
                    self._described[(entry.code, index)] = describe_signature(signature)

    def feed(self, events: Iterable[Event]) -> None:
        for event in events:
            self.last_seen = max(self.last_seen, event.ts)
            if isinstance(event, FaultApplied) and self.fault_started is None:
                self.fault_started = event.started
            elif (
                isinstance(event, PhaseStarted)
                and event.phase in FIX_PHASES
                and self.fault_started is not None
                and self.fault_window_end is None
                and event.ts >= self.fault_started
            ):
                self.fault_window_end = event.ts
            for signal in signals_of(event):
                self._match(signal)

    def _match(self, signal: Signal) -> None:
        best: dict[str, tuple[int, float]] = {}
        for entry, index, signature in self._by_kind.get(signal.kind, ()):
            if _MATCHERS[signal.kind](signature, signal):
                weight = weight_of(signature)
                if weight > best.get(entry.code, (0, 0.0))[1]:
                    best[entry.code] = (index, weight)
        total = sum(weight for _, weight in best.values())
        for code, (index, weight) in best.items():
            self.matches.append(_Match(code, index, signal, weight * weight / total))

    def ranking(self, since: float | None = None, until: float | None = None) -> list[Diagnosis]:
        """Entries with at least one specific match in the window, best first."""
        return self._rank(self._window(since, until))

    def fault_window(self) -> tuple[float, float] | None:
        """From the first fault to the start of the remedy or recover phase (or the last
        event): what the failure did before anyone fixed it. None without a fault."""
        if self.fault_started is None:
            return None
        return self.fault_started, self.fault_window_end or self.last_seen

    def fault_ranking(self) -> list[Diagnosis] | None:
        """The ranking over the fault window; None when no fault was applied."""
        window = self.fault_window()
        return None if window is None else self.ranking(*window)

    def first_on_top(self, code: str, since: float, until: float | None = None) -> float | None:
        """The earliest time in the window at which ``code`` alone led the ranking."""
        window = sorted(self._window(since, until), key=lambda m: m.signal.ts)
        for position, match in enumerate(window):
            if match.code != code:
                continue
            ranked = self._rank(window[: position + 1])
            if ranked and ranked[0].code == code:
                return match.signal.ts
        return None

    def _rank(self, matches: Sequence[_Match]) -> list[Diagnosis]:
        found: dict[str, dict[int, list[_Match]]] = {}
        for match in matches:
            found.setdefault(match.code, {}).setdefault(match.index, []).append(match)
        ranked = []
        for code, by_signature in found.items():
            entry = self.catalog.get(code)
            evidence = []
            for index, seen in by_signature.items():
                signature = entry.signatures[index]
                first = min(seen, key=lambda m: m.signal.ts)
                evidence.append(
                    Evidence(
                        signature=self._described[(code, index)],
                        observed=first.signal.text,
                        ts=first.signal.ts,
                        count=sum(m.signal.count for m in seen),
                        points=max(m.points for m in seen),
                        specific=signature.specific,
                        reporter=first.signal.reporter,
                    )
                )
            if not any(e.specific for e in evidence):
                continue
            evidence.sort(key=lambda e: e.ts)
            score = round(sum(e.points for e in evidence), 6)
            ranked.append(Diagnosis(code, entry.title, score, tuple(evidence)))
        ranked.sort(key=lambda d: (-d.score, d.since, d.code))
        return ranked

    def _window(self, since: float | None, until: float | None) -> list[_Match]:
        return [
            m
            for m in self.matches
            if (since is None or m.signal.ts >= since) and (until is None or m.signal.ts <= until)
        ]


def diagnose_events(
    events: Sequence[Event], scenario: str, catalog: Catalog
) -> list[Diagnosis] | None:
    """The ranking over one scenario's fault window; None when no fault was applied."""
    diagnoser = Diagnoser(catalog)
    diagnoser.feed(e for e in events if e.scenario == scenario)
    return diagnoser.fault_ranking()


@dataclass(frozen=True)
class ScenarioDiagnosis:
    """One scenario of a recorded run: the code it names and what its signals diagnose."""

    source: str
    """The journal it was read from."""
    scenario: str
    expected: str | None
    """The runbook code the scenario names (``metadata.runbook``)."""
    ranking: tuple[Diagnosis, ...]

    @property
    def top(self) -> str | None:
        return self.ranking[0].code if self.ranking else None


def diagnose_journal(path: Path, catalog: Catalog) -> list[ScenarioDiagnosis]:
    """Every scenario of a run's journal that applied a fault, diagnosed over its fault window."""
    events = read_events(path)
    results = []
    for started in (e for e in events if isinstance(e, ScenarioStarted)):
        ranking = diagnose_events(events, started.scenario, catalog)
        if ranking is not None:
            results.append(
                ScenarioDiagnosis(str(path), started.scenario, started.runbook, tuple(ranking))
            )
    return results


NOTHING = "(none)"
"""The column of a scenario whose signals diagnosed nothing."""


@dataclass(frozen=True)
class Confusion:
    """Rows: the code each scenario names; columns: the code its signals diagnosed first."""

    results: tuple[ScenarioDiagnosis, ...]

    @property
    def expected(self) -> list[str]:
        return sorted({r.expected or NOTHING for r in self.results})

    @property
    def diagnosed(self) -> list[str]:
        codes = {r.top or NOTHING for r in self.results}
        return [c for c in self.expected if c in codes] + sorted(codes - set(self.expected))

    def count(self, expected: str, diagnosed: str) -> int:
        return sum(
            1
            for r in self.results
            if (r.expected or NOTHING) == expected and (r.top or NOTHING) == diagnosed
        )

    def misses(self) -> list[ScenarioDiagnosis]:
        """Scenarios diagnosed as something other than the code they name."""
        return [r for r in self.results if r.expected is None or r.top != r.expected]

    @property
    def diagonal(self) -> bool:
        return not self.misses()
