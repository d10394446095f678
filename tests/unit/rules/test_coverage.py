"""Alert coverage: which alerting rules the scenarios fire, resolve, leave alone or misname."""

from __future__ import annotations

from pathlib import Path

import pytest

from gameday.coverage.alerts import (
    END_MARKER,
    START_MARKER,
    AlertUse,
    Coverage,
    CoverageError,
    alert_coverage,
    coverage_markdown,
    coverage_table,
    expected_readme_block,
    main,
    readme_block,
    replace_readme_block,
    scenario_table,
    undefined_table,
    update_readme,
)
from gameday.plugins import catalog
from gameday.scenario.loader import LoadedScenario, parse_scenario
from gameday.scenario.model import Phase

REPO = Path(__file__).resolve().parents[3]

RULES = """\
groups:
  - name: serving
    labels:
      team: inference
    rules:
      - alert: TargetDown
        expr: up == 0
        for: 1m
        labels: {severity: critical, runbook: NETWORK001}
      - record: job:up:sum
        expr: sum(up)
      - alert: QueueLong
        expr: queue > 50
        labels: {severity: warning}
  - name: latency
    rules:
      - alert: SlowFirstToken
        expr: ttft > 5
        labels: {severity: warning, runbook: SlowTimeToFirstToken}
"""

OTHER_RULES = """\
groups:
  - name: pods
    labels: {runbook: CrashLoopBackOff}
    rules:
      - alert: PodCrashLooping
        expr: crashloop == 1
        labels: {severity: critical}
"""


def scenario(name: str, steady: str = "", expect: str = "", recover: str = "") -> str:
    def block(key: str, items: str) -> str:
        return f"{key}:\n{items}" if items else ""

    return "\n".join(
        part
        for part in (
            "apiVersion: gameday/v1alpha1",
            "kind: Scenario",
            f"metadata: {{name: {name}, runbook: NETWORK001}}",
            "target: {local: {}}",
            block("steady_state", steady),
            "faults: [{name: kill, type: process-kill, at: 1s}]",
            block("expect", expect),
            block("recover", recover),
        )
        if part
    )


def alert(name: str, state: str) -> str:
    return f"  - alert: {{name: {name}, state: {state}}}\n"


def parse(tmp_path: Path, file: str, text: str) -> LoadedScenario:
    path = tmp_path / "scenarios" / file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return parse_scenario(text, str(path), catalog())


@pytest.fixture
def rule_files(tmp_path: Path) -> list[Path]:
    serving = tmp_path / "rules" / "serving.yml"
    pods = tmp_path / "rules" / "pods.yml"
    serving.parent.mkdir()
    serving.write_text(RULES, encoding="utf-8")
    pods.write_text(OTHER_RULES, encoding="utf-8")
    return [serving, pods]


@pytest.fixture
def coverage(tmp_path: Path, rule_files: list[Path]) -> Coverage:
    scenarios = [
        parse(
            tmp_path,
            "kill.yaml",
            scenario(
                "kill",
                steady=alert("TargetDown", "inactive"),
                expect=alert("TargetDown", "firing") + alert("TargetDwn", "firing"),
                recover=alert("TargetDown", "inactive"),
            ),
        ),
        parse(
            tmp_path,
            "quiet.yaml",
            scenario("quiet", steady=alert("QueueLong", "inactive")),
        ),
        parse(
            tmp_path,
            "early.yaml",
            scenario(
                "early",
                steady=alert("SlowFirstToken", "pending"),
                recover=alert("TargetDown", "firing") + alert("Nonsense", "inactive"),
            ),
        ),
    ]
    return alert_coverage(scenarios, rule_files)


def test_each_alerting_rule_is_listed_with_its_file_group_and_labels(
    coverage: Coverage, rule_files: list[Path]
) -> None:
    listed = [(a.name, a.file, a.group, a.severity, a.runbook) for a in coverage.alerts]
    assert listed == [
        ("TargetDown", rule_files[0], "serving", "critical", "NETWORK001"),
        ("QueueLong", rule_files[0], "serving", "warning", None),
        ("SlowFirstToken", rule_files[0], "latency", "warning", "SlowTimeToFirstToken"),
        ("PodCrashLooping", rule_files[1], "pods", "critical", "CrashLoopBackOff"),
    ]


