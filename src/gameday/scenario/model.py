"""The typed scenario model, ``apiVersion: gameday/v1alpha1``, ``kind: Scenario``.

This layer is pure: it knows pydantic and nothing of processes, HTTP, Locust or
Kubernetes. Targets, faults and expectation kinds are extension points; their
parameter models live with their implementations and reach this module through
a :class:`Catalog`, from which :func:`scenario_model` builds the concrete
``Scenario`` model (and with it the JSON Schema editors use).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    create_model,
    model_validator,
)

from gameday.scenario.units import Duration, Span, SpanValue

__all__ = [
    "API_VERSION",
    "DEFAULT_DEADLINES",
    "Budget",
    "Catalog",
    "ExpectationEntry",
    "ExpectationParams",
    "FaultSpec",
    "LoadSpec",
    "Metadata",
    "Phase",
    "RemedySpec",
    "Requirement",
    "Scenario",
    "Severity",
    "StrictModel",
    "TargetEntry",
    "TargetParams",
    "ThinkTime",
    "deadline_of",
    "resolve_span",
    "scenario_model",
]

API_VERSION = "gameday/v1alpha1"
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
RUNBOOK_CODE_PATTERN = r"^[A-Z][A-Z0-9_-]*[0-9]{3}$|^[A-Z][A-Za-z0-9]+$"


class StrictModel(BaseModel):
    """Unknown fields are errors: a typo in a scenario must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Phase(StrEnum):
    STEADY_STATE = "steady_state"
    EXPECT = "expect"
    RECOVER = "recover"


DEFAULT_DEADLINES = {Phase.STEADY_STATE: 30.0, Phase.EXPECT: 60.0, Phase.RECOVER: 120.0}
"""Seconds an expectation without ``within`` gets, counted from the start of its phase."""


class Severity(StrEnum):
    """How much an expectation matters: its weight in the resilience score."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class Requirement(StrEnum):
    """What a scenario needs of the machine; checked before anything starts."""

    ROOT = "root"
    CGROUP_MEMORY = "cgroup-memory"
    NETNS = "netns"
    DNSMASQ = "dnsmasq"
    NVIDIA_GPU = "nvidia-gpu"


class Metadata(StrictModel):
    name: str = Field(pattern=NAME_PATTERN, max_length=63)
    """A DNS-label-style name: it names the scenario in reports and JUnit."""
    description: str = ""
    runbook: str | None = Field(default=None, pattern=RUNBOOK_CODE_PATTERN)
    """The runbook code this scenario reproduces (e.g. NETWORK001)."""
    labels: dict[str, str] = Field(default_factory=dict)


class ThinkTime(StrictModel):
    min: Duration = 0.1
    max: Duration = 0.5

    @model_validator(mode="after")
    def _ordered(self) -> ThinkTime:
        if self.max < self.min:
            raise ValueError("think_time.max must not be below think_time.min")
        return self


class LoadSpec(StrictModel):
    """Locust load against the serving endpoint, running for the whole experiment."""

    profile: Literal["openai-chat", "openai-completions"] = "openai-chat"
    users: int = Field(default=8, ge=1, le=5000)
    spawn_rate: float = Field(default=8.0, gt=0)
    stream: bool = True
    prompt_tokens: int = Field(default=32, ge=1, le=1_000_000)
    """Approximate prompt length, in words the simulator counts as tokens."""
    max_tokens: int = Field(default=32, ge=1, le=1_000_000)
    think_time: ThinkTime = Field(default_factory=ThinkTime)
    """Pause of each simulated user between requests."""
    request_timeout: Duration = 30.0
    model: str | None = None
    """Model name to request; default: the first one the server lists at /v1/models."""


class ExpectationParams(StrictModel):
    """Fields every expectation kind has."""

    within: Span | None = None
    """Deadline, counted from the start of the phase (first fault for expect, end of the
    faults for recover). Defaults: steady_state 30s, expect 60s, recover 120s. Add
    ``startup`` where the server must start again first (``30s + startup``): the runner
    counts it as the server's start-up time it measured."""
    severity: Severity = Severity.CRITICAL
    """Weight in the resilience score: critical 3, warning 2, info 1."""

    def describe(self) -> str:  # pragma: no cover - every kind overrides it
        return type(self).__name__


class ExpectationEntry(StrictModel):
    """One item of steady_state, expect or recover: a mapping with one key, the kind."""

    kind: ClassVar[str]
    params: ExpectationParams


