"""The bundled local scenarios, for real: simulator, Prometheus, Alertmanager, Locust."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gameday.core.journal import outstanding_undos
from gameday.engine.requirements import nvidia_gpu_present
from gameday.plugins import load_builtins
from tests.e2e.conftest import SCENARIOS, assert_diagnosed_as_named, check_report, gameday

NO_GPU = nvidia_gpu_present()  # the GPU scenario runs only where NVML finds a GPU


def alert_story(report: dict[str, Any], alert: str) -> list[tuple[str, str]]:
    scenario = report["scenarios"][0]
    return [(a["source"], a["state"]) for a in scenario["alerts"] if a["alert"] == alert]


def assert_fired_and_resolved(report: dict[str, Any], alert: str) -> None:
    story = alert_story(report, alert)
    assert ("prometheus", "firing") in story, story
    assert ("alertmanager", "active") in story, story
    firing = story.index(("prometheus", "firing"))
    assert ("prometheus", "inactive") in story[firing:], f"{alert} never resolved: {story}"
    active = story.index(("alertmanager", "active"))
    assert ("alertmanager", "resolved") in story[active:], (
        f"{alert} never resolved at Alertmanager: {story}"
    )


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("scenario", "alerts"),
    [
        ("port-conflict", ["InferenceTargetDown"]),
        ("process-kill", ["InferenceServerRestarting", "InferenceTargetDown"]),
        ("oom-kill", ["InferenceServerOOMKilled", "InferenceTargetDown"]),
        ("dns-breakage", ["ModelInferenceFailure"]),
        pytest.param(
            "gpu-memory-hog",
            ["GPUMemoryPressure", "InferenceTargetDown"],
            marks=pytest.mark.skipif(NO_GPU is not None, reason=str(NO_GPU)),
        ),
    ],
)
def test_bundled_scenario_passes(scenario: str, alerts: list[str], tmp_path: Path) -> None:
    run = gameday("run", str(SCENARIOS / f"{scenario}.yaml"), report_dir=tmp_path / "reports")
    assert run.code == 0, run.stderr[-4000:]
    report = run.report
    assert report["outcome"] == "passed"
    (result,) = report["scenarios"]
    assert result["outcome"] == "passed", result["reason"]
    assert result["time_to_detect_s"] is not None and result["time_to_detect_s"] > 0
    assert result["time_to_recover_s"] is not None
    assert all(e["outcome"] == "passed" for e in result["expectations"])
    assert_diagnosed_as_named(result)
    for alert in alerts:
        assert_fired_and_resolved(report, alert)
    fault = result["faults"][0]
    assert fault["applied_at"] is not None
    assert not fault["errors"]
    for name in ("journal.jsonl", "report.json", "junit.xml", "summary.md", "report.html"):
        assert (run.run_dir / name).is_file()  # type: ignore[operator]
    assert run.stdout.strip().endswith("report.html")
    assert result["score"] == 100.0 and report["score"] == 100.0
    check_report(run.run_dir, tmp_path / "screenshots")  # type: ignore[arg-type]
    # every change the run made was undone (the journal says so, record by record)
    load_builtins()  # the undo kinds
    assert outstanding_undos(run.run_dir / "journal.jsonl") == []  # type: ignore[operator]
