"""The run journal: one JSON object per line, events and undo records together.

Undo records are written and fsynced *before* the change they undo is made,
so a harness killed at any instant leaves a journal from which ``gameday
cleanup`` can put the machine back. A run registers itself in the state
directory while it may have changes applied; cleanup looks there.

Record shapes::

    {"record": "event", "event": "FaultApplied", ...}
    {"record": "undo", "id": "u3", "scenario": "...", "owner": "fault/hold", "action": {...}}
    {"record": "undo-update", "id": "u3", "action": {...}}     # e.g. the pid once known
    {"record": "undone", "id": "u3", "result": "killed 1 process"}
    {"record": "undo-failed", "id": "u3", "error": "..."}
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from gameday.core.errors import InputError
from gameday.core.events import Event, event_from_record
from gameday.core.redact import redact
from gameday.core.registry import UnknownName
from gameday.core.undo import RevertFailed, UndoAction, UnreadableUndo, undo_action_from_record

__all__ = [
    "ActiveRun",
    "Journal",
    "PendingUndo",
    "active_runs",
    "outstanding_undos",
    "process_start_time",
    "read_events",
    "revert_outstanding",
    "state_dir",
]


def state_dir() -> Path:
    """Where running harnesses register themselves, so cleanup can find their journals."""
    configured = os.environ.get("GAMEDAY_STATE_DIR")
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/var/lib/gameday")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "gameday"


def process_start_time(pid: int) -> int | None:
    """Clock ticks since boot at which ``pid`` started: tells a pid apart from its reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may hold spaces and parentheses; fields resume after the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


@dataclass(frozen=True)
class PendingUndo:
    id: str
    scenario: str
    owner: str
    action: UndoAction


class Journal:
    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self._counter = 0
        self._registration: Path | None = None

    # -- writing -----------------------------------------------------------------

    def _write(self, record: dict[str, Any], *, durable: bool) -> None:
        # events come masked from the bus; undo records name commands and files, so mask here too
        line = json.dumps(redact(record), separators=(",", ":"), default=str)
        with self._lock:
            if self._file.closed:
                return
            self._file.write(line + "\n")
            self._file.flush()
            if durable:
                os.fsync(self._file.fileno())

    def record_event(self, event: Event) -> None:
        self._write({"record": "event", **event.to_record()}, durable=False)

    def record_undo(self, action: UndoAction, *, scenario: str, owner: str) -> str:
        """Write (and fsync) how to undo a change; call before making the change."""
        with self._lock:
            self._counter += 1
            undo_id = f"u{self._counter}"
        self._write(
            {
                "record": "undo",
                "id": undo_id,
                "scenario": scenario,
                "owner": owner,
                "action": action.to_record(),
            },
            durable=True,
        )
        return undo_id

    def update_undo(self, undo_id: str, action: UndoAction) -> None:
        self._write(
            {"record": "undo-update", "id": undo_id, "action": action.to_record()}, durable=True
        )

    def mark_undone(self, undo_id: str, result: str) -> None:
        self._write({"record": "undone", "id": undo_id, "result": result}, durable=True)

    def mark_undo_failed(self, undo_id: str, error: str) -> None:
        self._write({"record": "undo-failed", "id": undo_id, "error": error}, durable=True)

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    # -- registration for `gameday cleanup` ------------------------------------

    def register_active(self) -> None:
        directory = state_dir() / "active"
        directory.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        entry = {
            "run_id": self.run_id,
            "journal": str(self.path.resolve()),
            "pid": pid,
            "start_time": process_start_time(pid),
            "host": socket.gethostname(),
            "registered": time.time(),
        }
        target = directory / f"{self.run_id}.json"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, target)
        self._registration = target

    def unregister_active(self) -> None:
        if self._registration is not None:
            self._registration.unlink(missing_ok=True)
            self._registration = None


# -- reading -----------------------------------------------------------------------


