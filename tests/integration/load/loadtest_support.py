"""Helpers of the load driver's tests: the real simulator process and a sample log.

(A uniquely named module rather than conftest, so that tests can import it.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gameday.load import LoadSample

SIM_START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Simulator:
    """``python -m gameday.sim serve`` on a fixed port; can be killed and started again."""

    def __init__(self, port: int, log_path: Path, *extra: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.process is None, "already running"
        command = [sys.executable, "-m", "gameday.sim", "serve", "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, *self.extra],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                process_group=0,
            )
        self.wait_healthy()

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + SIM_START_TIMEOUT
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"simulator exited with {self.process.returncode}:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            if time.monotonic() > deadline:
                pytest.fail(f"simulator not healthy within {SIM_START_TIMEOUT}s:\n{self.log()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no graceful shutdown of open streams."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


class SampleLog:
    """Samples from ``on_sample`` (another thread), with waits on a condition."""

    def __init__(self) -> None:
        self.samples: list[LoadSample] = []
        self._cond = threading.Condition()

    def __call__(self, sample: LoadSample) -> None:
        with self._cond:
            self.samples.append(sample)
            self._cond.notify_all()

    def wait_for(
        self, predicate: Callable[[LoadSample], bool], timeout: float, what: str
    ) -> LoadSample:
        """The first sample from now on for which ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = len(self.samples)
            while True:
                for sample in self.samples[seen:]:
                    if predicate(sample):
                        return sample
                seen = len(self.samples)
                left = deadline - time.monotonic()
                if left <= 0:
                    recent = "\n".join(map(str, self.samples[-5:]))
                    pytest.fail(f"no sample with {what} within {timeout}s; last ones:\n{recent}")
                self._cond.wait(left)

    def next(self, count: int = 1, timeout: float = 10.0) -> list[LoadSample]:
        """The next ``count`` samples."""
        deadline = time.monotonic() + timeout
        with self._cond:
            start = len(self.samples)
            while len(self.samples) < start + count:
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"fewer than {count} samples in {timeout}s")
                self._cond.wait(left)
            return self.samples[start : start + count]
