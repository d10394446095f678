"""Errors raised by llm-gameday.

Errors are for things that stop the harness from doing its job. A failed
expectation is not an error: it is a finding, carried as a result in the
report (an expectation's ``failed`` outcome, ``gameday.reports.model``).

    GamedayError                    every error of ours; ``exit_code`` says how the CLI ends
    ├── InputError                  exit 2: the user gave something we cannot use
    │   ├── ScenarioError           a scenario file is invalid (file, line, column, field path)
    │   ├── UsageError              a command line that makes no sense
    │   └── UnknownName             a name no registered extension has (core/registry.py)
    ├── EnvironmentProblem          exit 3: the machine lacks or cannot reach what a run needs
    │   ├── ComponentMissing        a binary or library is not installed
    │   ├── ComponentUnreachable    a component did not come up or stopped answering
    │   └── PermissionProblem       the run needs root (cgroups, network namespaces)
    ├── InjectionError              exit 3: a fault could not be applied or reverted
    │   └── RevertFailed            a recorded change could not be taken back (core/undo.py)
    └── Aborted                     exit 4: a signal stopped the run (after restoring)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Aborted",
    "ComponentMissing",
    "ComponentUnreachable",
    "EnvironmentProblem",
    "ExitCode",
    "GamedayError",
    "InjectionError",
    "InputError",
    "PermissionProblem",
    "ScenarioError",
    "ScenarioIssue",
    "UsageError",
]


class ExitCode:
    """The process exit codes of the ``gameday`` command (DESIGN.md, Contracts)."""

    PASSED = 0
    FAILED = 1
    INVALID = 2
    ENVIRONMENT = 3
    ABORTED = 4


class GamedayError(Exception):
    exit_code: int = ExitCode.ENVIRONMENT


class InputError(GamedayError):
    exit_code = ExitCode.INVALID


@dataclass(frozen=True)
class ScenarioIssue:
    """One problem found in a scenario file, located as precisely as the YAML allows."""

    file: str
    line: int | None
    column: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class ScenarioError(InputError):
    def __init__(self, issues: list[ScenarioIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


class UsageError(InputError):
    pass


class EnvironmentProblem(GamedayError):
    exit_code = ExitCode.ENVIRONMENT


class ComponentMissing(EnvironmentProblem):
    pass


class ComponentUnreachable(EnvironmentProblem):
    pass


class PermissionProblem(EnvironmentProblem):
    pass


class InjectionError(GamedayError):
    exit_code = ExitCode.ENVIRONMENT


class Aborted(GamedayError):
    exit_code = ExitCode.ABORTED

    def __init__(self, signal_name: str) -> None:
        self.signal_name = signal_name
        super().__init__(f"aborted by {signal_name}")
