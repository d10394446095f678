"""What the GPU pieces do on a machine without a GPU: say so clearly, change nothing."""

from __future__ import annotations

import subprocess
import sys

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
