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
from tests.support.browser import PageLoad, load_page
from tests.support.junit import assert_valid_junit

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


def gameday(
    *args: str,
    report_dir: Path,
    timeout: float = 300,
    cwd: Path = REPO,
    env: dict[str, str] | None = None,
) -> Run:
    """Run the CLI; ``report_dir`` may be relative to ``cwd``, as a user would give it;
    ``env`` adds to the environment."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
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


def check_report(run_dir: Path, shots: Path) -> dict[str, PageLoad]:
    """The run's reports as a CI system and a browser read them.

    junit.xml validates against the JUnit schema; the suite page and each scenario's
    page load in headless Chromium without one network request (from Chromium's own
    NetLog) and without one load refused by their Content-Security-Policy, with the
    timeline chart and the tables in the DOM; screenshots are kept under ``shots``.
    """
    assert_valid_junit(run_dir / "junit.xml")
    pages = {"report.html": run_dir / "report.html"}
    for scenario in json.loads((run_dir / "report.json").read_text())["scenarios"]:
        pages[scenario["name"]] = run_dir / scenario["name"] / "report.html"
    loads: dict[str, PageLoad] = {}
    for name, page in pages.items():
        load = load_page(page, shots / name.replace(".", "-"))
        assert load.network_activity == [], f"{page} went to the network: {load.network_activity}"
        assert load.csp_blocked == (), f"{page} tried to load: {load.console}"
        assert "<svg" in load.dom and 'class="timeline"' in load.dom, f"no chart in {page}"
        assert '<table class="expectations">' in load.dom, f"no expectations table in {page}"
        assert load.screenshot.is_file()
        loads[name] = load
    assert '<table class="suite">' in loads["report.html"].dom
    return loads


def assert_diagnosed_as_named(result: dict[str, Any]) -> None:
    """The scenario names a runbook code, asserts its diagnosis, and the report's ranked
    diagnosis puts that code first; a remedy, where the scenario has one, ran its steps
    and the service recovered inside the runbook's budget."""
    code = result["runbook"]
    assert code, f"{result['name']} names no runbook code"
    diagnosed = [e for e in result["expectations"] if e["kind"] == "runbook"]
    assert diagnosed and all(e["outcome"] == "passed" for e in diagnosed), diagnosed
    assert any(code in line for e in diagnosed for line in e["evidence"]), diagnosed
    assert result["diagnosis"][0]["code"] == code, result["diagnosis"]
    remedy = result["remedy"]
    if result["spec"].get("remedy") is None:
        assert remedy is None
        return
    assert remedy["runbook"] == result["spec"]["remedy"]["runbook"]
    assert remedy["outcome"] == "done", remedy
    assert any(step["outcome"] == "done" for step in remedy["steps"]), remedy["steps"]
    assert result["recover_budget_s"] == remedy["budget_s"]
    assert result["time_to_recover_s"] is not None
    assert result["time_to_recover_s"] <= remedy["budget_s"]
