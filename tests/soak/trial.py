"""One kill -9 trial, whatever the tier: run the game day, SIGKILL the harness a moment
after a chosen point of its journal, run ``gameday cleanup``, and compare the machine
(and, on a cluster, its objects) with a snapshot taken before."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[2]

RunRecord = dict[str, Any]
Trigger = Callable[[RunRecord], bool]


def _is_fault_undo(record: RunRecord) -> bool:
    return record.get("record") == "undo" and str(record.get("owner", "")).startswith("fault")


# Each point is reached by every scenario (remedy: by those with one): a fault that
# changes nothing lasting (a signal) is "applying" at FaultApplied; one that leaves
# nothing to revert is "reverting" when the recover phase starts.
POINTS: dict[str, Trigger] = {
    "starting": lambda r: r.get("record") == "undo" and str(r.get("owner")).startswith("target"),
    "applying": lambda r: _is_fault_undo(r) or r.get("event") == "FaultApplied",
    "mid-fault": lambda r: r.get("event") == "FaultApplied",
    "reverting": lambda r: (
        (r.get("record") == "undone" and r.get("_owner", "").startswith("fault"))
        or r.get("event") == "FaultReverted"
        or (r.get("event") == "PhaseStarted" and r.get("phase") == "recover")
    ),
    "remedy": lambda r: r.get("event") == "RemedyStarted",
    "stopping": lambda r: r.get("event") == "PhaseStarted" and r.get("phase") == "teardown",
}
RUN_DEADLINE_S = 300
SETTLE_S = 15  # how long what cleanup stopped may take to be gone from the process table


@dataclass
class Plan:
    """What a trial runs: ``gameday run SCENARIO ARGS`` with ``env`` added; ``objects``
    reads the cluster's objects to compare (none on the local tier); ``starting``, where
    the tier's target journals no change as it comes up, is that point's trigger."""

    scenario: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    objects: Callable[[], frozenset[str]] = frozenset
    starting: Trigger | None = None
    settle_s: float = SETTLE_S
    machine_wide: bool = True
    """Compare the machine's /dev/shm, cgroups, namespaces, links, mounts and rules (false
    where trials run side by side and change none of them)."""


@dataclass(frozen=True)
class Snapshot:
    """What a trial could leave behind. Processes and ports are the trial's own (found
    by the private state dir in their environment, which every process the harness
    starts inherits); the rest is the machine's, so run the soak on a quiet machine."""

    processes: frozenset[str]
    ports: frozenset[str]
    files: frozenset[str]
    cgroups: frozenset[str] = frozenset()
    netns: frozenset[str] = frozenset()
    links: frozenset[str] = frozenset()
    mounts: frozenset[str] = frozenset()
    iptables: frozenset[str] = frozenset()
    objects: frozenset[str] = frozenset()
    """The cluster's, field by field (see tests/soak/kubernetes.py)."""

    def left_since(self, before: Snapshot) -> list[str]:
        left = []
        for name in self.__dataclass_fields__:
            added = getattr(self, name) - getattr(before, name)
            removed = getattr(before, name) - getattr(self, name)
            left += [f"{name}+ {item}" for item in sorted(added)]
            # something the run took away and did not give back (a mount, a link, a rule)
            if name not in ("processes", "ports", "files"):
                left += [f"{name}- {item}" for item in sorted(removed)]
        return left


def _lines(command: list[str]) -> list[str]:
    if shutil.which(command[0]) is None:
        return []
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return result.stdout.splitlines()


def _trial_processes(marker: str) -> dict[int, str]:
    found = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            if proc.info["cmdline"] and proc.environ().get("GAMEDAY_STATE_DIR") == marker:
                found[proc.pid] = " ".join(proc.info["cmdline"])[:120]
    return found


def snapshot(
    work: Path, objects: Callable[[], frozenset[str]] = frozenset, *, machine_wide: bool = True
) -> Snapshot:
    marker = str(work / "state")
    processes = _trial_processes(marker)
    ports = set()
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN and conn.pid in processes and conn.laddr:
                ip, port = conn.laddr[0], conn.laddr[1]
                ports.add(f"{ip}:{port} ({processes[conn.pid][:40]})")
    files = {str(p) for p in (work / "tmp").iterdir()} if (work / "tmp").exists() else set()
    trials = Snapshot(
        processes=frozenset(f"{pid} {cmd}" for pid, cmd in processes.items()),
        ports=frozenset(ports),
        files=frozenset(files),
        objects=objects(),
    )
    return _with_the_machine(trials) if machine_wide else trials


