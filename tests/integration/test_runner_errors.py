"""The runner when a fault cannot be applied or reverted: exit 3, everything else still undone.

The two faults here are real plugins registered for the test (the same registry a
third party fills through the ``gameday.faults`` entry point), acting on a real
local target; they fail on purpose at one stage.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gameday.core.errors import InjectionError
from gameday.core.journal import outstanding_undos
from gameday.core.undo import RevertFailed
from gameday.engine.runner import GameDay, RunOptions
from gameday.injectors.base import Injector, faults
from gameday.plugins import catalog
from gameday.reports import ReportBuilder
from gameday.scenario.loader import parse_scenario
from gameday.scenario.model import FaultSpec
from gameday.targets.local.target import LocalTarget
from tests.conftest import require_binary


class BrokenSpec(FaultSpec):
    stage: str = "apply"


class Broken(Injector[BrokenSpec, LocalTarget]):
    Params = BrokenSpec
    target_kinds = frozenset({"local"})
    summary = "fails on purpose (tests)"

    @classmethod
    def describe(cls, spec: BrokenSpec) -> str:
        return f"fail at {spec.stage}"

    def apply(self) -> dict[str, str]:
        if self.spec.stage == "apply":
            raise InjectionError("cannot apply this on purpose")
        return {}

    def revert(self) -> dict[str, str]:
        raise RevertFailed("cannot revert this on purpose")


if "local/broken-for-tests" not in faults:
    faults.add("broken-for-tests", Broken)  # filed as local/broken-for-tests

SCENARIO = """\
apiVersion: gameday/v1alpha1
kind: Scenario
metadata: {{name: broken-{stage}}}
target:
  local: {{}}
faults:
  - {{name: broken, type: broken-for-tests, at: 0s, duration: 1s, stage: {stage}}}
expect:
  - http: {{url: "{{server}}/health", status: 200, within: 10s}}
"""


@pytest.mark.integration
@pytest.mark.parametrize(
    ("stage", "reason"),
    [("apply", "cannot apply this on purpose"), ("revert", "could not revert: broken")],
)
def test_fault_errors_end_the_scenario_with_exit_3(stage: str, reason: str, tmp_path: Path) -> None:
    require_binary("prometheus")
    loaded = parse_scenario(SCENARIO.format(stage=stage), str(tmp_path / "s.yaml"), catalog())
    builder = ReportBuilder()
    result = GameDay([loaded], RunOptions(report_dir=tmp_path), handlers=[builder]).run()
    assert (result.outcome, result.exit_code) == ("error", 3)
    (scenario,) = builder.report.scenarios
    assert reason in scenario.reason
    assert any(e.startswith(stage) for e in scenario.faults[0].errors)
    # the target's own changes (server, Prometheus, Alertmanager, cgroup, scratch) were undone
    assert outstanding_undos(result.run_dir / "journal.jsonl") == []
