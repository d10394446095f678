"""What the GPU pieces do on a machine without a GPU: say so clearly, change nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gameday.engine.requirements import nvidia_gpu_present
from gameday.observe.nvml import nvml_device_count

pytestmark = pytest.mark.skipif(nvidia_gpu_present() is None, reason="this machine has a GPU")


def test_gpu_holder_exits_1_with_the_reason() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gameday.injectors.gpu_holder", "0", str(2**30)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""  # never "ready": nothing is held
    assert "no CUDA device" in result.stderr


def test_no_gpu_means_no_gpu_series() -> None:
    assert nvml_device_count() == 0
    reason = nvidia_gpu_present()
    assert reason is not None and reason.startswith(("no NVIDIA GPU", "nvidia-ml-py"))


def _run(tmp_path: Path, *flags: str) -> tuple[int, dict[str, Any]]:
    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "local" / "gpu-memory-hog.yaml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gameday",
            "run",
            str(scenario),
            "--report-dir",
            str(tmp_path),
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    (report,) = tmp_path.glob("*/report.json")
    return result.returncode, json.loads(report.read_text())


def test_a_gpu_scenario_is_an_environment_error_unless_skipping_is_asked(tmp_path: Path) -> None:
    code, report = _run(tmp_path / "strict")
    assert code == 3 and report["outcome"] == "error"
    code, report = _run(tmp_path / "lenient", "--skip-unavailable")
    assert code == 0 and report["outcome"] == "skipped"
    scenario: dict[str, Any]
    (scenario,) = report["scenarios"]
    assert "nvidia-gpu: no NVIDIA GPU" in scenario["reason"]
