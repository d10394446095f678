"""``gameday cleanup`` as a user runs it after a crash, against a given state directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def gameday_cleanup(state_dir: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gameday", "cleanup"],
        cwd=REPO,
        env={**os.environ, "GAMEDAY_STATE_DIR": str(state_dir)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
