"""The kill -9 soak's snapshot sees what a trial could leave: its processes (by the
private state dir in their environment), their listening ports, its scratch files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

from tests.soak.kubernetes import FAULTS, SHARE_THE_GPUS, Scheduler
from tests.soak.soak import points_of
from tests.soak.trial import POINTS, Trial, snapshot


def test_a_process_its_port_and_a_file_left_by_a_trial_are_seen(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    before = snapshot(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listener = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import socket,time; s=socket.socket(); s.bind(('127.0.0.1', {port})); s.listen();"
            " print('up', flush=True); time.sleep(60)",
        ],
        env={**os.environ, "GAMEDAY_STATE_DIR": str(tmp_path / "state")},
        stdout=subprocess.PIPE,
    )
    try:
        assert listener.stdout is not None and listener.stdout.readline() == b"up\n"
        (tmp_path / "tmp" / "gameday-run-scratch").mkdir()
        left = snapshot(tmp_path).left_since(before)
    finally:
        listener.kill()
        listener.wait()
    assert any(item.startswith(f"processes+ {listener.pid} ") for item in left), left
    assert any(item.startswith(f"ports+ 127.0.0.1:{port} ") for item in left), left
    assert f"files+ {tmp_path / 'tmp' / 'gameday-run-scratch'}" in left
    # the same process, gone: nothing of it is left
    (tmp_path / "tmp" / "gameday-run-scratch").rmdir()
    assert snapshot(tmp_path).left_since(before) == []


def test_every_fault_reaches_its_points() -> None:
    assert points_of("oom-kill") == list(POINTS)  # it has a remedy
    assert "remedy" not in points_of("process-kill")


def test_a_trial_beside_others_compares_only_its_own(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    before = snapshot(tmp_path, machine_wide=False)
    shared = Path("/dev/shm") / f"soak-test-{os.getpid()}"
    shared.touch()
    try:
        assert snapshot(tmp_path, machine_wide=False).left_since(before) == []
        assert f"files+ {shared}" in snapshot(tmp_path).left_since(
            snapshot(tmp_path, machine_wide=False)
        )
    finally:
        shared.unlink()


def test_the_scheduler_keeps_the_gpu_faults_apart_and_an_exclusive_one_alone() -> None:
    trials = [Trial("kwok", fault, "starting", 0.0) for fault in FAULTS for _ in range(2)]
    scheduler = Scheduler(trials)
    first = scheduler.take()
    assert first is not None and first.fault == "dns-breakage"  # exclusive ones go first
    # nothing beside it: the next take would wait; the scheduler says so by its rule
    assert scheduler._next() is None
    scheduler.done(first)
    second = scheduler.take()
    assert second is not None and second.fault == "dns-breakage"
    assert scheduler._next() is None
    scheduler.done(second)
    running = [scheduler.take() for _ in range(4)]
    faults = [t.fault for t in running if t is not None]
    assert len(faults) == 4 and len(set(faults)) == 4  # never two of one fault at once
    assert sum(f in SHARE_THE_GPUS for f in faults) == 1  # the GPU faults one at a time
    for trial in running:
        assert trial is not None
        scheduler.done(trial)
    taken = []
    while (trial := scheduler.take()) is not None:
        taken.append(trial)
        scheduler.done(trial)
    assert len(taken) + 2 + 4 == len(trials)  # every trial handed out once


def test_a_worker_waits_until_a_trial_may_start() -> None:
    trials = [
        Trial("kwok", "oom-kill", "starting", 0.0),
        Trial("kwok", "oom-kill", "applying", 0.0),
    ]
    scheduler = Scheduler(trials)
    first = scheduler.take()
    assert first is not None
    got: list[Trial | None] = []
    waiting = threading.Thread(target=lambda: got.append(scheduler.take()))
    waiting.start()
    waiting.join(0.3)
    assert waiting.is_alive() and got == []  # the second oom-kill waits for the first
    scheduler.done(first)
    waiting.join(10)
    assert got and got[0] is not None and got[0].point == "applying"
