"""The Kubernetes gpu-memory-hog's holder, run as its pod runs it (``python3 -c`` with the
file's text): on a machine without a GPU it says why and holds nothing; on an NVIDIA
machine it holds the memory until SIGTERM and says when it holds it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gameday.engine.requirements import nvidia_gpu_present
from gameday.injectors.kubernetes.gpu_memory_hog import holder_command

NO_GPU = nvidia_gpu_present()
GIB = 2**30


def holder(tmp_path: Path, leave_gib: float) -> subprocess.Popen[str]:
    command = [sys.executable, *holder_command()[1:]]  # python3 -c TEXT, this interpreter
    env = {
        **os.environ,
        "GAMEDAY_LEAVE_GIB": str(leave_gib),
        "GAMEDAY_READY_FILE": str(tmp_path / "held"),
    }
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.skipif(NO_GPU is None, reason="this machine has a GPU")
def test_without_a_cuda_driver_it_exits_1_with_the_reason_and_is_never_ready(
    tmp_path: Path,
) -> None:
    run = holder(tmp_path, 1.0)
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 1
    assert stdout == ""
    assert "no CUDA driver in this container (libcuda.so.1" in stderr
    assert not (tmp_path / "held").exists()  # the readiness probe never passes


@pytest.mark.skipif(NO_GPU is not None, reason=str(NO_GPU))
def test_it_holds_the_free_memory_but_what_it_leaves_until_sigterm(tmp_path: Path) -> None:
    from gameday.sim.memory import nvml_memory

    before = nvml_memory()
    assert before is not None
    # take about 1 GiB of device 0 only: leave what is free but 1 GiB (other devices,
    # if any, keep all but that much too; the test machines have one)
    leave = before.free / GIB - 1.0
    run = holder(tmp_path, leave)
    assert run.stdout is not None
    line = run.stdout.readline()
    assert line.startswith("cuda:0: holding "), line + run.stderr.read()  # type: ignore[union-attr]
    held = float(line.split()[2])
    assert 0.5 <= held <= 1.01
    assert run.stdout.readline() == "ready\n"
    assert (tmp_path / "held").exists()  # the readiness probe's file
    during = nvml_memory()
    assert during is not None and before.free - during.free >= 0.5 * GIB
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=30) == 0
    after = nvml_memory()
    assert after is not None and after.free >= during.free + 0.5 * GIB