def _with_the_machine(trials: Snapshot) -> Snapshot:
    """``trials`` and the machine's own: /dev/shm, cgroups named gameday*, network
    namespaces and links, mounts, iptables rules."""
    files = set(trials.files)
    with contextlib.suppress(OSError):
        files |= {str(p) for p in Path("/dev/shm").iterdir()}
    cgroups = set()
    for root in Path("/sys/fs/cgroup").glob("*"):
        with contextlib.suppress(OSError):
            cgroups |= {str(p) for p in root.rglob("gameday*") if p.is_dir()}
    links = {re.sub(r"^\d+: ", "", line).split(":")[0] for line in _lines(["ip", "-o", "link"])}
    rules = {
        line
        for line in _lines(["iptables-save"])
        if not line.startswith(("#", ":"))  # comments, chain counters
    }
    return dataclasses.replace(
        trials,
        files=frozenset(files),
        cgroups=frozenset(cgroups),
        netns=frozenset(_lines(["ip", "netns", "list"])),
        links=frozenset(links),
        mounts=frozenset(Path("/proc/mounts").read_text().splitlines()),
        iptables=frozenset(rules),
    )


def _records(journal: Path, offset: int) -> tuple[list[RunRecord], int]:
    if not journal.exists():
        return [], offset
    with journal.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    complete = data[: data.rfind(b"\n") + 1]
    records = []
    for line in complete.splitlines():
        with contextlib.suppress(ValueError):
            records.append(json.loads(line))
    return records, offset + len(complete)


@dataclass
class Trial:
    tier: str
    fault: str
    point: str
    delay: float
    killed: bool = False
    cleanup_code: int | None = None
    left: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.left


def _follow_and_kill(
    harness: subprocess.Popen[bytes], journal_dir: Path, trial: Trial, trigger: Trigger
) -> None:
    """Kill the harness ``trial.delay`` seconds after its journal reaches ``trigger``."""
    owners: dict[str, str] = {}
    offset, journal, fired_at = 0, None, None
    deadline = time.monotonic() + RUN_DEADLINE_S
    while harness.poll() is None and time.monotonic() < deadline:
        if fired_at is not None and time.monotonic() >= fired_at + trial.delay:
            harness.send_signal(signal.SIGKILL)
            harness.wait()
            trial.killed = True
            return
        if journal is None:
            found = sorted(journal_dir.glob("*/journal.jsonl"))
            journal = found[0] if found else None
        if journal is not None and fired_at is None:
            records, offset = _records(journal, offset)
            for record in records:
                if record.get("record") == "undo":
                    owners[record["id"]] = str(record.get("owner", ""))
                record["_owner"] = owners.get(str(record.get("id")), "")
                if trigger(record):
                    fired_at = time.monotonic()
                    break
        time.sleep(0.02)  # polling a file another process appends to; no event to wait on
    if harness.poll() is None:
        harness.kill()
        harness.wait()


def _left(before: Snapshot, work: Path, runs: list[str], plan: Plan) -> list[str]:
    """What the trial left, once what cleanup stopped has left the process table (or a
    deadline). Cgroups are the machine's: only those named after the trial's run count."""
    deadline = time.monotonic() + plan.settle_s
    while True:
        left = [
            item
            for item in snapshot(work, plan.objects, machine_wide=plan.machine_wide).left_since(
                before
            )
            if not item.startswith("cgroups") or any(run in item for run in runs)
        ]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def run_trial(trial: Trial, plan: Plan, work: Path) -> Trial:
    state = work / "state"
    reports = work / "reports"
    (work / "tmp").mkdir()
    env = {
        **os.environ,
        "GAMEDAY_STATE_DIR": str(state),  # registers the run privately, and marks its processes
        "TMPDIR": str(work / "tmp"),  # the run's scratch dirs, where only this trial writes
        "PYTHONUNBUFFERED": "1",
        **plan.env,
    }
    before = snapshot(work, plan.objects, machine_wide=plan.machine_wide)
    command = [sys.executable, "-m", "gameday", "run", str(plan.scenario), *plan.args]
    command += ["--no-live", "--report-dir", str(reports)]
    trigger = POINTS[trial.point]
    if trial.point == "starting" and plan.starting is not None:
        trigger = plan.starting
    with (work / "harness.log").open("wb") as log:
        harness = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        _follow_and_kill(harness, reports, trial, trigger)
    if not trial.killed and harness.returncode not in (0, 1):
        # the run refused or broke before its point: the trial tried nothing
        lines = (work / "harness.log").read_text(errors="replace").splitlines()
        said = [line.strip() for line in lines if "error" in line.lower()][-2:] or lines[-1:]
        trial.left.append(f"run exit {harness.returncode} before its point: {' | '.join(said)}")
    cleanup = subprocess.run(
        [sys.executable, "-m", "gameday", "cleanup"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    trial.cleanup_code = cleanup.returncode
    runs = [p.name for p in reports.iterdir()] if reports.exists() else []
    trial.left += _left(before, work, runs, plan)
    if cleanup.returncode != 0:
        trial.left.append(f"cleanup exit {cleanup.returncode}: {cleanup.stderr.strip()[-300:]}")
    return trial
