"""The resilience score: one number per scenario and per suite, 0 to 100.

In the spirit of LitmusChaos's resiliency score (probe success weighted by the
experiment's weight) and Krkn's severity-weighted SLO checks:

    score = 100 * sum(weight * credit) / sum(weight)

over the scenario's ``expect`` and ``recover`` expectations (weight by severity:
critical 3, warning 2, info 1; credit 1 when it held, 0 when it failed or was not
reached), plus two critical items when a fault was applied: detection inside its budget
(time to detect <= detect budget) and recovery inside its budget. Steady
state is a precondition, not scored. Only scenarios that reached a verdict (passed or
failed) are scored; the suite's score is the mean of its scored scenarios.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gameday.reports.model import RunReport, ScenarioReport

__all__ = ["SEVERITY_WEIGHTS", "ScoreItem", "scenario_score", "score_items", "suite_score"]

SEVERITY_WEIGHTS = {"critical": 3, "warning": 2, "info": 1}
BUDGET_WEIGHT = SEVERITY_WEIGHTS["critical"]
SCORED_PHASES = ("expect", "recover")
SCORED_OUTCOMES = ("passed", "failed")


@dataclass(frozen=True)
class ScoreItem:
    name: str
    weight: int
    credit: float


def _within(measured: float | None, budget: float | None) -> float:
    return 1.0 if measured is not None and budget is not None and measured <= budget else 0.0


def score_items(scenario: ScenarioReport) -> list[ScoreItem]:
    items = [
        ScoreItem(e.name, SEVERITY_WEIGHTS.get(e.severity, 1), float(e.outcome == "passed"))
        for e in scenario.expectations
        if e.phase in SCORED_PHASES
    ]
    phases = {e.phase for e in scenario.expectations}
    if not scenario.fault_applied:
        return items
    if "expect" in phases and scenario.detect_budget_s is not None:
        credit = _within(scenario.time_to_detect_s, scenario.detect_budget_s)
        items.append(ScoreItem("detected inside budget", BUDGET_WEIGHT, credit))
    if "recover" in phases and scenario.recover_budget_s is not None:
        credit = _within(scenario.time_to_recover_s, scenario.recover_budget_s)
        items.append(ScoreItem("recovered inside budget", BUDGET_WEIGHT, credit))
    return items


def scenario_score(scenario: ScenarioReport) -> float | None:
    if scenario.outcome not in SCORED_OUTCOMES:
        return None
    items = score_items(scenario)
    total = sum(item.weight for item in items)
    if total == 0:
        return 100.0 if scenario.outcome == "passed" else 0.0
    return round(100.0 * sum(item.weight * item.credit for item in items) / total, 1)


def suite_score(scenarios: Sequence[ScenarioReport] | RunReport) -> float | None:
    if isinstance(scenarios, RunReport):
        scenarios = scenarios.scenarios
    scores = [s.score for s in scenarios if s.score is not None]
    return round(sum(scores) / len(scores), 1) if scores else None
