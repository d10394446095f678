"""What got worse between two game-day runs: the regression gate behind ``gameday compare``.

A single run says whether the system held this time; comparing it with an earlier
run says whether a change made it slower to notice a failure, slower to recover,
or stopped a check from holding, even when both runs still "passed".

Rules (each a :class:`Change` with a :class:`Verdict`):

* scenarios are matched by name; one in OLD but not in NEW is ``missing`` (a
  regression: a scenario that no longer reports cannot be said to hold), one only
  in NEW is ``new`` (listed, not a regression);
* a scenario ``skipped`` in either run is ``not compared`` (nothing was measured);
* outcome: passed is better than failed, failed better than error or aborted;
* expectations are matched by phase, index and description: passed to failed is a
  regression, failed to passed an improvement; one that passed in OLD and has no
  result in NEW is ``missing`` (unless NEW's scenario ended in an error, which its
  outcome row already says);
* time to detect / recover: a regression when NEW is larger than OLD by more than
  ``max(seconds, ratio * OLD)``, or when NEW has none (it did not detect/recover);
* scores (per scenario and the suite's): a drop of more than ``score`` points.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from pydantic import ValidationError
from rich.table import Table
from rich.text import Text

from gameday.core.errors import InputError
from gameday.reports.model import ExpectationResult, RunReport, ScenarioReport

__all__ = [
    "SUITE",
    "Change",
    "Comparison",
    "Tolerances",
    "Verdict",
    "compare_reports",
    "comparison_markdown",
    "comparison_table",
    "load_report",
]

SUITE = "(suite)"
"""The ``scenario`` of changes about the whole run (a scenario name is a DNS label)."""

_OUTCOME_RANK = {"passed": 2, "failed": 1, "error": 0, "aborted": 0}
"""Higher is better; outcomes not listed here (skipped, unknown) are not compared."""

_ENDED_BADLY = frozenset({"error", "aborted"})


class Verdict(StrEnum):
    """How one measured thing moved from OLD to NEW."""

    REGRESSED = "regressed"
    MISSING = "missing"
    IMPROVED = "improved"
    NEW = "new"
    NOT_COMPARED = "not compared"
    UNCHANGED = "unchanged"

    @property
    def is_regression(self) -> bool:
        return self in (Verdict.REGRESSED, Verdict.MISSING)


_ORDER = {verdict: rank for rank, verdict in enumerate(Verdict)}
_ICON = {
    Verdict.REGRESSED: "❌",
    Verdict.MISSING: "❌",
    Verdict.IMPROVED: "✅",
    Verdict.NEW: "🆕",
    Verdict.NOT_COMPARED: "⏭️",
    Verdict.UNCHANGED: "",
}
_STYLE = {
    Verdict.REGRESSED: "bold red",
    Verdict.MISSING: "bold red",
    Verdict.IMPROVED: "green",
    Verdict.NEW: "cyan",
    Verdict.NOT_COMPARED: "dim",
    Verdict.UNCHANGED: "",
}


@dataclass(frozen=True)
class Tolerances:
    """How much worse NEW may be before it counts: runs on real machines jitter."""

    seconds: float = 2.0
    """Absolute slack for time to detect / recover."""
    ratio: float = 0.25
    """Relative slack for time to detect / recover, as a fraction of OLD."""
    score: float = 5.0
    """Slack for resilience scores, in points (0-100)."""

    def __post_init__(self) -> None:
        for name in ("seconds", "ratio", "score"):
            if getattr(self, name) < 0:
                raise ValueError(f"tolerance {name} must not be negative")

    def allowed_seconds(self, old: float) -> float:
        """The slack for a duration whose OLD value was ``old``."""
        return max(self.seconds, self.ratio * old)


Value = str | float | None


@dataclass(frozen=True)
class Change:
    """One measured thing of one scenario (or of the suite) in OLD and in NEW."""

    scenario: str
    what: str
    """outcome, time to detect, time to recover, score, or an expectation's name."""
    old: Value
    new: Value
    verdict: Verdict
    note: str = ""
    """Why, in a few words (the delta and the tolerance it was judged against)."""
    unit: str = ""

    @property
    def regressed(self) -> bool:
        return self.verdict.is_regression

    def show(self, value: Value) -> str:
        """``value`` (``old`` or ``new``) as a reader wants it."""
        if value is None:
            return "—"
        if isinstance(value, float):
            return f"{value:.1f}{self.unit}"
        return value


