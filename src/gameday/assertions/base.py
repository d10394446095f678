"""What an expectation kind is to the runner: a predicate over observations, with a deadline.

``check`` is called whenever something new was observed (and at least a few
times a second); it answers met (with when, and the evidence) or not yet. At
the deadline the runner asks ``explain`` for the evidence of a failure: what
was seen instead.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar

from gameday.core.observations import Observations
from gameday.core.registry import Registry
from gameday.scenario.model import ExpectationParams, StrictModel

__all__ = ["Bound", "Expectation", "ExpectationContext", "Verdict", "clock", "expectations"]

ParamsT = TypeVar("ParamsT", bound=ExpectationParams)


def clock(ts: float, origin: float) -> str:
    """A wall time as an offset from the phase start: '+12.3s'."""
    return f"{ts - origin:+.1f}s"


class Bound(StrictModel):
    """A value range; either end may be open."""

    min: float | None = None
    max: float | None = None

    def holds(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def __str__(self) -> str:
        if self.min is not None and self.max is not None:
            return f"between {self.min:g} and {self.max:g}"
        if self.min is not None:
            return f">= {self.min:g}"
        if self.max is not None:
            return f"<= {self.max:g}"
        return "any value"


@dataclass(frozen=True)
class Verdict:
    met: bool
    at: float | None = None
    evidence: tuple[str, ...] = ()
    reporters: tuple[str, ...] = ()
    """Who reported what made it hold, when that depends on what was seen (an Event's
    reporting component); else the expectation's ``reported_by``."""

    @classmethod
    def pending(cls) -> Verdict:
        return cls(False)

    @classmethod
    def held(cls, at: float, *evidence: str, reporters: tuple[str, ...] = ()) -> Verdict:
        return cls(True, at, evidence, reporters)


@dataclass
class ExpectationContext:
    scenario: str
    placeholders: dict[str, str] = field(default_factory=dict)
    """{server}, {prometheus}, {alertmanager} and the like, for URLs in parameters."""

    def expand(self, text: str) -> str:
        for key, value in self.placeholders.items():
            text = text.replace("{" + key + "}", value)
        return text


class Expectation(ABC, Generic[ParamsT]):
    Params: ClassVar[type[ExpectationParams]]
    summary: ClassVar[str]

    def __init__(self, params: ParamsT, ctx: ExpectationContext) -> None:
        self.params = params
        self.ctx = ctx

    @abstractmethod
    def check(self, observed: Observations, since: float) -> Verdict:
        """Has it held at some time at or after ``since`` (wall clock)?"""

    @abstractmethod
    def explain(self, observed: Observations, since: float) -> list[str]:
        """Evidence for a failure: what was observed instead."""

    def describe(self) -> str:
        return self.params.describe()

    def reported_by(self) -> tuple[str, ...]:
        """The components whose reports this expectation reads (kubelet, kube-scheduler,
        prometheus): the report says which of them are real and which simulated."""
        return ()

    @staticmethod
    def now() -> float:
        return time.time()


expectations: Registry[type[Expectation]] = Registry("expectation kind", "gameday.expectations")  # type: ignore[type-arg]
