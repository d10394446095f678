"""Undo actions: how to take back one change, written to the journal before the change.

An undo action is data (a pydantic model with a ``kind``) plus the code that
reverts it. The runner reverts a fault by running its recorded actions in
reverse order; ``gameday cleanup`` runs the very same actions, read back from
the journal of a run that was killed. One code path, exercised by every run.

Built-in kinds live next to the mechanism they undo (processes and cgroups in
``gameday.targets.local``); third parties register theirs through the
``gameday.undo`` entry-point group.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from gameday.core.errors import InjectionError
from gameday.core.registry import Registry

__all__ = [
    "RemoveTree",
    "RestoreFile",
    "RevertFailed",
    "UndoAction",
    "UnreadableUndo",
    "undo_action_from_record",
    "undo_actions",
]


class RevertFailed(InjectionError):
    """A recorded change could not be taken back; the message says what is left behind."""


class UndoAction(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ClassVar[str]

    def revert(self) -> str:
        """Take the change back; idempotent; returns what was done, in words."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def to_record(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.model_dump(mode="json")}


undo_actions: Registry[type[UndoAction]] = Registry("undo action", "gameday.undo")


def register_undo(cls: type[UndoAction]) -> type[UndoAction]:
    undo_actions.add(cls.kind, cls)
    return cls


def undo_action_from_record(record: dict[str, Any]) -> UndoAction:
    data = dict(record)
    cls = undo_actions.get(data.pop("kind"))
    return cls.model_validate(data)


class UnreadableUndo(UndoAction):
    """An undo record that could not be read back: a kind this version does not know (a
    plugin not installed, another version's record) or a malformed one. It cannot be
    reverted, only reported, so that cleanup reverts every other record and still says
    what it left behind. Never registered: it is never written."""

    kind: ClassVar[str] = "unreadable"
    recorded_kind: str
    reason: str

    def revert(self) -> str:
        raise RevertFailed(
            f"cannot revert an undo record of kind {self.recorded_kind}: {self.reason}"
        )

    def describe(self) -> str:
        return f"revert an undo record of kind {self.recorded_kind} (unreadable: {self.reason})"


@register_undo
class RestoreFile(UndoAction):
    """A file or directory was moved aside (or replaced by a damaged copy): move it back."""

    kind: ClassVar[str] = "restore-file"
    original: str
    saved_at: str

    def revert(self) -> str:
        saved, original = Path(self.saved_at), Path(self.original)
        if not saved.exists() and not saved.is_symlink():
            if original.exists():
                return f"{original} already in place"
            raise RevertFailed(f"cannot restore {original}: the saved copy {saved} is gone")
        if original.is_dir() and not original.is_symlink():
            shutil.rmtree(original)
        elif original.exists() or original.is_symlink():
            original.unlink()
        os.replace(saved, original)
        return f"restored {original}"

    def describe(self) -> str:
        return f"move {self.saved_at} back to {self.original}"


@register_undo
class RemoveTree(UndoAction):
    """A scratch directory the run created."""

    kind: ClassVar[str] = "remove-tree"
    path: str

    def revert(self) -> str:
        shutil.rmtree(self.path, ignore_errors=True)
        if Path(self.path).exists():
            raise RevertFailed(f"could not remove {self.path}")
        return f"removed {self.path}"

    def describe(self) -> str:
        return f"remove {self.path}"
