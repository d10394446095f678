"""Each start-up failure recorded from real vLLM 0.32 (tests/data/vllm/0.32.0/failures/),
staged the same way for the simulator: the same exit code and the same line naming the
cause, character for character but for the model's path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gameday.models import make_tiny
from tests.data.vllm.record import FAILURES
from tests.integration.sim.support import free_port
from tests.integration.sim.vllm_surface import FIXTURES, root_cause

pytestmark = pytest.mark.integration

RECORDED = FIXTURES / "failures"


def test_every_recorded_failure_has_a_case() -> None:
    assert {p.stem for p in RECORDED.glob("*.json")} == set(FAILURES)


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_the_simulator_fails_as_vllm_did(case: str, tmp_path: Path) -> None:
    recorded = json.loads((RECORDED / f"{case}.json").read_text())
    vllm_line = root_cause((RECORDED / f"{case}.log").read_text())
    damage, flags = FAILURES[case]
    model = tmp_path / "model"
    if damage is not None:
        make_tiny(model)
        damage(model)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gameday.sim",
            "serve",
            "--port",
            str(free_port()),
            "--model-dir",
            str(model),
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == recorded["exit_code"] == 1, result.stderr[-2000:]
    sim_line = root_cause(result.stdout + result.stderr).replace(str(model), "<model>")
    assert sim_line == vllm_line
