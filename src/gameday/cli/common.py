"""What every ``gameday`` subcommand shares: the two consoles, the one-line error, and the
guard that turns the project's errors into that line and their exit code."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
import typer.rich_utils
from rich.console import Console
from rich.text import Text

from gameday.core.errors import GamedayError, UsageError

__all__ = [
    "BundledRulesOption",
    "ContextOption",
    "EngineOption",
    "RulesOption",
    "TimeCompressionOption",
    "err",
    "guarded",
    "out",
    "parse_duration_option",
    "print_error",
    "widen_help_in_pipes",
]

# the options that change what a run accepts, shared by `run` and `validate` so that
# validate checks exactly what run checks
RulesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--rules",
        help="Your alert rules (plain rule files or PrometheusRule manifests, one or "
        "many documents; a directory gives its *.yml/*.yaml), loaded next to the "
        "scenario's. Repeatable. Local tier.",
    ),
]
BundledRulesOption = Annotated[
    bool,
    typer.Option(
        "--bundled-rules/--no-bundled-rules",
        help="Keep the harness's bundled rules (default) or leave them out.",
    ),
]
TimeCompressionOption = Annotated[
    float | None,
    typer.Option(
        "--time-compression",
        min=1.0,
        help="Divide every rule's for: and range windows by this (floor 2s); the report "
        "lists each rewrite. Default: the scenario's (30 in the local tier).",
    ),
]
ContextOption = Annotated[
    str | None,
    typer.Option(
        "--context",
        help="Kubernetes tiers: the kubeconfig context to run against (allowed for this "
        "run even if the scenario does not list it).",
    ),
]
EngineOption = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="Local tier: serve with this engine instead of the scenario's (sim or "
        "vllm; see `gameday engines`). Deadlines written with `startup` follow the "
        "engine's measured start-up time.",
    ),
]

HELP_WIDTH_IN_PIPES = 120
"""Wide enough that no option name in any --help is cut (checked for every command)."""

T = TypeVar("T")

out = Console(highlight=False, soft_wrap=True)
if not out.is_terminal:
    # in a pipe a table row stays one line: grep finds a code, cut finds a column
    out.width = 100_000
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_error(message: str) -> None:
    """One ``error:`` line on stderr; the message is text, never read as rich markup."""
    err.print(Text.assemble(("error:", "bold red"), f" {message}"))


def guarded(action: Callable[[], T]) -> T:
    """Turn our errors into one line on stderr and the documented exit code."""
    try:
        return action()
    except GamedayError as error:
        for line in str(error).splitlines() or [type(error).__name__]:
            print_error(line)
        raise typer.Exit(error.exit_code) from None


def parse_duration_option(option: str, value: str) -> float:
    from gameday.scenario.units import parse_duration

    try:
        return parse_duration(value)
    except (TypeError, ValueError) as error:
        raise UsageError(f"{option}: {error}") from None


def widen_help_in_pipes() -> None:
    """In a pipe, rich draws --help 80 columns wide and cuts long option names
    (``--skip-unavaila…``); draw it wide enough instead, unless the user set a width."""
    if not sys.stdout.isatty() and not (
        os.environ.get("TERMINAL_WIDTH") or os.environ.get("COLUMNS")
    ):
        typer.rich_utils.MAX_WIDTH = HELP_WIDTH_IN_PIPES
