"""What a fault is to the runner: parameters, ``apply``, ``revert``, ``describe``.

Every change an injector makes goes through its :class:`ChangeSet`, which
writes the undo record to the journal before the change; the default
``revert`` runs those records newest first, exactly as ``gameday cleanup``
would after a crash.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Generic, Protocol, TypeVar

from gameday.core.changes import ChangeSet
from gameday.core.events import EventBus, Note
from gameday.core.registry import Registry, UnknownName
from gameday.scenario.model import FaultSpec, Requirement
from gameday.targets.base import Target

if TYPE_CHECKING:
    from gameday.load.protocol import LoadConfig

__all__ = ["FaultContext", "FaultRegistry", "Injector", "LoadControl", "fault_key", "faults"]

SpecT = TypeVar("SpecT", bound=FaultSpec)
TargetT = TypeVar("TargetT", bound=Target)


class LoadControl(Protocol):
    """What a fault may change of the running load (gameday.load.LoadDriver is one)."""

    @property
    def config(self) -> LoadConfig:
        """The load as the scenario started it (what a fault restores when it ends)."""
        ...

    def set_users(self, users: int, spawn_rate: float | None = None) -> None: ...

    def set_shape(self, prompt_tokens: int, max_tokens: int) -> None: ...


@dataclass
class FaultContext:
    """What a fault, or a remedy step, may use: its change set first of all."""

    scenario: str
    bus: EventBus
    changes: ChangeSet
    stop: threading.Event
    artifacts: Path
    load: LoadControl | None = None
    """The scenario's load, when it has a ``load:`` section."""

    def note(self, message: str, level: str = "info") -> None:
        self.bus.emit(Note(scenario=self.scenario, level=level, message=message))


class Injector(ABC, Generic[SpecT, TargetT]):
    Params: ClassVar[type[FaultSpec]]
    target_kinds: ClassVar[frozenset[str]]
    """Target kinds this fault works on."""
    requires: ClassVar[frozenset[Requirement]] = frozenset()
    runbook: ClassVar[str | None] = None
    """The runbook code of the failure it reproduces."""
    needs_load: ClassVar[bool] = False
    """It acts on the scenario's load: a scenario without ``load:`` is refused."""
    summary: ClassVar[str]
    """One line for ``gameday list``."""

    def __init__(self, spec: SpecT, target: TargetT, ctx: FaultContext) -> None:
        self.spec = spec
        self.target = target
        self.ctx = ctx

    @abstractmethod
    def apply(self) -> dict[str, str]:
        """Make the failure happen; return details worth reporting."""

    def revert(self) -> dict[str, str]:
        """Take every recorded change back, newest first."""
        results = self.ctx.changes.revert_all()
        return {f"undo {i + 1}": result for i, result in enumerate(results)}

    @classmethod
    @abstractmethod
    def describe(cls, spec: SpecT) -> str:
        """What applying ``spec`` will do, in one sentence (dry runs print it)."""

    @classmethod
    def needs_kube_system(cls, spec: SpecT) -> bool:
        """Whether applying ``spec`` changes objects in kube-system (CoreDNS): refused at
        plan time unless the target sets ``allow_kube_system`` and lists kube-system in
        ``namespaces``. Only faults that need it override this."""
        return False


def fault_key(target_kind: str, name: str) -> str:
    return f"{target_kind}/{name}"


class FaultRegistry(Registry[type[Injector]]):  # type: ignore[type-arg]
    """Faults keyed ``<target kind>/<name>``: a name such as ``oom-kill`` is a different
    fault, with parameters of its own, on each target kind (a memory cgroup on the local
    tier, a container limit on Kubernetes); the scenario's target picks which.

    ``register(name)`` and ``add(name, cls)`` file the class under each of its
    ``target_kinds``."""

    def add(self, name: str, item: type[Injector]) -> None:  # type: ignore[type-arg]
        """File ``item`` as ``name`` under each of its target kinds (a ``kind/name`` key
        is filed as it is)."""
        if "/" in name:
            super().add(name, item)
            return
        for kind in sorted(item.target_kinds):
            super().add(fault_key(kind, name), item)

    def lookup(self, target_kind: str, name: str) -> type[Injector]:  # type: ignore[type-arg]
        key = fault_key(target_kind, name)
        if key not in self:
            known = sorted(self.for_target(target_kind))
            raise UnknownName(f"fault for target {target_kind}", name, known)
        return self.get(key)

    def for_target(self, target_kind: str) -> dict[str, type[Injector]]:  # type: ignore[type-arg]
        """The faults a scenario on ``target_kind`` can name, by name."""
        prefix = fault_key(target_kind, "")
        return {
            key.removeprefix(prefix): item for key, item in self.items() if key.startswith(prefix)
        }

    def target_kinds_of(self, name: str) -> list[str]:
        """The target kinds a fault of this name exists for."""
        return sorted(key.split("/", 1)[0] for key, _ in self.items() if key.endswith(f"/{name}"))


faults = FaultRegistry("fault", "gameday.faults")
