"""`gameday alerts coverage` as a command: paths told apart by content, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
E2E = REPO / "tests" / "e2e" / "scenarios"


def coverage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gameday", "alerts", "coverage", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "250"},  # wide enough that names are not folded
        check=False,
        timeout=60,
    )


def test_team_scenario_against_team_rules_prints_markdown() -> None:
    result = coverage(
        str(E2E / "team-rules.yaml"), str(E2E / "team-rules.prometheusrule.yaml"), "--markdown", "-"
    )
    assert result.returncode == 0, result.stderr
    assert "2 of 3 alerting rules are expected to fire by 1 scenarios." in result.stdout
    assert "- `TeamSlowFirstToken` (`tests/e2e/scenarios/team-rules.prometheusrule.yaml`)" in (
        result.stdout
    )


def test_an_expected_alert_that_no_rule_defines_exits_1() -> None:
    result = coverage(
        str(REPO / "scenarios" / "local" / "port-conflict.yaml"),
        str(E2E / "team-rules.prometheusrule.yaml"),
    )
    assert result.returncode == 1
    assert "expected but not defined" in result.stdout
    assert "InferenceTargetDown" in result.stdout


def test_bundled_scenarios_against_bundled_rules_pass() -> None:
    result = coverage("scenarios")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "InferenceTargetDown" in result.stdout


def test_no_scenario_is_bad_input(tmp_path: Path) -> None:
    other = tmp_path / "notes.yaml"
    other.write_text("hello: world\n")
    assert "no scenario files" in coverage(str(REPO / "src/gameday/rules/serving.yml")).stderr
    result = coverage(str(other))
    assert result.returncode == 2
    assert f"{other}: neither a scenario nor a rule file" in result.stderr


def test_files_it_sorts_are_read_within_the_bounds(tmp_path: Path) -> None:
    # telling scenarios from rule files reads each file through the one input path
    bomb = (REPO / "tests" / "data" / "fuzz" / "scenario" / "alias_bomb.yaml").read_text()
    (tmp_path / "bomb.yaml").write_text(bomb)
    (tmp_path / "latin1.yml").write_bytes(b"groups: []\n# caf\xe9\n")
    for name, problem in [
        ("bomb.yaml", "invalid YAML: more than 200,000 values once its aliases are expanded"),
        ("latin1.yml", "not UTF-8"),
    ]:
        result = coverage(str(tmp_path / name))
        assert result.returncode == 2, result.stderr
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"error: {tmp_path / name}") and problem in line, line


def test_json_holds_what_the_markdown_says() -> None:
    """--format json: the same coverage as the Markdown, for scripts."""
    import json

    args = (str(E2E / "team-rules.yaml"), str(E2E / "team-rules.prometheusrule.yaml"))
    result = coverage(*args, "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    fired = sorted(a["name"] for a in data["alerts"] if a["fired_by"])
    assert len(data["alerts"]) == 3 and len(fired) == 2
    assert "TeamSlowFirstToken" in data["unexercised"] + data["never_fired"]
    assert [s["name"] for s in data["scenarios"]] == ["team-rules"]
    assert data["undefined"] == []
