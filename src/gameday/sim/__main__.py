"""``python -m gameday.sim``: the simulator's commands without the ``gameday`` entry point."""

from gameday.cli.sim import app

app(prog_name="python -m gameday.sim")