def test_firing_and_pending_count_as_fired_with_their_phase(
    coverage: Coverage, tmp_path: Path
) -> None:
    by_name = {a.name: a for a in coverage.alerts}
    scenarios = tmp_path / "scenarios"
    assert by_name["TargetDown"].fired_by == (
        AlertUse("kill", scenarios / "kill.yaml", "local", (Phase.EXPECT,), ("firing",)),
        AlertUse("early", scenarios / "early.yaml", "local", (Phase.RECOVER,), ("firing",)),
    )
    assert by_name["SlowFirstToken"].fired_by == (
        AlertUse("early", scenarios / "early.yaml", "local", (Phase.STEADY_STATE,), ("pending",)),
    )


def test_inactive_is_resolution_and_never_counts_as_fired(
    coverage: Coverage, tmp_path: Path
) -> None:
    by_name = {a.name: a for a in coverage.alerts}
    scenarios = tmp_path / "scenarios"
    target_down = by_name["TargetDown"]
    assert target_down.resolution_checked_by == (
        AlertUse(
            "kill",
            scenarios / "kill.yaml",
            "local",
            (Phase.STEADY_STATE, Phase.RECOVER),
            ("inactive",),
        ),
    )
    assert target_down.inactive_only == ()
    queue = by_name["QueueLong"]
    assert queue.fired_by == ()
    assert [use.scenario for use in queue.inactive_only] == ["quiet"]
    assert queue.exercised
    assert [a.name for a in coverage.never_fired] == ["QueueLong"]
    assert [a.name for a in coverage.fired] == ["TargetDown", "SlowFirstToken"]


def test_unexercised_alerts(coverage: Coverage) -> None:
    assert [a.name for a in coverage.unexercised] == ["PodCrashLooping"]


def test_undefined_alerts_name_the_scenario_file_and_the_closest_rule(
    coverage: Coverage, tmp_path: Path
) -> None:
    undefined = {u.name: u for u in coverage.undefined}
    assert list(undefined) == ["TargetDwn", "Nonsense"]
    assert undefined["TargetDwn"].closest == "TargetDown"
    assert [(u.file.name, u.phases, u.states) for u in undefined["TargetDwn"].uses] == [
        ("kill.yaml", (Phase.EXPECT,), ("firing",))
    ]
    assert undefined["Nonsense"].closest is None
    assert undefined["Nonsense"].uses[0].file == tmp_path / "scenarios" / "early.yaml"


def test_closest_name_ignores_case_first(tmp_path: Path, rule_files: list[Path]) -> None:
    loaded = parse(tmp_path, "case.yaml", scenario("case", expect=alert("targetdown", "firing")))
    result = alert_coverage([loaded], rule_files)
    assert [(u.name, u.closest) for u in result.undefined] == [("targetdown", "TargetDown")]


def test_scenarios_carry_their_tier_and_alerts(coverage: Coverage) -> None:
    summaries = [(s.name, s.tier, s.runbook, s.fires, s.inactive) for s in coverage.scenarios]
    assert summaries == [
        ("kill", "local", "NETWORK001", ("TargetDown", "TargetDwn"), ("TargetDown",)),
        ("quiet", "local", "NETWORK001", (), ("QueueLong",)),
        ("early", "local", "NETWORK001", ("SlowFirstToken", "TargetDown"), ("Nonsense",)),
    ]


def test_markdown_rows(coverage: Coverage, tmp_path: Path) -> None:
    assert coverage_markdown(coverage, relative_to=tmp_path).splitlines() == [
        "2 of 4 alerting rules are expected to fire by 3 scenarios.",
        "",
        "| alert | rule file | fired by | resolution checked by | runbook |",
        "|---|---|---|---|---|",
        "| `TargetDown` | `rules/serving.yml` | `kill`, `early` (recover) | `kill` | NETWORK001 |",
        "| `QueueLong` | `rules/serving.yml` | — | `quiet` (steady_state) | — |",
        "| `SlowFirstToken` | `rules/serving.yml` | `early` (steady_state, pending) | — "
        "| SlowTimeToFirstToken |",
        "| `PodCrashLooping` | `rules/pods.yml` | — | — | CrashLoopBackOff |",
        "",
        "Never exercised (1):",
        "",
        "- `PodCrashLooping` (`rules/pods.yml`)",
        "",
        "Only expected inactive, never to fire (1):",
        "",
        "- `QueueLong` (`rules/serving.yml`): `quiet` (steady_state)",
        "",
        "Expected but not defined (2):",
        "",
        "- `TargetDwn` in `scenarios/kill.yaml` (firing in expect); did you mean `TargetDown`?",
        "- `Nonsense` in `scenarios/early.yaml` (inactive in recover); no rule is close",
    ]


