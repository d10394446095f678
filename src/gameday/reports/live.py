"""The live status of a run, redrawn below the console's log lines while it runs.

A handler like the others: events update a small state, and rich's :class:`Live`
redraws :meth:`LiveView.render` a few times a second from its own thread (hence
the lock). It only draws on a terminal; in CI the log lines are the record.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from gameday.core.events import (
    AlertChanged,
    Event,
    ExpectationResolved,
    ExpectationStarted,
    FaultApplied,
    FaultFailed,
    FaultReverted,
    LoadSampled,
    PhaseStarted,
    ScenarioFinished,
    ScenarioStarted,
)
from gameday.scenario.units import parse_duration, parse_span

__all__ = ["LiveView"]

_MARK = {
    "pending": "[cyan]…[/cyan]",
    "passed": "[green]✓[/green]",
    "failed": "[red]✗[/red]",
    "skipped": "[dim]-[/dim]",
}


@dataclass
class _FaultState:
    name: str
    type: str
    at: float
    duration: float | None
    state: str = "pending"
    applied_at: float | None = None


@dataclass
class _ExpectationState:
    phase: str
    index: int
    description: str
    deadline: float
    state: str = "pending"
    met_after: float | None = None


class LiveView:
    """Phase, elapsed time, load figures, fault state and each expectation's state."""

    def __init__(self, console: Console, refresh_per_second: float = 4.0) -> None:
        self.console = console
        self._lock = threading.Lock()
        self._reset("", 0.0)
        self._live = Live(
            console=console,
            get_renderable=self.render,
            refresh_per_second=refresh_per_second,
            transient=True,
        )

    def _reset(self, scenario: str, started: float) -> None:
        self.scenario = scenario
        self.title = scenario
        self.started = started
        self.phase = "starting"
        self.phase_started: dict[str, float] = {}
        self.load: LoadSampled | None = None
        self.faults: dict[str, _FaultState] = {}
        self.expectations: dict[tuple[str, int], _ExpectationState] = {}
        self.alerts: dict[str, str] = {}
        self.finished: str | None = None

    # -- as a context manager, around the run ----------------------------------------

    def __enter__(self) -> LiveView:
        self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.stop()

    # -- as an event handler ---------------------------------------------------------

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._update(event)

    def _update(self, event: Event) -> None:
        if isinstance(event, ScenarioStarted):
            self._reset(event.scenario, event.ts)
            self.title = f"{event.scenario} · {event.tier} · {event.runbook or 'no runbook'}"
            for fault in _spec_faults(event.spec):
                self.faults[fault.name] = fault
        elif event.scenario != self.scenario:
            return
        elif isinstance(event, PhaseStarted):
            self.phase = event.phase
            self.phase_started.setdefault(event.phase, event.ts)
        elif isinstance(event, LoadSampled):
            self.load = event
        elif isinstance(event, FaultApplied):
            fault = self.faults.setdefault(
                event.fault, _FaultState(event.fault, event.fault_type, event.offset, None)
            )
            fault.state, fault.applied_at = "applied", event.started
            if event.duration is not None:
                fault.duration = event.duration
        elif isinstance(event, FaultReverted) and event.fault in self.faults:
            self.faults[event.fault].state = "reverted"
        elif isinstance(event, FaultFailed) and event.fault in self.faults:
            self.faults[event.fault].state = f"{event.stage} failed"
        elif isinstance(event, ExpectationStarted):
            self.expectations[(event.phase, event.index)] = _ExpectationState(
                event.phase, event.index, event.description, event.deadline
            )
        elif isinstance(event, ExpectationResolved):
            item = self.expectations.setdefault(
                (event.phase, event.index),
                _ExpectationState(event.phase, event.index, event.description, event.deadline),
            )
            item.state = event.outcome
            if event.met_at is not None:
                item.met_after = event.met_at - event.phase_started
        elif isinstance(event, AlertChanged):
            self.alerts[f"{event.alert} ({event.source})"] = event.state
        elif isinstance(event, ScenarioFinished):
            self.finished = event.outcome

    # -- drawing ---------------------------------------------------------------------

    def render(self, now: float | None = None) -> RenderableType:
        with self._lock:
            return self._render(time.time() if now is None else now)

    def _render(self, now: float) -> RenderableType:
        if not self.scenario:
            return Text("")
        elapsed = now - self.started
        head = f"[bold]{escape(self.title)}[/bold]  phase [cyan]{escape(self.phase)}[/cyan]"
        head += f"  elapsed {elapsed:.0f}s"
        left = self._time_left(now)
        if left is not None:
            head += f"  ≤{left:.0f}s to the last deadline"
        parts: list[RenderableType] = [Text.from_markup(head)]
        if self.load is not None:
            sample = self.load
            p95 = "n/a" if sample.p95_ms is None else f"{sample.p95_ms:.0f}ms"
            ttft = "n/a" if sample.ttft_p95_ms is None else f"{sample.ttft_p95_ms:.0f}ms"
            parts.append(
                Text(
                    f"load  {sample.users} users  {sample.rps:.1f} req/s  "
                    f"errors {sample.error_ratio:.0%}  p95 {p95}  TTFT p95 {ttft}"
                )
            )
        if self.faults:
            parts.append(self._fault_table(now))
        if self.expectations:
            parts.append(self._expectation_table(now))
        active = [f"{name} {state}" for name, state in self.alerts.items() if state != "inactive"]
        if active:
            parts.append(Text("alerts  " + ", ".join(active), style="yellow"))
        return Group(*parts)

    def _fault_table(self, now: float) -> Table:
        table = Table.grid(padding=(0, 2))
        experiment = self.phase_started.get("experiment")
        for fault in self.faults.values():
            if fault.state == "pending" and experiment is not None:
                timing = f"starts in {max(0.0, experiment + fault.at - now):.0f}s"
            elif fault.state == "pending":
                timing = f"at +{fault.at:g}s of the experiment"
            elif fault.state == "applied" and fault.duration and fault.applied_at:
                timing = f"reverts in {max(0.0, fault.applied_at + fault.duration - now):.0f}s"
            else:
                timing = ""
            style = {"applied": "bold yellow", "reverted": "green"}.get(fault.state, "")
            table.add_row(
                Text("fault"),
                Text(f"{fault.name} ({fault.type})"),
                Text(fault.state, style=style or ("red" if "failed" in fault.state else "")),
                Text(timing, style="dim"),
            )
        return table

    def _expectation_table(self, now: float) -> Table:
        table = Table.grid(padding=(0, 2))
        for item in self.expectations.values():
            started = self.phase_started.get(item.phase)
            if item.state == "pending" and started is not None:
                status = f"{max(0.0, started + item.deadline - now):.0f}s left"
            elif item.state == "pending":
                status = f"deadline {item.deadline:g}s"
            elif item.met_after is not None:
                status = f"held at +{item.met_after:.1f}s"
            else:
                status = item.state
            table.add_row(
                Text.from_markup(_MARK.get(item.state, "?")),
                Text(f"{item.phase}[{item.index}]", style="dim"),
                Text(item.description),
                Text(status, style="dim"),
            )
        return table

    def _time_left(self, now: float) -> float | None:
        ends = [
            self.phase_started[item.phase] + item.deadline
            for item in self.expectations.values()
            if item.state == "pending" and item.phase in self.phase_started
        ]
        return max(0.0, max(ends) - now) if ends else None


def _spec_faults(spec: dict[str, Any]) -> list[_FaultState]:
    faults = spec.get("faults") or []
    return [
        _FaultState(
            name=str(f.get("name", "?")),
            type=str(f.get("type", "?")),
            at=parse_duration(f.get("at") or 0.0),
            duration=None if f.get("duration") is None else parse_span(f["duration"]).resolve(0.0),
        )
        for f in faults
        if isinstance(f, dict)
    ]
