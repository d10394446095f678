"""``gameday sim``: placeholder until the simulator lands."""

import typer

app = typer.Typer(help="The vLLM-compatible inference simulator.", no_args_is_help=True)