@dataclass(frozen=True)
class Comparison:
    """Every change between two runs; ``regressions`` decides the exit code."""

    old_run: str
    new_run: str
    tolerances: Tolerances
    changes: tuple[Change, ...] = field(default_factory=tuple)
    scenarios: int = 0
    """How many scenarios are in either run."""

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.regressed]

    @property
    def improvements(self) -> list[Change]:
        return [c for c in self.changes if c.verdict is Verdict.IMPROVED]

    def shown(self) -> list[Change]:
        """The changes worth a row: all but the unchanged, regressions first."""
        rows = [c for c in self.changes if c.verdict is not Verdict.UNCHANGED]
        return sorted(rows, key=lambda c: _ORDER[c.verdict])

    def headline(self) -> str:
        runs = f"{self.old_run or 'OLD'} → {self.new_run or 'NEW'}"
        improved = len(self.improvements)
        tail = f", {improved} improvement{'' if improved == 1 else 's'}" if improved else ""
        count = len(self.regressions)
        if count:
            return f"{count} regression{'' if count == 1 else 's'}{tail} ({runs})"
        return f"no regressions{tail} ({runs})"


def load_report(path: Path) -> RunReport:
    """A run's report from its folder (``reports/<run-id>/``) or its report.json.

    Raises InputError (exit 2) with one line naming the file."""
    file = path / "report.json" if path.is_dir() else path
    if not file.exists():
        raise InputError(f"no such file or directory: {file}")
    try:
        data = file.read_bytes()
    except OSError as error:
        raise InputError(f"{file}: cannot read: {error.strerror or error}") from None
    try:
        return RunReport.model_validate_json(data)
    except ValidationError as error:
        problems = error.errors(include_url=False)
        first = problems[0]
        where = ".".join(str(part) for part in first["loc"])
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        detail = f"{where}: {first['msg']}" if where else first["msg"]
        raise InputError(f"{file}: not a valid report.json: {detail}{more}") from None


def _by_name(scenarios: Iterable[ScenarioReport]) -> dict[str, ScenarioReport]:
    found: dict[str, ScenarioReport] = {}
    for scenario in scenarios:
        found.setdefault(scenario.name, scenario)
    return found


def _outcome(old: ScenarioReport, new: ScenarioReport) -> Change:
    before, after = _OUTCOME_RANK.get(old.outcome), _OUTCOME_RANK.get(new.outcome)
    if before is None or after is None:
        return Change(old.name, "outcome", old.outcome, new.outcome, Verdict.NOT_COMPARED)
    if after < before:
        verdict = Verdict.REGRESSED
    elif after > before:
        verdict = Verdict.IMPROVED
    else:
        verdict = Verdict.UNCHANGED
    note = new.reason if verdict is Verdict.REGRESSED else ""
    return Change(old.name, "outcome", old.outcome, new.outcome, verdict, note)


def _duration(
    scenario: str, what: str, old: float | None, new: float | None, tolerances: Tolerances
) -> Change | None:
    if old is None and new is None:
        return None
    if old is None:
        return Change(scenario, what, old, new, Verdict.IMPROVED, "now measured", "s")
    if new is None:
        return Change(scenario, what, old, new, Verdict.REGRESSED, "no longer reached", "s")
    delta, allowed = new - old, tolerances.allowed_seconds(old)
    note = f"{delta:+.1f}s (tolerance {allowed:.1f}s)"
    if delta > allowed:
        verdict = Verdict.REGRESSED
    elif -delta > allowed:
        verdict = Verdict.IMPROVED
    else:
        verdict = Verdict.UNCHANGED
    return Change(scenario, what, old, new, verdict, note, "s")


def _score(
    scenario: str, old: float | None, new: float | None, tolerances: Tolerances
) -> Change | None:
    """Scores are None when nothing was scored (skipped, or an older report): not compared."""
    if old is None or new is None:
        return None
    delta = new - old
    note = f"{delta:+.1f} (tolerance {tolerances.score:g})"
    if -delta > tolerances.score:
        verdict = Verdict.REGRESSED
    elif delta > tolerances.score:
        verdict = Verdict.IMPROVED
    else:
        verdict = Verdict.UNCHANGED
    return Change(scenario, "score", old, new, verdict, note)


def _key(expectation: ExpectationResult) -> tuple[str, int, str]:
    return (expectation.phase, expectation.index, expectation.description)


