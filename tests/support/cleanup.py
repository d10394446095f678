"""``gameday cleanup`` as a user runs it after a crash, against a given state directory."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.cli import run_gameday


def gameday_cleanup(state_dir: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_gameday("cleanup", env={"GAMEDAY_STATE_DIR": str(state_dir)}, timeout=timeout)
