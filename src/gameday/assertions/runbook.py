"""``runbook``: the diagnoser names this runbook code first for what the faults caused.

The diagnoser (:mod:`gameday.runbooks.diagnose`) reads every event since the phase
began (the first fault) and ranks the catalog entries whose signatures matched. The
expectation holds at the first moment ``code`` alone leads that ranking, and quotes the
evidence that put it there. At the deadline a wrong diagnosis fails with what was
diagnosed instead and the evidence for both.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from gameday.assertions.base import Expectation, ExpectationContext, Verdict, expectations
from gameday.core.errors import UsageError
from gameday.core.observations import Observations
from gameday.runbooks import load_catalog
from gameday.runbooks.diagnose import Diagnoser, Diagnosis
from gameday.scenario.model import RUNBOOK_CODE_PATTERN, ExpectationParams

__all__ = ["RunbookExpectation", "RunbookParams"]


class RunbookParams(ExpectationParams):
    code: str = Field(pattern=RUNBOOK_CODE_PATTERN)
    """The catalog code the failure must be diagnosed as (``gameday list runbooks``)."""

    @field_validator("code")
    @classmethod
    def _known(cls, value: str) -> str:
        try:
            load_catalog().get(value)
        except UsageError as error:
            raise ValueError(str(error)) from None
        return value

    def describe(self) -> str:
        return f"diagnosed as runbook {self.code}"


def _evidence(diagnosis: Diagnosis, since: float) -> list[str]:
    return [e.quote(since) for e in diagnosis.evidence]


@expectations.register("runbook")
class RunbookExpectation(Expectation[RunbookParams]):
    Params = RunbookParams
    summary = "The runbook diagnosis: this code ranks first for what was observed since the faults."

    def __init__(self, params: RunbookParams, ctx: ExpectationContext) -> None:
        super().__init__(params, ctx)
        self.diagnoser = Diagnoser(load_catalog())
        self._fed = 0
        self._checked: tuple[int, float] | None = None

    def _catch_up(self, observed: Observations) -> None:
        self.diagnoser.feed(observed.events[self._fed :])
        self._fed = len(observed.events)

    def check(self, observed: Observations, since: float) -> Verdict:
        self._catch_up(observed)
        seen = (len(self.diagnoser.matches), since)
        if self._checked == seen:
            return Verdict.pending()  # nothing new matched since the last look
        self._checked = seen
        at = self.diagnoser.first_on_top(self.params.code, since)
        if at is None:
            return Verdict.pending()
        ranking = self.diagnoser.ranking(since, at)
        top = ranking[0]
        lines = [f"diagnosed {top.summary()}", *_evidence(top, since)]
        if len(ranking) > 1:
            lines.append("ahead of " + ", ".join(f"{d.code} ({d.score:.2f})" for d in ranking[1:4]))
        reporters = tuple(dict.fromkeys(e.reporter for e in top.evidence if e.reporter))
        return Verdict.held(at, *lines, reporters=reporters)

    def explain(self, observed: Observations, since: float) -> list[str]:
        self._catch_up(observed)
        ranking = self.diagnoser.ranking(since)
        if not ranking:
            return [
                f"nothing observed since the faults matched a specific signature of any "
                f"runbook; expected {self.params.code}"
            ]
        top = ranking[0]
        lines = [f"diagnosed {top.summary()} instead of {self.params.code}", *_evidence(top, since)]
        wanted = next((d for d in ranking if d.code == self.params.code), None)
        if wanted is None:
            lines.append(f"{self.params.code} matched no specific signature")
        else:
            lines.append(f"{self.params.code} ranked {ranking.index(wanted) + 1}:")
            lines.extend(_evidence(wanted, since))
        return lines
