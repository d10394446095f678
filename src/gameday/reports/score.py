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


def score_items(scenario: ScenarioReport) -> list[ScoreItem]:
    items = [
        ScoreItem(e.name, SEVERITY_WEIGHTS.get(e.severity, 1), float(e.outcome == "passed"))
        for e in scenario.expectations
        if e.phase in SCORED_PHASES
    ]
    phases = {e.phase for e in scenario.expectations}
    for phase, figure, name in (
        ("expect", "detect", "detected inside budget"),
        ("recover", "recover", "recovered inside budget"),
    ):
        inside = scenario.within_budget(figure)
        if phase in phases and inside is not None:
            items.append(ScoreItem(name, BUDGET_WEIGHT, float(inside)))
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
