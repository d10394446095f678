"""The kill -9 soak's snapshot sees what a trial could leave: its processes (by the
private state dir in their environment), their listening ports, its scratch files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

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
