"""The ``gameday`` command and its subcommands, one module each; the layer on top of all
the others (``app`` wires the subcommands, ``common`` holds what they share)."""

from gameday.cli.app import app, main

__all__ = ["app", "main"]