class Budget(StrictModel):
    """Time the runbook allows; the report sets time to detect and to recover against it."""

    detect: Duration | None = None
    """From the first fault to the first expectation that held (an alert, preferably).
    Default: the latest deadline of ``expect``."""
    recover: Duration | None = None
    """From the end of the faults to the last recovery expectation that held.
    Default: the latest deadline of ``recover``."""


class RemedySpec(StrictModel):
    """Fix the failure the way its runbook says, instead of reverting the faults.

    Once every ``expect`` item is resolved (the failure was detected and diagnosed), the
    runner runs the catalog's remediation for ``runbook``: each step this target can
    take, in the runbook's order. Steps for a human, and steps the runbook makes
    conditional (``when:``), are listed in the report and not run. The faults it fixes
    are given no ``duration``: they stay until the remedy ends them. Time to recover is
    measured from the remedy's start against the runbook's budget."""

    runbook: str = Field(pattern=RUNBOOK_CODE_PATTERN)
    """The catalog code whose remediation to run (``gameday list runbooks``)."""
    actions: list[str] | None = None
    """Only these step kinds (``free-port``, ``raise-memory-limit``); default: every
    unconditional step this target can run."""


class TargetParams(StrictModel):
    """Fields every target kind has (none yet); a base for their models."""

    def describe(self) -> str:
        """What the run will act on, in a few words (dry runs print it)."""
        return ""


class TargetEntry(StrictModel):
    kind: ClassVar[str]
    params: TargetParams


class FaultSpec(StrictModel):
    """Fields every fault has; a fault's own parameters sit beside them."""

    name: str = Field(pattern=NAME_PATTERN, max_length=63)
    type: str
    at: Duration = 0.0
    """Offset from the start of the experiment (once steady state held)."""
    duration: Span | None = None
    """How long the fault stays applied before it is reverted. Omit for one-shot faults
    (a kill): they are 'reverted' by the system's own recovery. ``startup`` counts the
    server's measured start-up time (``startup + 20s``: long enough to fail a restart)."""

    def describe(self) -> str:
        return self.type


@dataclass(frozen=True)
class Catalog:
    """The extension models a scenario can name, by kind."""

    targets: Mapping[str, type[TargetParams]] = field(default_factory=dict)
    faults: Mapping[str, Mapping[str, type[FaultSpec]]] = field(default_factory=dict)
    """By target kind, then fault name: a name may be a different fault on each kind."""
    expectations: Mapping[str, type[ExpectationParams]] = field(default_factory=dict)

    def cache_key(self) -> tuple[tuple[str, int], ...]:
        faults = {f"{kind}/{name}": m for kind, by in self.faults.items() for name, m in by.items()}
        return tuple(
            (f"{family}:{name}", id(model))
            for family, mapping in (
                ("t", self.targets),
                ("f", faults),
                ("e", self.expectations),
            )
            for name, model in sorted(mapping.items())
        )

    def fault_target_kinds(self, name: str) -> list[str]:
        """The target kinds that have a fault of this name."""
        return sorted(kind for kind, by_name in self.faults.items() if name in by_name)


