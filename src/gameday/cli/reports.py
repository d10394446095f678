"""`gameday report` and `gameday compare`: a run's reports rebuilt from its journal, and
what regressed between two runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from gameday.cli.common import (
    err,
    guarded,
    out,
    print_error,
)
from gameday.core.errors import ExitCode

__all__ = ["compare", "report"]


def report(
    journal: Annotated[Path, typer.Argument(help="A run's journal.jsonl.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Folder for the reports; default: the journal's."),
    ] = None,
) -> None:
    """Rebuild a run's reports from its journal.

    Writes report.json, junit.xml, summary.md and report.html."""
    from gameday.core.journal import read_events
    from gameday.reports import build_report, write_reports

    if not journal.is_file():
        print_error(f"no such journal: {journal}")
        raise typer.Exit(ExitCode.INVALID)
    events = guarded(lambda: read_events(journal))
    if not events:
        print_error(f"{journal}: not a gameday journal (no event in it)")
        raise typer.Exit(ExitCode.INVALID)
    built = build_report(events)
    try:
        written = write_reports(built, output or journal.parent)
    except OSError as error:
        print_error(
            f"cannot write the reports to {output or journal.parent}: {error.strerror or error}"
        )
        raise typer.Exit(ExitCode.INVALID) from None
    out.print(f"report: {written['report.html']}")


def compare(
    old: Annotated[
        Path,
        typer.Argument(help="The earlier run: its folder (reports/RUN-ID/) or its report.json."),
    ],
    new: Annotated[Path, typer.Argument(help="The later run: its folder or its report.json.")],
    markdown: Annotated[
        Path | None,
        typer.Option(
            "--markdown",
            metavar="FILE",
            help="Also write the comparison as Markdown (for a pull-request comment) to FILE; "
            "'-' prints it to stdout instead of the table.",
        ),
    ] = None,
    tolerance_seconds: Annotated[
        float,
        typer.Option(
            "--tolerance-seconds", min=0.0, help="Slack for time to detect/recover, in seconds."
        ),
    ] = 2.0,
    tolerance_ratio: Annotated[
        float,
        typer.Option(
            "--tolerance-ratio",
            min=0.0,
            help="Slack for time to detect/recover, as a fraction of OLD; the larger slack wins.",
        ),
    ] = 0.25,
    score_tolerance: Annotated[
        float,
        typer.Option("--score-tolerance", min=0.0, help="Slack for scores, in points (0-100)."),
    ] = 5.0,
) -> None:
    """Show what regressed between two runs, to gate a change on its game day.

    Scenarios are matched by name, expectations by phase, index and description.

    Counts as a regression:
    - a scenario's outcome got worse (passed > failed > error or aborted);
    - an expectation went from passed to failed, or no longer has a result;
    - time to detect or to recover grew by more than
      max(--tolerance-seconds, --tolerance-ratio x OLD), or was not reached;
    - a score (a scenario's or the suite's) fell by more than --score-tolerance;
    - a scenario of OLD is missing from NEW.
    Not a regression: a scenario only in NEW (new), or skipped in either run
    (not compared). Improvements are listed too.

    Exit codes: 0 no regression, 1 at least one regression, 2 a report
    missing, unreadable or invalid."""
    from gameday.reports.compare import (
        Tolerances,
        compare_reports,
        comparison_markdown,
        comparison_table,
        load_report,
    )

    before, after = guarded(lambda: (load_report(old), load_report(new)))
    tolerances = Tolerances(seconds=tolerance_seconds, ratio=tolerance_ratio, score=score_tolerance)
    comparison = compare_reports(before, after, tolerances)
    text = comparison_markdown(comparison)
    to_stdout = markdown is not None and str(markdown) == "-"
    if to_stdout:
        sys.stdout.write(text)
    else:
        out.print(comparison_table(comparison))
        if markdown is not None:
            try:
                markdown.write_text(text, encoding="utf-8")
            except OSError as error:
                print_error(f"cannot write {markdown}: {error.strerror or error}")
                raise typer.Exit(ExitCode.INVALID) from None
    regressed = bool(comparison.regressions)
    verdict = Text.assemble(
        ("regressed: " if regressed else "ok: ", "bold red" if regressed else "bold green"),
        comparison.headline(),
    )
    (err if to_stdout else out).print(verdict)
    raise typer.Exit(ExitCode.FAILED if regressed else ExitCode.PASSED)
