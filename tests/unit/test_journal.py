"""The undo journal: written before each change, replayed by cleanup after a crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gameday.core.changes import ChangeSet
from gameday.core.events import FaultApplied, Note
from gameday.core.journal import (
    Journal,
    active_runs,
    outstanding_undos,
    read_events,
    revert_outstanding,
)
from gameday.core.processes import find_processes, spawn
from gameday.core.undo import RestoreFile
from tests.support.cli import run_gameday


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text()
    return state[state.rindex(")") + 2] != "Z"


def test_undo_record_is_on_disk_before_the_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(tmp_path / "journal.jsonl", "run-1")
    changes = ChangeSet(journal, "s", "fault/x")
    original = tmp_path / "weights.bin"
    original.write_text("w")
    saved = tmp_path / "weights.bin.gameday-saved"
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        # what the file holds when it is synced: a crash after this keeps the record
        synced.append(Path(f"/proc/self/fd/{fd}").read_text())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    changes.record(RestoreFile(original=str(original), saved_at=str(saved)))
    monkeypatch.setattr(os, "fsync", real_fsync)
    # record() returned only once the file holding the record was fsynced: a reader in
    # the same process would see a flushed line without it, so ask the sync itself
    assert synced and '"restore-file"' in synced[-1].splitlines()[-1]
    lines = (tmp_path / "journal.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["action"]["kind"] == "restore-file"
    os.replace(original, saved)
    assert [u.action.describe() for u in outstanding_undos(journal.path)] == [
        f"move {saved} back to {original}"
    ]
    changes.revert_all()
    assert original.read_text() == "w" and not saved.exists()
    assert outstanding_undos(journal.path) == []


def test_cleanup_after_a_crash_kills_processes_and_restores_files(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl", "run-2")
    changes = ChangeSet(journal, "s", "target/local")
    # a process that starts a child of its own: both must go
    spawned = spawn(
        [
            sys.executable,
            "-c",
            "import subprocess, time; c = subprocess.Popen(['sleep', '300']); "
            "print(c.pid, flush=True); time.sleep(300)",
        ],
        name="stray",
        changes=changes,
        stderr=subprocess.DEVNULL,
    )
    original = tmp_path / "model"
    original.mkdir()
    (original / "config.json").write_text("{}")
    saved = tmp_path / "model.saved"
    changes.record(RestoreFile(original=str(original), saved_at=str(saved)))
    os.replace(original, saved)
    assert spawned.popen.stdout is not None
    child = int(spawned.popen.stdout.readline())  # printed once the grandchild exists
    # a just-forked process shows an empty /proc/PID/environ until its exec completes
    deadline = time.monotonic() + 5
    while sorted(family := find_processes(spawned.token)) != sorted([spawned.pid, child]):
        assert time.monotonic() < deadline, family
        time.sleep(0.01)
    # the harness "dies" here: nothing is reverted in memory; only the journal is left
    journal.close()

    outcomes = revert_outstanding(tmp_path / "journal.jsonl", "run-2")
    assert all(o.ok for o in outcomes), [o.message for o in outcomes]
    assert [o.undo.action.kind for o in outcomes] == ["restore-file", "kill-processes"]
    spawned.popen.wait(5)
    assert not any(_alive(pid) for pid in family)
    assert (original / "config.json").exists()
    assert outstanding_undos(tmp_path / "journal.jsonl") == []


def test_events_round_trip_through_the_journal(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl", "run-3")
    applied = FaultApplied(
        scenario="s",
        fault="f",
        fault_type="port-conflict",
        description="d",
        started=1.0,
        offset=2.0,
        details=(("port", "1"),),
    )
    journal.record_event(applied)
    journal.record_event(Note(scenario="s", level="info", message="hello"))
    journal.close()
    with (tmp_path / "j.jsonl").open("a") as handle:
        handle.write('{"record": "event", "event": "Note", "sce')  # a line cut by a kill -9
    events = read_events(tmp_path / "j.jsonl")
    assert events[0] == applied
    assert isinstance(events[1], Note) and events[1].message == "hello"
    assert len(events) == 2


def test_active_run_registration(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl", "run-4")
    journal.register_active()
    (run,) = active_runs()
    assert run.run_id == "run-4" and run.harness_alive
    journal.unregister_active()
    assert active_runs() == []


def test_a_dead_harness_is_recognised(tmp_path: Path) -> None:
    # register from a child process that then exits, as a killed harness would
    code = (
        "from pathlib import Path; from gameday.core.journal import Journal; "
        f"Journal(Path({str(tmp_path / 'j.jsonl')!r}), 'run-5').register_active()"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ)
    (run,) = active_runs()
    assert run.run_id == "run-5" and not run.harness_alive


def _journal_with_one_change_between_unreadable_ones(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A journal as another version, a missing plugin or a crash may leave it: an undo
    record of a kind unknown here, one whose fields do not fit, a torn one, and between
    them a restore-file this version can revert. The torn one is no loss (its change was
    never made: a record is fsynced before its change)."""
    path = tmp_path / "run-9" / "journal.jsonl"
    path.parent.mkdir()
    original, saved = tmp_path / "weights.bin", tmp_path / ".weights.bin.saved"
    saved.write_text("intact")
    known = {"kind": "restore-file", "original": str(original), "saved_at": str(saved)}
    lines = [
        {
            "record": "undo",
            "id": "u1",
            "scenario": "s",
            "owner": "fault/new",
            "action": {"kind": "frobnicate-widget", "widget": 7},
        },
        {"record": "undo", "id": "u2", "scenario": "s", "owner": "fault/move", "action": known},
        {
            "record": "undo",
            "id": "u3",
            "scenario": "s",
            "owner": "fault/old",
            "action": {"kind": "restore-file", "original": str(original)},
        },
        {"record": "event", "event": "Note", "ts": 1.0, "message": "x"},
    ]
    text = "\n".join(json.dumps(line) for line in lines)
    path.write_bytes(text.encode() + b'\n\xff\xfe not json\n{"record":"undo","id":"u4","act')
    return path, original, saved


