"""Fold a run's events into a :class:`RunReport` — live, or replayed from a journal."""

from __future__ import annotations

import re
from collections.abc import Iterable

from gameday.core.events import (
    AlertChanged,
    ComponentReady,
    Event,
    ExpectationResolved,
    FaultApplied,
    FaultFailed,
    FaultReverted,
    LoadSampled,
    LogLine,
    Note,
    PhaseStarted,
    ProcessBackoff,
    ProcessExited,
    ProcessStarted,
    RemedyFinished,
    RemedyStarted,
    RemedyStep,
    RulesLoaded,
    RunFinished,
    RunStarted,
    ScenarioFinished,
    ScenarioStarted,
)
from gameday.reports.model import (
    AlertTransition,
    DiagnosisRecord,
    ExpectationResult,
    FaultRecord,
    LoadPoint,
    ProcessRecord,
    RemedyRecord,
    RemedyStepRecord,
    RulesRecord,
    RunReport,
)
from gameday.reports.score import scenario_score, suite_score
from gameday.runbooks import load_catalog
from gameday.runbooks.diagnose import Diagnoser

__all__ = ["ReportBuilder", "build_report"]

ERROR_LINE = re.compile(r"error|exception|traceback|errno|killed|failed|refused", re.IGNORECASE)
ERROR_LINE_LIMIT = 40
PHASE_ORDER = {"steady_state": 0, "expect": 1, "recover": 2}


DIAGNOSES_SHOWN = 3


