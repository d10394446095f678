"""`gameday run` and `gameday validate`, which prepare a run through one path, and
`gameday schema`: the commands that take scenario files."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gameday.cli.common import (
    BundledRulesOption,
    ContextOption,
    EngineOption,
    RulesOption,
    TimeCompressionOption,
    err,
    guarded,
    out,
    parse_duration_option,
    print_error,
)
from gameday.core.errors import ExitCode

if TYPE_CHECKING:
    from gameday.engine.prepare import PreparedRun

__all__ = ["run", "schema", "validate"]


def run(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Scenario files, or directories of them (a directory is a game-day suite)."
        ),
    ],
    report_dir: Annotated[
        Path, typer.Option("--report-dir", "-o", help="Where reports go: DIR/<run-id>/.")
    ] = Path("reports"),
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Validate and print every step and change; start and change nothing."
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show every load sample and note.")
    ] = False,
    skip_unavailable: Annotated[
        bool,
        typer.Option(
            "--skip-unavailable",
            help="Skip scenarios this machine cannot run (no GPU, not root, ...) and say why, "
            "instead of ending them with exit 3.",
        ),
    ] = False,
    cooldown: Annotated[
        str,
        typer.Option(
            "--cooldown",
            help="Pause between the scenarios of a suite (a scenario's own `cooldown` wins).",
        ),
    ] = "5s",
    live: Annotated[
        bool,
        typer.Option(
            "--live/--no-live",
            help="Draw a live status (phase, load, faults, expectations) on a terminal.",
        ),
    ] = True,
    rules: RulesOption = None,
    bundled_rules: BundledRulesOption = True,
    time_compression: TimeCompressionOption = None,
    context: ContextOption = None,
    prometheus: Annotated[
        str | None,
        typer.Option("--prometheus", help="Kubernetes tiers: the cluster Prometheus' URL."),
    ] = None,
    alertmanager: Annotated[
        str | None,
        typer.Option("--alertmanager", help="Kubernetes tiers: the cluster Alertmanager's URL."),
    ] = None,
    engine: EngineOption = None,
) -> None:
    """Run scenarios for real and write their reports.

    Reports go to DIR/<run-id>/: journal.jsonl, report.json, junit.xml, summary.md,
    report.html."""
    from gameday.engine.plan import describe_plan
    from gameday.engine.runner import GameDay, RunOptions
    from gameday.reports import ReportBuilder, write_reports
    from gameday.reports.console import ConsoleView
    from gameday.reports.live import LiveView

    pause = guarded(lambda: parse_duration_option("--cooldown", cooldown))
    options = (rules or [], bundled_rules, time_compression, engine, context)
    prepared = _prepared(paths, *options, environment_optional=dry_run)
    loaded = prepared.scenarios
    if dry_run:
        out.print(describe_plan(loaded), markup=False)  # patterns' [..] are text
        for path, why in prepared.unchecked.items():
            err.print(f"{path}: the target's own checks left out: {why}", markup=False)
        raise typer.Exit(ExitCode.PASSED)
    if report_dir.exists() and not report_dir.is_dir():
        print_error(f"--report-dir {report_dir} is a file, not a folder")
        raise typer.Exit(ExitCode.INVALID)
    builder = ReportBuilder()
    view = LiveView(err) if live and err.is_terminal else None
    gameday = GameDay(
        loaded,
        RunOptions(
            report_dir=report_dir,
            skip_unavailable=skip_unavailable,
            cooldown=pause,
            kube_context=context,
            prometheus=prometheus,
            alertmanager=alertmanager,
        ),
        handlers=[ConsoleView(err, verbose), builder, *([view] if view else [])],
    )
    with view or contextlib.nullcontext():
        result = guarded(gameday.run)
    written = write_reports(builder.report, result.run_dir)
    err.print(f"journal: {result.run_dir / 'journal.jsonl'}")
    out.print(f"report: {written['report.html']}")
    raise typer.Exit(result.exit_code)


def validate(
    paths: Annotated[list[Path], typer.Argument(help="Scenario files or directories.")],
    rules: RulesOption = None,
    bundled_rules: BundledRulesOption = True,
    time_compression: TimeCompressionOption = None,
    context: ContextOption = None,
    engine: EngineOption = None,
) -> None:
    """Check scenario files without running anything: everything `run` checks before it
    starts (schema, durations, names, references, the files they name, the rule options,
    the engine, the Kubernetes context), given the same options."""
    options = (rules or [], bundled_rules, time_compression, engine, context)
    prepared = _prepared(paths, *options, environment_optional=True)
    for item in prepared.scenarios:
        why = prepared.unchecked.get(item.path)
        left_out = f"; the target's own checks left out: {why}" if why else ""
        out.print(f"{item.path}: ok ({item.scenario.name}){left_out}", markup=False)


def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to a file instead of stdout.")
    ] = None,
) -> None:
    """Print the JSON Schema of scenario files (for editors: yaml-language-server, VS Code)."""
    from gameday.plugins import catalog
    from gameday.scenario.schema import scenario_json_schema

    text = json.dumps(scenario_json_schema(catalog()), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        try:
            output.write_text(text)
        except OSError as error:
            print_error(f"cannot write {output}: {error.strerror or error}")
            raise typer.Exit(ExitCode.INVALID) from None
        err.print(f"wrote {output}")


def _prepared(
    paths: list[Path],
    rules: list[Path],
    bundled_rules: bool,
    time_compression: float | None,
    engine: str | None,
    context: str | None,
    *,
    environment_optional: bool,
) -> PreparedRun:
    """The one prepare path of run, --dry-run and validate, its errors one line each."""
    from gameday.engine.prepare import RunInputs, prepare_run

    inputs = RunInputs(
        paths,
        rules,
        bundled_rules,
        time_compression,
        engine,
        kube_context=context,
        environment_optional=environment_optional,
    )
    return guarded(lambda: prepare_run(inputs))
