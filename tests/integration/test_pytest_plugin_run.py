"""The pytest plugin's run path on the real local tier (the simulator as a server process,
Prometheus, Alertmanager, Locust): a scenario file run by pytest passes and writes its
reports; one that `gameday run` refuses before starting is refused by the item the same
way, before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _pytest(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=os.environ,
        timeout=300,
        check=False,
    )


def test_a_scenario_run_by_pytest_passes_and_writes_its_reports(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    scenario = REPO / "scenarios" / "local" / "port-conflict.yaml"
    result = _pytest(scenario, "--gameday-report-dir", reports, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    (report,) = reports.glob("*/report.json")
    assert '"outcome": "passed"' in report.read_text()
    assert (report.parent / "journal.jsonl").is_file()


def test_what_run_refuses_the_item_refuses_before_starting(tmp_path: Path) -> None:
    text = (REPO / "scenarios" / "local" / "process-kill.yaml").read_text()
    scenario = tmp_path / "process-kill.yaml"
    named = "  local:\n    prometheus: {rules: [bundled, missing.yml]}\n"
    scenario.write_text(text.replace("  local:\n", named, 1))
    reports = tmp_path / "reports"
    result = _pytest(scenario, "--gameday-report-dir", reports, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed" in result.stdout
    assert "missing.yml" in result.stdout
    assert "Traceback" not in result.stdout
    assert not reports.exists()  # refused before the target came up
