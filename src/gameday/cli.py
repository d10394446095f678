"""The ``gameday`` command."""

from __future__ import annotations

import typer

from gameday.sim.cli import app as sim_app

app = typer.Typer(
    name="gameday",
    help="Chaos game days for LLM serving.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(sim_app, name="sim")


@app.callback()
def _root() -> None:
    """Chaos game days for LLM serving."""


def main() -> None:
    app()
