"""The ``gameday`` command as a user runs it: a fresh process of this interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_gameday(
    *args: str | Path,
    cwd: Path = REPO,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """``gameday ARGS`` in ``cwd``; ``env`` adds to this environment."""
    return subprocess.run(
        [sys.executable, "-m", "gameday", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