def _numbered_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """The journal's objects with their line numbers. A line that is not a JSON object is
    passed over: the harness was killed while writing it (and it stays torn when cleanup
    appends after it). A torn undo record is no loss: each is fsynced before its change
    is made, so the change of a torn one never happened."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:  # JSONDecodeError, and UnicodeDecodeError of non-UTF-8 bytes
                continue
            if isinstance(record, dict):
                yield number, record


def read_events(path: Path) -> list[Event]:
    """The journal's events, in order; InputError naming the line of one that is not an
    event this version knows (another version's journal, an edited one)."""
    events: list[Event] = []
    for number, record in _numbered_records(path):
        if record.get("record") == "event":
            data = {k: v for k, v in record.items() if k != "record"}
            try:
                events.append(event_from_record(data))
            except (KeyError, TypeError, ValueError) as error:
                name = data.get("event")
                what = f"event {name!r}" if isinstance(name, str) else "an event without a name"
                reason = "unknown to this version" if isinstance(error, KeyError) else str(error)
                raise InputError(f"{path}:{number}: cannot read {what}: {reason}") from None
    return events


def outstanding_undos(path: Path) -> list[PendingUndo]:
    """Undo records not yet undone, newest first (the order to revert them in).

    Each record is read on its own: one that cannot be read back (an unknown kind, a
    malformed or torn record) is returned as an :class:`UnreadableUndo`, whose revert
    fails with the reason, and never stops the others from being read."""
    pending: dict[str, PendingUndo] = {}
    order: list[str] = []
    for number, record in _numbered_records(path):
        kind = record.get("record")
        if kind not in ("undo", "undo-update", "undone"):
            continue
        undo_id = record.get("id")
        if not isinstance(undo_id, str):
            undo_id = f"line {number}"
        if kind == "undo":
            pending[undo_id] = PendingUndo(
                undo_id,
                str(record.get("scenario", "")),
                str(record.get("owner", "")),
                _action_of(record),
            )
            order.append(undo_id)
        elif kind == "undo-update" and undo_id in pending:
            old = pending[undo_id]
            pending[undo_id] = PendingUndo(old.id, old.scenario, old.owner, _action_of(record))
        elif kind == "undone":
            pending.pop(undo_id, None)
    return [pending[i] for i in reversed(dict.fromkeys(order)) if i in pending]


def _action_of(record: dict[str, Any]) -> UndoAction:
    """The record's undo action, or an :class:`UnreadableUndo` saying why there is none."""
    action = record.get("action")
    if not isinstance(action, dict):
        return UnreadableUndo(recorded_kind="(none)", reason="the record has no action object")
    recorded_kind = action.get("kind")
    if not isinstance(recorded_kind, str):
        return UnreadableUndo(recorded_kind="(none)", reason="the action has no kind")
    try:
        return undo_action_from_record(action)
    except UnknownName:
        reason = (
            f"unknown undo kind {recorded_kind!r} (written by another version of gameday, "
            "or by a plugin not installed here)"
        )
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'action'}: {e['msg']}" for e in error.errors()
        )
        reason = f"its fields do not fit this version's {recorded_kind} ({problems})"
    return UnreadableUndo(recorded_kind=recorded_kind, reason=reason)


@dataclass(frozen=True)
class ActiveRun:
    run_id: str
    journal: Path
    pid: int
    start_time: int | None
    registration: Path

    @property
    def harness_alive(self) -> bool:
        return process_start_time(self.pid) == self.start_time and self.start_time is not None


def active_runs() -> list[ActiveRun]:
    directory = state_dir() / "active"
    runs: list[ActiveRun] = []
    if not directory.is_dir():
        return runs
    for entry in sorted(directory.glob("*.json")):
        try:
            data = json.loads(entry.read_text())
            runs.append(
                ActiveRun(
                    data["run_id"],
                    Path(data["journal"]),
                    int(data["pid"]),
                    data.get("start_time"),
                    entry,
                )
            )
        except (OSError, ValueError, KeyError):
            continue
    return runs


@dataclass(frozen=True)
class RevertOutcome:
    undo: PendingUndo
    ok: bool
    message: str


def revert_outstanding(path: Path, run_id: str) -> list[RevertOutcome]:
    """Revert, newest first, everything a run's journal says is still applied."""
    outcomes: list[RevertOutcome] = []
    pending = outstanding_undos(path)
    journal = Journal(path, run_id)
    try:
        for undo in pending:
            try:
                result = undo.action.revert()
            except RevertFailed as error:
                journal.mark_undo_failed(undo.id, str(error))
                outcomes.append(RevertOutcome(undo, False, str(error)))
                continue
            except Exception as error:
                # an OSError, or whatever a plugin's undo raises: reported, and the next goes on
                journal.mark_undo_failed(undo.id, str(error))
                outcomes.append(RevertOutcome(undo, False, f"{undo.action.describe()}: {error}"))
                continue
            journal.mark_undone(undo.id, result)
            outcomes.append(RevertOutcome(undo, True, result))
    finally:
        journal.close()
    return outcomes
