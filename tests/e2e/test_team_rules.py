"""A team's own PrometheusRule manifests in a local game day, time compressed: their
alerts fire and resolve under the matching fault, and their file is never modified."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.e2e.conftest import gameday
from tests.e2e.test_local_scenarios import assert_fired_and_resolved

pytestmark = pytest.mark.e2e
HERE = Path(__file__).parent
RULES = HERE / "scenarios" / "team-rules.prometheusrule.yaml"


def test_team_prometheusrules_fire_and_resolve_with_time_compression(tmp_path: Path) -> None:
    before = hashlib.sha256(RULES.read_bytes()).hexdigest()
    run = gameday(
        "run",
        str(HERE / "scenarios" / "team-rules.yaml"),
        "--rules",
        str(RULES),
        "--no-bundled-rules",
        "--time-compression",
        "30",
        report_dir=tmp_path / "reports",
    )
    assert run.code == 0, run.stderr[-4000:]
    report = run.report
    (scenario,) = report["scenarios"]
    for alert in ("TeamInferenceUnavailable", "TeamServerRestarted"):
        assert_fired_and_resolved(report, alert)
    # only the team's rules were evaluated: three alerts from two documents, three groups
    rules = scenario["rules"]
    assert rules["sources"] == [str(RULES)]
    assert (rules["factor"], rules["alerting_rules"]) == (30.0, 3)
    assert "TeamInferenceUnavailable: for 1m -> 2s" in rules["rewrites"]
    assert "TeamServerRestarted: range 15m -> 30s" in rules["rewrites"]
    assert "TeamSlowFirstToken: for 10m -> 20s" in rules["rewrites"]
    assert not any(a["alert"].startswith("Inference") for a in scenario["alerts"])
    # the report says so, and the file the team keeps is untouched
    page = (run.run_dir / "team-rules" / "report.html").read_text()  # type: ignore[operator]
    assert "time compressed \u00d730" in page
    assert hashlib.sha256(RULES.read_bytes()).hexdigest() == before


def test_invalid_team_rules_are_bad_input_and_start_nothing(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nspec: [1]\n")
    run = gameday(
        "run",
        str(HERE / "scenarios" / "team-rules.yaml"),
        "--rules",
        str(broken),
        report_dir=tmp_path / "reports",
    )
    assert run.code == 2, run.stderr
    assert run.stderr.count("error:") == 1 and "broken.yaml" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.run_dir is None  # no run started
