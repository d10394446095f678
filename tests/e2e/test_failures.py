"""A scenario whose expectation does not hold: exit 1, with the evidence in junit.xml."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.e2e.conftest import check_report, gameday

pytestmark = pytest.mark.e2e
HERE = Path(__file__).parent


def test_alert_that_never_fires_fails_with_evidence(tmp_path: Path) -> None:
    # a relative report dir, as `make demo` gives it: Prometheus must still find the rule
    # files (it checks that every rule loaded, so a wrong path would exit 3, not 1)
    run = gameday(
        "run",
        str(HERE / "scenarios" / "never-fires.yaml"),
        report_dir=Path("reports"),
        cwd=tmp_path,
    )
    assert run.code == 1, run.stderr[-3000:]
    report = run.report
    assert report["outcome"] == "failed"
    expectations = {e["description"]: e for e in report["scenarios"][0]["expectations"]}
    failed = expectations["alert KVCacheExhausted firing"]
    assert failed["outcome"] == "failed"
    assert failed["evidence"] == ["KVCacheExhausted was never pending or firing in Prometheus"]
    assert expectations["http GET {server}/health -> 200"]["outcome"] == "passed"

    assert run.run_dir is not None
    junit = ET.parse(run.run_dir / "junit.xml").getroot()
    assert junit.get("failures") == "1"
    (case,) = [c for c in junit.iter("testcase") if c.find("failure") is not None]
    assert case.get("name") == "[0] alert KVCacheExhausted firing"
    failure = case.find("failure")
    assert failure is not None
    assert "not met within 6s" in (failure.get("message") or "")
    assert "never pending or firing" in (failure.text or "")

    # the failed scenario's page opens on the failed expectation and its evidence: in
    # the DOM they come before the chart and the tables (the screenshot shows the top)
    pages = check_report(run.run_dir, tmp_path / "screenshots")
    dom = pages["never-fires"].dom
    finding = dom.index('<div class="findings">')
    assert finding < dom.index("<svg") < dom.index('<table class="expectations">')
    box = dom[finding : dom.index("</div>\n</div>", finding)]
    assert "expect[0] alert KVCacheExhausted firing" in box
    assert "KVCacheExhausted was never pending or firing in Prometheus" in box
    assert pages["never-fires"].screenshot.stat().st_size > 10_000
