"""Interrupting a run in the middle of a fault: SIGINT restores; kill -9 + `gameday cleanup` too."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gameday.core.cgroup import MemoryCgroup
from gameday.core.journal import outstanding_undos
from gameday.core.processes import find_processes, port_is_free
from gameday.plugins import load_builtins
from tests.e2e.conftest import REPO, SCENARIOS
from tests.support.cleanup import gameday_cleanup

pytestmark = pytest.mark.e2e


def start_run(
    report_dir: Path,
    state_dir: Path,
    scenario: Path = SCENARIOS / "port-conflict.yaml",
    *extra: str,
) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "GAMEDAY_STATE_DIR": str(state_dir)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gameday",
            "run",
            str(scenario),
            "--report-dir",
            str(report_dir),
            *extra,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def journal_records(report_dir: Path) -> list[dict[str, Any]]:
    journals = list(report_dir.glob("*/journal.jsonl"))
    if not journals:
        return []
    records = []
    for line in journals[0].read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # the line being written right now
            records.append(json.loads(line))
    return records


def wait_for(
    report_dir: Path,
    harness: subprocess.Popen[str],
    wanted: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = 120,
) -> dict[str, Any]:
    """Follow the journal (the run's own record of what it did) until a record is wanted."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert harness.poll() is None, harness.communicate()
        for record in journal_records(report_dir):
            if wanted(record):
                return record
        time.sleep(0.2)  # polling a file another process appends to
    raise AssertionError(f"{what} never happened")


def wait_for_fault(
    report_dir: Path, harness: subprocess.Popen[str], timeout: float = 120
) -> dict[str, Any]:
    return wait_for(
        report_dir, harness, lambda r: r.get("event") == "FaultApplied", "the fault", timeout
    )


def run_id_of(report_dir: Path) -> str:
    (run_dir,) = [p for p in report_dir.iterdir() if p.is_dir()]
    return run_dir.name


def holder_alive(record: dict[str, Any]) -> bool:
    pid = int(dict(record["details"])["holder pid"])
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"  # a zombie is dead, just not reaped by init yet


def test_sigint_in_the_middle_of_a_fault_restores_everything(tmp_path: Path) -> None:
    harness = start_run(tmp_path / "reports", tmp_path / "state")
    applied = wait_for_fault(tmp_path / "reports", harness)
    port = int(dict(applied["details"])["port"])
    assert holder_alive(applied) and not port_is_free(port)
    harness.send_signal(signal.SIGINT)
    _, stderr = harness.communicate(timeout=120)
    assert harness.returncode == 4, stderr[-3000:]
    records = journal_records(tmp_path / "reports")
    events = [r.get("event") for r in records]
    assert "FaultReverted" in events
    notes = [r["message"] for r in records if r.get("event") == "Note"]
    assert any(n.startswith("restored: the server is serving (") for n in notes), notes
    assert port_is_free(port)
    assert not holder_alive(applied)
    assert find_processes(run_id_of(tmp_path / "reports") + ".", prefix=True) == []
    report = json.loads(next((tmp_path / "reports").glob("*/report.json")).read_text())
    assert report["outcome"] == "aborted"
    assert not list((tmp_path / "state" / "active").glob("*.json"))


def test_kill_9_then_cleanup_restores_everything(tmp_path: Path) -> None:
    harness = start_run(tmp_path / "reports", tmp_path / "state")
    applied = wait_for_fault(tmp_path / "reports", harness)
    port = int(dict(applied["details"])["port"])
    harness.kill()
    harness.communicate(timeout=30)
    run_id = run_id_of(tmp_path / "reports")
    # the run is gone, but what it started is still there
    assert holder_alive(applied) and not port_is_free(port)
    assert find_processes(run_id + ".", prefix=True)

    cleanup = gameday_cleanup(tmp_path / "state")
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert f"run {run_id}" in cleanup.stdout
    assert port_is_free(port)
    assert not holder_alive(applied)
    assert find_processes(run_id + ".", prefix=True) == []
    assert not MemoryCgroup.path_for(f"gameday-{run_id}-port-conflict").exists()
    assert not list(Path("/tmp").glob(f"gameday-{run_id}-*"))
    again = gameday_cleanup(tmp_path / "state", timeout=60)
    assert again.returncode == 0 and "nothing to clean up" in again.stdout


def test_kill_9_during_a_dns_fault_then_cleanup_removes_the_namespace(tmp_path: Path) -> None:
    scenario = Path(__file__).parent / "scenarios" / "dns-timeout.yaml"
    harness = start_run(tmp_path / "reports", tmp_path / "state", scenario)
    wait_for_fault(tmp_path / "reports", harness)
    records = journal_records(tmp_path / "reports")
    ready = {r["component"]: r for r in records if r.get("event") == "ComponentReady"}
    namespace = ready["dnsmasq"]["detail"].rsplit(" ", 1)[1]
    dnsmasq = int(ready["dnsmasq"]["pid"])
    assert Path(f"/proc/{dnsmasq}/stat").read_text().split(") ")[1][0] == "T"  # stopped
    harness.kill()
    harness.communicate(timeout=30)
    run_id = run_id_of(tmp_path / "reports")
    assert (Path("/run/netns") / namespace).exists()

    cleanup = gameday_cleanup(tmp_path / "state")
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert "sent SIGCONT" in cleanup.stdout
    assert not (Path("/run/netns") / namespace).exists()
    assert not (Path("/etc/netns") / namespace).exists()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert "gdh" + namespace.removeprefix("gameday-")[:8] not in links
    assert find_processes(run_id + ".", prefix=True) == []


def test_kill_9_after_a_remedy_then_cleanup_undoes_the_fix_and_the_fault(tmp_path: Path) -> None:
    harness = start_run(tmp_path / "reports", tmp_path / "state", SCENARIOS / "oom-kill.yaml")
    step = wait_for(
        tmp_path / "reports",
        harness,
        lambda r: r.get("event") == "RemedyStep" and r.get("outcome") == "done",
        "the remedy's raise-memory-limit step",
        timeout=180,
    )
    assert step["kind"] == "raise-memory-limit"
    harness.kill()
    harness.communicate(timeout=30)
    run_id = run_id_of(tmp_path / "reports")
    cgroup = MemoryCgroup.path_for(f"gameday-{run_id}-oom-kill")
    assert cgroup.exists()
    journal = next((tmp_path / "reports").glob("*/journal.jsonl"))
    owners = [
        r["owner"] for r in journal_records(tmp_path / "reports") if r.get("record") == "undo"
    ]
    assert "remedy/MEMORY001/raise-memory-limit" in owners and "fault/squeeze-memory" in owners

    cleanup = gameday_cleanup(tmp_path / "state")
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    load_builtins()  # the undo kinds
    assert outstanding_undos(journal) == []
    assert not cgroup.exists()
    assert find_processes(run_id + ".", prefix=True) == []