class Scenario(StrictModel):
    """Base of the concrete model :func:`scenario_model` builds; typed for the engine."""

    api_version: Literal["gameday/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["Scenario"]
    metadata: Metadata
    requires: list[Requirement] = Field(default_factory=list)
    target: TargetEntry
    load: LoadSpec | None = None
    steady_state: list[ExpectationEntry] = Field(default_factory=list)
    faults: list[FaultSpec] = Field(default_factory=list)
    expect: list[ExpectationEntry] = Field(default_factory=list)
    recover: list[ExpectationEntry] = Field(default_factory=list)
    budget: Budget = Field(default_factory=Budget)
    remedy: RemedySpec | None = None
    cooldown: Duration | None = None
    """Pause after this scenario before the next one of a suite starts; default: the
    run's ``--cooldown``."""

    model_config = ConfigDict(populate_by_name=True)

    @model_validator(mode="after")
    def _unique_fault_names(self) -> Scenario:
        seen: set[str] = set()
        for fault in self.faults:
            if fault.name in seen:
                raise ValueError(f"two faults are named {fault.name!r}; names must be unique")
            seen.add(fault.name)
        return self

    @property
    def name(self) -> str:
        return self.metadata.name

    def detect_budget(self) -> float | None:
        if self.budget.detect is not None:
            return self.budget.detect
        return _latest_deadline(Phase.EXPECT, self.expect)

    def recover_budget(self) -> float | None:
        if self.budget.recover is not None:
            return self.budget.recover
        return _latest_deadline(Phase.RECOVER, self.recover)


def deadline_of(phase: Phase, entry: ExpectationEntry, startup: float = 0.0) -> float:
    """Seconds the expectation has, its start-ups counted as ``startup`` seconds each."""
    within = entry.params.within
    if within is None:
        return DEFAULT_DEADLINES[phase]
    return resolve_span(within, startup)


def resolve_span(value: float, startup: float) -> float:
    """A ``Span`` in seconds, each start-up counted as ``startup`` seconds."""
    return value.resolve(startup) if isinstance(value, SpanValue) else float(value)


def _latest_deadline(phase: Phase, entries: list[ExpectationEntry]) -> float | None:
    return max((deadline_of(phase, e) for e in entries), default=None)


def _single_key(value: Any) -> str | None:
    """The kind of a one-key mapping (validation) or of a built entry (serialisation)."""
    if isinstance(value, ExpectationEntry | TargetEntry):
        return value.kind
    if isinstance(value, Mapping) and len(value) == 1:
        key = next(iter(value))
        return key if isinstance(key, str) else None
    return None


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[-_]", name))


def _keyed_union(family: str, base: type[BaseModel], models: Mapping[str, type[BaseModel]]) -> Any:
    """A union of one-key mappings ``{kind: params}``, dispatched on the key."""
    if not models:
        raise ValueError(f"no {family} kinds are registered")
    variants = []
    for kind, params_model in sorted(models.items()):
        wrapper = create_model(
            f"{_camel(kind)}{_camel(family)}",
            __base__=base,
            params=(params_model, Field(alias=kind)),
        )
        wrapper.kind = kind  # type: ignore[attr-defined]
        variants.append(Annotated[wrapper, Tag(kind)])
    return Annotated[
        Union[tuple(variants)],  # noqa: UP007 - built at run time
        Discriminator(
            _single_key,
            custom_error_type="unknown_kind",
            custom_error_message=(
                f"expected a mapping with one key naming the {family} kind "
                f"({', '.join(sorted(models))})"
            ),
            custom_error_context={"family": family, "known": ", ".join(sorted(models))},
        ),
    ]


def _fault_union(target_kind: str, models: Mapping[str, type[FaultSpec]]) -> Any:
    if not models:
        return FaultSpec
    variants = []
    for kind, params_model in sorted(models.items()):
        variant = create_model(
            f"{_camel(target_kind)}{_camel(kind)}Fault",
            __base__=params_model,
            type=(Literal[kind], Field(description=f"fault type {kind}")),  # type: ignore[arg-type]
        )
        variants.append(variant)
    if len(variants) == 1:
        return variants[0]
    return Annotated[Union[tuple(variants)], Field(discriminator="type")]  # noqa: UP007


_MODELS: dict[tuple[object, ...], type[Scenario]] = {}


def _build(catalog: Catalog, target_kind: str | None) -> type[Scenario]:
    if target_kind is None:
        # the target is missing or unknown: report that, not faults nobody could pick yet
        target = _keyed_union("target", TargetEntry, catalog.targets)
        fault: Any = dict[str, Any]
        name = "Scenario"
    else:
        target = _keyed_union("target", TargetEntry, {target_kind: catalog.targets[target_kind]})
        fault = _fault_union(target_kind, catalog.faults.get(target_kind, {}))
        name = f"{_camel(target_kind)}Scenario"
    expectation = _keyed_union("expectation", ExpectationEntry, catalog.expectations)
    model: type[Scenario] = create_model(
        name,
        __base__=Scenario,
        target=(target, ...),
        steady_state=(list[expectation], Field(default_factory=list)),  # type: ignore[valid-type]
        faults=(list[fault], Field(default_factory=list)),
        expect=(list[expectation], Field(default_factory=list)),  # type: ignore[valid-type]
        recover=(list[expectation], Field(default_factory=list)),  # type: ignore[valid-type]
    )
    return model


def scenario_model(catalog: Catalog, target_kind: str | None = None) -> type[Scenario]:
    """The concrete Scenario model for a target kind: its faults are that kind's (a fault
    name may mean a different fault on another kind). Without a kind (the scenario's
    target is missing or unknown), a model that checks everything but the faults."""
    if target_kind is not None and target_kind not in catalog.targets:
        target_kind = None
    key = (*catalog.cache_key(), target_kind)
    if key not in _MODELS:
        _MODELS[key] = _build(catalog, target_kind)
    return _MODELS[key]
