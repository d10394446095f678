"""The loader: typed scenarios, and one precise line per problem (file:line:col field: message)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gameday.core.errors import ScenarioError
from gameday.plugins import catalog
from gameday.scenario.loader import load_scenarios, parse_scenario

GOOD = """\
apiVersion: gameday/v1alpha1
kind: Scenario
metadata:
  name: hold-the-port
  runbook: NETWORK001
target:
  local:
    server: {restart: always, backoff: {initial: 1s, max: 4s}}
load: {users: 4}
steady_state:
  - load: {error_ratio: {max: 0.01}, window: 5s}
faults:
  - {name: hold, type: port-conflict, at: 2s, duration: 20s}
expect:
  - alert: {name: InferenceTargetDown, state: firing, within: 30s}
recover:
  - alert: {name: InferenceTargetDown, state: inactive, within: 1m}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "s.yaml", catalog())
    return [str(issue) for issue in caught.value.issues]


def test_good_scenario_is_typed() -> None:
    scenario = parse_scenario(GOOD, "s.yaml", catalog()).scenario
    assert scenario.name == "hold-the-port"
    assert scenario.target.kind == "local"
    fault = scenario.faults[0]
    assert (fault.type, fault.at, fault.duration) == ("port-conflict", 2.0, 20.0)
    assert scenario.expect[0].kind == "alert"
    assert scenario.expect[0].params.within == 30.0
    assert scenario.recover[0].params.within == 60.0
    assert scenario.load is not None and scenario.load.users == 4


def test_unknown_field_points_at_the_key_and_suggests() -> None:
    assert problems(GOOD.replace("load: {users: 4}", "load: {userz: 4}")) == [
        "s.yaml:9:8: load.userz: unknown field 'userz' (did you mean 'users'?)"
    ]


def test_bad_duration_points_at_the_value() -> None:
    assert problems(GOOD.replace("at: 2s", "at: 2 seconds")) == [
        "s.yaml:13:43: faults[0].at: invalid duration '2 seconds': expected e.g. 30s, 2m, 1m30s, 500ms"
    ]


def test_unknown_fault_type_lists_the_known_ones() -> None:
    (line,) = problems(GOOD.replace("type: port-conflict", "type: port-conflit"))
    assert line.startswith("s.yaml:13:24: faults[0].type: unknown type 'port-conflit' (known: ")
    assert "'port-conflict'" in line


def test_a_fault_of_another_target_kind_says_where_it_works() -> None:
    (line,) = problems(GOOD.replace("type: port-conflict", "type: bad-image-tag"))
    assert line == (
        "s.yaml:13:24: faults[0].type: fault 'bad-image-tag' does not work on target 'local' "
        "(it works on: kubernetes)"
    )


def test_the_target_picks_the_fault_of_that_name() -> None:
    """port-conflict is a fault on both kinds, each with parameters of its own."""
    from gameday.injectors.base import faults

    local = parse_scenario(GOOD, "s.yaml", catalog()).scenario
    assert isinstance(local.faults[0], faults.lookup("local", "port-conflict").Params)
    assert problems(GOOD.replace("at: 2s,", "at: 2s, mode: host-port,")) == [
        "s.yaml:13:47: faults[0].mode: unknown field 'mode'"
    ]


def test_a_scenario_with_an_unknown_target_reports_the_target_only() -> None:
    text = GOOD.replace("  local:\n", "  locl:\n").replace("port-conflict", "no-such-fault")
    (line,) = problems(text)
    assert "target: unknown target kind 'locl'" in line


def test_a_kinds_own_check_names_the_kind_once() -> None:
    text = GOOD.replace("  - load: {error_ratio: {max: 0.01}, window: 5s}", "  - process: {}")
    assert problems(text) == [
        "s.yaml:11:5: steady_state[0].process: give exactly one of exited, restarts, running_for"
    ]


def test_unknown_expectation_kind_suggests() -> None:
    (line,) = problems(
        GOOD.replace(
            "  - alert: {name: InferenceTargetDown, state: firing",
            "  - alrt: {name: InferenceTargetDown, state: firing",
        )
    )
    assert line.startswith("s.yaml:15:5: expect[0]: unknown expectation kind 'alrt'")
    assert line.endswith("did you mean 'alert'?")


def test_bad_enum_value() -> None:
    assert problems(GOOD.replace("state: firing", "state: fired")) == [
        "s.yaml:15:47: expect[0].alert.state: must be one of 'firing', 'pending' or 'inactive', not 'fired'"
    ]


def test_broken_yaml_has_a_position() -> None:
    (line,) = problems(GOOD.replace("load: {users: 4}", "load: {users: 4"))
    assert line.startswith("s.yaml:") and "invalid YAML" in line


def test_duplicate_keys_are_refused() -> None:
    (line,) = problems(
        GOOD.replace("  runbook: NETWORK001\n", "  runbook: NETWORK001\n  runbook: NETWORK002\n")
    )
    assert "invalid YAML" in line and "duplicate" in line


def test_every_problem_is_reported() -> None:
    text = GOOD.replace("at: 2s", "at: soon").replace("users: 4", "users: 0")
    found = problems(text)
    assert len(found) == 2
    assert any("faults[0].at" in p for p in found) and any("load.users" in p for p in found)


def test_not_a_scenario() -> None:
    (line,) = problems("apiVersion: v1\nkind: Pod\n")
    assert "not a scenario" in line


def test_names_must_be_dns_labels() -> None:
    (line,) = problems(GOOD.replace("name: hold-the-port", "name: Hold_The_Port"))
    assert "metadata.name" in line and "not a valid name" in line


def test_fault_names_unique() -> None:
    text = GOOD.replace(
        "  - {name: hold, type: port-conflict, at: 2s, duration: 20s}",
        "  - {name: hold, type: port-conflict, at: 2s, duration: 20s}\n  - {name: hold, type: process-kill, at: 5s}",
    )
    assert any("two faults are named 'hold'" in p for p in problems(text))


def test_directory_is_a_suite_and_names_must_differ(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    (tmp_path / "notes.yaml").write_text("just: yaml\n")  # not a scenario: ignored
    with pytest.raises(ScenarioError) as caught:
        load_scenarios([tmp_path], catalog())
    assert "also used by" in str(caught.value)


def test_bundled_scenarios_are_valid() -> None:
    root = Path(__file__).resolve().parents[2] / "scenarios"
    loaded = load_scenarios([root], catalog())
    assert {item.scenario.name for item in loaded} >= {"port-conflict", "process-kill", "oom-kill"}


def test_plan_refuses_a_load_fault_without_load() -> None:
    from gameday.engine.plan import check_plan

    text = (
        GOOD.replace("load: {users: 4}\n", "")
        .replace("steady_state:\n  - load: {error_ratio: {max: 0.01}, window: 5s}\n", "")
        .replace(
            "type: port-conflict, at: 2s, duration: 20s", "type: load-spike, at: 2s, duration: 20s"
        )
    )
    loaded = parse_scenario(text, "s.yaml", catalog())
    with pytest.raises(ScenarioError) as caught:
        check_plan([loaded])
    (issue,) = caught.value.issues
    assert str(issue).startswith(
        "s.yaml:10:24: faults[0].type: fault 'load-spike' changes the scenario's load"
    )
