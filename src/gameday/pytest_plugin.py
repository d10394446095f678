"""pytest plugin: scenario files are test items, so ``pytest scenarios/local`` runs a game day.

A YAML file is collected when it declares ``apiVersion: gameday/v1alpha1`` and
``kind: Scenario``; every other YAML file is left alone. Each scenario runs
for real, writes its reports under ``--gameday-report-dir`` and fails with the
evidence of every expectation that did not hold.

A scenario whose machine requirements are missing is skipped with the reason,
except in CI (``CI=true``), where a missing component is a failure — with one
exception: no NVIDIA GPU is a skip everywhere, since CI machines have none.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ScenarioFailed", "ScenarioFile", "ScenarioItem"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gameday", "llm-gameday scenarios")
    group.addoption(
        "--gameday-report-dir",
        default="reports/pytest",
        help="Where the reports of scenarios run as tests go (default: reports/pytest).",
    )


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    from gameday.scenario.loader import is_scenario_document

    if is_scenario_document(file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFailed(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        yield ScenarioItem.from_parent(self, name=self.path.stem)


class ScenarioItem(pytest.Item):
    def runtest(self) -> None:
        from gameday.engine.prepare import RunInputs, prepare_run
        from gameday.engine.requirements import missing_requirements, scenario_requirements
        from gameday.engine.runner import GameDay, RunOptions
        from gameday.reports import ReportBuilder, write_reports
        from gameday.scenario.model import Requirement

        # the path `gameday run` takes: what it would refuse, the item refuses the same way
        (loaded,) = prepare_run(RunInputs([self.path])).scenarios
        scenario = loaded.scenario
        missing = missing_requirements(scenario_requirements(scenario))
        if Requirement.NVIDIA_GPU in missing:
            pytest.skip(missing[Requirement.NVIDIA_GPU])
        if missing:
            reason = "; ".join(f"{r.value}: {why}" for r, why in missing.items())
            if os.environ.get("CI") == "true":
                pytest.fail(f"requirements missing in CI: {reason}", pytrace=False)
            pytest.skip(reason)

        builder = ReportBuilder()
        report_dir = Path(str(self.config.getoption("--gameday-report-dir")))
        result = GameDay([loaded], RunOptions(report_dir=report_dir), handlers=[builder]).run()
        written = write_reports(builder.report, result.run_dir)
        self.user_properties.append(("report", str(written["report.html"])))
        if result.outcome == "aborted":
            pytest.exit(
                f"{scenario.name}: aborted by a signal (everything was restored)", returncode=4
            )
        if result.outcome != "passed":
            lines = [f"{scenario.name}: {result.outcome}; report: {written['report.html']}"]
            for report in builder.report.scenarios:
                lines.append(report.reason)
                for expectation in report.failed_expectations():
                    lines.append(
                        f"  {expectation.phase}[{expectation.index}] {expectation.description}"
                    )
                    lines.extend(f"      {line}" for line in expectation.evidence)
            raise ScenarioFailed("\n".join(lines))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        from gameday.core.errors import GamedayError

        if isinstance(excinfo.value, ScenarioFailed):
            return excinfo.value.text
        if isinstance(excinfo.value, GamedayError):
            return f"{type(excinfo.value).__name__}: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, f"scenario: {self.name}"
