"""Reports are a fold of the journal's events: `gameday report JOURNAL` rebuilds them all."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from gameday.core.events import (
    AlertChanged,
    ExpectationResolved,
    FaultApplied,
    FaultReverted,
    LoadSampled,
    RunFinished,
    RunStarted,
    ScenarioFinished,
    ScenarioStarted,
)
from gameday.core.journal import Journal

T0 = 1_800_000_000.0


def write_journal(path: Path, observed_from: tuple[str, ...] = ()) -> None:
    journal = Journal(path, "r1")
    events = [
        RunStarted(
            ts=T0, run_id="r1", scenarios=("s",), report_dir=str(path.parent), version="0", host="h"
        ),
        ScenarioStarted(
            ts=T0,
            scenario="s",
            source="s.yaml",
            tier="local",
            runbook="NETWORK001",
            description="d",
            spec={},
        ),
        LoadSampled(
            ts=T0 + 1,
            scenario="s",
            t=T0 + 1,
            users=8,
            requests=10,
            failures=0,
            rps=10.0,
            error_ratio=0.0,
            p50_ms=5.0,
            p95_ms=9.0,
            ttft_p50_ms=1.0,
            ttft_p95_ms=2.0,
            output_tokens=80,
        ),
        FaultApplied(
            ts=T0 + 2,
            scenario="s",
            fault="hold",
            fault_type="port-conflict",
            description="hold the port",
            started=T0 + 2,
            offset=2.0,
            details=(("port", "8000"),),
            runbook="NETWORK001",
        ),
        AlertChanged(
            ts=T0 + 4,
            scenario="s",
            alert="InferenceTargetDown",
            state="firing",
            source="prometheus",
        ),
        ExpectationResolved(
            ts=T0 + 4,
            scenario="s",
            phase="expect",
            index=0,
            kind="alert",
            description="alert InferenceTargetDown firing",
            outcome="passed",
            deadline=30.0,
            phase_started=T0 + 2,
            met_at=T0 + 4,
            evidence=("+2.0s prometheus: firing",),
            observed_from=observed_from,
        ),
        ExpectationResolved(
            ts=T0 + 40,
            scenario="s",
            phase="expect",
            index=1,
            kind="alert",
            description="alert Other firing",
            outcome="failed",
            deadline=30.0,
            phase_started=T0 + 2,
            met_at=None,
            evidence=("Other was never pending or firing in Prometheus",),
        ),
        FaultReverted(ts=T0 + 30, scenario="s", fault="hold", fault_type="port-conflict"),
        ScenarioFinished(
            ts=T0 + 41,
            scenario="s",
            outcome="failed",
            reason="1 expectation(s) failed",
            time_to_detect=2.0,
            time_to_recover=None,
        ),
        RunFinished(ts=T0 + 42, outcome="failed", exit_code=1),
    ]
    for event in events:
        journal.record_event(event)
    journal.close()


def test_report_command_rebuilds_every_file(tmp_path: Path) -> None:
    write_journal(tmp_path / "journal.jsonl")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gameday",
            "report",
            str(tmp_path / "journal.jsonl"),
            "-o",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=os.environ,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["outcome"] == "failed" and report["exit_code"] == 1
    (scenario,) = report["scenarios"]
    assert scenario["time_to_detect_s"] == 2.0
    assert (
        scenario["faults"][0]["applied_at"] == T0 + 2
        and scenario["faults"][0]["reverted_at"] == T0 + 30
    )
    assert [e["outcome"] for e in scenario["expectations"]] == ["passed", "failed"]

    junit = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    assert (junit.get("tests"), junit.get("failures")) == ("2", "1")
    failure = junit.find(".//testcase/failure")
    assert failure is not None and "never pending or firing" in (failure.text or "")

    html = (tmp_path / "out" / "report.html").read_text()
    assert "<svg" in html and "alert Other firing" in html
    # self-contained: nothing to fetch (the SVG namespace is an identifier, not a request)
    assert re.findall(r"(?:src|href)=\"https?://", html) == []
    assert "<script" not in html
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| s | local |" in summary and "Other was never pending or firing" in summary


def test_the_report_says_which_observations_were_real_and_which_simulated(
    tmp_path: Path,
) -> None:
    sources = ("kube-scheduler: real", "kubelet: simulated by kwok stages")
    write_journal(tmp_path / "journal.jsonl", observed_from=sources)
    journal, out = str(tmp_path / "journal.jsonl"), str(tmp_path / "out")
    result = subprocess.run(
        [sys.executable, "-m", "gameday", "report", journal, "-o", out],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=os.environ,
    )
    assert result.returncode == 0, result.stderr
    (scenario,) = json.loads((tmp_path / "out" / "report.json").read_text())["scenarios"]
    assert [e["observed_from"] for e in scenario["expectations"]] == [list(sources), []]
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| observed from |" in summary
    assert "kube-scheduler: real; kubelet: simulated by kwok stages |" in summary
    html = (tmp_path / "out" / "report.html").read_text()
    assert '<span class="simulated">kubelet: simulated by kwok stages</span>' in html
    assert '<span class="real">kube-scheduler: real</span>' in html
