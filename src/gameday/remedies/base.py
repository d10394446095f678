"""What a remediation step is to the runner, and which steps of a runbook a target can take.

A step is the catalog's typed action (:data:`gameday.runbooks.model.Action`) carried out
on one tier by a :class:`Remedy` registered as ``<tier>/<kind>`` (``local/free-port``).
Like a fault it changes the system, so every change it makes goes through its
:class:`ChangeSet`: recorded in the journal before it is made, reverted at teardown and
by ``gameday cleanup``. :func:`plan_remedy` decides, before anything runs, which steps
of an entry run and why the others do not.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from gameday.core.registry import Registry
from gameday.injectors.base import FaultContext
from gameday.runbooks.model import Action, Entry
from gameday.targets.base import Target

__all__ = ["PlannedStep", "Remedy", "plan_remedy", "remedies", "remedy_key"]

ActionT = TypeVar("ActionT")
TargetT = TypeVar("TargetT", bound=Target)


class Remedy(ABC, Generic[ActionT, TargetT]):
    kind: ClassVar[str]
    """The catalog action kind it carries out (``free-port``)."""
    summary: ClassVar[str]

    def __init__(self, action: ActionT, target: TargetT, ctx: FaultContext) -> None:
        self.action = action
        self.target = target
        self.ctx = ctx

    @abstractmethod
    def apply(self) -> dict[str, str]:
        """Take the step; return what it did, for the report."""

    def undo(self) -> list[str]:
        """Take back what the step recorded, newest first (teardown; ``gameday cleanup``
        does the same from the journal after a crash)."""
        return self.ctx.changes.revert_all()

    @classmethod
    def cannot(cls, action: ActionT) -> str | None:
        """Why this tier cannot take this particular step (it names something the tier
        does not have), or None."""
        return None

    @classmethod
    @abstractmethod
    def describe(cls, action: ActionT) -> str:
        """What the step will do, in one sentence (dry runs print it)."""


remedies: Registry[type[Remedy]] = Registry("remedy step", "gameday.remedies")  # type: ignore[type-arg]
"""Keyed ``<target kind>/<action kind>``: the same runbook step is different code per tier."""


def remedy_key(target_kind: str, action_kind: str) -> str:
    return f"{target_kind}/{action_kind}"


@dataclass(frozen=True)
class PlannedStep:
    index: int
    action: Action
    remedy: type[Remedy] | None  # type: ignore[type-arg]
    skip: str | None
    """Why the step is not run; None when it is."""

    @property
    def runs(self) -> bool:
        return self.skip is None

    def describe(self) -> str:
        if self.remedy is not None:
            return f"{self.action.kind}: {self.remedy.describe(self.action)}"
        text = getattr(self.action, "text", None)
        if text is None:
            fields = self.action.model_dump(
                exclude={"kind", "when", "note"}, exclude_none=True, exclude_defaults=True
            )
            text = ", ".join(f"{key} {value}" for key, value in fields.items())
        return f"{self.action.kind}: {text}" if text else self.action.kind


def plan_remedy(entry: Entry, target_kind: str, only: Sequence[str] | None) -> list[PlannedStep]:
    """Every step of ``entry``'s remediation, each either run or skipped with the reason.

    Runs: the steps this target can take, unconditional ones by default, or exactly the
    kinds in ``only``. Skipped: a human's step, a conditional step not asked for, a step
    not chosen, a step this target cannot take."""
    steps = []
    for index, action in enumerate(entry.remediation):
        key = remedy_key(target_kind, action.kind)
        remedy = remedies.get(key) if key in remedies else None
        skip: str | None = None
        if action.kind == "manual":
            skip = "a step for a human"
        elif only is None and action.when:
            skip = f"conditional: {action.when}"
        elif only is not None and action.kind not in only:
            skip = "not chosen (remedy.actions)"
        elif remedy is None:
            skip = f"the {target_kind} target cannot take this step"
        elif (reason := remedy.cannot(action)) is not None:
            skip, remedy = reason, None
        steps.append(PlannedStep(index, action, remedy, skip))
    return steps
