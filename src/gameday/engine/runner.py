"""The runner: one game day, one or more scenarios, each through its phases.

    up -> load -> steady_state -> experiment (faults at offsets; expect)
       -> recover -> teardown

Faults are reverted at the end of their duration, and on any error or signal
before teardown; teardown stops everything the target started. Each step is
an event; expectations are checked against the observations those events
make, whenever a new event arrives and a few times a second otherwise.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from gameday import __version__
from gameday.assertions.base import Expectation, ExpectationContext, expectations
from gameday.core.changes import ChangeSet
from gameday.core.errors import Aborted, ExitCode, GamedayError, InjectionError
from gameday.core.events import (
    Event,
    EventBus,
    ExpectationResolved,
    ExpectationStarted,
    FaultApplied,
    FaultFailed,
    FaultReverted,
    Handler,
    Note,
    PhaseStarted,
    RemedyFinished,
    RemedyStarted,
    RemedyStep,
    RunFinished,
    RunStarted,
    ScenarioFinished,
    ScenarioStarted,
)
from gameday.core.journal import Journal
from gameday.core.observations import Observations
from gameday.core.redact import redact_text, remember_secrets_in, remember_secrets_of
from gameday.core.undo import RevertFailed
from gameday.engine.loadrun import start_load
from gameday.engine.requirements import (
    check_requirements,
    missing_requirements,
    scenario_requirements,
)
from gameday.injectors.base import FaultContext, Injector, faults
from gameday.observe.alerts import AlertPoller
from gameday.remedies.base import PlannedStep, Remedy, plan_remedy
from gameday.scenario.loader import LoadedScenario
from gameday.scenario.model import (
    DEFAULT_DEADLINES,
    ExpectationEntry,
    Phase,
    RemedySpec,
    Scenario,
    deadline_of,
    resolve_span,
)
from gameday.targets.base import Target, TargetContext, targets

__all__ = ["GameDay", "Outcome", "RunOptions", "RunResult", "new_run_id"]

TICK = 0.25
RESTORE_CHECK_TIMEOUT = 30.0


class Outcome:
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    ABORTED = "aborted"
    SKIPPED = "skipped"
    """The machine lacks what the scenario needs, and the run was asked to skip such."""

    EXIT_CODES = {
        PASSED: ExitCode.PASSED,
        SKIPPED: ExitCode.PASSED,
        FAILED: ExitCode.FAILED,
        ERROR: ExitCode.ENVIRONMENT,
        ABORTED: ExitCode.ABORTED,
    }
    PRECEDENCE = (ABORTED, ERROR, FAILED, PASSED, SKIPPED)

    @classmethod
    def combine(cls, outcomes: Sequence[str]) -> str:
        for outcome in cls.PRECEDENCE:
            if outcome in outcomes:
                return outcome
        return cls.PASSED


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


@dataclass
class RunOptions:
    report_dir: Path = Path("reports")
    run_id: str = field(default_factory=new_run_id)
    handle_signals: bool = True
    skip_unavailable: bool = False
    """Skip (and report) scenarios whose machine requirements are missing, instead of
    ending them with an environment error."""
    cooldown: float = 0.0
    """Pause between the scenarios of a suite, unless a scenario sets its own."""
    kube_context: str | None = None
    prometheus: str | None = None
    alertmanager: str | None = None


@dataclass
class RunResult:
    run_id: str
    outcome: str
    exit_code: int
    run_dir: Path
    scenario_outcomes: dict[str, str]


class _Tracked:
    """One expectation of one phase, while the runner waits for it."""

    def __init__(
        self,
        phase: Phase,
        index: int,
        entry: ExpectationEntry,
        impl: Expectation[Any],
        startup: float,
    ) -> None:
        self.phase = phase
        self.index = index
        self.entry = entry
        self.impl = impl
        self.deadline = deadline_of(phase, entry, startup)
        self.outcome: str | None = None
        self.met_at: float | None = None

    @property
    def resolved(self) -> bool:
        return self.outcome is not None


class _Fault:
    def __init__(self, injector: Injector[Any, Any], startup: float) -> None:
        self.injector = injector
        self.spec = injector.spec
        self.duration = (
            None if self.spec.duration is None else resolve_span(self.spec.duration, startup)
        )
        """Seconds it stays applied, its start-ups counted as the target's measured one."""
        self.applied_at: float | None = None
        self.reverted_at: float | None = None
        self.failed = False
        self.revert_error: str | None = None

    @property
    def one_shot(self) -> bool:
        return self.duration is None

    @property
    def done(self) -> bool:
        if self.failed or self.revert_error is not None:
            return True
        if self.applied_at is None:
            return False
        return self.one_shot or self.reverted_at is not None

    @property
    def ended_at(self) -> float | None:
        return self.applied_at if self.one_shot else self.reverted_at


