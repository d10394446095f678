"""Reading a file the user gave: bytes with a size limit, then UTF-8 with a located error.

Every file the harness reads as input (scenarios, rule files, the runbook catalog) comes
through :func:`read_input_text`, so a file that is too large, unreadable or not UTF-8 is
one clear line and exit 2 wherever it is named, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

from gameday.core.errors import InputError

__all__ = ["MAX_INPUT_BYTES", "UnreadableInput", "read_input_text"]

MAX_INPUT_BYTES = 16 * 2**20
"""No scenario, rule file or catalog comes near this; a file beyond it is not one."""


class UnreadableInput(InputError):
    """A file that cannot be read as text: ``path[:line:column]: reason``."""

    def __init__(self, path: Path, reason: str, line: int | None = None, column: int | None = None):
        self.path, self.reason, self.line, self.column = path, reason, line, column
        where = str(path) if line is None else f"{path}:{line}:{column}"
        super().__init__(f"{where}: {reason}")


def read_input_text(path: Path, what: str = "file", limit: int = MAX_INPUT_BYTES) -> str:
    """The text of ``path``, or :class:`UnreadableInput` saying why not (``what`` names
    the kind of file in the reason: "scenario", "rule file")."""
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as error:
        raise UnreadableInput(path, f"cannot read {what}: {error.strerror or error}") from None
    if len(data) > limit:
        raise UnreadableInput(path, f"{what} larger than {limit:,} bytes: not read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[: error.start]
        line = before.count(b"\n") + 1
        column = error.start - (before.rfind(b"\n") + 1) + 1
        raise UnreadableInput(
            path,
            f"{what} is not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})",
            line,
            column,
        ) from None
