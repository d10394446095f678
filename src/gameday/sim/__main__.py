"""``python -m gameday.sim``: the simulator's commands without the ``gameday`` entry point."""

from gameday.cli.common import widen_help_in_pipes
from gameday.cli.sim import app

widen_help_in_pipes()

app(prog_name="python -m gameday.sim")
