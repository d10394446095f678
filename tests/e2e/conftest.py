"""End-to-end: scenarios run through the real CLI, against real components."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_binary

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "scenarios" / "local"
# scenario files used as test inputs (some meant to fail), not as tests of their own
collect_ignore_glob = ["scenarios/*"]


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    run_dir: Path | None

    @property
    def report(self) -> dict[str, Any]:
        assert self.run_dir is not None, self.stderr
        return json.loads((self.run_dir / "report.json").read_text())  # type: ignore[no-any-return]


def gameday(*args: str, report_dir: Path, timeout: float = 300, cwd: Path = REPO) -> Run:
    """Run the CLI; ``report_dir`` may be relative to ``cwd``, as a user would give it."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "gameday", *args, "--report-dir", str(report_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
        check=False,
    )
    report_dir = cwd / report_dir
    runs = sorted(p for p in report_dir.iterdir() if p.is_dir()) if report_dir.exists() else []
    return Run(result.returncode, result.stdout, result.stderr, runs[-1] if runs else None)


@pytest.fixture(autouse=True)
def _components() -> None:
    for binary in ("prometheus", "prometheus-alertmanager"):
        require_binary(binary)
