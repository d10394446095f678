"""junit.xml validates against the JUnit schema CI servers read (tests/schemas/junit.xsd)."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from gameday.reports.model import ExpectationResult, RunReport, ScenarioReport
from gameday.reports.writers import junit_xml
from tests.support.junit import assert_valid_junit, junit_errors

T0 = 1_800_000_000.0

NASTY_EVIDENCE = [
    "+2.0s prometheus: InferenceTargetDown pending, never firing",
    "p95 < 250 ms && error_ratio > 0.5 — \"double\" and 'single' quotes",
    "ünïcödé ✓ 日本語 🚨 (non-ASCII)",
    '<alert name="X"> ]]> &amp; &lt;not an entity&gt;',
    "\ttabbed line, trailing spaces   ",
]


def expectation(
    index: int,
    outcome: str,
    *,
    phase: str = "expect",
    description: str = "alert InferenceTargetDown firing",
    evidence: list[str] | None = None,
    met_after_s: float | None = None,
) -> ExpectationResult:
    return ExpectationResult(
        phase=phase,
        index=index,
        kind="alert",
        description=description,
        outcome=outcome,
        deadline_s=30.0,
        met_after_s=met_after_s,
        evidence=evidence or [],
    )


def scenario(
    name: str, outcome: str, *expectations: ExpectationResult, reason: str = ""
) -> ScenarioReport:
    return ScenarioReport(
        name=name,
        source=f"scenarios/{name}.yaml",
        tier="local",
        runbook="NETWORK001",
        outcome=outcome,
        reason=reason,
        started_at=T0,
        finished_at=T0 + 41.5,
        time_to_detect_s=2.0 if outcome == "passed" else None,
        expectations=list(expectations),
    )


def passing() -> ScenarioReport:
    return scenario(
        "port-conflict",
        "passed",
        expectation(0, "passed", evidence=["+2.0s prometheus: firing"], met_after_s=2.0),
        expectation(1, "passed", phase="recover", description="server healthy", met_after_s=4.25),
    )


def failed() -> ScenarioReport:
    return scenario(
        "crash-loop",
        "failed",
        expectation(0, "passed", met_after_s=1.0),
        expectation(
            1,
            "failed",
            description='log matches "CUDA error: <out of memory>" & más',
            evidence=NASTY_EVIDENCE,
        ),
        reason="1 expectation(s) failed",
    )


def skipped() -> ScenarioReport:
    return scenario(
        "slow-start",
        "failed",
        expectation(0, "failed", evidence=["never firing"]),
        expectation(1, "skipped", phase="recover"),
        expectation(2, "skipped", phase="recover", evidence=["expect phase failed: not reached"]),
        reason="1 expectation(s) failed",
    )


def errored() -> ScenarioReport:
    return scenario(
        "gpu-xid",
        "error",
        reason='fault "xid-79" could not be applied: <pid 4242> exited & "nvidia-smi" said ñö',
    )


def aborted() -> ScenarioReport:
    return scenario(
        "disk-full", "aborted", expectation(0, "passed", met_after_s=0.5), reason="interrupted"
    )


SCENARIOS: dict[str, Callable[[], ScenarioReport]] = {
    "passing": passing,
    "failed-expectation": failed,
    "skipped-expectation": skipped,
    "errored-scenario": errored,
    "aborted-scenario": aborted,
}


def run(*scenarios: ScenarioReport, outcome: str = "failed") -> RunReport:
    return RunReport(
        run_id="20260101-000000-abcd",
        outcome=outcome,
        exit_code=0 if outcome == "passed" else 1,
        version="0.1.0",
        host="ci-runner",
        started_at=T0,
        finished_at=T0 + 60,
        scenarios=list(scenarios),
    )


@pytest.mark.parametrize("make", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_each_kind_of_scenario_validates(make: Callable[[], ScenarioReport]) -> None:
    assert_valid_junit(junit_xml(run(make())))


def test_a_whole_run_validates_as_text_and_as_file(tmp_path: Path) -> None:
    text = junit_xml(run(*(make() for make in SCENARIOS.values())))
    path = tmp_path / "junit.xml"
    path.write_text(text, encoding="utf-8")
    assert_valid_junit(text)
    root = assert_valid_junit(path)
    assert root.tag == "testsuites" and len(root.findall("testsuite")) == len(SCENARIOS)
    cases = root.findall("testsuite/testcase")
    assert root.get("tests") == str(len(cases))
    assert root.get("failures") == str(len(root.findall("testsuite/testcase/failure")))
    assert root.get("errors") == str(len(root.findall("testsuite/testcase/error"))) == "2"
    assert root.get("skipped") == str(len(root.findall("testsuite/testcase/skipped"))) == "2"


def test_evidence_with_markup_quotes_and_non_ascii_survives(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(junit_xml(run(failed(), errored())), encoding="utf-8")
    root = assert_valid_junit(path)

    failure = root.find(".//testcase/failure")
    assert failure is not None
    assert failure.text == "\n".join(NASTY_EVIDENCE)
    assert (
        failure.get("message")
        == 'log matches "CUDA error: <out of memory>" & más: not met within 30s'
    )
    case_names = [case.get("name") for case in root.iter("testcase")]
    assert '[1] log matches "CUDA error: <out of memory>" & más' in case_names
    error = root.find(".//testcase/error")
    assert error is not None and error.get("message") == errored().reason


def test_control_characters_in_evidence_stay_well_formed() -> None:
    """Server log lines bring ANSI colour codes; XML 1.0 cannot carry them raw."""
    coloured = scenario(
        "log-match",
        "failed",
        expectation(
            0,
            "failed",
            evidence=["no line matched; the last ones:", "\x1b[31mERROR\x1b[0m engine died\x00"],
        ),
    )
    root = assert_valid_junit(junit_xml(run(coloured)))
    failure = root.find(".//testcase/failure")
    assert failure is not None and "ERROR" in (failure.text or "")
    assert "engine died" in (failure.text or "")


# --- the schema can fail: each breakage of a valid document is caught -------------------------


def _rename_first(tag: str, new: str) -> Callable[[ET.Element], None]:
    def mutate(root: ET.Element) -> None:
        element = root.find(f".//{tag}")
        assert element is not None
        element.tag = new

    return mutate


def _set_first(tag: str, attribute: str, value: str | None) -> Callable[[ET.Element], None]:
    def mutate(root: ET.Element) -> None:
        element = root if root.tag == tag else root.find(f".//{tag}")
        assert element is not None
        if value is None:
            del element.attrib[attribute]
        else:
            element.set(attribute, value)

    return mutate


BREAKAGES: dict[str, tuple[Callable[[ET.Element], None], str]] = {
    "unknown child of testcase": (_rename_first("failure", "failed"), "failed"),
    "misspelt testsuite": (_rename_first("testsuite", "test-suite"), "test-suite"),
    "testsuite without a name": (
        _set_first("testsuite", "name", None),
        "missing required attribute 'name'",
    ),
    "testcase without a name": (
        _set_first("testcase", "name", None),
        "missing required attribute 'name'",
    ),
    "non-numeric tests": (_set_first("testsuite", "tests", "two"), "two"),
    "non-numeric time": (_set_first("testsuite", "time", "41.5s"), "41.5s"),
    "negative failures": (_set_first("testsuites", "failures", "-1"), "-1"),
    "non-numeric testcase time": (_set_first("testcase", "time", "fast"), "fast"),
}


@pytest.mark.parametrize(("mutate", "mentioned"), BREAKAGES.values(), ids=BREAKAGES.keys())
def test_the_schema_rejects_a_broken_document(
    mutate: Callable[[ET.Element], None], mentioned: str
) -> None:
    valid = junit_xml(run(passing(), failed()))
    assert junit_errors(valid) == []
    root = copy.deepcopy(ET.fromstring(valid))
    mutate(root)
    broken = ET.tostring(root, encoding="unicode")

    errors = junit_errors(broken)
    assert errors, f"the schema accepted a broken document:\n{broken}"
    with pytest.raises(AssertionError, match="is not valid JUnit XML") as raised:
        assert_valid_junit(broken)
    assert mentioned in str(raised.value), str(raised.value)


def test_a_document_that_is_not_xml_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text('<testsuites><testsuite name="s" tests="1">', encoding="utf-8")
    with pytest.raises(AssertionError, match="not well-formed XML"):
        assert_valid_junit(path)


def test_the_wrong_root_element_is_rejected() -> None:
    errors = junit_errors('<testcase name="orphan" time="1.0"/>')
    assert errors and "testcase" in errors[0], errors
