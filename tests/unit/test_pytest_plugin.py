"""The pytest11 entry point: scenario files are collected as test items, other YAML is not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_scenarios_are_collected_as_items(tmp_path: Path) -> None:
    (tmp_path / "not-a-scenario.yaml").write_text("groups: []\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            str(REPO / "scenarios" / "local"),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=os.environ,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    items = [line for line in result.stdout.splitlines() if "::" in line]
    names = sorted(line.rsplit("::", 1)[1] for line in items)
    expected = sorted(p.stem for p in (REPO / "scenarios" / "local").glob("*.yaml"))
    assert names == expected, result.stdout
    assert {"oom-kill", "port-conflict", "process-kill"} <= set(names)
