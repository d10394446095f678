"""A directory is a game-day suite: a steady-state check before each scenario, a cooldown
between them, one report with a page per scenario. Real local targets (simulator,
Prometheus, Alertmanager); no load, so the suite stays short."""

from __future__ import annotations

from pathlib import Path

import pytest

from gameday.core.events import Event, Note, ScenarioFinished, ScenarioStarted
from gameday.engine.runner import GameDay, RunOptions
from gameday.plugins import catalog
from gameday.reports import ReportBuilder, write_reports
from gameday.scenario.loader import parse_scenario
from tests.conftest import require_binary

SCENARIO = """\
apiVersion: gameday/v1alpha1
kind: Scenario
metadata: {{name: {name}}}
target:
  local: {{}}
expect:
  - http: {{url: "{{server}}/health", status: 200, within: 10s}}
{extra}
"""


@pytest.mark.integration
def test_suite_checks_steady_state_and_cools_down_between_scenarios(tmp_path: Path) -> None:
    require_binary("prometheus")
    first = parse_scenario(
        SCENARIO.format(name="first", extra="cooldown: 2s"), str(tmp_path / "a.yaml"), catalog()
    )
    second = parse_scenario(
        SCENARIO.format(name="second", extra=""), str(tmp_path / "b.yaml"), catalog()
    )
    events: list[Event] = []
    builder = ReportBuilder()
    result = GameDay(
        [first, second],
        RunOptions(report_dir=tmp_path, cooldown=30.0),  # the scenario's own 2s wins
        handlers=[events.append, builder],
    ).run()
    assert result.exit_code == 0, builder.report.model_dump_json(indent=1)

    notes = [e.message for e in events if isinstance(e, Note)]
    implicit = [n for n in notes if n.startswith("steady state (implicit): the server is serving")]
    assert len(implicit) == 2, notes  # one before each scenario

    finished_first = next(e for e in events if isinstance(e, ScenarioFinished))
    started_second = [e for e in events if isinstance(e, ScenarioStarted)][1]
    cooldown = next(e for e in events if isinstance(e, Note) and e.message.startswith("cooldown"))
    assert cooldown.message == "cooldown 2s before the next scenario"
    assert finished_first.ts <= cooldown.ts <= started_second.ts
    assert started_second.ts - cooldown.ts >= 2.0

    report = builder.report
    assert [s.score for s in report.scenarios] == [100.0, 100.0]
    assert report.score == 100.0
    written = write_reports(report, result.run_dir)
    combined = written["report.html"].read_text()
    for name in ("first", "second"):
        page = result.run_dir / name / "report.html"
        assert written[f"{name}/report.html"] == page
        assert f'href="{name}/report.html"' in combined
        assert 'href="../report.html"' in page.read_text()
