"""A change set: the undo records one owner (a fault, a target) made, reverted together."""

from __future__ import annotations

import threading

from gameday.core.journal import Journal
from gameday.core.undo import RevertFailed, UndoAction

__all__ = ["ChangeSet"]


class ChangeSet:
    """Records each change in the journal before it is made; reverts them newest first.

    Reverting runs the same ``UndoAction.revert`` that ``gameday cleanup`` runs from
    the journal, so the normal path and the crash path are one path.
    """

    def __init__(self, journal: Journal, scenario: str, owner: str) -> None:
        self.journal = journal
        self.scenario = scenario
        self.owner = owner
        self._actions: dict[str, UndoAction] = {}
        self._order: list[str] = []
        self._lock = threading.Lock()

    @property
    def run_id(self) -> str:
        return self.journal.run_id

    def record(self, action: UndoAction) -> str:
        undo_id = self.journal.record_undo(action, scenario=self.scenario, owner=self.owner)
        with self._lock:
            self._actions[undo_id] = action
            self._order.append(undo_id)
        return undo_id

    def update(self, undo_id: str, action: UndoAction) -> None:
        self.journal.update_undo(undo_id, action)
        with self._lock:
            self._actions[undo_id] = action

    def revert(self, undo_id: str) -> str:
        with self._lock:
            action = self._actions.get(undo_id)
        if action is None:
            return "already reverted"
        try:
            result = action.revert()
        except (RevertFailed, OSError) as error:
            self.journal.mark_undo_failed(undo_id, str(error))
            raise RevertFailed(f"{action.describe()}: {error}") from None
        self.journal.mark_undone(undo_id, result)
        with self._lock:
            self._actions.pop(undo_id, None)
            self._order.remove(undo_id)
        return result

    def revert_all(self) -> list[str]:
        """Revert everything, newest first; keep going past failures, then report them."""
        results: list[str] = []
        failures: list[str] = []
        with self._lock:
            pending = list(reversed(self._order))
        for undo_id in pending:
            try:
                results.append(self.revert(undo_id))
            except RevertFailed as error:
                failures.append(str(error))
        if failures:
            raise RevertFailed("; ".join(failures))
        return results

    def __len__(self) -> int:
        return len(self._order)
