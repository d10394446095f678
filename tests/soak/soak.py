"""A kill -9 soak: the harness is SIGKILLed at chosen points of real game days, then
``gameday cleanup`` runs, and the machine is compared with a snapshot taken before.

For each fault of the local tier (one bundled scenario each, on the simulator), each
trial starts ``gameday run`` in a process of its own, follows its journal, and kills the
harness (only the harness: its children live on, as after a real crash) with SIGKILL a
random moment after one of these points, chosen at random among those the scenario
reaches:

    starting   the target's first journaled change (the target coming up)
    applying   the fault's first undo record (written just before the change itself)
    mid-fault  the fault applied
    reverting  the first of the fault's changes reverted
    remedy     a remedy started (scenarios with a remedy)
    stopping   the teardown phase (the target going down)

A trial whose run ended before its point counts as a trial, not as a kill (the table
says how many were killed). Then ``gameday cleanup`` (the run is registered in a private state dir) and a new
snapshot: processes, listening TCP ports, the harness's files under /tmp and /dev/shm,
cgroups, network namespaces and links, mounts, the iptables rules. A trial is clean when
the snapshot equals the one before. Prints a table: fault, trials, clean, what was left.

    .venv/bin/python -m tests.soak.soak [--trials 20] [--fault process-kill ...] [--seed 1]

Exit 0 when every trial was clean, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[2]

# fault -> the bundled scenario that applies it, on the simulator (the vLLM scenarios
# through --engine sim; the local ones name theirs)
SCENARIOS = {
    "process-kill": "scenarios/local/process-kill.yaml",
    "port-conflict": "scenarios/local/port-conflict.yaml",
    "oom-kill": "scenarios/local/oom-kill.yaml",
    "model-missing": "scenarios/local/model-missing.yaml",
    "model-corrupt": "scenarios/local/model-corrupt.yaml",
    "load-spike": "scenarios/local/load-spike.yaml",
    "dns-breakage": "scenarios/local/dns-breakage.yaml",
    "engine-config": "scenarios/vllm/max-model-len.yaml",
    "model-config": "scenarios/vllm/remote-code.yaml",
}
NOT_HERE = {"gpu-memory-hog": "needs an NVIDIA GPU"}

RunRecord = dict[str, Any]


def _is_fault_undo(record: RunRecord) -> bool:
    return record.get("record") == "undo" and str(record.get("owner", "")).startswith("fault")


# Each point is reached by every scenario (remedy: by those with one): a fault that
# changes nothing lasting (a signal) is "applying" at FaultApplied; one that leaves
# nothing to revert is "reverting" when the recover phase starts.
POINTS: dict[str, Callable[[RunRecord], bool]] = {
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


@dataclass(frozen=True)
class Snapshot:
    """What a trial could leave behind. Processes and ports are the trial's own (found
    by the private state dir in their environment, which every process the harness
    starts inherits); the rest is the machine's, so run the soak on a quiet machine."""

    processes: frozenset[str]
    ports: frozenset[str]
    files: frozenset[str]
    cgroups: frozenset[str]
    netns: frozenset[str]
    links: frozenset[str]
    mounts: frozenset[str]
    iptables: frozenset[str]

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