def _expectations(old: ScenarioReport, new: ScenarioReport) -> Iterator[Change]:
    after = {_key(e): e for e in new.expectations}
    before = {_key(e): e for e in old.expectations}
    for key, was in before.items():
        now = after.get(key)
        if now is None:
            if was.outcome == "passed" and new.outcome not in _ENDED_BADLY:
                yield Change(old.name, was.name, was.outcome, None, Verdict.MISSING, "no result")
            continue
        if was.outcome == now.outcome:
            yield Change(old.name, was.name, was.outcome, now.outcome, Verdict.UNCHANGED)
        elif was.outcome == "passed" and now.outcome == "failed":
            evidence = now.evidence[0] if now.evidence else ""
            yield Change(old.name, was.name, was.outcome, now.outcome, Verdict.REGRESSED, evidence)
        elif was.outcome == "failed" and now.outcome == "passed":
            yield Change(old.name, was.name, was.outcome, now.outcome, Verdict.IMPROVED)
        # skipped on either side: it was not evaluated, so there is nothing to judge
    for key, now in after.items():
        if key not in before:
            yield Change(new.name, now.name, None, now.outcome, Verdict.NEW)


def _scenario(old: ScenarioReport, new: ScenarioReport, tolerances: Tolerances) -> Iterator[Change]:
    outcome = _outcome(old, new)
    yield outcome
    if outcome.verdict is Verdict.NOT_COMPARED:
        return
    yield from _expectations(old, new)
    for what, before, after in (
        ("time to detect", old.time_to_detect_s, new.time_to_detect_s),
        ("time to recover", old.time_to_recover_s, new.time_to_recover_s),
    ):
        change = _duration(old.name, what, before, after, tolerances)
        if change is not None:
            yield change
    score = _score(old.name, old.score, new.score, tolerances)
    if score is not None:
        yield score


def compare_reports(
    old: RunReport, new: RunReport, tolerances: Tolerances | None = None
) -> Comparison:
    """Every change from ``old`` to ``new``, judged against ``tolerances``. Pure."""
    tolerances = tolerances or Tolerances()
    before, after = _by_name(old.scenarios), _by_name(new.scenarios)
    changes: list[Change] = []
    for name, was in before.items():
        now = after.get(name)
        if now is None:
            changes.append(
                Change(name, "scenario", was.outcome, None, Verdict.MISSING, "not in NEW")
            )
        else:
            changes.extend(_scenario(was, now, tolerances))
    for name, now in after.items():
        if name not in before:
            changes.append(Change(name, "scenario", None, now.outcome, Verdict.NEW))
    suite = _score(SUITE, old.score, new.score, tolerances)
    if suite is not None:
        changes.append(suite)
    return Comparison(
        old_run=old.run_id,
        new_run=new.run_id,
        tolerances=tolerances,
        changes=tuple(changes),
        scenarios=len(before.keys() | after.keys()),
    )


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def comparison_markdown(comparison: Comparison) -> str:
    """A headline and a table of what changed, for a pull-request comment."""
    icon = "❌" if comparison.regressions else "✅"
    t = comparison.tolerances
    lines = [
        f"## {icon} Game day comparison: {comparison.headline()}",
        "",
        f"{comparison.scenarios} scenario(s); tolerances: times "
        f"max({t.seconds:g}s, {t.ratio:.0%} of OLD), scores {t.score:g} points.",
        "",
    ]
    rows = comparison.shown()
    if not rows:
        lines.append("Nothing changed beyond the tolerances.")
        return "\n".join(lines) + "\n"
    lines += [
        "| scenario | what | old | new | verdict | note |",
        "|---|---|---|---|---|---|",
    ]
    for c in rows:
        cells = (
            c.scenario,
            c.what,
            c.show(c.old),
            c.show(c.new),
            f"{_ICON[c.verdict]} {c.verdict.value}".strip(),
            c.note,
        )
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def comparison_table(comparison: Comparison) -> Table:
    """The same rows as the Markdown, for the terminal (text from runs is never markup)."""
    title = Text(f"gameday compare: {comparison.headline()}")
    table = Table(title=title, title_justify="left")
    for column in ("scenario", "what", "old", "new", "verdict", "note"):
        table.add_column(column, overflow="fold")
    for c in comparison.shown():
        table.add_row(
            Text(c.scenario),
            Text(c.what),
            Text(c.show(c.old)),
            Text(c.show(c.new)),
            Text(c.verdict.value, style=_STYLE[c.verdict]),
            Text(c.note, style="dim"),
        )
    return table
