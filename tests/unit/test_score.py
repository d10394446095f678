"""The resilience score: severity-weighted expectations plus detection/recovery in budget."""

from __future__ import annotations

import pytest

from gameday.reports.model import ExpectationResult, FaultRecord, RunReport, ScenarioReport
from gameday.reports.score import scenario_score, score_items, suite_score


def expectation(
    phase: str, index: int, outcome: str, severity: str = "critical"
) -> ExpectationResult:
    return ExpectationResult(
        phase=phase,
        index=index,
        kind="alert",
        description=f"{phase} {index}",
        outcome=outcome,
        deadline_s=30.0,
        severity=severity,
    )


def scenario(outcome: str = "passed", /, **figures: float | None) -> ScenarioReport:
    values: dict[str, float | None] = {
        "time_to_detect_s": 5.0,
        "detect_budget_s": 30.0,
        "time_to_recover_s": 10.0,
        "recover_budget_s": 60.0,
    }
    values.update(figures)
    return ScenarioReport(
        name="s",
        outcome=outcome,
        expectations=[
            expectation("steady_state", 0, "passed"),
            expectation("expect", 0, "passed"),
            expectation("expect", 1, "passed", "warning"),
            expectation("recover", 0, "passed"),
        ],
        faults=[FaultRecord(name="f", type="port-conflict", applied_at=1.0)],
        **values,
    )


def test_everything_held_inside_budget_scores_100() -> None:
    assert scenario_score(scenario()) == 100.0


def test_failed_warning_weighs_two_of_fourteen() -> None:
    report = scenario("failed")
    report.expectations[2].outcome = "failed"
    # expect 3 + warning 2 + recover 3 + detect budget 3 + recover budget 3 = 14; lost 2
    assert [i.weight for i in score_items(report)] == [3, 2, 3, 3, 3]
    assert scenario_score(report) == round(100 * 12 / 14, 1)


def test_without_an_applied_fault_there_is_no_detection_to_score() -> None:
    report = scenario(time_to_detect_s=None, time_to_recover_s=None)
    report.faults = []
    assert [i.name for i in score_items(report)] == [
        "expect[0] expect 0",
        "expect[1] expect 1",
        "recover[0] recover 0",
    ]
    assert scenario_score(report) == 100.0


def test_steady_state_is_a_precondition_not_scored() -> None:
    report = scenario()
    report.expectations[0].outcome = "failed"
    assert scenario_score(report) == 100.0


@pytest.mark.parametrize(
    ("figures", "expected"),
    [
        ({"time_to_detect_s": 31.0}, round(100 * 11 / 14, 1)),  # detected late
        ({"time_to_detect_s": None}, round(100 * 11 / 14, 1)),  # never detected
        ({"time_to_recover_s": 61.0}, round(100 * 11 / 14, 1)),
        ({"detect_budget_s": None, "recover_budget_s": None}, 100.0),  # nothing to hold to
    ],
)
def test_detection_and_recovery_are_held_to_their_budgets(
    figures: dict[str, float | None], expected: float
) -> None:
    assert scenario_score(scenario(**figures)) == expected


@pytest.mark.parametrize("outcome", ["error", "aborted", "skipped"])
def test_scenarios_without_a_verdict_are_not_scored(outcome: str) -> None:
    assert scenario_score(scenario(outcome)) is None


def test_suite_score_is_the_mean_of_scored_scenarios() -> None:
    scored = [scenario(), scenario(), scenario("skipped")]
    scored[0].score, scored[1].score, scored[2].score = 100.0, 50.0, None
    assert suite_score(RunReport(scenarios=scored)) == 75.0
    assert suite_score([scenario("skipped")]) is None