class ReportBuilder:
    def __init__(self) -> None:
        self.report = RunReport()
        self._diagnosers: dict[str, Diagnoser] = {}

    def __call__(self, event: Event) -> None:
        report = self.report
        if isinstance(event, RunStarted):
            report.run_id, report.version, report.host = event.run_id, event.version, event.host
            report.started_at = event.ts
            return
        if isinstance(event, RunFinished):
            report.outcome, report.exit_code, report.finished_at = (
                event.outcome,
                event.exit_code,
                event.ts,
            )
            report.score = suite_score(report)
            return
        if not event.scenario:
            return
        scenario = report.scenario(event.scenario)
        diagnoser = self._diagnosers.get(event.scenario)
        if diagnoser is None:
            diagnoser = self._diagnosers[event.scenario] = Diagnoser(load_catalog())
        diagnoser.feed([event])
        if isinstance(event, ScenarioStarted):
            scenario.source, scenario.tier = event.source, event.tier
            scenario.runbook, scenario.description = event.runbook, event.description
            scenario.started_at, scenario.spec = event.ts, dict(event.spec)
            scenario.simulated.extend(event.simulated)
        elif isinstance(event, ScenarioFinished):
            scenario.outcome, scenario.reason, scenario.finished_at = (
                event.outcome,
                event.reason,
                event.ts,
            )
            scenario.time_to_detect_s = event.time_to_detect
            scenario.time_to_recover_s = event.time_to_recover
            scenario.detect_budget_s = event.detect_budget
            scenario.recover_budget_s = event.recover_budget
            # in the order the scenario lists them, not the order they resolved in
            scenario.expectations.sort(key=lambda e: (PHASE_ORDER.get(e.phase, 9), e.index))
            scenario.score = scenario_score(scenario)
            scenario.diagnosis = _diagnosis(self._diagnosers.pop(event.scenario))
        elif isinstance(event, PhaseStarted):
            scenario.phases.setdefault(event.phase, event.ts)
        elif isinstance(event, ExpectationResolved):
            scenario.expectations.append(
                ExpectationResult(
                    phase=event.phase,
                    index=event.index,
                    kind=event.kind,
                    description=event.description,
                    outcome=event.outcome,
                    deadline_s=event.deadline,
                    met_after_s=None
                    if event.met_at is None
                    else round(event.met_at - event.phase_started, 3),
                    evidence=list(event.evidence),
                    severity=event.severity,
                    observed_from=list(event.observed_from),
                )
            )
        elif isinstance(event, FaultApplied):
            record = self._fault(scenario.faults, event.fault, event.fault_type)
            record.description, record.runbook = event.description, event.runbook
            record.applied_at, record.offset_s = event.started, round(event.offset, 3)
            record.details = dict(event.details)
        elif isinstance(event, FaultReverted):
            record = self._fault(scenario.faults, event.fault, event.fault_type)
            record.reverted_at = event.started or event.ts
            record.revert_details = dict(event.details)
        elif isinstance(event, FaultFailed):
            record = self._fault(scenario.faults, event.fault, event.fault_type)
            record.errors.append(f"{event.stage}: {event.error}")
        elif isinstance(event, AlertChanged):
            scenario.alerts.append(
                AlertTransition(
                    at=event.ts,
                    alert=event.alert,
                    source=event.source,
                    state=event.state,
                    value=event.value,
                )
            )
        elif isinstance(event, LoadSampled):
            scenario.load.append(
                LoadPoint(
                    t=event.t,
                    users=event.users,
                    rps=event.rps,
                    error_ratio=event.error_ratio,
                    requests=event.requests,
                    failures=event.failures,
                    p50_ms=event.p50_ms,
                    p95_ms=event.p95_ms,
                    ttft_p95_ms=event.ttft_p95_ms,
                    errors=dict(event.errors),
                )
            )
        elif isinstance(event, ProcessStarted):
            scenario.processes.append(
                ProcessRecord(
                    at=event.ts,
                    process=event.process,
                    event="started",
                    pid=event.pid,
                    detail=f"attempt {event.attempt}",
                )
            )
        elif isinstance(event, ProcessExited):
            scenario.processes.append(
                ProcessRecord(
                    at=event.ts,
                    process=event.process,
                    event="exited",
                    pid=event.pid,
                    exit_code=event.exit_code,
                    reason=event.reason,
                    detail="stopped by the harness" if event.expected else (event.signal or ""),
                )
            )
        elif isinstance(event, ProcessBackoff):
            scenario.processes.append(
                ProcessRecord(
                    at=event.ts,
                    process=event.process,
                    event="backoff",
                    detail=f"CrashLoopBackOff: restart in {event.delay:g}s",
                )
            )
        elif isinstance(event, RemedyStarted):
            scenario.remedy = RemedyRecord(
                runbook=event.runbook,
                title=event.title,
                budget_s=event.budget,
                budget_source=event.budget_source,
                started_at=event.ts,
            )
        elif isinstance(event, RemedyStep) and scenario.remedy is not None:
            if event.outcome != "started":
                scenario.remedy.steps.append(
                    RemedyStepRecord(
                        index=event.index,
                        kind=event.kind,
                        description=event.description,
                        outcome=event.outcome,
                        reason=event.reason,
                        details=dict(event.details),
                    )
                )
        elif isinstance(event, RemedyFinished) and scenario.remedy is not None:
            scenario.remedy.finished_at = event.ts
            scenario.remedy.outcome, scenario.remedy.error = event.outcome, event.error
            if event.outcome == "done":
                for fault in scenario.faults:
                    if fault.applied_at is not None and fault.reverted_at is None:
                        fault.remedied_at = event.ts
        elif isinstance(event, ComponentReady):
            scenario.components[event.component] = " ".join(
                part
                for part in (event.url or "", f"pid {event.pid}" if event.pid else "", event.detail)
                if part
            )
        elif isinstance(event, RulesLoaded):
            scenario.rules = RulesRecord(
                sources=list(event.sources),
                factor=event.factor,
                alerting_rules=event.alerting_rules,
                rewrites=list(event.rewrites),
            )
        elif isinstance(event, LogLine):
            if len(scenario.error_lines) < ERROR_LINE_LIMIT and ERROR_LINE.search(event.line):
                scenario.error_lines.append(f"{event.source}: {event.line}")
        elif isinstance(event, Note):
            if event.level == "simulated":
                scenario.simulated.append(event.message)
            else:
                scenario.notes.append(f"{event.level}: {event.message}")

    @staticmethod
    def _fault(records: list[FaultRecord], name: str, fault_type: str) -> FaultRecord:
        for record in records:
            if record.name == name:
                return record
        record = FaultRecord(name=name, type=fault_type)
        records.append(record)
        return record


def _diagnosis(diagnoser: Diagnoser) -> list[DiagnosisRecord]:
    ranking = diagnoser.fault_ranking()
    return [
        DiagnosisRecord(
            code=d.code,
            title=d.title,
            score=d.score,
            evidence=[e.quote() for e in d.evidence],
        )
        for d in (ranking or [])[:DIAGNOSES_SHOWN]
    ]


def build_report(events: Iterable[Event]) -> RunReport:
    builder = ReportBuilder()
    for event in events:
        builder(event)
    return builder.report
