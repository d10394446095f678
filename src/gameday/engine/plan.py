"""Checks across a scenario's parts that the schema cannot express, and the dry-run plan."""

from __future__ import annotations

from collections.abc import Sequence

from gameday.core.errors import ScenarioError, ScenarioIssue, UsageError
from gameday.injectors.base import faults
from gameday.remedies.base import PlannedStep, plan_remedy
from gameday.runbooks import load_catalog
from gameday.scenario.loader import LoadedScenario
from gameday.scenario.model import Phase, RemedySpec, TargetParams
from gameday.scenario.units import format_duration, format_span
from gameday.targets.base import targets

__all__ = ["check_plan", "describe_plan"]


def _issues(item: LoadedScenario) -> list[ScenarioIssue]:
    scenario = item.scenario
    issues: list[ScenarioIssue] = []
    for index, fault in enumerate(scenario.faults):
        injector = faults.lookup(scenario.target.kind, fault.type)
        if injector.needs_load and scenario.load is None:
            issues.append(
                item.issue(
                    ["faults", index, "type"],
                    f"fault {fault.type!r} changes the scenario's load; add a load: section",
                )
            )
        if injector.needs_kube_system(fault) and not _allows_kube_system(scenario.target.params):
            issues.append(
                item.issue(
                    ["faults", index, "mode"],
                    f"fault {fault.name} ({fault.type}) changes objects in kube-system; the "
                    "target must set allow_kube_system: true and list kube-system in namespaces",
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
    issues.extend(_remedy_issues(item))
    target = scenario.target
    for field, message in targets.get(target.kind).check_files(target.params, item.path.parent):
        issues.append(item.issue(["target", target.kind, *field], message))
    return issues


def _allows_kube_system(target: TargetParams) -> bool:
    """Both switches, as the kubernetes target names them; a target kind without them
    (local) has no kube-system to allow."""
    return getattr(target, "allow_kube_system", False) is True and "kube-system" in getattr(
        target, "namespaces", ()
    )


def _remedy_issues(item: LoadedScenario) -> list[ScenarioIssue]:
    scenario = item.scenario
    if scenario.remedy is None:
        return []
    catalog = load_catalog()
    remedy = scenario.remedy
    if remedy.runbook not in catalog:
        try:
            catalog.get(remedy.runbook)
        except UsageError as error:
            return [item.issue(["remedy", "runbook"], str(error))]
    issues = []
    if not scenario.faults:
        issues.append(item.issue(["remedy"], "a remedy needs a fault to fix"))
    for index, fault in enumerate(scenario.faults):
        if fault.duration is not None:
            issues.append(
                item.issue(
                    ["faults", index, "duration"],
                    f"fault {fault.name} has a duration, but the remedy is what ends it; "
                    "drop duration",
                )
            )
    steps = plan_remedy(catalog.get(remedy.runbook), scenario.target.kind, remedy.actions)
    kinds: dict[str, PlannedStep] = {step.action.kind: step for step in steps}
    for position, kind in enumerate(remedy.actions or []):
        step = kinds.get(kind)
        if step is None:
            issues.append(
                item.issue(
                    ["remedy", "actions", position],
                    f"{remedy.runbook}'s remediation has no {kind} step "
                    f"(it has: {', '.join(kinds)})",
                )
            )
        elif not step.runs:
            issues.append(
                item.issue(["remedy", "actions", position], f"{kind} cannot run: {step.skip}")
            )
    if not any(step.runs for step in steps) and not issues:
        why = "; ".join(f"{step.action.kind}: {step.skip}" for step in steps)
        issues.append(
            item.issue(
                ["remedy", "runbook"],
                f"no step of {remedy.runbook}'s remediation runs on the "
                f"{scenario.target.kind} target ({why})",
            )
        )
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
        where = s.target.params.describe()
        lines.append(f"  1. bring up target {s.target.kind}{': ' + where if where else ''}")
        if s.load is not None:
            lines.append(
                f"  2. start load: {s.load.users} users of {s.load.profile}"
                f"{' streaming' if s.load.stream else ''}, ~{s.load.prompt_tokens} prompt tokens"
            )
        for phase, entries in ((Phase.STEADY_STATE, s.steady_state),):
            for entry in entries:
                lines.append(f"  - {phase.value}: {entry.params.describe()}")
        for fault in s.faults:
            injector = faults.lookup(s.target.kind, fault.type)
            window = f"for {format_span(fault.duration)}" if fault.duration is not None else "once"
            lines.append(
                f"  - at +{format_duration(fault.at)} {window}: fault {fault.name} ({fault.type}): "
                f"{injector.describe(fault)}"
            )
        for phase, entries in ((Phase.EXPECT, s.expect), (Phase.RECOVER, s.recover)):
            if phase is Phase.RECOVER and s.remedy is not None:
                lines.extend(_remedy_plan(s.remedy, s.target.kind))
            for entry in entries:
                within = entry.params.within
                deadline = f" within {format_span(within)}" if within is not None else ""
                lines.append(f"  - {phase.value}: {entry.params.describe()}{deadline}")
        lines.append("  - revert every fault, stop load, take the target down")
        lines.append("")
    return "\n".join(lines)


def _remedy_plan(remedy: RemedySpec, target_kind: str) -> list[str]:
    entry = load_catalog().get(remedy.runbook)
    lines = [f"  - once expect is resolved: remedy {entry.code} ({entry.title})"]
    for step in plan_remedy(entry, target_kind, remedy.actions):
        how = "runs" if step.runs else f"not run: {step.skip}"
        lines.append(f"      {step.index + 1}. ({how}) {step.describe()}")
    return lines
