"""Prepare a run: everything checked before anything starts, in one place.

``gameday run``, ``run --dry-run``, ``validate`` and the pytest plugin all call
:func:`prepare_run`, so a file ``validate`` accepts is one ``run`` accepts: the scenarios
load and validate, the command line's rule files load and their options apply, the engine
swap is allowed, the plan has no issue (faults and remedies known to the target, files the
scenarios name), and each target's preflight accepts the command line (a Kubernetes
context the scenario allows). It reads local files only: no process, port or cluster.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gameday.core.errors import EnvironmentProblem, UsageError
from gameday.engine.plan import check_plan
from gameday.plugins import catalog
from gameday.rules import load_rule_file
from gameday.rules.loader import rule_files_in
from gameday.scenario.loader import LoadedScenario, load_scenarios
from gameday.targets.base import RuleOptions, targets
from gameday.targets.local.engines import engines

__all__ = ["PreparedRun", "RunInputs", "prepare_run"]


@dataclass(frozen=True)
class RunInputs:
    """What the command line gives a run, before any of it is checked."""

    paths: Sequence[Path]
    """Scenario files, or directories of them."""
    rules: Sequence[Path] = ()
    """``--rules``: rule files or directories of them."""
    bundled_rules: bool = True
    time_compression: float | None = None
    engine: str | None = None
    kube_context: str | None = None
    environment_optional: bool = False
    """``validate`` and ``--dry-run``: a check this machine cannot make (no kubeconfig to
    read the current context from) is listed in :attr:`PreparedRun.unchecked` instead of
    failing; every check of the input itself still fails as it does for ``run``."""


@dataclass(frozen=True)
class PreparedRun:
    scenarios: list[LoadedScenario]
    unchecked: dict[Path, str] = field(default_factory=dict)
    """Scenario file -> the check left out and why (only with ``environment_optional``)."""


def prepare_run(inputs: RunInputs) -> PreparedRun:
    """The scenarios as the run will play them, every check passed; raises the project's
    input error (exit 2) naming the file and field of the first thing that fails."""
    compression = inputs.time_compression
    if compression is not None and not (math.isfinite(compression) and compression >= 1):
        raise UsageError(f"--time-compression must be a finite number >= 1, not {compression}")
    _exist(inputs.paths)
    loaded = load_scenarios(list(inputs.paths), catalog())
    _exist(inputs.rules)
    rule_files = tuple(rule_files_in(list(inputs.rules)))
    options = RuleOptions(rule_files, inputs.bundled_rules, compression)
    if options != RuleOptions():
        loaded = [_with_rules(item, options) for item in loaded]
    if inputs.engine is not None:
        loaded = [_with_engine(item, inputs.engine) for item in loaded]
    check_plan(loaded)  # nothing runs with a plan issue
    unchecked: dict[Path, str] = {}
    for item in loaded:
        target = item.scenario.target
        try:
            targets.get(target.kind).preflight(target.params, inputs.kube_context)
        except UsageError as error:
            raise UsageError(f"{item.path}: {error}") from None
        except EnvironmentProblem as error:
            if not inputs.environment_optional:
                raise
            unchecked[item.path] = str(error)
    return PreparedRun(loaded, unchecked)


def _exist(paths: Sequence[Path]) -> None:
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise UsageError(f"no such file or directory: {', '.join(map(str, missing))}")


def _with_rules(item: LoadedScenario, options: RuleOptions) -> LoadedScenario:
    """The scenario with the command line's rule options applied to its target."""
    for path in options.files:
        load_rule_file(path)  # invalid rules are bad input (exit 2), found before anything runs
    entry = item.scenario.target
    params = targets.get(entry.kind).with_rules(entry.params, options)
    target = entry.model_copy(update={"params": params})
    scenario = item.scenario.model_copy(update={"target": target})
    return dataclasses.replace(item, scenario=scenario)


def _with_engine(item: LoadedScenario, engine: str) -> LoadedScenario:
    """The scenario with its server's engine swapped (``run --engine``)."""
    if engine not in engines:
        raise UsageError(
            f"--engine: unknown engine {engine!r} (known: {', '.join(engines.names())})"
        )
    entry = item.scenario.target
    try:
        params = targets.get(entry.kind).with_engine(entry.params, engine)
    except UsageError as error:
        raise UsageError(f"{item.path}: {error}") from None
    target = entry.model_copy(update={"params": params})
    return dataclasses.replace(item, scenario=item.scenario.model_copy(update={"target": target}))