class ScenarioRun:
    def __init__(
        self,
        loaded: LoadedScenario,
        *,
        bus: EventBus,
        journal: Journal,
        run_dir: Path,
        stop: threading.Event,
        signal_name: Callable[[], str],
        skip_unavailable: bool = False,
        options: RunOptions | None = None,
    ) -> None:
        self.skip_unavailable = skip_unavailable
        self.options = options or RunOptions()
        self.loaded = loaded
        self.scenario: Scenario = loaded.scenario
        self.name = self.scenario.name
        self.bus = bus
        self.journal = journal
        self.artifacts = run_dir / self.name
        self.artifacts.mkdir(parents=True, exist_ok=True)  # every tier writes here (locust.log)
        self.stop = stop
        self.signal_name = signal_name
        self.observed = Observations(self.name)
        self.target: Target | None = None
        self.faults: list[_Fault] = []
        self.poller: AlertPoller | None = None
        self.load_driver: Any = None
        self.load_changes: ChangeSet | None = None
        self.tracked: dict[Phase, list[_Tracked]] = {}
        self.fault_end: float | None = None
        self.remedy_steps: list[Remedy[Any, Any]] = []
        self.recover_budget = scenario_recover_budget(self.scenario)

    # -- helpers -------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        self.bus.emit(event)

    def note(self, message: str, level: str = "info") -> None:
        self.emit(Note(scenario=self.name, level=level, message=message))

    def _phase(self, phase: str) -> None:
        self.emit(PhaseStarted(scenario=self.name, phase=phase))

    def _startup(self) -> float:
        """What a ``startup`` in a deadline or a duration counts for: the target's own."""
        return self.target.startup_seconds if self.target is not None else 0.0

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise Aborted(self.signal_name())

    def _expectations(
        self, phase: Phase, entries: list[ExpectationEntry], ctx: ExpectationContext
    ) -> list[_Tracked]:
        tracked = []
        for index, entry in enumerate(entries):
            cls = expectations.get(entry.kind)
            item = _Tracked(phase, index, entry, cls(entry.params, ctx), self._startup())
            tracked.append(item)
            self.emit(
                ExpectationStarted(
                    scenario=self.name,
                    phase=phase.value,
                    index=index,
                    kind=entry.kind,
                    description=item.impl.describe(),
                    deadline=item.deadline,
                    severity=entry.params.severity.value,
                )
            )
        self.tracked[phase] = tracked
        return tracked

    def _evaluate(self, items: list[_Tracked], since: float) -> bool:
        """Check what is unresolved; resolve at the deadline. True once all are resolved."""
        now = time.time()
        for item in items:
            if item.resolved:
                continue
            verdict = item.impl.check(self.observed, since)
            deadline = since + item.deadline
            if verdict.met and verdict.at is not None and verdict.at <= deadline:
                reporters = verdict.reporters or item.impl.reported_by()
                self._resolve(
                    item, "passed", since, verdict.at, verdict.evidence, self._sources(reporters)
                )
            elif verdict.met and verdict.at is not None:
                evidence = (
                    f"held only at +{verdict.at - since:.1f}s, "
                    f"after its {item.deadline:g}s deadline",
                    *verdict.evidence,
                )
                self._resolve(item, "failed", since, None, evidence)
            elif now > deadline + 1.0:  # one more tick for events already in flight
                self._resolve(
                    item, "failed", since, None, tuple(item.impl.explain(self.observed, since))
                )
        return all(item.resolved for item in items)

    def _resolve(
        self,
        item: _Tracked,
        outcome: str,
        since: float,
        met_at: float | None,
        evidence: Sequence[str],
        observed_from: tuple[str, ...] = (),
    ) -> None:
        item.outcome, item.met_at = outcome, met_at
        self.emit(
            ExpectationResolved(
                scenario=self.name,
                phase=item.phase.value,
                index=item.index,
                kind=item.entry.kind,
                description=item.impl.describe(),
                outcome=outcome,
                deadline=item.deadline,
                phase_started=since,
                met_at=met_at,
                evidence=tuple(evidence),
                severity=item.entry.params.severity.value,
                observed_from=observed_from,
            )
        )

    def _sources(self, reporters: Sequence[str]) -> tuple[str, ...]:
        """Each reporter with whether it is real on this tier (the target knows)."""
        if self.target is None:
            return ()
        return tuple(f"{r}: {self.target.provenance(r)}" for r in dict.fromkeys(reporters))

    def _skip(self, items: list[_Tracked], since: float, reason: str) -> None:
        for item in items:
            if not item.resolved:
                self._resolve(item, "skipped", since, None, (reason,))

    def _wait_until(self, done: Callable[[], bool]) -> None:
        seen = self.bus.sequence
        while not done():
            self._check_stop()
            seen = self.bus.wait(seen, TICK)

    # -- faults --------------------------------------------------------------------

    def _apply(self, fault: _Fault, t0: float) -> None:
        spec = fault.spec
        started = time.time()
        try:
            details = fault.injector.apply()
        except (GamedayError, OSError, RevertFailed) as error:
            fault.failed = True
            self.emit(
                FaultFailed(
                    scenario=self.name,
                    fault=spec.name,
                    fault_type=spec.type,
                    stage="apply",
                    error=str(error),
                )
            )
            self._revert(fault, after_failure=True)
            if isinstance(error, GamedayError):
                raise
            raise InjectionError(f"fault {spec.name}: {error}") from error
        fault.applied_at = started
        self.emit(
            FaultApplied(
                scenario=self.name,
                fault=spec.name,
                fault_type=spec.type,
                description=type(fault.injector).describe(spec),
                started=started,
                offset=started - t0,
                details=tuple(details.items()),
                runbook=type(fault.injector).runbook,
                duration=fault.duration,
            )
        )

    def _revert(self, fault: _Fault, *, after_failure: bool = False) -> None:
        spec = fault.spec
        started = time.time()  # the fault ends when its revert begins: what that revert
        # sets off (a rollout, a restart) already counts as recovery
        try:
            details = fault.injector.revert()
        except (GamedayError, RevertFailed, OSError) as error:
            fault.revert_error = str(error)
            self.emit(
                FaultFailed(
                    scenario=self.name,
                    fault=spec.name,
                    fault_type=spec.type,
                    stage="revert",
                    error=str(error),
                )
            )
            return
        if after_failure:
            return
        fault.reverted_at = started
        self.emit(
            FaultReverted(
                scenario=self.name,
                fault=spec.name,
                fault_type=spec.type,
                details=tuple(details.items()),
                started=started,
            )
        )

    def _revert_outstanding(self) -> None:
        for step in reversed(self.remedy_steps):
            step.undo()  # newest first: the fix, then the faults
        for fault in reversed(self.faults):
            if fault.applied_at is not None and not fault.one_shot and fault.reverted_at is None:
                self._revert(fault)  # also a second try for a revert that failed
            elif fault.one_shot and len(fault.injector.ctx.changes):
                self._revert(fault)  # what a lasting fault without a duration left behind

    # -- the phases ----------------------------------------------------------------

    def execute(self) -> str:
        scenario = self.scenario
        target_cls = targets.get(scenario.target.kind)
        self.emit(
            ScenarioStarted(
                scenario=self.name,
                source=str(self.loaded.path),
                tier=target_cls.kind,
                runbook=scenario.metadata.runbook,
                description=scenario.metadata.description,
                spec=scenario.model_dump(mode="json", by_alias=True),
            )
        )
        self.bus.subscribe(self.observed)
        outcome, reason = Outcome.ERROR, ""
        try:
            outcome, reason = self._run_phases(target_cls)
        except Aborted as error:
            outcome, reason = Outcome.ABORTED, str(error)
        except GamedayError as error:
            outcome, reason = Outcome.ERROR, str(error)
        except Exception as error:  # a bug of ours: still tear down, still report
            outcome, reason = Outcome.ERROR, f"internal error: {type(error).__name__}: {error}"
            self.note(traceback.format_exc(), level="error")
        finally:
            self._phase("teardown")
            self._teardown()
            for items in self.tracked.values():
                self._skip(items, time.time(), f"not reached: scenario {outcome}")
            self.bus.unsubscribe(self.observed)
        self.emit(
            ScenarioFinished(
                scenario=self.name,
                outcome=outcome,
                reason=reason,
                time_to_detect=self._time_to_detect(),
                time_to_recover=self._time_to_recover(),
                detect_budget=self.scenario.detect_budget(),
                recover_budget=self.recover_budget,
            )
        )
        return outcome

    def _run_phases(self, target_cls: type[Target]) -> tuple[str, str]:
        scenario = self.scenario
        injector_classes = [faults.lookup(scenario.target.kind, f.type) for f in scenario.faults]
        if self.skip_unavailable:
            missing = missing_requirements(scenario_requirements(scenario))
            if missing:
                why = "; ".join(f"{r.value}: {reason}" for r, reason in missing.items())
                return Outcome.SKIPPED, f"this machine lacks what it needs ({why})"
        check_requirements(scenario_requirements(scenario))
        self._phase("up")
        ctx = TargetContext(
            scenario=self.name,
            run_id=self.journal.run_id,
            journal=self.journal,
            bus=self.bus,
            scenario_dir=self.loaded.path.parent.resolve(),
            artifacts=self.artifacts,
            stop=self.stop,
            kube_context=self.options.kube_context,
            prometheus=self.options.prometheus,
            alertmanager=self.options.alertmanager,
        )
        self.target = target_cls(scenario.target.params, ctx)
        self.target.up()
        endpoints = self.target.endpoints
        for line in self.target.simulated():
            self.note(line, level="simulated")
        self.poller = AlertPoller(self.bus, self.name, endpoints.prometheus, endpoints.alertmanager)
        self.poller.start()
        exp_ctx = ExpectationContext(self.name, endpoints.placeholders())
        if scenario.load is not None:
            self._start_load(endpoints.server, endpoints.api_key)
        for spec, cls in zip(scenario.faults, injector_classes, strict=True):
            fault_ctx = FaultContext(
                scenario=self.name,
                bus=self.bus,
                changes=ChangeSet(self.journal, self.name, f"fault/{spec.name}"),
                stop=self.stop,
                artifacts=self.artifacts,
                load=self.load_driver,
            )
            self.faults.append(_Fault(cls(spec, self.target, fault_ctx), self._startup()))

        self._phase(Phase.STEADY_STATE.value)
        steady = self._expectations(Phase.STEADY_STATE, scenario.steady_state, exp_ctx)
        steady_since = time.time()
        self._wait_until(lambda: self._evaluate(steady, steady_since))
        problem = None
        if not steady:
            # a suite checks the system is healthy before each scenario, declared or not
            try:
                timeout = DEFAULT_DEADLINES[Phase.STEADY_STATE]
                self.note(f"steady state (implicit): {self.target.check_serving(timeout)}")
            except GamedayError as error:
                problem = f"not serving before the faults ({error}); nothing injected"
        elif any(t.outcome == "failed" for t in steady):
            problem = "steady state did not hold before the faults; nothing was injected"
        if problem is not None:
            # listed, so the report shows them as not reached
            self._expectations(Phase.EXPECT, scenario.expect, exp_ctx)
            self._expectations(Phase.RECOVER, scenario.recover, exp_ctx)
            return Outcome.FAILED, problem

        self._phase("experiment")
        expect = self._expectations(Phase.EXPECT, scenario.expect, exp_ctx)
        t0 = time.time()
        expect_since: float | None = None

        def experiment_done() -> bool:
            nonlocal expect_since
            now = time.time()
            for fault in self.faults:
                if fault.applied_at is None and not fault.failed and now >= t0 + fault.spec.at:
                    self._apply(fault, t0)
                    if expect_since is None:
                        expect_since = fault.applied_at
                        self._phase(Phase.EXPECT.value)
                elif (
                    fault.applied_at is not None
                    and not fault.one_shot
                    and fault.reverted_at is None
                    and now >= fault.applied_at + (fault.duration or 0.0)
                ):
                    self._revert(fault)
            if not self.faults and expect_since is None:
                expect_since = t0
                self._phase(Phase.EXPECT.value)
            expect_done = expect_since is not None and self._evaluate(expect, expect_since)
            return expect_done and all(f.done for f in self.faults)

        self._wait_until(experiment_done)

        fault_end = max(
            (f.ended_at for f in self.faults if f.ended_at is not None), default=time.time()
        )
        met = [t.met_at for t in expect if t.met_at is not None]
        recover_since = max([fault_end, *met])
        if scenario.remedy is not None:
            # the responder starts on the runbook once the failure is detected and named
            recover_since = fault_end = self._run_remedy(scenario.remedy)
        self.fault_end = fault_end
        self._phase(Phase.RECOVER.value)
        recover = self._expectations(Phase.RECOVER, scenario.recover, exp_ctx)
        self._wait_until(lambda: self._evaluate(recover, recover_since))

        unreverted = [f for f in self.faults if f.revert_error is not None]
        if unreverted:
            names = "; ".join(f"{f.spec.name}: {f.revert_error}" for f in unreverted)
            return (
                Outcome.ERROR,
                f"could not revert: {names} (teardown tried again; see the journal)",
            )
        failed = [t for items in self.tracked.values() for t in items if t.outcome == "failed"]
        if failed:
            names = ", ".join(f"{t.phase.value}[{t.index}] {t.impl.describe()}" for t in failed)
            return Outcome.FAILED, f"{len(failed)} expectation(s) failed: {names}"
        return Outcome.PASSED, "every expectation held"

    def _run_remedy(self, spec: RemedySpec) -> float:
        """Run the runbook's remediation; return when it started."""
        from gameday.runbooks import load_catalog

        assert self.target is not None
        entry = load_catalog().get(spec.runbook)
        steps = plan_remedy(entry, self.scenario.target.kind, spec.actions)
        self._phase("remedy")
        started = time.time()
        budget = entry.budget
        self.emit(
            RemedyStarted(
                scenario=self.name,
                runbook=entry.code,
                title=entry.title,
                budget=budget.recover,
                budget_source=budget.section or "default: the runbook gives no time box",
                steps=tuple(step.describe() for step in steps),
            )
        )
        for step in steps:
            self._check_stop()
            if step.remedy is None or step.skip is not None:
                self._remedy_step(entry.code, step, "skipped", step.skip or "")
                continue
            self._remedy_step(entry.code, step, "started")
            ctx = FaultContext(
                scenario=self.name,
                bus=self.bus,
                changes=ChangeSet(
                    self.journal, self.name, f"remedy/{entry.code}/{step.action.kind}"
                ),
                stop=self.stop,
                artifacts=self.artifacts,
            )
            remedy = step.remedy(step.action, self.target, ctx)
            self.remedy_steps.append(remedy)  # before it acts: its undo records count
            try:
                details = remedy.apply()
            except (GamedayError, OSError, RevertFailed) as error:
                self._remedy_step(entry.code, step, "failed", str(error))
                self.emit(
                    RemedyFinished(
                        scenario=self.name,
                        runbook=entry.code,
                        started=started,
                        outcome="failed",
                        error=str(error),
                    )
                )
                raise InjectionError(
                    f"remedy {entry.code}, step {step.action.kind}: {error}"
                ) from error
            self._remedy_step(entry.code, step, "done", details=details)
        self.emit(
            RemedyFinished(scenario=self.name, runbook=entry.code, started=started, outcome="done")
        )
        return started

    def _remedy_step(
        self,
        runbook: str,
        step: PlannedStep,
        outcome: str,
        reason: str = "",
        details: dict[str, str] | None = None,
    ) -> None:
        self.emit(
            RemedyStep(
                scenario=self.name,
                runbook=runbook,
                index=step.index,
                kind=step.action.kind,
                description=step.describe(),
                outcome=outcome,
                reason=reason,
                details=tuple((details or {}).items()),
            )
        )

    def _start_load(self, server: str, api_key: str | None) -> None:
        assert self.scenario.load is not None
        self.load_changes = ChangeSet(self.journal, self.name, "load")
        self.load_driver = start_load(
            self.scenario.load, self.name, self.emit, server, self.load_changes, api_key=api_key
        )

    def _stop_load(self) -> None:
        if self.load_driver is None:
            return
        self.load_driver.stop()
        (self.artifacts / "locust.log").write_text(
            redact_text(self.load_driver.stderr_log()) + "\n"
        )
        if self.load_changes is not None:
            self.load_changes.revert_all()

    def _confirm_restored(self) -> None:
        """After an abort, say whether reverting the faults brought service back."""
        if self.target is None or not self.stop.is_set() or not self.faults:
            return
        try:
            self.note(f"restored: {self.target.check_serving(RESTORE_CHECK_TIMEOUT)}")
        except GamedayError as error:
            self.note(
                f"faults reverted, but the system is not serving yet: {error}", level="warning"
            )

    def _teardown(self) -> None:
        steps: list[tuple[str, Callable[[], object]]] = [
            ("revert faults", self._revert_outstanding),
            ("confirm the restore", self._confirm_restored),
            ("stop load", self._stop_load),
            ("stop alert poller", lambda: self.poller.stop() if self.poller else None),
            ("take the target down", lambda: self.target.down() if self.target else None),
        ]
        for what, step in steps:
            try:
                step()
            except Exception as error:  # keep tearing down; say what was left
                self.note(f"{what} failed: {error}", level="error")

    # -- figures -------------------------------------------------------------------

    def _first_fault_at(self) -> float | None:
        applied = [f.applied_at for f in self.faults if f.applied_at is not None]
        return min(applied) if applied else None

    def _time_to_detect(self) -> float | None:
        start = self._first_fault_at()
        expect = self.tracked.get(Phase.EXPECT, [])
        alerts = [t.met_at for t in expect if t.entry.kind == "alert" and t.met_at is not None]
        detections = alerts or [t.met_at for t in expect if t.met_at is not None]
        if start is None or not detections:
            return None
        return max(0.0, min(detections) - start)

    def _time_to_recover(self) -> float | None:
        recover = self.tracked.get(Phase.RECOVER, [])
        fault_end = self.fault_end
        if not recover or fault_end is None or any(t.outcome != "passed" for t in recover):
            return None
        return max(0.0, max(t.met_at or 0.0 for t in recover) - fault_end)