def snapshot(work: Path) -> Snapshot:
    marker = str(work / "state")
    processes = _trial_processes(marker)
    ports = set()
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN and conn.pid in processes and conn.laddr:
                ip, port = conn.laddr[0], conn.laddr[1]
                ports.add(f"{ip}:{port} ({processes[conn.pid][:40]})")
    files = {str(p) for p in (work / "tmp").iterdir()} if (work / "tmp").exists() else set()
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
    return Snapshot(
        processes=frozenset(f"{pid} {cmd}" for pid, cmd in processes.items()),
        ports=frozenset(ports),
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
    fault: str
    point: str
    delay: float
    killed: bool = False
    cleanup_code: int | None = None
    left: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.left


def _follow_and_kill(harness: subprocess.Popen[bytes], journal_dir: Path, trial: Trial) -> None:
    """Kill the harness ``trial.delay`` seconds after its journal reaches ``trial.point``."""
    trigger = POINTS[trial.point]
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


def _left(before: Snapshot, work: Path, runs: list[str]) -> list[str]:
    """What the trial left, once what cleanup stopped has left the process table (or a
    deadline). Cgroups are the machine's: only those named after the trial's run count."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        left = [
            item
            for item in snapshot(work).left_since(before)
            if not item.startswith("cgroups") or any(run in item for run in runs)
        ]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def run_trial(fault: str, point: str, delay: float, work: Path) -> Trial:
    trial = Trial(fault, point, delay)
    state = work / "state"
    reports = work / "reports"
    (work / "tmp").mkdir()
    env = {
        **os.environ,
        "GAMEDAY_STATE_DIR": str(state),  # registers the run privately, and marks its processes
        "TMPDIR": str(work / "tmp"),  # the run's scratch dirs, where only this trial writes
        "PYTHONUNBUFFERED": "1",
    }
    before = snapshot(work)
    # the vLLM scenarios through --engine sim; the local ones name their engine
    engine = ["--engine", "sim"] if SCENARIOS[fault].startswith("scenarios/vllm/") else []
    scenario = str(REPO / SCENARIOS[fault])
    command = [sys.executable, "-m", "gameday", "run", scenario, *engine, "--no-live"]
    command += ["--report-dir", str(reports)]
    with (work / "harness.log").open("wb") as log:
        harness = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        _follow_and_kill(harness, reports, trial)
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
    trial.left += _left(before, work, runs)
    if cleanup.returncode != 0:
        trial.left.append(f"cleanup exit {cleanup.returncode}: {cleanup.stderr.strip()[-300:]}")
    return trial


def points_of(fault: str) -> list[str]:
    text = (REPO / SCENARIOS[fault]).read_text()
    return [p for p in POINTS if p != "remedy" or "remedy:" in text]


def _table(trials: list[Trial]) -> Iterator[str]:
    yield f"{'fault':<15} {'trials':>6} {'killed':>6} {'clean':>6}  left"
    for fault in dict.fromkeys(t.fault for t in trials):
        mine = [t for t in trials if t.fault == fault]
        left = sorted({item for t in mine for item in t.left})
        clean = sum(t.clean for t in mine)
        shown = "; ".join(left[:4]) + (f" (+{len(left) - 4} more)" if len(left) > 4 else "")
        killed = sum(t.killed for t in mine)
        yield f"{fault:<15} {len(mine):>6} {killed:>6} {clean:>6}  {shown or '—'}"
    for fault, why in NOT_HERE.items():
        yield f"{fault:<15} {0:>6} {'—':>6} {'—':>6}  not run here: {why}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="trials per fault")
    parser.add_argument("--fault", action="append", choices=sorted(SCENARIOS), help="only these")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    print(f"soak: seed {seed} (--seed {seed} repeats these points)", flush=True)
    rng = random.Random(seed)
    faults = args.fault or list(SCENARIOS)
    trials: list[Trial] = []
    started = time.monotonic()
    for fault in faults:
        points = points_of(fault)
        for index in range(args.trials):
            point = (
                points[index % len(points)] if args.trials >= len(points) else rng.choice(points)
            )
            delay = rng.uniform(0, 0.4 if point == "stopping" else 1.5)  # teardown is short
            with tempfile.TemporaryDirectory(prefix="soak-") as work:
                trial = run_trial(fault, point, delay, Path(work))
            trials.append(trial)
            status = "clean" if trial.clean else "LEFT " + "; ".join(trial.left[:3])
            killed = "killed" if trial.killed else "ended before the kill"
            print(
                f"  {fault} #{index + 1} at {point}+{delay:.2f}s ({killed}): {status}", flush=True
            )
    print()
    for line in _table(trials):
        print(line)
    clean = sum(t.clean for t in trials)
    print(f"\n{clean}/{len(trials)} trials clean in {time.monotonic() - started:.0f} s")
    return 0 if clean == len(trials) else 1


if __name__ == "__main__":
    sys.exit(main())
