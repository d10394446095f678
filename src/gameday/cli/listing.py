"""`gameday list`: the extensions, scenarios and runbook codes this installation knows,
as tables for people or JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gameday.cli.alerts import OutputFormat
from gameday.cli.common import (
    out,
    print_error,
)
from gameday.core.errors import ExitCode, GamedayError

if TYPE_CHECKING:
    from gameday.scenario.model import Scenario

__all__ = ["list_"]


def list_(
    what: Annotated[
        str | None,
        typer.Argument(
            help="faults, expectations, remedies, targets, scenarios or runbooks; default: all."
        ),
    ] = None,
    runbooks: Annotated[
        bool, typer.Option("--runbooks", help="Same as `list runbooks`: the runbook catalog.")
    ] = False,
    scenario_dir: Annotated[Path, typer.Option(help="Where to look for scenarios.")] = Path(
        "scenarios"
    ),
    output_format: Annotated[
        OutputFormat,
        typer.Option("--format", help="table for people, json for machines (one object)."),
    ] = OutputFormat.table,
) -> None:
    """List the faults, expectation kinds, remedy steps, targets, scenarios and runbook codes
    this installation knows. In a pipe a table row is one line (`gameday list runbooks |
    grep DEPLOYMENT001`); `--format json` gives {section: [{column: value}]}."""
    from gameday.plugins import load_builtins

    load_builtins()
    if runbooks:
        what = "runbooks"
    if what is not None and what not in _LISTS:
        print_error(f"unknown list {what!r}; choose one of {', '.join(_LISTS)}")
        raise typer.Exit(ExitCode.INVALID)
    chosen = {name: _LISTS[name](scenario_dir) for name in ([what] if what else _LISTS)}
    if output_format is OutputFormat.json:
        print(
            json.dumps(
                {
                    name: [dict(zip(columns, row, strict=True)) for row in rows]
                    for name, (_, columns, rows) in chosen.items()
                },
                indent=2,
            )
        )
        return
    for title, columns, rows in chosen.values():
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(escape(cell) for cell in row))
        out.print(table)


Listing = tuple[str, list[str], list[list[str]]]
"""A section of ``gameday list``: its title, its columns, its rows."""


def _list_faults(_: Path) -> Listing:
    from gameday.injectors.base import faults

    rows = []
    for key, cls in sorted(faults.items(), key=lambda item: item[0].split("/")[::-1]):
        target_kind, name = key.split("/", 1)
        needs = ", ".join(sorted(r.value for r in cls.requires)) or "—"
        rows.append([name, target_kind, cls.runbook or "—", needs, cls.summary])
    return "faults", ["type", "target", "runbook", "needs", "what it does"], rows


def _list_expectations(_: Path) -> Listing:
    from gameday.assertions.base import expectations

    rows = [[name, kind.summary] for name, kind in expectations.items()]
    return "expectation kinds", ["kind", "what it checks"], rows


def _list_remedies(_: Path) -> Listing:
    from gameday.remedies.base import remedies

    rows = [[*key.partition("/")[::2], remedy.summary] for key, remedy in remedies.items()]
    title = "remedy steps (a runbook's remediation, as code)"
    return title, ["target", "step", "what it does"], rows


def _list_targets(_: Path) -> Listing:
    from gameday.targets.base import targets

    rows = [
        [name, (target.Params.__doc__ or "").strip().splitlines()[0]]
        for name, target in targets.items()
    ]
    return "targets", ["kind", "what it is"], rows


def _list_scenarios(scenario_dir: Path) -> Listing:
    rows = []
    for file, scenario in _scenarios_under(scenario_dir):
        if isinstance(scenario, GamedayError):
            rows.append([str(file), f"invalid: {str(scenario).splitlines()[0]}", "", "", ""])
            continue
        faults = ", ".join(f.type for f in scenario.faults)
        tier, runbook = scenario.target.kind, scenario.metadata.runbook or "—"
        rows.append([str(file), scenario.name, tier, runbook, faults])
    title = f"scenarios under {scenario_dir}"
    return title, ["file", "name", "tier", "runbook", "faults"], rows


def _scenarios_under(scenario_dir: Path) -> list[tuple[Path, Scenario | GamedayError]]:
    """Each scenario file under ``scenario_dir``, loaded, or the error that stopped it."""
    from gameday.plugins import catalog
    from gameday.scenario.loader import discover, load_scenario

    models = catalog()
    found: list[tuple[Path, Scenario | GamedayError]] = []
    for file in discover([scenario_dir]) if scenario_dir.is_dir() else []:
        try:
            found.append((file, load_scenario(file, models).scenario))
        except GamedayError as error:
            found.append((file, error))
    return found


def _list_runbooks(scenario_dir: Path) -> Listing:
    """The catalog, with the scenarios (under ``scenario_dir``) that reproduce each code."""
    from gameday.runbooks import load_catalog

    reproduced: dict[str, list[str]] = {}
    for _, scenario in _scenarios_under(scenario_dir):
        # `list scenarios` shows the invalid ones
        if not isinstance(scenario, GamedayError) and scenario.metadata.runbook:
            tier = scenario.target.kind
            reproduced.setdefault(scenario.metadata.runbook, []).append(f"{scenario.name} ({tier})")
    columns = ["code", "title", "category", "reproducible on", "faults", "scenarios"]
    rows = [
        [
            entry.code,
            entry.title,
            entry.category,
            ", ".join(entry.reproducible.tiers),
            ", ".join(entry.faults) or "—",
            ", ".join(reproduced.get(entry.code, [])) or "—",
        ]
        for entry in load_catalog().entries
    ]
    return "runbook catalog", columns, rows


_LISTS: dict[str, Callable[[Path], Listing]] = {
    "faults": _list_faults,
    "expectations": _list_expectations,
    "remedies": _list_remedies,
    "targets": _list_targets,
    "scenarios": _list_scenarios,
    "runbooks": _list_runbooks,
}