def test_markdown_when_everything_is_covered(tmp_path: Path, rule_files: list[Path]) -> None:
    loaded = parse(
        tmp_path,
        "all.yaml",
        scenario("all", expect=alert("PodCrashLooping", "firing")),
    )
    result = alert_coverage([loaded], rule_files[1:])
    assert coverage_markdown(result, relative_to=tmp_path).splitlines()[-3:] == [
        "Never exercised: none.",
        "",
        "Expected but not defined: none.",
    ]


def test_repeated_scenario_names_are_shown_by_file(tmp_path: Path, rule_files: list[Path]) -> None:
    first = parse(tmp_path, "local/a.yaml", scenario("same", expect=alert("QueueLong", "firing")))
    second = parse(tmp_path, "kwok/a.yaml", scenario("same", expect=alert("QueueLong", "firing")))
    markdown = coverage_markdown(alert_coverage([first, second], rule_files), relative_to=tmp_path)
    assert (
        "| `QueueLong` | `rules/serving.yml` | `scenarios/local/a.yaml`, "
        "`scenarios/kwok/a.yaml` | — | — |" in markdown.splitlines()
    )


def test_rich_tables(coverage: Coverage, tmp_path: Path) -> None:
    table = coverage_table(coverage, relative_to=tmp_path)
    assert [c.header for c in table.columns] == [
        "alert",
        "severity",
        "rule file",
        "fired by",
        "resolution checked by",
        "runbook",
    ]
    assert list(table.columns[0].cells) == [a.name for a in coverage.alerts]
    assert next(iter(table.columns[3].cells)) == "kill, early (recover)"
    assert list(scenario_table(coverage).columns[2].cells) == ["local", "local", "local"]
    undefined = undefined_table(coverage)
    assert undefined is not None
    assert list(undefined.columns[4].cells) == ["TargetDown", "—"]
    empty = Coverage(coverage.alerts, coverage.scenarios, ())
    assert undefined_table(empty) is None


def test_readme_block_is_replaced_between_the_markers() -> None:
    text = f"# t\n\nbefore\n{START_MARKER}\nold\n{END_MARKER}\nafter\n"
    updated = replace_readme_block(text, "| new |\n")
    assert updated.startswith(f"# t\n\nbefore\n{START_MARKER}\n")
    assert updated.endswith(f"| new |\n{END_MARKER}\nafter\n")
    assert "old" not in updated
    assert readme_block(updated).endswith("\n\n| new |\n")
    assert replace_readme_block(updated, "| new |\n") == updated


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no markers\n", f"no {START_MARKER} and no {END_MARKER} marker"),
        (f"{START_MARKER}\n", f"no {END_MARKER} marker"),
        (f"{END_MARKER}\n{START_MARKER}\n", "comes before"),
        (f"{START_MARKER}{START_MARKER}{END_MARKER}\n", "once each"),
    ],
)
def test_missing_or_misplaced_markers_are_an_error(text: str, message: str) -> None:
    with pytest.raises(CoverageError, match=message):
        readme_block(text, source="README.md")


def test_update_readme_writes_the_bundled_coverage(tmp_path: Path) -> None:
    (tmp_path / "scenarios").symlink_to(REPO / "scenarios")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{START_MARKER}\n{END_MARKER}\n", encoding="utf-8")
    assert update_readme(readme) is True
    block = readme_block(readme.read_text(encoding="utf-8"))
    assert "| `InferenceTargetDown` |" in block
    assert "`port-conflict`" in block
    assert update_readme(readme) is False


def test_main_fails_clearly_without_markers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n", encoding="utf-8")
    assert main(["--update-readme", str(readme)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {readme}: no {START_MARKER} and no {END_MARKER} marker")
    assert readme.read_text(encoding="utf-8") == "# no markers\n"


# Enforced on purpose: README.md must carry the coverage markers and the table
# `make coverage-doc` generates now. Missing markers are a failure, not a skip.
def test_readme_coverage_table_is_current() -> None:
    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    try:
        current = readme_block(text, source=str(readme))
    except CoverageError as error:
        pytest.fail(f"README.md coverage table is stale: run `make coverage-doc` ({error})")
    assert current == expected_readme_block(REPO), (
        "README.md coverage table is stale: run `make coverage-doc`"
    )
