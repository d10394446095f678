"""Fixtures of the load driver's tests: real simulators on free ports, sample logs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.load.loadtest_support import SampleLog, Simulator, free_port


@pytest.fixture
def simulator_factory(tmp_path: Path) -> Iterator[Callable[..., Simulator]]:
    """Make simulators (not started) on free ports; all are killed at the end."""
    made: list[Simulator] = []

    def make(*extra: str) -> Simulator:
        sim = Simulator(free_port(), tmp_path / f"sim-{len(made)}.log", *extra)
        made.append(sim)
        return sim

    try:
        yield make
    finally:
        for sim in made:
            sim.kill()


@pytest.fixture
def simulator(simulator_factory: Callable[..., Simulator]) -> Simulator:
    """A running simulator on a free port, fast enough for short tests."""
    sim = simulator_factory("--decode-ms-per-token", "2")
    sim.start()
    return sim


@pytest.fixture
def samples() -> SampleLog:
    return SampleLog()
