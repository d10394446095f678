"""``gameday alerts``: check alert rules before a game day relies on them."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gameday.core.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from gameday.rules.lint import LintReport

__all__ = ["app"]

app = typer.Typer(
    name="alerts",
    help="Check alert rules (plain rule files or PrometheusRule manifests).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


@app.command()
def lint(
    rules: Annotated[
        list[Path],
        typer.Argument(
            metavar="RULES",
            help="Rule files (plain or PrometheusRule manifests), or directories of them.",
        ),
    ],
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            "-t",
            metavar="URL",
            help="A /metrics endpoint (http://host:8000/metrics) or a Prometheus server "
            "(http://host:9090); repeat it to take the union of several targets' series.",
        ),
    ] = None,
    metrics_file: Annotated[
        list[Path] | None,
        typer.Option(
            "--metrics-file",
            metavar="FILE",
            help="A saved /metrics text, for offline use; repeatable, combines with --target.",
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="table for people, json for machines.")
    ] = OutputFormat.table,
    scrape_label: Annotated[
        list[str] | None,
        typer.Option(
            "--scrape-label",
            metavar="NAME",
            help="A label your Prometheus attaches when it scrapes (namespace, pod, ...), "
            "besides job and instance: a /metrics endpoint cannot show it, so matchers on "
            "it are not checked there.",
        ),
    ] = None,
    lookback: Annotated[
        str,
        typer.Option(
            "--lookback", help="With a Prometheus server: series seen this far back count."
        ),
    ] = "1h",
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Also list what was not or only partly checked."),
    ] = False,
) -> None:
    """Find the alert rules that can never fire against what the targets expose.

    Per rule: metrics no target exposes, with the closest exposed name (a
    counter's missing _total, a renamed vLLM metric, a typo); label matchers
    no series satisfies (a misspelt label, a value never seen); expressions
    that promtool check rules refuses. Selectors inside absent() are meant to
    select nothing and are not findings; series written by recording rules of
    the same files count as existing.

    Exit codes: 0 every rule can fire, 1 some rule can never fire, 2 invalid
    input (a rule file, a URL), 3 a target cannot be reached (or promtool is
    missing under CI=true)."""
    from gameday.cli.common import err, guarded, out, parse_duration_option, print_error
    from gameday.rules.lint import (
        Source,
        connect,
        find_promtool,
        lint,
        load_rules,
        read_metrics_file,
    )
    from gameday.rules.loader import rule_files_in

    if not target and not metrics_file:
        print_error("give at least one --target URL or --metrics-file FILE")
        raise typer.Exit(ExitCode.INVALID)
    extra = scrape_label or []
    lookback_s = guarded(lambda: parse_duration_option("--lookback", lookback))
    loaded = guarded(lambda: load_rules(rule_files_in(rules)))
    promtool = guarded(find_promtool)

    def sources() -> list[Source]:
        found = [connect(url, lookback_s=lookback_s, target_labels=extra) for url in target or []]
        return found + [read_metrics_file(file, extra) for file in metrics_file or []]

    targets = guarded(sources)
    report = guarded(lambda: lint(loaded, targets, promtool=promtool, target_labels=extra))
    if output_format is OutputFormat.json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
    else:
        if promtool is None:
            err.print("promtool is not installed: expressions were checked by promql-parser only")
        _print_table(report, out, err, verbose)
    raise typer.Exit(ExitCode.FAILED if report.never_fire else ExitCode.PASSED)


def _print_table(report: LintReport, out: Console, err: Console, verbose: bool) -> None:
    from rich.table import Table

    for source in report.targets:
        err.print(f"target {source.describe()}")
    if report.never_fire:
        table = Table(title="rules that can never fire", title_justify="left")
        table.add_column("rule", no_wrap=True)
        for column in ("file:group", "finding", "suggestion"):
            table.add_column(column, overflow="fold")
        for result in report.never_fire:
            name = (
                result.rule.name if result.rule.kind == "alert" else f"record: {result.rule.name}"
            )
            for finding in result.findings:
                table.add_row(
                    name,
                    f"{result.file}:{result.group}",
                    f"{finding.kind}: {finding.message}",
                    finding.suggestion or "—",
                )
        out.print(table)
    notes = [(r, note) for r in report.results for note in r.notes]
    if verbose and notes:
        table = Table(title="notes (not findings)", title_justify="left")
        for column in ("rule", "note"):
            table.add_column(column, overflow="fold")
        for result, note in notes:
            table.add_row(result.rule.name, note)
        out.print(table)
    never = len(report.never_fire)
    summary = (
        f"{len(report.results)} rules checked: {len(report.results) - never} can fire, "
        f"{never} can never fire"
    )
    if notes and not verbose:
        summary += f" ({len(notes)} notes: -v lists them)"
    out.print(summary)


def _classify(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """Split paths into scenario files and rule files by what each file declares."""
    from gameday.core.inputs import read_input_text
    from gameday.core.yamlfile import load_yaml_documents

    scenarios: list[Path] = []
    rules: list[Path] = []
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise UsageError(f"no such file or directory: {path}")
        files += sorted([*path.rglob("*.yml"), *path.rglob("*.yaml")]) if path.is_dir() else [path]
    for file in files:
        # the one input path: size-bounded, UTF-8 checked, aliases and nesting bounded
        text = read_input_text(file, "scenario or rule file")
        documents = [d for d in load_yaml_documents(text, str(file)) if isinstance(d, dict)]
        kinds = {d.get("kind") for d in documents}
        if "Scenario" in kinds:
            scenarios.append(file)
        elif "PrometheusRule" in kinds or any("groups" in d for d in documents):
            rules.append(file)
        elif not file.name.endswith(".test.yml"):  # promtool unit tests sit beside rules
            raise UsageError(f"{file}: neither a scenario nor a rule file")
    return scenarios, rules


@app.command()
def coverage(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="SCENARIOS... RULES...",
            help="Scenario files and rule files (plain or PrometheusRule), or directories of "
            "them; told apart by their content. No rule files: the bundled and Kubernetes rules.",
        ),
    ],
    markdown: Annotated[
        Path | None,
        typer.Option(
            "--markdown",
            metavar="FILE",
            help="Also write the coverage as Markdown to FILE; '-' prints it instead of tables.",
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            help="table for people, json for machines: {alerts, scenarios, undefined, "
            "never_fired, unexercised}.",
        ),
    ] = OutputFormat.table,
) -> None:
    """Which alerts the scenarios exercise: expected to fire, checked to resolve, never
    exercised, and expected without any rule defining them.

    Exit codes: 0 every expected alert exists, 1 some scenario expects an alert no rule
    file defines, 2 invalid input."""
    from gameday.cli.common import guarded, out, print_error
    from gameday.coverage.alerts import (
        coverage_json,
        coverage_markdown,
        coverage_table,
        load_coverage,
        scenario_table,
        undefined_table,
    )

    scenarios, rules = guarded(lambda: _classify(paths))
    if not scenarios:
        print_error("no scenario files among the paths")
        raise typer.Exit(ExitCode.INVALID)
    result = guarded(lambda: load_coverage(scenarios, rules or None))
    here = Path.cwd()
    text = coverage_markdown(result, relative_to=here)
    if output_format is OutputFormat.json:
        sys.stdout.write(json.dumps(coverage_json(result), indent=2) + "\n")
        if markdown is not None and str(markdown) != "-":
            markdown.write_text(text, encoding="utf-8")
    elif markdown is not None and str(markdown) == "-":
        sys.stdout.write(text)
    else:
        out.print(coverage_table(result, relative_to=here))
        out.print(scenario_table(result, relative_to=here))
        missing = undefined_table(result, relative_to=here)
        if missing is not None:
            out.print(missing)
        if markdown is not None:
            markdown.write_text(text, encoding="utf-8")
    raise typer.Exit(ExitCode.FAILED if result.undefined else ExitCode.PASSED)
