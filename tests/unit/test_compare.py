"""`gameday compare`: what got worse between two runs decides the exit code (1), and only that."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gameday.core.errors import InputError
from gameday.reports.compare import (
    SUITE,
    Change,
    Tolerances,
    Verdict,
    compare_reports,
    comparison_markdown,
    load_report,
)
from gameday.reports.model import ExpectationResult, RunReport, ScenarioReport
from tests.support.cli import run_gameday


def expectation(
    phase: str, index: int, description: str, outcome: str = "passed"
) -> ExpectationResult:
    return ExpectationResult(
        phase=phase,
        index=index,
        kind=description.split()[0],
        description=description,
        outcome=outcome,
        deadline_s=30.0,
        evidence=[] if outcome == "passed" else [f"{description}: not seen"],
    )


def scenario(
    name: str,
    outcome: str = "passed",
    ttd: float | None = 3.0,
    ttr: float | None = 10.0,
    score: float | None = 90.0,
    alert: str = "passed",
) -> ScenarioReport:
    return ScenarioReport(
        name=name,
        outcome=outcome,
        time_to_detect_s=ttd,
        time_to_recover_s=ttr,
        score=score,
        expectations=[
            expectation("expect", 0, "log Errno 98|Address already in use"),
            expectation("expect", 1, "alert InferenceTargetDown firing", alert),
            expectation("recover", 0, "http {server}/health 200"),
        ],
    )


def run(run_id: str, *scenarios: ScenarioReport, score: float | None = 90.0) -> RunReport:
    return RunReport(run_id=run_id, outcome="passed", score=score, scenarios=list(scenarios))


def verdicts(old: RunReport, new: RunReport, **tolerances: float) -> dict[tuple[str, str], Verdict]:
    comparison = compare_reports(old, new, Tolerances(**tolerances))
    return {(c.scenario, c.what): c.verdict for c in comparison.changes}


BASE = run("r1", scenario("port-conflict"), scenario("oom-kill", ttd=1.5, ttr=20.0))


# --- compare_reports: the rules ------------------------------------------------------


def test_identical_runs_have_no_regressions_and_nothing_to_show() -> None:
    comparison = compare_reports(BASE, BASE.model_copy(update={"run_id": "r2"}))
    assert comparison.regressions == []
    assert comparison.shown() == []
    assert {c.verdict for c in comparison.changes} == {Verdict.UNCHANGED}
    assert comparison.headline() == "no regressions (r1 → r2)"


@pytest.mark.parametrize(
    ("old", "new", "verdict"),
    [
        ("passed", "failed", Verdict.REGRESSED),
        ("failed", "error", Verdict.REGRESSED),
        ("passed", "aborted", Verdict.REGRESSED),
        ("failed", "passed", Verdict.IMPROVED),
        ("error", "aborted", Verdict.UNCHANGED),
        ("passed", "skipped", Verdict.NOT_COMPARED),
        ("skipped", "failed", Verdict.NOT_COMPARED),
    ],
)
def test_scenario_outcome_order(old: str, new: str, verdict: Verdict) -> None:
    found = verdicts(run("a", scenario("s", outcome=old)), run("b", scenario("s", outcome=new)))
    assert found[("s", "outcome")] is verdict


def test_skipped_scenario_is_not_compared_at_all() -> None:
    """A skipped run measured nothing: its missing times and score are not regressions."""
    new = run(
        "b", scenario("s", outcome="skipped", ttd=None, ttr=None, score=None, alert="skipped")
    )
    comparison = compare_reports(run("a", scenario("s")), new)
    rows = [(c.what, c.verdict) for c in comparison.changes if c.scenario == "s"]
    assert rows == [("outcome", Verdict.NOT_COMPARED)]
    assert comparison.regressions == []


def test_expectation_passed_to_failed_is_a_regression_and_back_an_improvement() -> None:
    name = "expect[1] alert InferenceTargetDown firing"
    worse = verdicts(run("a", scenario("s")), run("b", scenario("s", alert="failed")))
    assert worse[("s", name)] is Verdict.REGRESSED
    assert worse[("s", "expect[0] log Errno 98|Address already in use")] is Verdict.UNCHANGED
    better = verdicts(run("a", scenario("s", alert="failed")), run("b", scenario("s")))
    assert better[("s", name)] is Verdict.IMPROVED


def test_expectation_matched_by_description_missing_and_new() -> None:
    new = scenario("s")
    new.expectations[2] = expectation("recover", 0, "http {server}/ready 200")
    found = verdicts(run("a", scenario("s")), run("b", new))
    assert found[("s", "recover[0] http {server}/health 200")] is Verdict.MISSING
    assert found[("s", "recover[0] http {server}/ready 200")] is Verdict.NEW


def test_expectations_absent_after_an_error_are_left_to_the_outcome_row() -> None:
    errored = scenario("s", outcome="error", ttd=None, ttr=None, score=0.0)
    errored.expectations = []
    comparison = compare_reports(run("a", scenario("s")), run("b", errored))
    whats = {c.what for c in comparison.regressions}
    assert whats == {"outcome", "time to detect", "time to recover", "score"}


@pytest.mark.parametrize(
    ("old", "new", "verdict"),
    [
        (3.0, 5.0, Verdict.UNCHANGED),  # +2.0s: exactly the 2 s floor
        (3.0, 5.1, Verdict.REGRESSED),  # +2.1s > max(2.0, 0.75)
        (20.0, 24.9, Verdict.UNCHANGED),  # +4.9s <= 25 % of 20 s
        (20.0, 25.5, Verdict.REGRESSED),  # +5.5s > 5.0
        (20.0, 14.0, Verdict.IMPROVED),  # -6.0s
        (3.0, None, Verdict.REGRESSED),  # no longer detected
        (None, 3.0, Verdict.IMPROVED),  # now detected
    ],
)
def test_time_to_detect_tolerance(old: float | None, new: float | None, verdict: Verdict) -> None:
    found = verdicts(run("a", scenario("s", ttd=old)), run("b", scenario("s", ttd=new)))
    assert found[("s", "time to detect")] is verdict


def test_both_times_missing_give_no_row() -> None:
    found = verdicts(run("a", scenario("s", ttd=None)), run("b", scenario("s", ttd=None)))
    assert ("s", "time to detect") not in found


def test_tolerances_are_options() -> None:
    old, new = run("a", scenario("s", ttr=10.0)), run("b", scenario("s", ttr=13.0))
    assert verdicts(old, new)[("s", "time to recover")] is Verdict.REGRESSED
    assert verdicts(old, new, seconds=3.0)[("s", "time to recover")] is Verdict.UNCHANGED
    assert verdicts(old, new, ratio=0.3)[("s", "time to recover")] is Verdict.UNCHANGED
    with pytest.raises(ValueError, match="seconds"):
        Tolerances(seconds=-1.0)


def test_scores_scenario_and_suite() -> None:
    old = run("a", scenario("s", score=90.0), score=90.0)
    found = verdicts(old, run("b", scenario("s", score=85.0), score=84.0))
    assert found[("s", "score")] is Verdict.UNCHANGED  # -5: not more than 5 points
    assert found[(SUITE, "score")] is Verdict.REGRESSED
    assert verdicts(old, run("b", scenario("s", score=80.0)), score=10.0)[("s", "score")] is (
        Verdict.UNCHANGED
    )
    # a report without scores (older version) compares everything else
    found = verdicts(old, run("b", scenario("s", score=None), score=None))
    assert ("s", "score") not in found and (SUITE, "score") not in found
    assert found[("s", "outcome")] is Verdict.UNCHANGED


def test_missing_scenario_regresses_new_one_does_not() -> None:
    comparison = compare_reports(BASE, run("r2", scenario("port-conflict"), scenario("dns")))
    assert [(c.scenario, c.verdict) for c in comparison.regressions] == [
        ("oom-kill", Verdict.MISSING)
    ]
    new = [c for c in comparison.changes if c.verdict is Verdict.NEW]
    assert [(c.scenario, c.what, c.new) for c in new] == [("dns", "scenario", "passed")]
    assert comparison.headline() == "1 regression (r1 → r2)"


def test_change_shows_values_for_readers() -> None:
    change = Change("s", "time to detect", 3.0, None, Verdict.REGRESSED, unit="s")
    assert (change.show(change.old), change.show(change.new)) == ("3.0s", "—")
    assert change.regressed


# --- Markdown --------------------------------------------------------------------------


def test_markdown_has_headline_and_regression_rows_first() -> None:
    new = run(
        "r2",
        scenario("port-conflict", outcome="failed", alert="failed"),
        scenario("oom-kill", ttd=1.0, ttr=9.0),
    )
    text = comparison_markdown(compare_reports(BASE, new))
    lines = text.splitlines()
    assert lines[0] == "## ❌ Game day comparison: 2 regressions, 1 improvement (r1 → r2)"
    assert "| scenario | what | old | new | verdict | note |" in lines
    rows = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert rows[0] == "| port-conflict | outcome | passed | failed | ❌ regressed |  |"
    assert rows[1].startswith(
        "| port-conflict | expect[1] alert InferenceTargetDown firing | passed | failed | "
        "❌ regressed | alert InferenceTargetDown firing: not seen |"
    )
    assert (
        rows[2]
        == "| oom-kill | time to recover | 20.0s | 9.0s | ✅ improved | -11.0s (tolerance 5.0s) |"
    )
    assert len(rows) == 3  # unchanged rows are not shown


def test_markdown_escapes_pipes_and_says_when_nothing_changed() -> None:
    old = run("a", scenario("s"))
    new = scenario("s")
    new.expectations[0].outcome = "failed"
    text = comparison_markdown(compare_reports(old, run("b", new)))
    assert "| expect[0] log Errno 98\\|Address already in use |" in text
    quiet = comparison_markdown(compare_reports(old, old))
    assert quiet.startswith("## ✅ Game day comparison: no regressions (a → a)")
    assert "Nothing changed beyond the tolerances." in quiet


# --- load_report ------------------------------------------------------------------------


def test_load_report_from_folder_or_file(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text(BASE.model_dump_json())
    assert load_report(tmp_path) == BASE
    assert load_report(tmp_path / "report.json") == BASE


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file or directory: {file}"),
        ("{not json", "{file}: not a valid report.json: Invalid JSON"),
        (
            '{"scenarios": [{"outcome": "passed"}]}',
            "{file}: not a valid report.json: scenarios.0.name: Field required",
        ),
    ],
)
def test_load_report_errors_name_the_file(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    file = tmp_path / "report.json"
    if content is not None:
        file.write_text(content)
    with pytest.raises(InputError) as raised:
        load_report(tmp_path)
    assert str(raised.value).startswith(expected.format(file=file))
    assert "\n" not in str(raised.value)


# --- the command ------------------------------------------------------------------------


def gameday(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_gameday("compare", *args, cwd=cwd, env={"COLUMNS": "200"})


def write(tmp_path: Path, report: RunReport) -> Path:
    """The run folder of ``report``, as `gameday run` leaves it."""
    folder = tmp_path / "reports" / report.run_id
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(report.model_dump_json(indent=2))
    return folder


@pytest.mark.parametrize(
    ("new", "row"),
    [
        (
            run(
                "r2",
                scenario("port-conflict", outcome="failed"),
                scenario("oom-kill", ttd=1.5, ttr=20.0),
            ),
            "| port-conflict | outcome | passed | failed | ❌ regressed |",
        ),
        (
            run("r2", scenario("port-conflict", ttd=6.0), scenario("oom-kill", ttd=1.5, ttr=20.0)),
            "| port-conflict | time to detect | 3.0s | 6.0s | ❌ regressed | +3.0s (tolerance 2.0s) |",
        ),
        (
            run("r2", scenario("port-conflict")),
            "| oom-kill | scenario | passed | — | ❌ missing | not in NEW |",
        ),
    ],
    ids=["passed-to-failed", "ttd-beyond-tolerance", "missing-scenario"],
)
def test_cli_exits_1_on_a_regression(tmp_path: Path, new: RunReport, row: str) -> None:
    old_dir, new_dir = write(tmp_path, BASE), write(tmp_path, new)
    markdown = tmp_path / "comment.md"
    result = gameday(old_dir, new_dir / "report.json", "--markdown", markdown, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "gameday compare: 1 regression (r1 → r2)" in result.stdout  # the table's title
    assert result.stdout.strip().splitlines()[-1] == "regressed: 1 regression (r1 → r2)"
    assert result.stderr == ""
    text = markdown.read_text()
    assert text.startswith("## ❌ Game day comparison: 1 regression (r1 → r2)")
    assert row in text


@pytest.mark.parametrize(
    ("new", "args", "verdict"),
    [
        # +1.9 s on detect, -2.0 on a score: within the default tolerances
        (
            run(
                "r2",
                scenario("port-conflict", ttd=4.9, score=88.0),
                scenario("oom-kill", ttd=1.5, ttr=20.0),
            ),
            (),
            "ok: no regressions (r1 → r2)",
        ),
        # +4 s on recovery is beyond max(2, 25 % of 10) unless the tolerance says otherwise
        (
            run("r2", scenario("port-conflict", ttr=14.0), scenario("oom-kill", ttd=1.5, ttr=20.0)),
            ("--tolerance-seconds", "5"),
            "ok: no regressions (r1 → r2)",
        ),
        (
            run("r2", scenario("port-conflict", ttr=14.0), scenario("oom-kill", ttd=1.5, ttr=20.0)),
            ("--tolerance-ratio", "0.5"),
            "ok: no regressions (r1 → r2)",
        ),
        (
            run(
                "r2", scenario("port-conflict", score=70.0), scenario("oom-kill", ttd=1.5, ttr=20.0)
            ),
            ("--score-tolerance", "25"),
            "ok: no regressions (r1 → r2)",
        ),
        # faster everywhere, and a new scenario
        (
            run(
                "r2",
                scenario("port-conflict", ttd=0.5, ttr=4.0),
                scenario("oom-kill", ttd=1.5, ttr=20.0),
                scenario("dns"),
            ),
            (),
            "ok: no regressions, 2 improvements (r1 → r2)",
        ),
    ],
    ids=["within-tolerance", "tolerance-seconds", "tolerance-ratio", "score-tolerance", "improved"],
)
def test_cli_exits_0_without_regressions(
    tmp_path: Path, new: RunReport, args: tuple[str, ...], verdict: str
) -> None:
    result = gameday(write(tmp_path, BASE), write(tmp_path, new), *args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == verdict


def test_cli_regression_without_tolerance_option(tmp_path: Path) -> None:
    """The counterpart of the tolerance cases above: the same run fails with the defaults."""
    new = run("r2", scenario("port-conflict", ttr=14.0), scenario("oom-kill", ttd=1.5, ttr=20.0))
    result = gameday(write(tmp_path, BASE), write(tmp_path, new), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr


def test_cli_markdown_to_stdout_replaces_the_table(tmp_path: Path) -> None:
    new = run(
        "r2", scenario("port-conflict", alert="failed"), scenario("oom-kill", ttd=1.5, ttr=20.0)
    )
    result = gameday(write(tmp_path, BASE), write(tmp_path, new), "--markdown", "-", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith("## ❌ Game day comparison: 1 regression (r1 → r2)\n")
    assert (
        "| port-conflict | expect[1] alert InferenceTargetDown firing | passed | failed | ❌ regressed |"
        in result.stdout
    )
    assert "gameday compare:" not in result.stdout  # no table
    assert result.stderr.strip() == "regressed: 1 regression (r1 → r2)"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "error: no such file or directory: {new}/report.json"),
        ("not-json", "error: {new}: not a valid report.json: Invalid JSON: "),
        (
            "not-a-report",
            "error: {new}: not a valid report.json: scenarios: Input should be a valid array",
        ),
    ],
)
def test_cli_exits_2_with_one_line_naming_the_file(
    tmp_path: Path, setup: str, message: str
) -> None:
    old = write(tmp_path, BASE) / "report.json"
    new = tmp_path / "new.json"
    if setup == "not-json":
        new.write_text('{"run_id": "r2",')
    elif setup == "not-a-report":
        new.write_text('{"scenarios": "port-conflict"}')
    missing_dir = tmp_path / "reports" / "r9"
    target = missing_dir if setup == "missing" else new
    if setup == "missing":
        missing_dir.mkdir()
    result = gameday(old, target, "--markdown", tmp_path / "comment.md", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(message.format(new=target)), lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "comment.md").exists()


def test_cli_missing_path_exits_2(tmp_path: Path) -> None:
    result = gameday(tmp_path / "nope", write(tmp_path, BASE), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: no such file or directory: {tmp_path / 'nope'}"
