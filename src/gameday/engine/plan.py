"""Checks across a scenario's parts that the schema cannot express, and the dry-run plan."""

from __future__ import annotations

from collections.abc import Sequence

from gameday.errors import ScenarioError, ScenarioIssue
from gameday.injectors.base import faults
from gameday.scenario.loader import LoadedScenario
from gameday.scenario.model import Phase
from gameday.scenario.units import format_duration

__all__ = ["check_plan", "describe_plan"]


def _issues(item: LoadedScenario) -> list[ScenarioIssue]:
    scenario = item.scenario
    issues: list[ScenarioIssue] = []
    for index, fault in enumerate(scenario.faults):
        injector = faults.get(fault.type)
        if scenario.target.kind not in injector.target_kinds:
            issues.append(
                item.issue(
                    ["faults", index, "type"],
                    f"fault {fault.type!r} does not work on target {scenario.target.kind!r} "
                    f"(it works on: {', '.join(sorted(injector.target_kinds))})",
                )
            )
        if injector.needs_load and scenario.load is None:
            issues.append(
                item.issue(
                    ["faults", index, "type"],
                    f"fault {fault.type!r} changes the scenario's load; add a load: section",
                )
            )
    if scenario.faults and not scenario.expect:
        issues.append(
            item.issue(["expect"], "a scenario with faults needs at least one expect entry")
        )
    if scenario.recover and not scenario.faults:
        issues.append(item.issue(["recover"], "recover entries need a fault to recover from"))
    uses_load = any(
        entry.kind == "load"
        for entries in (scenario.steady_state, scenario.expect, scenario.recover)
        for entry in entries
    )
    if uses_load and scenario.load is None:
        issues.append(item.issue(["load"], "load expectations need a load: section"))
    return issues


def check_plan(loaded: Sequence[LoadedScenario]) -> None:
    issues = [issue for item in loaded for issue in _issues(item)]
    if issues:
        raise ScenarioError(issues)


def describe_plan(loaded: Sequence[LoadedScenario]) -> str:
    """What a run would do, step by step; it changes nothing."""
    check_plan(loaded)
    lines = [f"dry run: {len(loaded)} scenario(s); nothing will be started or changed", ""]
    for item in loaded:
        s = item.scenario
        lines.append(f"scenario {s.name} ({item.path}) runbook {s.metadata.runbook or '—'}")
        lines.append(f"  1. bring up target {s.target.kind}")
        if s.load is not None:
            lines.append(
                f"  2. start load: {s.load.users} users of {s.load.profile}"
                f"{' streaming' if s.load.stream else ''}, ~{s.load.prompt_tokens} prompt tokens"
            )
        for phase, entries in ((Phase.STEADY_STATE, s.steady_state),):
            for entry in entries:
                lines.append(f"  - {phase.value}: {entry.params.describe()}")
        for fault in s.faults:
            injector = faults.get(fault.type)
            window = f"for {format_duration(fault.duration)}" if fault.duration else "once"
            lines.append(
                f"  - at +{format_duration(fault.at)} {window}: fault {fault.name} ({fault.type}): "
                f"{injector.describe(fault)}"
            )
        for phase, entries in ((Phase.EXPECT, s.expect), (Phase.RECOVER, s.recover)):
            for entry in entries:
                within = entry.params.within
                deadline = f" within {format_duration(within)}" if within is not None else ""
                lines.append(f"  - {phase.value}: {entry.params.describe()}{deadline}")
        lines.append("  - revert every fault, stop load, take the target down")
        lines.append("")
    return "\n".join(lines)
