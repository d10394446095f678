"""The terminal view of a run: one line per thing worth knowing, as it happens."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape

from gameday.core.events import (
    AlertChanged,
    ApiRefused,
    ComponentReady,
    Event,
    ExpectationResolved,
    FaultApplied,
    FaultFailed,
    FaultReverted,
    LoadSampled,
    Note,
    PhaseStarted,
    ProcessBackoff,
    ProcessExited,
    ProcessStarted,
    RemedyFinished,
    RemedyStarted,
    RemedyStep,
    RunFinished,
    ScenarioFinished,
    ScenarioStarted,
)

__all__ = ["ConsoleView"]

_STYLE = {
    "passed": "green",
    "failed": "red",
    "error": "yellow",
    "aborted": "magenta",
    "skipped": "dim",
}
LOAD_EVERY = 5.0


class ConsoleView:
    def __init__(self, console: Console | None = None, verbose: bool = False) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.verbose = verbose
        self._origin: float = time.time()
        self._last_load = 0.0

    def _line(self, event: Event, label: str, text: str = "") -> None:
        """``label`` is rich markup of ours; ``text`` comes from the run and is escaped."""
        offset = event.ts - self._origin
        parts = [part for part in (label, escape(text)) if part]
        self.console.print(f"[dim]{offset:7.1f}s[/dim] " + " ".join(parts))

    def __call__(self, event: Event) -> None:
        if isinstance(event, ScenarioStarted):
            self._origin = event.ts
            title = f"{event.scenario} · {event.tier} · {event.runbook or 'no runbook'}"
            self.console.rule(f"[bold]{escape(title)}[/bold]")
        elif isinstance(event, PhaseStarted):
            self._line(event, "[bold cyan]phase[/bold cyan]", event.phase)
        elif isinstance(event, ComponentReady):
            self._line(event, "ready:", f"{event.component} {event.url or ''} {event.detail}")
        elif isinstance(event, FaultApplied):
            self._line(
                event,
                "[bold yellow]fault applied[/bold yellow]",
                f"{event.fault} ({event.fault_type}): {event.description}",
            )
        elif isinstance(event, FaultReverted):
            self._line(event, "[yellow]fault reverted[/yellow]", event.fault)
        elif isinstance(event, FaultFailed):
            label = f"[bold red]fault {escape(event.stage)} failed[/bold red]"
            self._line(event, label, f"{event.fault}: {event.error}")
        elif isinstance(event, RemedyStarted):
            self._line(
                event,
                "[bold cyan]remedy[/bold cyan]",
                f"{event.runbook} ({event.title}), budget {event.budget:g}s",
            )
        elif isinstance(event, RemedyStep) and event.outcome != "started":
            style = {"done": "green", "failed": "red"}.get(event.outcome, "dim")
            what = "; ".join(f"{k}: {v}" for k, v in event.details) or event.reason
            self._line(
                event,
                f"  [{style}]{escape(event.outcome)}[/{style}]",
                f"{event.description} ({what})" if what else event.description,
            )
        elif isinstance(event, RemedyFinished) and event.outcome != "done":
            self._line(event, "[bold red]remedy failed[/bold red]", event.error)
        elif isinstance(event, AlertChanged):
            self._line(event, "alert", f"{event.alert} {event.state} at {event.source}")
        elif isinstance(event, ApiRefused):
            where = f"{event.namespace}/{event.name}" if event.namespace else event.name
            self._line(
                event,
                "[red]API server refused[/red]",
                f"{event.verb} {event.resource} {where}: {event.status} {event.message}",
            )
        elif isinstance(event, ProcessExited):
            cause = " (stopped by harness)" if event.expected else ""
            self._line(event, "", f"{event.process} exited {event.exit_code} {event.reason}{cause}")
        elif isinstance(event, ProcessBackoff):
            self._line(event, "", f"{event.process} CrashLoopBackOff: restart in {event.delay:g}s")
        elif isinstance(event, ProcessStarted) and event.attempt > 1:
            self._line(
                event, "", f"{event.process} restarted (attempt {event.attempt}, pid {event.pid})"
            )
        elif isinstance(event, ExpectationResolved):
            style = _STYLE.get(event.outcome, "")
            label = f"[{style}]{event.outcome:7}[/{style}]"
            self._line(event, label, f"{event.phase}: {event.description}")
            if event.outcome == "failed":
                for line in event.evidence[:8]:
                    self.console.print(f"          [dim]{escape(line)}[/dim]")
        elif isinstance(event, LoadSampled):
            if event.ts - self._last_load >= LOAD_EVERY or self.verbose:
                self._last_load = event.ts
                p95 = f"{event.p95_ms:.0f}ms" if event.p95_ms is not None else "n/a"
                self._line(
                    event,
                    "[dim]load[/dim]",
                    f"{event.users} users {event.rps:.1f} req/s "
                    f"errors {event.error_ratio:.0%} p95 {p95}",
                )
        elif isinstance(event, Note):
            if event.level in ("warning", "error"):
                self._line(event, f"[yellow]{escape(event.level)}:[/yellow]", event.message)
            elif self.verbose:
                self._line(event, "[dim]note:[/dim]", event.message)
        elif isinstance(event, ScenarioFinished):
            style = _STYLE.get(event.outcome, "")
            ttd = f"{event.time_to_detect:.1f}s" if event.time_to_detect is not None else "—"
            ttr = f"{event.time_to_recover:.1f}s" if event.time_to_recover is not None else "—"
            if event.recover_budget is not None:
                ttr += f" of {event.recover_budget:g}s"
            self._line(
                event,
                f"[bold {style}]{event.outcome.upper()}[/bold {style}]",
                f"{event.scenario}: {event.reason} (detect {ttd}, recover {ttr})",
            )
        elif isinstance(event, RunFinished):
            style = _STYLE.get(event.outcome, "")
            self.console.rule(
                f"[bold {style}]game day {event.outcome}[/bold {style}] (exit {event.exit_code})"
            )
