"""Typed Prometheus rule files: groups of alerting and recording rules.

The models follow Prometheus' own rule-file format (``rulefmt``) and refuse what
``promtool check rules`` refuses without parsing PromQL: unknown fields, a rule that
is both or neither alert and record, ``for`` or annotations on a recording rule,
malformed durations, a group name used twice in one file. Durations stay strings in
Prometheus' spelling so that a file written back reads as it was written.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from gameday.core.errors import InputError
from gameday.rules.durations import prometheus_duration_ms

__all__ = [
    "PrometheusDuration",
    "Rule",
    "RuleError",
    "RuleFile",
    "RuleGroup",
]


class RuleError(InputError):
    """A rule file cannot be read or a rule cannot be used; the message names the file."""


def _scalar_text(value: Any) -> Any:
    # YAML reads `for: 0`, `expr: 1` or `priority: 2` as numbers; Prometheus takes them as text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _check_duration(value: str) -> str:
    prometheus_duration_ms(value)
    return value


Text = Annotated[str, BeforeValidator(_scalar_text)]
PrometheusDuration = Annotated[str, BeforeValidator(_scalar_text), AfterValidator(_check_duration)]
"""A duration as Prometheus spells it (``5m``, ``1h30m``), kept as written."""


class Rule(BaseModel):
    """One alerting (``alert``) or recording (``record``) rule."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    alert: str | None = None
    record: str | None = None
    expr: Text = Field(min_length=1)
    for_: PrometheusDuration | None = Field(default=None, alias="for")
    keep_firing_for: PrometheusDuration | None = None
    labels: dict[str, Text] = Field(default_factory=dict)
    annotations: dict[str, Text] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _alert_or_record(self) -> Rule:
        if (self.alert is None) == (self.record is None):
            raise ValueError("a rule needs exactly one of 'alert' and 'record'")
        if not (self.alert or self.record):
            raise ValueError("a rule's 'alert' or 'record' name must not be empty")
        if self.record is not None:
            for field in ("for_", "keep_firing_for"):
                if getattr(self, field) is not None:
                    raise ValueError(f"a recording rule cannot have '{field.rstrip('_')}'")
            if self.annotations:
                raise ValueError("a recording rule cannot have 'annotations'")
        return self

    @property
    def kind(self) -> Literal["alert", "record"]:
        return "alert" if self.alert is not None else "record"

    @property
    def name(self) -> str:
        """The alert name, or the recorded series' name."""
        name = self.alert if self.alert is not None else self.record
        assert name is not None  # guaranteed by the validator
        return name

    def to_document(self) -> dict[str, Any]:
        """The rule as a rule file writes it, in Prometheus' key order, empty keys left out."""
        out: dict[str, Any] = {self.kind: self.name, "expr": self.expr}
        if self.for_ is not None:
            out["for"] = self.for_
        if self.keep_firing_for is not None:
            out["keep_firing_for"] = self.keep_firing_for
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


class RuleGroup(BaseModel):
    """A named group of rules evaluated together at the group's interval."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    interval: PrometheusDuration | None = None
    query_offset: PrometheusDuration | None = None
    limit: int | None = Field(default=None, ge=0)
    labels: dict[str, Text] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)

    @property
    def alerts(self) -> list[Rule]:
        return [rule for rule in self.rules if rule.kind == "alert"]

    def to_document(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.interval is not None:
            out["interval"] = self.interval
        if self.query_offset is not None:
            out["query_offset"] = self.query_offset
        if self.limit is not None:
            out["limit"] = self.limit
        if self.labels:
            out["labels"] = dict(self.labels)
        out["rules"] = [rule.to_document() for rule in self.rules]
        return out


class RuleFile(BaseModel):
    """A whole Prometheus rule file: ``groups:`` and nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    groups: list[RuleGroup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_group_names(self) -> RuleFile:
        seen: set[str] = set()
        for group in self.groups:
            if group.name in seen:
                raise ValueError(f"group name {group.name!r} is repeated in the same file")
            seen.add(group.name)
        return self