def test_an_unreadable_undo_record_does_not_stop_the_others(tmp_path: Path) -> None:
    path, original, saved = _journal_with_one_change_between_unreadable_ones(tmp_path)
    pending = {u.id: u.action.describe() for u in outstanding_undos(path)}
    assert pending["u2"] == f"move {saved} back to {original}"
    assert "unknown undo kind 'frobnicate-widget'" in pending["u1"]
    assert "saved_at: Field required" in pending["u3"]
    assert set(pending) == {"u1", "u2", "u3"}  # nothing of the torn line or the bad bytes

    outcomes = {o.undo.id: o for o in revert_outstanding(path, "run-9")}
    assert outcomes["u2"].ok and original.read_text() == "intact" and not saved.exists()
    assert [i for i, o in outcomes.items() if not o.ok] == ["u3", "u1"]
    # what failed stays outstanding, with its failure in the journal; what worked is done
    assert sorted(u.id for u in outstanding_undos(path)) == ["u1", "u3"]


def test_cleanup_reverts_what_it_can_names_the_rest_and_exits_1(tmp_path: Path) -> None:
    path, original, saved = _journal_with_one_change_between_unreadable_ones(tmp_path)
    listed = _gameday("cleanup", "--journal", str(path), "--list")
    assert listed.returncode == 0, listed.stderr
    assert f"would move {saved} back to {original}" in listed.stdout
    assert saved.exists()  # --list changes nothing

    result = _gameday("cleanup", "--journal", str(path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert f"ok restored {original}" in result.stdout
    assert original.read_text() == "intact"
    left = result.stderr.splitlines()
    assert left[0] == "2 change(s) left in place:"
    assert any("[undo u1 frobnicate-widget, s fault/new]" in line for line in left)
    assert any("[undo u3 restore-file, s fault/old]" in line for line in left)
    again = _gameday("cleanup", "--journal", str(path))
    assert again.returncode == 1 and "2 change(s) left in place:" in again.stderr


def _gameday(*args: str) -> subprocess.CompletedProcess[str]:
    return run_gameday(*args, env={"COLUMNS": "300"})