def scenario_recover_budget(scenario: Scenario) -> float | None:
    """The scenario's own recover budget; with a remedy and none given, the runbook's."""
    if scenario.budget.recover is None and scenario.remedy is not None:
        from gameday.runbooks import load_catalog

        return load_catalog().get(scenario.remedy.runbook).budget.recover
    return scenario.recover_budget()


class GameDay:
    """Runs scenarios one after another, as one game day with one journal and one report."""

    def __init__(
        self,
        scenarios: Sequence[LoadedScenario],
        options: RunOptions,
        handlers: Sequence[Handler] = (),
    ) -> None:
        self.scenarios = list(scenarios)
        self.options = options
        # before the first event: what the scenarios and the processes the run starts
        # (they inherit this environment) hold of secrets is masked in all it writes
        remember_secrets_of(env=os.environ)
        for loaded in self.scenarios:
            remember_secrets_in(loaded.scenario.model_dump(mode="json", by_alias=True))
        # absolute: generated configs name files by path, and tools resolve relative
        # paths against their own config's folder, not our working directory
        self.run_dir = (options.report_dir / options.run_id).resolve()
        self.bus = EventBus()
        self.stop = threading.Event()
        self._signal = "SIGINT"
        self.journal = Journal(self.run_dir / "journal.jsonl", options.run_id)
        self.bus.subscribe(self.journal.record_event)
        for handler in handlers:
            self.bus.subscribe(handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        del frame
        if self.stop.is_set():
            self.bus.emit(
                Note(level="warning", message="still restoring what the run changed; please wait")
            )
            return
        self._signal = signal.Signals(signum).name
        self.stop.set()

    def run(self) -> RunResult:
        previous: dict[signal.Signals, Any] = {}
        if self.options.handle_signals and threading.current_thread() is threading.main_thread():
            for caught in (signal.SIGINT, signal.SIGTERM):
                previous[caught] = signal.signal(caught, self._on_signal)
        outcomes: dict[str, str] = {}
        self.journal.register_active()
        try:
            self.bus.emit(
                RunStarted(
                    run_id=self.options.run_id,
                    scenarios=tuple(s.scenario.name for s in self.scenarios),
                    report_dir=str(self.run_dir),
                    version=__version__,
                    host=socket.gethostname(),
                )
            )
            for position, loaded in enumerate(self.scenarios):
                if self.stop.is_set():
                    break
                run = ScenarioRun(
                    loaded,
                    bus=self.bus,
                    journal=self.journal,
                    run_dir=self.run_dir,
                    stop=self.stop,
                    signal_name=lambda: self._signal,
                    skip_unavailable=self.options.skip_unavailable,
                    options=self.options,
                )
                outcomes[loaded.scenario.name] = run.execute()
                cooldown = loaded.scenario.cooldown
                if cooldown is None:
                    cooldown = self.options.cooldown
                if cooldown and position < len(self.scenarios) - 1:
                    self.bus.emit(
                        Note(
                            level="info", message=f"cooldown {cooldown:g}s before the next scenario"
                        )
                    )
                    self.stop.wait(cooldown)
            if self.stop.is_set():
                outcome = Outcome.ABORTED
            else:
                outcome = Outcome.combine(list(outcomes.values()))
            exit_code = Outcome.EXIT_CODES[outcome]
            self.bus.emit(RunFinished(outcome=outcome, exit_code=exit_code))
        finally:
            self.journal.unregister_active()
            self.journal.close()
            for caught, handler in previous.items():
                signal.signal(caught, handler)
        return RunResult(self.options.run_id, outcome, exit_code, self.run_dir, outcomes)
