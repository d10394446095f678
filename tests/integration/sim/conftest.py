"""The simulator as a real process on a free port, always killed at the end of the test."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.sim.support import Sim, StartSim, free_port


@pytest.fixture
def start_sim(tmp_path: Path) -> Iterator[StartSim]:
    """``start_sim(*flags, wait=True, port=None, prefix=())`` -> a running :class:`Sim`."""
    sims: list[Sim] = []

    def start(
        *flags: str, wait: bool = True, port: int | None = None, prefix: tuple[str, ...] = ()
    ) -> Sim:
        port = port or free_port()
        log_path = tmp_path / f"sim-{len(sims)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    *prefix,
                    sys.executable,
                    "-m",
                    "gameday.sim",
                    "serve",
                    "--port",
                    str(port),
                    *flags,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        sim = Sim(proc=proc, port=port, log_path=log_path, started=time.monotonic())
        sims.append(sim)
        if wait:
            sim.wait_healthy()
        return sim

    try:
        yield start
    finally:
        for sim in sims:
            if sim.proc.poll() is None:
                sim.proc.send_signal(signal.SIGTERM)
                try:
                    sim.proc.wait(5)
                except subprocess.TimeoutExpired:
                    sim.proc.kill()
                    sim.proc.wait()
