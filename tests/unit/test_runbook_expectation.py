"""The ``runbook`` expectation: held when its code leads the diagnosis, with the evidence."""

from __future__ import annotations

import pytest

from gameday.assertions.base import ExpectationContext
from gameday.assertions.runbook import RunbookExpectation, RunbookParams
from gameday.core.errors import ScenarioError
from gameday.core.events import Event, LogLine, ProcessBackoff, ProcessExited
from gameday.core.observations import Observations
from gameday.plugins import catalog
from gameday.scenario.loader import parse_scenario

T0 = 1_800_000_000.0


def observed(*events: Event) -> Observations:
    observations = Observations("s")
    for event in events:
        observations(event)
    return observations


def expectation(code: str) -> RunbookExpectation:
    return RunbookExpectation(RunbookParams(code=code), ExpectationContext("s"))


EVENTS: tuple[Event, ...] = (
    ProcessBackoff(ts=T0 + 1, scenario="s", process="server", delay=1.0, restarts=1),
    ProcessExited(
        ts=T0 + 2,
        scenario="s",
        process="server",
        pid=7,
        exit_code=137,
        signal="SIGKILL",
        reason="OOMKilled",
        restarts=1,
    ),
    LogLine(
        ts=T0 - 5,
        scenario="s",
        source="server",
        stream="stderr",
        line="[Errno 98] Address already in use",
    ),
)


def test_holds_when_the_code_takes_the_lead_and_quotes_what_put_it_there() -> None:
    verdict = expectation("MEMORY001").check(observed(*EVENTS), since=T0)
    assert verdict.met and verdict.at == T0 + 2
    assert verdict.evidence[0] == "diagnosed MEMORY001 (OOM killed; score 2.77)"
    assert verdict.evidence[1].startswith(
        "+2.0s process-exit code=137, reason=OOMKilled: server exited"
    )
    assert verdict.evidence[-1].startswith("ahead of CrashLoopBackOff (1.00)")
    assert verdict.reporters == ("supervisor",)  # who saw the exit: the report says it is real


def test_a_cluster_diagnosis_names_who_reported_its_evidence() -> None:
    from gameday.core.events import PodObserved

    pending = PodObserved(
        ts=T0 + 1,
        scenario="s",
        pod="server-1",
        namespace="ns",
        phase="Pending",
        ready=False,
        unschedulable="0/3 nodes are available: 3 node(s) didn't have free ports for the "
        "requested pod ports.",
    )
    verdict = expectation("NETWORK001").check(observed(pending), since=T0)
    assert verdict.met, verdict
    assert verdict.reporters == ("kube-scheduler",)


def test_a_line_before_the_phase_is_not_evidence() -> None:
    # the Errno 98 line predates the faults: PortInUse must not be diagnosed from it
    assert not expectation("PortInUse").check(observed(*EVENTS), since=T0).met


def test_a_wrong_diagnosis_fails_with_what_was_diagnosed_instead() -> None:
    wanted = expectation("PortInUse")
    observations = observed(*EVENTS)
    assert not wanted.check(observations, since=T0).met
    explained = wanted.explain(observations, since=T0)
    assert explained[0] == "diagnosed MEMORY001 (OOM killed; score 2.77) instead of PortInUse"
    assert explained[-1] == "PortInUse matched no specific signature"


def test_nothing_matching_says_so() -> None:
    explained = expectation("MEMORY001").explain(observed(), since=T0)
    assert explained == [
        "nothing observed since the faults matched a specific signature of any runbook; "
        "expected MEMORY001"
    ]


def test_an_unknown_code_is_a_located_error_with_the_nearest_code() -> None:
    text = """\
apiVersion: gameday/v1alpha1
kind: Scenario
metadata: {name: s}
target: {local: {}}
faults:
  - {name: kill, type: process-kill}
expect:
  - runbook: {code: MEMORY01}
"""
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "s.yaml", catalog())
    (issue,) = caught.value.issues
    assert str(issue).startswith("s.yaml:8:21: expect[0].runbook.code:")
    assert "unknown runbook code 'MEMORY01'" in str(issue)
    assert "did you mean MEMORY001" in str(issue)
