"""Helpers to drive the simulator as a real process over real HTTP."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

START_DEADLINE_S = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Sim:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    started: float

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def health(self) -> int | None:
        try:
            return httpx.get(f"{self.base}/health", timeout=2).status_code
        except httpx.TransportError:
            return None

    def wait_healthy(self, timeout: float = START_DEADLINE_S) -> float:
        """Seconds from the process start to /health 200."""

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the simulator exited ({self.proc.returncode}):\n{self.log()}"
                )
            return self.health() == 200

        wait_until(ready, timeout, "/health 200")
        return time.monotonic() - self.started

    def wait_exit(self, timeout: float = START_DEADLINE_S) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the simulator did not exit:\n{self.log()}") from None

    def metrics(self) -> dict[str, Any]:
        text = httpx.get(f"{self.base}/metrics", timeout=5).text
        return {f.name: f for f in text_string_to_metric_families(text)}

    def value(self, family: str, sample: str | None = None, **labels: str) -> float:
        """The sum of the samples of ``family`` (named ``sample``) matching ``labels``."""
        fam = self.metrics()[family]
        name = sample or family
        return sum(
            float(s.value)
            for s in fam.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def chat(self, content: str = "hello there", **body: Any) -> httpx.Response:
        payload = {"messages": [{"role": "user", "content": content}], **body}
        return httpx.post(f"{self.base}/v1/chat/completions", json=payload, timeout=30)


StartSim = Callable[..., Sim]
"""``start_sim(*flags, wait=True, port=None, prefix=())`` -> a running :class:`Sim`."""
