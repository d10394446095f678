"""``gameday diagnose``: what a recorded run's signals say went wrong, and the confusion table."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gameday.core.errors import ExitCode

if TYPE_CHECKING:
    from gameday.runbooks.diagnose import Confusion

__all__ = ["diagnose"]

out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _error(message: str) -> None:
    err.print(Text.assemble(("error:", "bold red"), f" {message}"))


def _journals(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.rglob("*.jsonl")))
        elif path.is_file():
            found.append(path)
        else:
            _error(f"no such journal or folder: {path}")
            raise typer.Exit(ExitCode.INVALID)
    if not found:
        _error("no journal (*.jsonl) under the given paths")
        raise typer.Exit(ExitCode.INVALID)
    return found


def diagnose(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Journals (a run's journal.jsonl) or folders to search for them (reports/).",
            show_default=False,
        ),
    ],
    confusion: Annotated[
        bool,
        typer.Option(
            "--confusion",
            help="Print only the confusion table: the code each scenario names against the "
            "code its signals diagnose first. Exit 1 unless it is diagonal.",
        ),
    ] = False,
    top: Annotated[int, typer.Option(help="Diagnoses to show per scenario.", min=1)] = 3,
) -> None:
    """Diagnose recorded runs: rank the runbook codes each scenario's signals match.

    Reads the events of each scenario's fault window (from its first fault to its
    recovery) from the journal, matches them against the runbook catalog's signatures
    and prints the ranked codes with the evidence for each. Nothing is started.

    Examples:

      gameday diagnose reports/20261123-101500-ab12/journal.jsonl

      gameday diagnose --confusion tests/data/journals
    """
    from gameday.runbooks import load_catalog
    from gameday.runbooks.diagnose import Confusion, diagnose_journal

    catalog = load_catalog()
    results = [r for journal in _journals(paths) for r in diagnose_journal(journal, catalog)]
    if not results:
        _error("no scenario in these journals applied a fault; nothing to diagnose")
        raise typer.Exit(ExitCode.INVALID)
    table = Confusion(tuple(results))
    if not confusion:
        for result in results:
            verdict = "as named" if result.top == result.expected else "NOT as named"
            out.print(
                f"{result.scenario} (names {result.expected or 'no code'}; {verdict}) "
                f"from {result.source}",
                markup=False,
            )
            if not result.ranking:
                out.print("  nothing matched a specific signature", markup=False)
            for rank, diagnosis in enumerate(result.ranking[:top], start=1):
                out.print(f"  {rank}. {diagnosis.summary()}", markup=False)
                for evidence in diagnosis.evidence:
                    out.print(f"       {evidence.quote()}", markup=False)
        out.print()
    # every code in full, wider than the terminal if need be: a truncated code says nothing
    needed = sum(len(code) + 3 for code in table.diagnosed) + max(map(len, table.expected)) + 4
    out.width = max(out.width, needed)  # print(width=) is capped at the console's width
    out.print(_table(table))
    misses = table.misses()
    for miss in misses:
        out.print(
            f"{miss.scenario}: names {miss.expected or 'no code'}, "
            f"diagnosed {miss.top or 'nothing'}",
            markup=False,
        )
    if misses:
        raise typer.Exit(ExitCode.FAILED)


def _table(confusion: Confusion) -> Table:
    table = Table(title="named (rows) against diagnosed first (columns)", title_justify="left")
    table.add_column("named")
    columns = confusion.diagnosed
    for code in columns:
        table.add_column(code, justify="right")
    for expected in confusion.expected:
        table.add_row(expected, *(str(confusion.count(expected, c) or "·") for c in columns))
    return table
