"""The report of a run, built from its events; ``report.json`` is this model, dumped."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = [
    "AlertTransition",
    "ExpectationResult",
    "FaultRecord",
    "LoadPoint",
    "ProcessRecord",
    "RulesRecord",
    "RunReport",
    "ScenarioReport",
]


class ExpectationResult(BaseModel):
    phase: str
    index: int
    kind: str
    description: str
    outcome: str
    deadline_s: float
    severity: str = "critical"
    """critical, warning or info: its weight in the resilience score."""
    met_after_s: float | None = None
    """Seconds after the start of its phase at which it held."""
    evidence: list[str] = Field(default_factory=list)
    observed_from: list[str] = Field(default_factory=list)
    """Who reported what made it hold, and whether that is real on the tier
    (``kube-scheduler: real``, ``kubelet: simulated by kwok stages``)."""

    @property
    def name(self) -> str:
        return f"{self.phase}[{self.index}] {self.description}"


class FaultRecord(BaseModel):
    name: str
    type: str
    description: str = ""
    runbook: str | None = None
    applied_at: float | None = None
    reverted_at: float | None = None
    remedied_at: float | None = None
    """When the runbook's remedy ended the fault (it is reverted only at teardown)."""
    offset_s: float | None = None
    details: dict[str, str] = Field(default_factory=dict)
    revert_details: dict[str, str] = Field(default_factory=dict)
    errors: list[str] = Field(default_factory=list)


class AlertTransition(BaseModel):
    at: float
    alert: str
    source: str
    state: str
    value: str | None = None


class LoadPoint(BaseModel):
    t: float
    users: int
    rps: float
    error_ratio: float
    requests: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None
    ttft_p95_ms: float | None
    errors: dict[str, int] = Field(default_factory=dict)


class ProcessRecord(BaseModel):
    at: float
    process: str
    event: str
    """started, exited or backoff."""
    pid: int | None = None
    exit_code: int | None = None
    reason: str | None = None
    detail: str = ""


class RulesRecord(BaseModel):
    sources: list[str] = Field(default_factory=list)
    factor: float = 1.0
    alerting_rules: int = 0
    rewrites: list[str] = Field(default_factory=list)


class DiagnosisRecord(BaseModel):
    """A runbook code the fault window's signals matched, with what matched."""

    code: str
    title: str
    score: float
    evidence: list[str] = Field(default_factory=list)


class RemedyStepRecord(BaseModel):
    index: int
    kind: str
    description: str
    outcome: str
    """done, failed or skipped (with the reason)."""
    reason: str = ""
    details: dict[str, str] = Field(default_factory=dict)


class RemedyRecord(BaseModel):
    """The runbook's remediation as the run carried it out."""

    runbook: str
    title: str
    budget_s: float
    budget_source: str
    started_at: float
    finished_at: float | None = None
    outcome: str = "running"
    error: str = ""
    steps: list[RemedyStepRecord] = Field(default_factory=list)


class ScenarioReport(BaseModel):
    name: str
    source: str = ""
    tier: str = ""
    runbook: str | None = None
    description: str = ""
    outcome: str = "error"
    reason: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    time_to_detect_s: float | None = None
    time_to_recover_s: float | None = None
    detect_budget_s: float | None = None
    recover_budget_s: float | None = None
    score: float | None = None
    """Resilience score, 0-100 (see gameday.reports.score); None when skipped."""
    phases: dict[str, float] = Field(default_factory=dict)
    """Wall-clock start of each phase."""
    expectations: list[ExpectationResult] = Field(default_factory=list)
    faults: list[FaultRecord] = Field(default_factory=list)
    alerts: list[AlertTransition] = Field(default_factory=list)
    load: list[LoadPoint] = Field(default_factory=list)
    processes: list[ProcessRecord] = Field(default_factory=list)
    components: dict[str, str] = Field(default_factory=dict)
    rules: RulesRecord | None = None
    diagnosis: list[DiagnosisRecord] = Field(default_factory=list)
    """Runbook codes ranked by the diagnoser over the fault window, best first."""
    remedy: RemedyRecord | None = None
    """The alert rules evaluated, and the time compression applied to them."""
    simulated: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    error_lines: list[str] = Field(default_factory=list)
    """Server log lines that look like errors (first ones), for the reader and the diagnoser."""
    spec: dict[str, object] = Field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def fault_applied(self) -> bool:
        """Whether anything was injected: without it there is nothing to detect or recover."""
        return any(f.applied_at is not None for f in self.faults)

    def budget(self, figure: str) -> tuple[float | None, float | None]:
        """``figure`` detect or recover: (the time measured, the budget it is held to)."""
        if figure == "detect":
            return self.time_to_detect_s, self.detect_budget_s
        return self.time_to_recover_s, self.recover_budget_s

    def within_budget(self, figure: str) -> bool | None:
        """Whether time to ``figure`` (detect or recover) stayed inside its budget; None
        when there is no budget, or no fault was applied (nothing to detect or recover)."""
        measured, budget = self.budget(figure)
        if budget is None or not self.fault_applied:
            return None
        return measured is not None and measured <= budget

    def failed_expectations(self) -> list[ExpectationResult]:
        return [e for e in self.expectations if e.outcome == "failed"]


class RunReport(BaseModel):
    run_id: str = ""
    outcome: str = "error"
    exit_code: int | None = None
    version: str = ""
    host: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    score: float | None = None
    """The suite's resilience score: the mean of its scored scenarios."""
    scenarios: list[ScenarioReport] = Field(default_factory=list)

    def scenario(self, name: str) -> ScenarioReport:
        for scenario in self.scenarios:
            if scenario.name == name:
                return scenario
        created = ScenarioReport(name=name)
        self.scenarios.append(created)
        return created
