"""The ``gameday`` command.

Exit codes: 0 every expectation held; 1 an expectation failed; 2 invalid input
or usage; 3 environment error (a component missing or unreachable); 4 aborted
by a signal, after restoring.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from gameday import __version__
from gameday.cli.alerts import OutputFormat
from gameday.cli.alerts import app as alerts_app
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
    widen_help_in_pipes,
)
from gameday.cli.diagnose import diagnose
from gameday.cli.engines import app as engines_app
from gameday.cli.model import app as model_app
from gameday.cli.sim import app as sim_app
from gameday.cli.testenv import app as testenv_app
from gameday.core.errors import ExitCode, GamedayError
from gameday.core.redact import MaskingFormatter

if TYPE_CHECKING:
    from gameday.core.journal import PendingUndo
    from gameday.scenario.model import Scenario

__all__ = ["app", "main"]

T = TypeVar("T")

app = typer.Typer(
    name="gameday",
    help=(
        "Chaos game days for LLM serving: run a scenario (YAML) that injects a documented "
        "failure under load, and check that the alerts fire, the failure is the one the "
        "runbook describes, and the system recovers.\n\n"
        "Exit codes: 0 passed, 1 an expectation failed, 2 invalid input, "
        "3 environment error, 4 aborted by a signal (after restoring)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.add_typer(sim_app, name="sim")
app.add_typer(model_app, name="model")
app.add_typer(engines_app, name="engines")
app.add_typer(testenv_app, name="testenv")
app.add_typer(alerts_app, name="alerts")
app.command()(diagnose)


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        out.print(f"llm-gameday {__version__}")
        raise typer.Exit(0)


@app.command()
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
    from gameday.engine.prepare import RunInputs, prepare_run
    from gameday.engine.runner import GameDay, RunOptions
    from gameday.reports import ReportBuilder, write_reports
    from gameday.reports.console import ConsoleView
    from gameday.reports.live import LiveView

    pause = guarded(lambda: parse_duration_option("--cooldown", cooldown))
    inputs = RunInputs(
        paths,
        rules or [],
        bundled_rules,
        time_compression,
        engine,
        kube_context=context,
        environment_optional=dry_run,
    )
    prepared = guarded(lambda: prepare_run(inputs))
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


@app.command()
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
    from gameday.engine.prepare import RunInputs, prepare_run

    inputs = RunInputs(
        paths,
        rules or [],
        bundled_rules,
        time_compression,
        engine,
        kube_context=context,
        environment_optional=True,
    )
    prepared = guarded(lambda: prepare_run(inputs))
    for item in prepared.scenarios:
        why = prepared.unchecked.get(item.path)
        left_out = f"; the target's own checks left out: {why}" if why else ""
        out.print(f"{item.path}: ok ({item.scenario.name}){left_out}", markup=False)


@app.command()
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


@app.command(name="list")
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


@app.command()
def cleanup(
    journal: Annotated[
        Path | None, typer.Option("--journal", help="Revert what this journal left applied.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Also clean runs whose harness still seems alive.")
    ] = False,
    list_only: Annotated[
        bool,
        typer.Option("--list", "--dry-run", help="Show what would be reverted; change nothing."),
    ] = False,
) -> None:
    """Revert what a killed run left behind, from its journal.

    Processes it started, ports it held, files it moved, limits it lowered. Without
    --journal: every registered run whose harness died. Each record is reverted on its
    own, newest first: one that cannot be read (another version's, a plugin's not
    installed here) or whose revert fails is named, and every other one is still
    reverted. Exit 0: nothing is left; 1: something is left (listed at the end)."""
    from gameday.core.journal import active_runs, outstanding_undos, revert_outstanding
    from gameday.plugins import load_builtins

    load_builtins()  # registers the undo kinds
    candidates: list[tuple[str, Path, Path | None]] = []
    if journal is not None:
        if not journal.is_file():
            print_error(f"no such journal: {journal}")
            raise typer.Exit(ExitCode.INVALID)
        candidates.append((journal.parent.name, journal, None))
    else:
        for active in active_runs():
            if active.harness_alive and not force:
                err.print(
                    f"skipping run {active.run_id}: its harness (pid {active.pid}) is still running"
                )
                continue
            candidates.append((active.run_id, active.journal, active.registration))
    if not candidates:
        out.print("nothing to clean up")
        return
    left: list[str] = []
    for run_id, path, registration in candidates:
        if not path.is_file():
            err.print(f"run {run_id}: journal {path} is gone; nothing can be reverted from it")
            if registration is not None and not list_only:
                registration.unlink(missing_ok=True)
            continue
        pending = outstanding_undos(path)
        out.print(f"run {run_id}: {len(pending)} change(s) to revert ({path})", markup=False)
        if list_only:
            for undo in pending:
                out.print(f"  would {undo.action.describe()}  {_undo_label(undo)}", markup=False)
            continue
        failed = 0
        for outcome in revert_outstanding(path, run_id):
            mark = "[green]ok[/green]" if outcome.ok else "[red]FAILED[/red]"
            out.print(f"  {mark} {escape(outcome.message)}  {escape(_undo_label(outcome.undo))}")
            if not outcome.ok:
                failed += 1
                left.append(f"run {run_id} {_undo_label(outcome.undo)}: {outcome.message}")
        if registration is not None and failed == 0:
            registration.unlink(missing_ok=True)
    if left:
        err.print(f"{len(left)} change(s) left in place:", markup=False)
        for line in left:
            err.print(f"  {line}", markup=False)
        raise typer.Exit(ExitCode.FAILED)


def _undo_label(undo: PendingUndo) -> str:
    """``[undo u3 kill-processes, local/process-kill fault/kill]``: which record, in words."""
    from gameday.core.undo import UnreadableUndo

    action = undo.action
    kind = action.recorded_kind if isinstance(action, UnreadableUndo) else action.kind
    where = " ".join(part for part in (undo.scenario, undo.owner) if part)
    return f"[undo {undo.id} {kind}{', ' + where if where else ''}]"


@app.command()
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


@app.command()
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


def main() -> None:
    """The ``gameday`` command: every failure ends in one line on stderr and its exit code
    (a bad argument 2, like bad input; a bug too, with how to see its traceback)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    widen_help_in_pipes()
    if os.environ.get("GAMEDAY_DEBUG"):
        app()
        return
    try:
        code = app(standalone_mode=False)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(ExitCode.ABORTED)
    except Exception as error:
        sys.exit(_last_word(error))
    sys.exit(code if isinstance(code, int) else ExitCode.PASSED)


def _last_word(error: Exception) -> int:
    """One line for what escaped a command, and the exit code it means."""
    if type(error).__name__ == "Abort":  # click's, as typer vendors it: Ctrl-C at a prompt
        err.print("interrupted")
        return ExitCode.ABORTED
    exit_code = getattr(error, "exit_code", None)
    format_message = getattr(error, "format_message", None)
    if isinstance(exit_code, int) and callable(format_message):
        # click's usage errors (typer vendors click, so matched by shape): its own words
        # ("Invalid value for '--port'") on one line instead of a panel
        ctx = getattr(error, "ctx", None)
        command = getattr(ctx, "command_path", None) or "gameday"
        message = " ".join(str(format_message()).split())
        print_error(f"{command}: {message} (see {command} --help)")
        return exit_code
    # a bug: said in one line; GAMEDAY_DEBUG=1 shows where
    print_error(
        f"internal error: {type(error).__name__}: {error} (GAMEDAY_DEBUG=1 for the traceback)"
    )
    return ExitCode.ENVIRONMENT
