"""Which steps of a runbook's remediation a target takes, and the checks before a run."""

from __future__ import annotations

import pytest

from gameday.core.errors import ScenarioError
from gameday.engine.plan import check_plan, describe_plan
from gameday.plugins import catalog, load_builtins
from gameday.remedies.base import plan_remedy
from gameday.runbooks import load_catalog
from gameday.scenario.loader import parse_scenario

CATALOG = load_catalog()

SCENARIO = """\
apiVersion: gameday/v1alpha1
kind: Scenario
metadata: {name: fix-it, runbook: PortInUse}
target:
  local:
    server: {restart: always}
faults:
  - {name: hold, type: port-conflict, at: 2s}
expect:
  - runbook: {code: PortInUse, within: 15s}
remedy: {runbook: PortInUse}
recover:
  - http: {url: "{server}/health", status: 200, within: 30s}
"""


def steps(code: str, only: list[str] | None = None) -> list[tuple[str, str | None]]:
    load_builtins()
    return [(s.action.kind, s.skip) for s in plan_remedy(CATALOG.get(code), "local", only)]


def test_unconditional_steps_the_target_can_take_run_the_rest_say_why_not() -> None:
    assert steps("PortInUse") == [
        ("free-port", None),
        ("set-engine-flag", "conditional: the other process must keep the port"),
    ]
    assert steps("MEMORY001") == [
        ("raise-memory-limit", None),
        ("set-env", "the local target cannot take this step"),
    ]


def test_a_step_for_a_human_and_a_workload_the_tier_lacks_are_not_run() -> None:
    planned = dict(steps("NETWORK002"))
    assert planned["restart-deployment"] == (
        "it restarts coredns, which the local tier does not run"
    )
    assert planned["manual"] == "a step for a human"


def test_actions_choose_steps_and_may_take_a_conditional_one() -> None:
    assert steps("CrashLoopBackOff", ["rollout-undo"]) == [
        ("manual", "a step for a human"),
        ("rollout-undo", "the local target cannot take this step"),
    ]
    assert steps("ServerNotRunning", ["restart-deployment"])[0] == ("restart-deployment", None)
    assert steps("ServerNotRunning", ["restart-deployment"])[1][1] == (
        "not chosen (remedy.actions)"
    )


def issues(text: str) -> list[str]:
    loaded = parse_scenario(text, "s.yaml", catalog())
    with pytest.raises(ScenarioError) as caught:
        check_plan([loaded])
    return [str(issue) for issue in caught.value.issues]


def test_a_valid_remedy_passes_the_checks_and_the_dry_run_lists_its_steps() -> None:
    loaded = parse_scenario(SCENARIO, "s.yaml", catalog())
    check_plan([loaded])
    plan = describe_plan([loaded])
    assert "once expect is resolved: remedy PortInUse (Port already in use)" in plan
    assert "1. (runs) free-port: find what listens on the server's port" in plan
    assert "2. (not run: conditional: the other process must keep the port) set-engine-flag" in (
        plan
    )


def test_an_unknown_code_is_refused_with_the_nearest() -> None:
    (problem,) = issues(
        SCENARIO.replace("remedy: {runbook: PortInUse}", "remedy: {runbook: PortInUze}")
    )
    assert problem.startswith("s.yaml:11:19: remedy.runbook: unknown runbook code 'PortInUze'")
    assert "did you mean PortInUse" in problem


def test_a_fault_with_a_duration_is_refused_the_remedy_ends_it() -> None:
    (problem,) = issues(SCENARIO.replace("at: 2s}", "at: 2s, duration: 20s}"))
    assert problem.startswith("s.yaml:8:57: faults[0].duration: fault hold has a duration")


def test_a_remedy_with_nothing_to_run_here_is_refused() -> None:
    (problem,) = issues(
        SCENARIO.replace("remedy: {runbook: PortInUse}", "remedy: {runbook: NETWORK001}")
    )
    assert "no step of NETWORK001's remediation runs on the local target" in problem
    assert "manual: a step for a human" in problem


def test_actions_must_be_steps_of_the_runbook_that_can_run() -> None:
    text = SCENARIO.replace(
        "remedy: {runbook: PortInUse}",
        "remedy: {runbook: MEMORY001, actions: [raise-memory-limit, set-env, scale]}",
    )
    found = issues(text)
    assert any("remedy.actions[1]: set-env cannot run: the local target" in p for p in found)
    assert any("remedy.actions[2]: MEMORY001's remediation has no scale step" in p for p in found)
