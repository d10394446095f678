"""The kill -9 soak's snapshot sees what a trial could leave: its processes (by the
private state dir in their environment), their listening ports, its scratch files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

from tests.soak.kubernetes import FAULTS, SHARE_THE_GPUS, Turns, lanes
from tests.soak.soak import POINTS, points_of
from tests.soak.trial import snapshot


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


def test_kwok_lanes_keep_the_gpu_faults_apart_and_an_exclusive_one_alone() -> None:
    faults = list(FAULTS)
    assert lanes(faults, 1) == [faults]
    split = lanes(faults, 3)
    assert sorted(f for lane in split for f in lane) == sorted(faults)  # each once
    assert sorted(split[0]) == sorted(SHARE_THE_GPUS)
    assert ["dns-breakage"] in split
    assert len(split) == 1 + 2 + 1  # the GPU lane, two shared, dns-breakage's own


def test_an_exclusive_turn_waits_for_the_running_ones_and_holds_off_new_ones() -> None:
    turns = Turns()
    release, exclusive_in, late_in = threading.Event(), threading.Event(), threading.Event()

    def exclusive() -> None:
        with turns.turn(exclusive=True):
            exclusive_in.set()
            release.wait()

    with turns.turn(exclusive=False):
        waiting = threading.Thread(target=exclusive)
        waiting.start()
        # it must not get in while an ordinary trial runs
        assert not exclusive_in.wait(0.3)
    assert exclusive_in.wait(10)

    def ordinary() -> None:
        with turns.turn(exclusive=False):
            late_in.set()

    late = threading.Thread(target=ordinary)
    late.start()
    assert not late_in.wait(0.3)  # none starts while the exclusive one runs
    release.set()
    assert late_in.wait(10)
    waiting.join()
    late.join()
