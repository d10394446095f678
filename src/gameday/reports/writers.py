"""Write a run's report files: report.json, junit.xml, summary.md, report.html."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from gameday.core.redact import redact_known
from gameday.reports.html import render_html, render_scenario_html
from gameday.reports.model import RunReport, ScenarioReport

__all__ = ["WRITERS", "junit_xml", "summary_markdown", "write_reports"]


def _fmt_seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}s"


def _fmt_score(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def _against_budget(scenario: ScenarioReport, figure: str) -> str:
    """``figure``: detect or recover. The budget is shown only if a fault was applied."""
    measured, budget = scenario.budget(figure)
    inside = scenario.within_budget(figure)
    if inside is None:
        return _fmt_seconds(measured)
    return f"{_fmt_seconds(measured)} (budget {budget:g}s, {'inside' if inside else 'missed'})"


# XML 1.0 has no way to write these (server log lines bring ANSI escapes, say)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _sanitise(root: ET.Element) -> None:
    for element in root.iter():
        if element.text:
            element.text = _xml_safe(element.text)
        for key, value in element.attrib.items():
            element.attrib[key] = _xml_safe(value)


def junit_xml(report: RunReport) -> str:
    """One testsuite per scenario, one testcase per expectation; failures carry evidence."""
    suites = ET.Element("testsuites", name=f"gameday {report.run_id}")
    total = failures = errors = skipped = 0
    for scenario in report.scenarios:
        cases = scenario.expectations
        s_failures = sum(1 for e in cases if e.outcome == "failed")
        s_skipped = sum(1 for e in cases if e.outcome == "skipped")
        s_errors = 1 if scenario.outcome in ("error", "aborted") else 0
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=scenario.name,
            tests=str(len(cases) + s_errors),
            failures=str(s_failures),
            errors=str(s_errors),
            skipped=str(s_skipped),
            time=f"{scenario.duration_s or 0.0:.3f}",
        )
        properties = ET.SubElement(suite, "properties")
        for key, value in (
            ("tier", scenario.tier),
            ("runbook", scenario.runbook or ""),
            ("outcome", scenario.outcome),
            ("time_to_detect_s", _fmt_seconds(scenario.time_to_detect_s)),
            ("time_to_recover_s", _fmt_seconds(scenario.time_to_recover_s)),
            ("score", _fmt_score(scenario.score)),
        ):
            ET.SubElement(properties, "property", name=key, value=value)
        for expectation in cases:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"gameday.{scenario.name}.{expectation.phase}",
                name=f"[{expectation.index}] {expectation.description}",
                time=f"{expectation.met_after_s or 0.0:.3f}",
            )
            evidence = "\n".join(expectation.evidence)
            if expectation.outcome == "failed":
                failure = ET.SubElement(
                    case,
                    "failure",
                    message=(
                        f"{expectation.description}: not met within {expectation.deadline_s:g}s"
                    ),
                    type="ExpectationFailed",
                )
                failure.text = evidence
            elif expectation.outcome == "skipped":
                ET.SubElement(case, "skipped", message=evidence or "not reached")
            elif evidence:
                ET.SubElement(case, "system-out").text = evidence
        if s_errors:
            case = ET.SubElement(
                suite, "testcase", classname=f"gameday.{scenario.name}", name="scenario"
            )
            ET.SubElement(
                case, "error", message=scenario.reason or scenario.outcome, type=scenario.outcome
            )
        total += len(cases) + s_errors
        failures += s_failures
        errors += s_errors
        skipped += s_skipped
    suites.set("tests", str(total))
    suites.set("failures", str(failures))
    suites.set("errors", str(errors))
    suites.set("skipped", str(skipped))
    _sanitise(suites)
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


_ICON = {"passed": "✅", "failed": "❌", "error": "⚠️", "aborted": "⏹️", "skipped": "⏭️"}


def _diagnosis_markdown(scenario: ScenarioReport) -> list[str]:
    lines = []
    if scenario.diagnosis:
        ranked = ", ".join(f"`{d.code}` ({d.score:.2f})" for d in scenario.diagnosis)
        lines += [f"Diagnosed: {ranked}", ""]
    remedy = scenario.remedy
    if remedy is not None:
        done = [step.kind for step in remedy.steps if step.outcome == "done"]
        lines += [
            f"Remedy `{remedy.runbook}` {remedy.outcome}: {', '.join(done) or 'no step ran'}"
            f" (runbook budget {remedy.budget_s:g}s)",
            "",
        ]
    return lines


def _scenario_markdown(scenario: ScenarioReport) -> list[str]:
    lines = [
        f"### {_ICON.get(scenario.outcome, '')} {scenario.name} — {scenario.outcome}",
        "",
        f"{scenario.reason}" if scenario.reason else "",
        "",
        f"Tier `{scenario.tier}` · runbook `{scenario.runbook or '—'}` · "
        f"score {_fmt_score(scenario.score)} · "
        f"time to detect {_against_budget(scenario, 'detect')} · "
        f"time to recover {_against_budget(scenario, 'recover')}",
        "",
        *_diagnosis_markdown(scenario),
    ]
    sourced = any(e.observed_from for e in scenario.expectations)
    if sourced:  # which observations were real and which simulated on this tier
        lines += [
            "| phase | expectation | outcome | held after | deadline | observed from |",
            "|---|---|---|---|---|---|",
        ]
    else:
        lines += [
            "| phase | expectation | outcome | held after | deadline |",
            "|---|---|---|---|---|",
        ]
    for e in scenario.expectations:
        row = (
            f"| {e.phase} | {e.description} | {_ICON.get(e.outcome, '')} {e.outcome} | "
            f"{_fmt_seconds(e.met_after_s)} | {e.deadline_s:g}s |"
        )
        lines.append(row + (f" {'; '.join(e.observed_from) or '—'} |" if sourced else ""))
    for e in scenario.failed_expectations():
        lines += ["", f"<details><summary>Evidence: {e.description}</summary>", "", "```"]
        lines += e.evidence or ["(no evidence)"]
        lines += ["```", "</details>"]
    return lines


def summary_markdown(report: RunReport) -> str:
    passed = sum(1 for s in report.scenarios if s.outcome == "passed")
    lines = [
        f"## {_ICON.get(report.outcome, '')} Game day {report.run_id}: {report.outcome}",
        "",
        f"{passed}/{len(report.scenarios)} scenario(s) passed · "
        f"resilience score {_fmt_score(report.score)}/100.",
        "",
        "| scenario | tier | outcome | score | time to detect | time to recover |",
        "|---|---|---|---|---|---|",
    ]
    for s in report.scenarios:
        lines.append(
            f"| {s.name} | {s.tier} | {_ICON.get(s.outcome, '')} {s.outcome} | "
            f"{_fmt_score(s.score)} | {_against_budget(s, 'detect')} | "
            f"{_against_budget(s, 'recover')} |"
        )
    for s in report.scenarios:
        lines += ["", *_scenario_markdown(s)]
    return "\n".join(lines) + "\n"


def _json(report: RunReport) -> str:
    return report.model_dump_json(indent=2) + "\n"


WRITERS: dict[str, Callable[[RunReport], str]] = {
    "report.json": _json,
    "junit.xml": junit_xml,
    "summary.md": summary_markdown,
    "report.html": render_html,
}


def _write(path: Path, text: str) -> Path:
    """Atomically: a reader (a CI artifact upload, a browser) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    # events reach the report masked; this also masks what a renderer added itself
    tmp.write_text(redact_known(text), encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_reports(report: RunReport, run_dir: Path) -> dict[str, Path]:
    """Write the run's report files, and each scenario's page as ``<scenario>/report.html``."""
    written = {name: _write(run_dir / name, render(report)) for name, render in WRITERS.items()}
    for scenario in report.scenarios:
        page = _write(
            run_dir / scenario.name / "report.html", render_scenario_html(report, scenario)
        )
        written[f"{scenario.name}/report.html"] = page
    return written
