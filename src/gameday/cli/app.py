"""The ``gameday`` command: the root app, its subcommands wired in (each in its module of
this package), and ``main``, which turns every failure into one line and its exit code.

Exit codes: 0 every expectation held; 1 an expectation failed; 2 invalid input
or usage; 3 environment error (a component missing or unreachable); 4 aborted
by a signal, after restoring.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

from gameday import __version__
from gameday.cli.alerts import app as alerts_app
from gameday.cli.cleanup import cleanup
from gameday.cli.common import (
    err,
    out,
    print_error,
    widen_help_in_pipes,
)
from gameday.cli.diagnose import diagnose
from gameday.cli.engines import app as engines_app
from gameday.cli.listing import list_
from gameday.cli.model import app as model_app
from gameday.cli.reports import compare, report
from gameday.cli.run import run, schema, validate
from gameday.cli.sim import app as sim_app
from gameday.cli.testenv import app as testenv_app
from gameday.core.errors import ExitCode
from gameday.core.redact import MaskingFormatter

__all__ = ["app", "main"]


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


# in the order `gameday --help` lists them
app.command()(run)
app.command()(validate)
app.command()(schema)
app.command(name="list")(list_)
app.command()(cleanup)
app.command()(report)
app.command()(compare)


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
