"""What every target offers the runner: bring the system up, say where it is, take it down."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from gameday.core.errors import UsageError
from gameday.core.events import EventBus
from gameday.core.journal import Journal
from gameday.core.registry import Registry
from gameday.scenario.model import Requirement, TargetParams

__all__ = ["Endpoints", "RuleOptions", "Target", "TargetContext", "targets"]


@dataclass(frozen=True)
class Endpoints:
    server: str
    """Base URL of the serving endpoint (OpenAI-compatible)."""
    prometheus: str | None = None
    alertmanager: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    api_key: str | None = field(default=None, repr=False)
    """The bearer token the serving endpoint asks for (a server's ``--api-key``), which
    the load sends; never written anywhere (see :mod:`gameday.core.redact`)."""

    def placeholders(self) -> dict[str, str]:
        values = {"server": self.server, **self.extra}
        if self.prometheus:
            values["prometheus"] = self.prometheus
        if self.alertmanager:
            values["alertmanager"] = self.alertmanager
        return values


@dataclass
class TargetContext:
    scenario: str
    run_id: str
    journal: Journal
    bus: EventBus
    scenario_dir: Path
    """Directory of the scenario file: relative paths in the scenario resolve against it."""
    artifacts: Path
    """This scenario's folder in the report directory (logs, generated configs)."""
    stop: threading.Event
    """Set when the run is being aborted: long waits must give up promptly."""
    kube_context: str | None = None
    """``--context``: the cluster context to use, and one the run may use."""
    prometheus: str | None = None
    """``--prometheus``: the URL of a cluster's Prometheus, instead of the scenario's."""
    alertmanager: str | None = None


@dataclass(frozen=True)
class RuleOptions:
    """Alert rules given on the command line, for every scenario of a run."""

    files: tuple[Path, ...] = ()
    """Rule files or PrometheusRule manifests, loaded next to the scenario's own."""
    bundled: bool = True
    """False: leave the harness's bundled rules out."""
    time_compression: float | None = None
    """Replaces the scenario's factor when given."""


class Target(ABC):
    kind: ClassVar[str]
    Params: ClassVar[type[TargetParams]]
    requires: ClassVar[frozenset[Requirement]] = frozenset()

    @abstractmethod
    def __init__(self, params: TargetParams, ctx: TargetContext) -> None: ...

    @classmethod
    def requirements(cls, params: TargetParams) -> frozenset[Requirement]:
        """What this target needs of the machine with these parameters."""
        del params
        return cls.requires

    @classmethod
    def preflight(cls, params: TargetParams, kube_context: str | None) -> None:
        """Refuse, before anything of the run starts, what the parameters and the command
        line do not allow (raise UsageError). May read local files; never a cluster."""
        del params, kube_context

    @classmethod
    def check_files(
        cls, params: TargetParams, scenario_dir: Path
    ) -> list[tuple[tuple[str | int, ...], str]]:
        """Problems with the local files the parameters name (a model directory), as
        (field path within the target's parameters, message): ``validate`` reports them,
        so a run never starts on one. May read local files; never a process or cluster."""
        del params, scenario_dir
        return []

    @abstractmethod
    def up(self) -> None:
        """Start or connect to the system under test and its monitoring; wait until ready."""

    @abstractmethod
    def down(self) -> None:
        """Stop what ``up`` started. Must be safe to call after a partial ``up``."""

    @property
    @abstractmethod
    def endpoints(self) -> Endpoints: ...

    @classmethod
    def with_engine(cls, params: TargetParams, engine: str) -> TargetParams:
        """``params`` with the server's engine swapped (``run --engine``); only a target
        that runs the server itself can."""
        del params
        raise UsageError(f"--engine {engine}: the {cls.kind} target does not run the server")

    @property
    def startup_seconds(self) -> float:
        """How long the system under test took to become ready when it came up: what a
        ``startup`` in a scenario's deadlines and durations counts for. 0 where unknown."""
        return 0.0

    @classmethod
    def with_rules(cls, params: TargetParams, options: RuleOptions) -> TargetParams:
        """``params`` with the command line's rules; a tier whose Prometheus is not ours
        (a cluster's) cannot take them."""
        del params, options
        raise UsageError(
            f"the {cls.kind} target evaluates its own Prometheus' rules; "
            "--rules, --no-bundled-rules and --time-compression apply to the local tier"
        )

    def check_serving(self, timeout: float) -> str:
        """Is the system serving (before the faults; after an abort's restore)? In words.

        Raises a GamedayError when it is not, within ``timeout``."""
        del timeout
        return "not checked on this tier"

    def simulated(self) -> list[str]:
        """What on this tier is simulated rather than real, for the report."""
        return []

    def provenance(self, reporter: str) -> str:
        """``real``, or how a component that reported an observation is simulated here."""
        del reporter
        return "real"


targets: Registry[type[Target]] = Registry("target", "gameday.targets")
