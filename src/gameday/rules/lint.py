"""Can each rule ever fire? Alert rules checked against the metrics a target really exposes.

``lint(load_rules(paths), sources)`` takes every rule of the files (plain rule files or
PrometheusRule manifests), finds the series selectors of its expression and checks
them against what the sources expose: a /metrics endpoint or a Prometheus server
(``connect(url)``), or a saved /metrics text (``read_metrics_file(path)``). A rule gets
a finding, and so can never fire, when:

- ``unknown-metric``: a metric it selects is exposed by no source and recorded by no
  rule of the files; the suggestion is the closest exposed name (a counter's missing
  ``_total``, a histogram's ``_bucket``, a vLLM metric renamed in a release, a typo);
- ``unknown-label``: a label matcher names a label that no series of the metric has;
- ``label-value``: a label matcher that no value seen on the metric satisfies, nor a
  value its exporter is known to emit (``status="5xx"`` before any error happened);
- ``invalid``: ``promtool check rules`` (or, without promtool, the PromQL parser)
  refuses the rule.

Not findings (they are *notes*): selectors only inside ``absent()`` and
``absent_over_time()``, which are written to select nothing; matchers on ``job``,
``instance`` and other labels Prometheus attaches when it scrapes (a /metrics endpoint
cannot show them); metrics that are declared (``# TYPE``) but have no series yet, and
series recorded by rules, whose labels cannot be known in advance. Expressions are
parsed by ``promql-parser`` (Rust's promql-parser crate, through PyO3).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import promql_parser
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from gameday.core.errors import (
    ComponentMissing,
    ComponentUnreachable,
    EnvironmentProblem,
    UsageError,
)
from gameday.rules.loader import load_rule_file, write_rule_file
from gameday.rules.model import Rule, RuleGroup

__all__ = [
    "ABSENT_FUNCTIONS",
    "KNOWN_LABEL_VALUES",
    "VLLM_EQUIVALENTS",
    "VLLM_REMOVED",
    "VLLM_RENAMES",
    "ExpositionSource",
    "Finding",
    "LabelMatcher",
    "LintReport",
    "PromQLSyntaxError",
    "PrometheusSource",
    "Rename",
    "RuleResult",
    "Selector",
    "Source",
    "Suggestion",
    "connect",
    "extract_selectors",
    "find_promtool",
    "lint",
    "load_rules",
    "promtool_errors",
    "read_metrics_file",
    "suggest_label",
    "suggest_metric",
    "suggest_value",
]

# -- selectors --------------------------------------------------------------------------

MatchOp = Literal["=", "!=", "=~", "!~"]

ABSENT_FUNCTIONS = frozenset({"absent", "absent_over_time"})
"""Functions that are true when their argument selects nothing."""


class PromQLSyntaxError(ValueError):
    """The expression is not PromQL the parser understands."""


# The parser's MatchOp values compare equal but are not hashable.
_OPS: tuple[tuple[Any, MatchOp], ...] = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)


def _op(native: Any) -> MatchOp:
    for candidate, text in _OPS:
        if native == candidate:
            return text
    raise PromQLSyntaxError(f"unknown label match operator {native!r}")


@dataclass(frozen=True)
class LabelMatcher:
    """``name op "value"``; regular expressions are anchored at both ends, as in PromQL."""

    name: str
    op: MatchOp
    value: str

    def __str__(self) -> str:
        return f"{self.name}{self.op}{_quote(self.value)}"

    def matches(self, value: str) -> bool:
        """Whether a series whose label ``name`` is ``value`` ("" when absent) is selected.

        Raises ``re.error`` for a regular expression Python cannot compile."""
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        hit = re.fullmatch(self.value, value, re.DOTALL) is not None
        return hit if self.op == "=~" else not hit


@dataclass(frozen=True)
class Selector:
    """One series selector of an expression."""

    metric: str | None
    """The metric name, written as ``name{...}`` or ``{__name__="name"}``; None otherwise."""
    matchers: tuple[LabelMatcher, ...]
    """Every other matcher, ``__name__`` regular expressions and negations included."""
    in_absent: bool = False
    """Only inside ``absent()``/``absent_over_time()``: meant to select nothing."""

    @property
    def name_matchers(self) -> tuple[LabelMatcher, ...]:
        return tuple(m for m in self.matchers if m.name == "__name__")

    @property
    def label_matchers(self) -> tuple[LabelMatcher, ...]:
        return tuple(m for m in self.matchers if m.name != "__name__")

    def __str__(self) -> str:
        inner = ", ".join(map(str, self.matchers))
        return f"{self.metric or ''}{{{inner}}}" if inner else (self.metric or "{}")


def extract_selectors(expr: str) -> list[Selector]:
    """The series selectors of ``expr`` in order of appearance (repeats included).

    Function names, keywords, grouping labels (``by``, ``without``, ``on``,
    ``ignoring``, ``group_left``), durations and literals are not selectors. Raises
    :class:`PromQLSyntaxError` when the expression does not parse."""
    try:
        tree = promql_parser.parse(expr)
    except ValueError as exc:
        raise PromQLSyntaxError(str(exc)) from exc
    found: list[Selector] = []
    _visit(tree, False, found)
    return found


def _visit(node: Any, in_absent: bool, out: list[Selector]) -> None:
    if isinstance(node, promql_parser.VectorSelector):
        out.extend(_selectors_of(node, in_absent))
    elif isinstance(node, promql_parser.MatrixSelector):
        _visit(node.vector_selector, in_absent, out)
    elif isinstance(node, promql_parser.Call):
        inner = in_absent or node.func.name in ABSENT_FUNCTIONS
        for arg in node.args:
            _visit(arg, inner, out)
    elif isinstance(node, promql_parser.AggregateExpr):
        if isinstance(node.param, promql_parser.Expr):
            _visit(node.param, in_absent, out)
        _visit(node.expr, in_absent, out)
    elif isinstance(node, promql_parser.BinaryExpr):
        _visit(node.lhs, in_absent, out)
        _visit(node.rhs, in_absent, out)
    elif isinstance(
        node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr
    ):
        _visit(node.expr, in_absent, out)
    # Number and string literals select nothing.


def _selectors_of(node: promql_parser.VectorSelector, in_absent: bool) -> Iterator[Selector]:
    # `{a="1" or b="2"}` (an extension of the parser's): one selector per alternative.
    groups = node.matchers.or_matchers or [node.matchers.matchers]
    for group in groups:
        metric = node.name
        matchers: list[LabelMatcher] = []
        for m in group:
            matcher = LabelMatcher(m.name, _op(m.op), m.value)
            if matcher.name == "__name__" and matcher.op == "=" and metric is None:
                metric = matcher.value
            else:
                matchers.append(matcher)
        yield Selector(metric, tuple(matchers), in_absent)


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


# -- what is known about the names ----------------------------------------------------


@dataclass(frozen=True)
class Rename:
    """A vLLM metric renamed in a release: the old name's successor and its history."""

    new: str
    history: str


VLLM_RENAMES: dict[str, Rename] = {
    # vllm/v1/metrics/loggers.py: "Deprecated in 0.9.2 - Renamed as vllm:kv_cache_usage_perc.
    # With 0.11.x you can enable with --show-hidden-metrics-for-version=0.10"; gone in 0.12.
    "vllm:gpu_cache_usage_perc": Rename(
        "vllm:kv_cache_usage_perc",
        "renamed in vLLM 0.9.2; the old name is hidden from 0.11 and removed in 0.12",
    ),
    "vllm:gpu_prefix_cache_queries": Rename(
        "vllm:prefix_cache_queries",
        "renamed in vLLM 0.9.2; the old name is hidden from 0.11 and removed in 0.12",
    ),
    "vllm:gpu_prefix_cache_hits": Rename(
        "vllm:prefix_cache_hits",
        "renamed in vLLM 0.9.2; the old name is hidden from 0.11 and removed in 0.12",
    ),
    # "Deprecated in 0.11 - Renamed as vllm:inter_token_latency_seconds" (the help text
    # says DEPRECATED from 0.10.2); hidden behind --show-hidden-metrics-for-version in 0.12.
    "vllm:time_per_output_token_seconds": Rename(
        "vllm:inter_token_latency_seconds",
        "renamed in vLLM 0.11; the old name is hidden from 0.12, then removed",
    ),
}
"""Old vLLM metric name -> its successor (base names: suffixes such as _bucket carry over)."""

VLLM_REMOVED: dict[str, str] = {
    "vllm:avg_prompt_throughput_toks_per_s": "rate(vllm:prompt_tokens_total[1m])",
    "vllm:avg_generation_throughput_toks_per_s": "rate(vllm:generation_tokens_total[1m])",
    "vllm:gpu_prefix_cache_hit_rate": (
        "rate(vllm:prefix_cache_hits_total[5m]) / rate(vllm:prefix_cache_queries_total[5m])"
    ),
    "vllm:cpu_cache_usage_perc": "",
    "vllm:cpu_prefix_cache_hit_rate": "",
    "vllm:num_requests_swapped": "",
}
"""vLLM V0 engine metrics the V1 engine does not export -> what to write instead, if anything."""

VLLM_EQUIVALENTS: dict[str, str] = {
    "vllm:num_requests_waiting": "sglang:num_queue_reqs",
    "vllm:num_requests_running": "sglang:num_running_reqs",
    "vllm:kv_cache_usage_perc": "sglang:token_usage",
    "vllm:num_preemptions": "sglang:num_retracted_requests",
    "vllm:prompt_tokens": "sglang:prompt_tokens",
    "vllm:generation_tokens": "sglang:generation_tokens",
    "vllm:time_to_first_token_seconds": "sglang:time_to_first_token_seconds",
    "vllm:inter_token_latency_seconds": "sglang:inter_token_latency_seconds",
    "vllm:e2e_request_latency_seconds": "sglang:e2e_request_latency_seconds",
}
"""The same measurement under vLLM's and SGLang's names (base names), for rules written
for one engine and pointed at the other."""

_EQUIVALENTS = {**VLLM_EQUIVALENTS, **{b: a for a, b in VLLM_EQUIVALENTS.items()}}

_STATUS_CLASSES = frozenset({"1xx", "2xx", "3xx", "4xx", "5xx"})
_WAITING_REASONS = frozenset(
    {
        "ContainerCreating",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
    }
)
_TERMINATED_REASONS = frozenset(
    {"Completed", "ContainerCannotRun", "DeadlineExceeded", "Error", "Evicted", "OOMKilled"}
)

KNOWN_LABEL_VALUES: dict[tuple[str, str], frozenset[str]] = {
    # prometheus-fastapi-instrumentator, as vLLM configures it: status codes grouped.
    ("http_requests_total", "status"): _STATUS_CLASSES,
    ("http_request_duration_seconds_bucket", "status"): _STATUS_CLASSES,
    # vLLM's FinishReason; 0.32 exposes all five from the start, older releases on first use.
    ("vllm:request_success_total", "finished_reason"): frozenset(
        {"stop", "length", "abort", "error", "repetition"}
    ),
    # kube-state-metrics: reasons and phases appear when a pod gets there.
    ("kube_pod_container_status_waiting_reason", "reason"): _WAITING_REASONS,
    ("kube_pod_container_status_last_terminated_reason", "reason"): _TERMINATED_REASONS,
    ("kube_pod_container_status_terminated_reason", "reason"): _TERMINATED_REASONS,
    ("kube_pod_init_container_status_waiting_reason", "reason"): _WAITING_REASONS,
    ("kube_pod_status_phase", "phase"): frozenset(
        {"Pending", "Running", "Succeeded", "Failed", "Unknown"}
    ),
    ("kube_persistentvolumeclaim_status_phase", "phase"): frozenset({"Pending", "Bound", "Lost"}),
    ("kube_pod_status_ready", "condition"): frozenset({"true", "false", "unknown"}),
    ("kube_node_status_condition", "status"): frozenset({"true", "false", "unknown"}),
}
"""(metric, label) -> values its exporter emits only once something happens: a matcher on
one of them is not a finding before it has been seen (it is a note)."""

_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created", "_info")


def _split_suffix(name: str) -> tuple[str, str]:
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], suffix
    return name, ""


@dataclass(frozen=True)
class Suggestion:
    """What to write instead, and why."""

    replacement: str | None
    reason: str


def suggest_metric(name: str, exposed: Mapping[str, str]) -> Suggestion | None:
    """The closest of the ``exposed`` names (name -> family type) for a missing ``name``."""
    base, suffix = _split_suffix(name)
    old, carried = (name, "") if name in VLLM_RENAMES else (base, suffix)
    rename = VLLM_RENAMES.get(old)
    renamed = rename.new + carried if rename is not None else None
    if rename is not None and renamed is not None:
        for candidate in (renamed, renamed + "_total"):
            if candidate in exposed:
                return Suggestion(candidate, rename.history)
    if name + "_total" in exposed:
        return Suggestion(name + "_total", "counters are exposed with the _total suffix")
    if name + "_bucket" in exposed:
        return Suggestion(name + "_bucket", "a histogram is exposed as _bucket, _sum and _count")
    if suffix == "_total" and base in exposed:
        return Suggestion(base, f"{base} is exposed without the _total suffix")
    other = _EQUIVALENTS.get(base)
    if other is not None:
        for candidate in (other + suffix, other + suffix + "_total"):
            if candidate in exposed:
                return Suggestion(candidate, "the same measurement under the other engine's name")
    if rename is not None and renamed is not None:
        return Suggestion(renamed, rename.history)
    if name in VLLM_REMOVED or base in VLLM_REMOVED:
        instead = VLLM_REMOVED.get(name) or VLLM_REMOVED.get(base) or None
        reason = "a vLLM V0 engine metric that the V1 engine does not export"
        return Suggestion(instead, reason + ("" if instead else "; nothing replaces it"))
    close = difflib.get_close_matches(name, list(exposed), n=1, cutoff=0.8)
    if close:
        return Suggestion(close[0], "the closest exposed name")
    return None


def suggest_label(label: str, labels: Iterable[str]) -> str | None:
    """The closest of ``labels`` to a label name no series has (a typo)."""
    close = difflib.get_close_matches(label, sorted(labels), n=1, cutoff=0.6)
    return close[0] if close else None


def suggest_value(value: str, values: Iterable[str]) -> str | None:
    """The closest of ``values``; the only one when there is just one."""
    choices = sorted(v for v in set(values) if v)
    if len(choices) == 1:
        return choices[0]
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.3)
    return close[0] if close else None


# -- what the targets expose -----------------------------------------------------------

SourceKind = Literal["metrics-endpoint", "prometheus", "metrics-file", "synthetic", "rules"]
TARGET_LABELS = frozenset({"job", "instance"})
"""Labels Prometheus attaches to every series it scrapes; no /metrics endpoint shows them."""
SCRAPE_SERIES = (
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
)
RULE_SERIES = ("ALERTS", "ALERTS_FOR_STATE")

Answer = Literal["match", "no-match", "unchecked"]


class Source(ABC):
    """Metric names and series from one place: a target, or what Prometheus adds."""

    kind: SourceKind
    location: str

    @abstractmethod
    def names(self) -> Mapping[str, str]:
        """Every metric name known here -> its family's type ("unknown" when untyped)."""

    @abstractmethod
    def has_series(self, name: str) -> bool:
        """Whether ``name`` has series (False: only declared by ``# TYPE`` or metadata)."""

    @abstractmethod
    def label_names(self, name: str) -> set[str]:
        """The label names on the series of ``name``."""

    @abstractmethod
    def label_values(self, name: str, label: str) -> set[str]:
        """The values ``label`` takes on the series of ``name``."""

    @abstractmethod
    def answer(self, name: str, matcher: LabelMatcher) -> tuple[Answer, str]:
        """Whether a series of ``name`` satisfies ``matcher``, and why not when unknown."""

    @abstractmethod
    def describe(self) -> str:
        """One line: where, what kind of target, how much it exposes."""


class ExpositionSource(Source):
    """A /metrics endpoint's text (Prometheus text format or OpenMetrics), as scraped.

    Series carry the names Prometheus would store: a counter declared ``# TYPE foo
    counter`` with a sample ``foo`` is ``foo`` (prometheus_client's parser renames it
    ``foo_total``; that is undone here)."""

    def __init__(
        self,
        text: str,
        location: str,
        kind: SourceKind = "metrics-endpoint",
        *,
        openmetrics: bool | None = None,
        target_labels: Iterable[str] = (),
    ) -> None:
        self.kind = kind
        self.location = location
        self.target_labels = TARGET_LABELS | frozenset(target_labels)
        if openmetrics is None:
            openmetrics = text.rstrip().endswith("# EOF")
        self.openmetrics = openmetrics
        self.series: dict[str, list[dict[str, str]]] = {}
        self.types: dict[str, str] = {}
        self._parse(text)

    def _parse(self, text: str) -> None:
        declared = {
            m.group(1): m.group(2)
            for m in re.finditer(r"^#\s*TYPE\s+(\S+)\s+(\S+)", text, re.MULTILINE)
        }
        parse = openmetrics_families if self.openmetrics else text_string_to_metric_families
        try:
            families = list(parse(text))
        except ValueError as exc:
            raise UsageError(
                f"{self.location}: not Prometheus metrics text: {exc or 'unparsable'}"
            ) from None
        for family in families:
            undo_total = (
                not self.openmetrics
                and family.type == "counter"
                and family.name in declared
                and family.name + "_total" not in declared
            )
            for sample in family.samples:
                name = sample.name
                if undo_total and name == family.name + "_total":
                    name = family.name
                self.series.setdefault(name, []).append(dict(sample.labels))
                self.types.setdefault(name, family.type)
        for raw, typ in declared.items():
            for name in _exposed_names(raw, typ, self.openmetrics):
                self.types.setdefault(name, typ)

    def names(self) -> Mapping[str, str]:
        return self.types

    def has_series(self, name: str) -> bool:
        return bool(self.series.get(name))

    def label_names(self, name: str) -> set[str]:
        return {label for labels in self.series.get(name, ()) for label in labels}

    def label_values(self, name: str, label: str) -> set[str]:
        return {labels[label] for labels in self.series.get(name, ()) if label in labels}

    def answer(self, name: str, matcher: LabelMatcher) -> tuple[Answer, str]:
        if matcher.name in self.target_labels:
            return "unchecked", (
                f"{matcher.name} is attached by Prometheus when it scrapes; "
                f"{self.location} cannot show it"
            )
        series = self.series.get(name)
        if not series:
            return "unchecked", f"{name} is declared by {self.location} but has no series yet"
        try:
            hit = any(matcher.matches(labels.get(matcher.name, "")) for labels in series)
        except re.error as exc:
            return "unchecked", f"cannot check the regular expression {matcher.value!r}: {exc}"
        return ("match" if hit else "no-match"), ""

    def describe(self) -> str:
        what = {
            "metrics-endpoint": "a /metrics endpoint",
            "metrics-file": "saved /metrics text",
        }.get(self.kind, self.kind)
        with_series = sum(1 for s in self.series.values() if s)
        count = sum(len(s) for s in self.series.values())
        return (
            f"{self.location}: {what} ({len(self.types)} metric names, "
            f"{with_series} with series, {count} series)"
        )


def _exposed_names(raw: str, typ: str, openmetrics: bool) -> list[str]:
    """The series names a family declared as ``raw`` of type ``typ`` is stored under."""
    if typ == "histogram":
        return [raw + "_bucket", raw + "_sum", raw + "_count"]
    if typ == "gaugehistogram":
        return [raw + "_bucket", raw + "_gsum", raw + "_gcount"]
    if typ == "summary":
        return [raw, raw + "_sum", raw + "_count"]
    if openmetrics and typ == "counter":
        return [raw + "_total"]
    if openmetrics and typ == "info":
        return [raw + "_info"]
    return [raw]


class PrometheusSource(Source):
    """A Prometheus server's series over the last ``lookback_s`` seconds.

    Names come from ``/api/v1/label/__name__/values`` (plus the families its targets
    declare, ``/api/v1/metadata``); whether a matcher selects anything is asked of the
    server itself (``/api/v1/series``), so regular expressions are RE2's."""

    kind: SourceKind = "prometheus"

    def __init__(self, client: httpx.Client, base: str, names: list[str], lookback_s: float):
        self.client = client
        self.location = base
        self.lookback_s = lookback_s
        self.end = time.time()
        self.start = self.end - lookback_s
        self._with_series = set(names)
        self._cache: dict[tuple[str, ...], Any] = {}
        self.types: dict[str, str] = dict.fromkeys(names, "unknown")
        metadata = self._get("/api/v1/metadata", {}, default={})
        if isinstance(metadata, dict):
            for raw, entries in metadata.items():
                typ = str(entries[0].get("type", "unknown")) if entries else "unknown"
                for name in _exposed_names(str(raw), typ, openmetrics=False):
                    self.types[name] = typ

    def _get(self, path: str, params: Mapping[str, str], default: Any) -> Any:
        key = (path, *sorted(f"{k}={v}" for k, v in params.items()))
        if key not in self._cache:
            data = _api(self.client, self.location + path, params)
            self._cache[key] = default if data is None else data
        return self._cache[key]

    def _window(self) -> dict[str, str]:
        return {"start": f"{self.start:.3f}", "end": f"{self.end:.3f}"}

    def names(self) -> Mapping[str, str]:
        return self.types

    def has_series(self, name: str) -> bool:
        return name in self._with_series

    def label_names(self, name: str) -> set[str]:
        params = {"match[]": f"{{__name__={_quote(name)}}}", **self._window()}
        found = self._get("/api/v1/labels", params, default=[])
        return {str(label) for label in found} - {"__name__"}

    def label_values(self, name: str, label: str) -> set[str]:
        params = {"match[]": f"{{__name__={_quote(name)}}}", **self._window()}
        return {str(v) for v in self._get(f"/api/v1/label/{label}/values", params, default=[])}

    def answer(self, name: str, matcher: LabelMatcher) -> tuple[Answer, str]:
        if name not in self._with_series:
            return (
                "unchecked",
                f"{name} is declared by a target of {self.location} but has no series",
            )
        selector = f"{{__name__={_quote(name)}, {matcher}}}"
        params = {"match[]": selector, "limit": "1", **self._window()}
        try:
            found = _api(self.client, self.location + "/api/v1/series", params)
        except UsageError as exc:  # the server refused the matcher (a bad regular expression)
            return "unchecked", str(exc)
        return ("match" if found else "no-match"), ""

    def describe(self) -> str:
        return (
            f"{self.location}: a Prometheus server ({len(self._with_series)} metric names with "
            f"series in the last {_seconds(self.lookback_s)})"
        )


class _SyntheticSource(Source):
    """Series Prometheus makes itself: ``up`` and ``scrape_*`` per target, ``ALERTS``."""

    kind: SourceKind = "synthetic"
    location = "Prometheus itself"

    def __init__(self, scrape_series: bool, target_labels: frozenset[str]) -> None:
        self.target_labels = target_labels
        self.types = dict.fromkeys(RULE_SERIES, "gauge")
        if scrape_series:
            self.types.update(dict.fromkeys(SCRAPE_SERIES, "gauge"))

    def names(self) -> Mapping[str, str]:
        return self.types

    def has_series(self, name: str) -> bool:
        return name in self.types and name not in RULE_SERIES

    def label_names(self, name: str) -> set[str]:
        return set(self.target_labels)

    def label_values(self, name: str, label: str) -> set[str]:
        return set()

    def answer(self, name: str, matcher: LabelMatcher) -> tuple[Answer, str]:
        if name in RULE_SERIES:
            return "unchecked", f"{name} is written by Prometheus' rule evaluation"
        if matcher.name in self.target_labels:
            return "unchecked", (
                f"{matcher.name} of {name} comes from Prometheus' scrape configuration"
            )
        try:
            return ("match" if matcher.matches("") else "no-match"), ""
        except re.error as exc:
            return "unchecked", f"cannot check the regular expression {matcher.value!r}: {exc}"

    def describe(self) -> str:
        return f"{self.location}: {', '.join(self.types)}"


class _RecordedSource(Source):
    """Series the recording rules of the linted files write."""

    kind: SourceKind = "rules"
    location = "the recording rules"

    def __init__(self, recorded: Mapping[str, str]) -> None:
        self.recorded = dict(recorded)

    def names(self) -> Mapping[str, str]:
        return dict.fromkeys(self.recorded, "unknown")

    def has_series(self, name: str) -> bool:
        return False

    def label_names(self, name: str) -> set[str]:
        return set()

    def label_values(self, name: str, label: str) -> set[str]:
        return set()

    def answer(self, name: str, matcher: LabelMatcher) -> tuple[Answer, str]:
        return "unchecked", f"{name} is recorded by {self.recorded[name]}; its labels are not known"

    def describe(self) -> str:
        return f"{self.location}: {len(self.recorded)} recorded series"


def _seconds(value: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size and value % size == 0:
            return f"{int(value // size)}{unit}"
    return f"{value:g}s"


# -- reaching targets -------------------------------------------------------------------


def _api(client: httpx.Client, url: str, params: Mapping[str, str], what: str = "") -> Any:
    """``data`` of a Prometheus API answer; None when it is not one."""
    response = _request(client, url, params, what)
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or "status" not in body:
        return None
    if body.get("status") != "success":
        raise UsageError(f"{url}: {body.get('errorType', 'error')}: {body.get('error', body)}")
    return body.get("data")


def _request(
    client: httpx.Client, url: str, params: Mapping[str, str] | None = None, what: str = ""
) -> httpx.Response:
    try:
        return client.get(url, params=params)
    except httpx.TransportError as exc:
        reason = str(exc) or type(exc).__name__
        raise ComponentUnreachable(f"{what or url}: cannot reach it: {reason}") from None


def connect(
    url: str,
    *,
    lookback_s: float = 3600.0,
    timeout_s: float = 10.0,
    target_labels: Iterable[str] = (),
    client: httpx.Client | None = None,
) -> Source:
    """A source for ``--target URL``: a Prometheus server (its HTTP API answers under
    ``URL/api/v1/``) or a /metrics endpoint (``URL`` itself, or ``URL/metrics`` for a bare
    host). Raises UsageError for a URL that is neither, ComponentUnreachable when nothing
    answers or the target answers with a server error."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UsageError(f"--target {url!r}: not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise UsageError(f"--target {url!r}: expected an http:// or https:// URL with a host")
    client = client or httpx.Client(timeout=timeout_s, follow_redirects=True)
    base = url.rstrip("/")
    names: Any = None
    if not base.endswith("/metrics"):
        names = _api(
            client,
            base + "/api/v1/label/__name__/values",
            {"start": f"{time.time() - lookback_s:.3f}"},
            f"--target {url}",
        )
    if isinstance(names, list):
        return PrometheusSource(client, base, [str(n) for n in names], lookback_s)
    candidates = [url] if parsed.path not in ("", "/") else [base + "/metrics", url]
    problem = ""
    for candidate in candidates:
        response = _request(client, candidate, None, f"--target {url}")
        if response.status_code >= 500:
            raise ComponentUnreachable(
                f"--target {candidate}: answered HTTP {response.status_code}; it is not serving"
            )
        content_type = response.headers.get("content-type", "")
        if response.status_code != 200:
            problem = f"answered HTTP {response.status_code}"
        elif "html" in content_type or "json" in content_type:
            problem = f"answered {content_type.split(';')[0]}, not metrics"
        else:
            return ExpositionSource(
                response.text,
                candidate,
                openmetrics="openmetrics" in content_type,
                target_labels=target_labels,
            )
    raise UsageError(
        f"--target {url}: {problem}: neither a /metrics endpoint nor a Prometheus server"
    )


def read_metrics_file(path: Path, target_labels: Iterable[str] = ()) -> Source:
    """A saved /metrics text (``curl -s host:port/metrics > file``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise UsageError(f"{path}: cannot read metrics file: {reason}") from None
    return ExpositionSource(text, str(path), "metrics-file", target_labels=target_labels)


# -- promtool ---------------------------------------------------------------------------


def find_promtool() -> str | None:
    """promtool's path; None when it is missing, which is an error under CI=true."""
    found = shutil.which("promtool")
    if found is None and os.environ.get("CI") == "true":
        raise ComponentMissing(
            "promtool is not installed (Debian: apt-get install prometheus); "
            "CI=true, so rules cannot go unchecked"
        )
    return found


_PROMTOOL_PREFIX = re.compile(r'^(?:\d+:\d+: )?(?:group "[^"]*", rule \d+, "[^"]*": )?')


def promtool_errors(promtool: str, rules: Sequence[tuple[RuleGroup, Rule]]) -> list[str | None]:
    """``promtool check rules``'s complaint about each rule (None: none), each checked in a
    file of its own that holds its group's settings and that rule alone; one run in all."""
    if not rules:
        return []
    with tempfile.TemporaryDirectory(prefix="gameday-lint-") as scratch:
        paths = []
        for index, (group, rule) in enumerate(rules):
            path = Path(scratch) / f"rule-{index}.yml"
            write_rule_file([group.model_copy(update={"rules": [rule]})], path)
            paths.append(str(path))
        try:
            result = subprocess.run(
                [promtool, "check", "rules", *paths],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EnvironmentProblem(f"promtool check rules: {exc}") from None
    errors: list[list[str]] = [[] for _ in rules]
    current: list[str] | None = None
    for line in (result.stderr + "\n" + result.stdout).splitlines():
        for index, written in enumerate(paths):
            if line.startswith(written + ": "):
                current = errors[index]
                current.append(_PROMTOOL_PREFIX.sub("", line[len(written) + 2 :]))
                break
        else:
            text = line.strip()
            if not text or text == "FAILED:" or line.startswith(("Checking", "  SUCCESS")):
                current = None
            elif current is not None and line.startswith(" "):
                current.append(text)
    if result.returncode != 0 and not any(errors):
        tail = (result.stderr or result.stdout).strip()[-2000:]
        raise EnvironmentProblem(f"promtool check rules exited {result.returncode}: {tail}")
    return ["; ".join(found) if found else None for found in errors]


# -- linting ----------------------------------------------------------------------------

FindingKind = Literal["unknown-metric", "unknown-label", "label-value", "invalid"]


@dataclass(frozen=True)
class Finding:
    """Something that keeps a rule from ever firing."""

    kind: FindingKind
    message: str
    suggestion: str | None = None
    metric: str | None = None
    label: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "metric": self.metric,
            "label": self.label,
            "message": self.message,
            "suggestion": self.suggestion,
        }


@dataclass
class SelectorCheck:
    """How one selector of a rule was checked: where its metric was found, and per
    matcher ``ok``, ``known`` (a value the exporter emits later), ``unchecked`` or
    ``finding``."""

    selector: Selector
    found_in: list[str] = field(default_factory=list)
    matchers: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "selector": str(self.selector),
            "metric": self.selector.metric,
            "in_absent": self.selector.in_absent,
            "found_in": self.found_in,
            "matchers": self.matchers,
        }


@dataclass
class RuleResult:
    file: str
    group: str
    rule: Rule
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    selectors: list[SelectorCheck] = field(default_factory=list)

    @property
    def can_fire(self) -> bool:
        return not self.findings

    def add(self, finding: Finding) -> None:
        if finding not in self.findings:
            self.findings.append(finding)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.rule.name,
            "kind": self.rule.kind,
            "file": self.file,
            "group": self.group,
            "expr": self.rule.expr,
            "can_fire": self.can_fire,
            "findings": [f.to_json() for f in self.findings],
            "notes": self.notes,
            "selectors": [s.to_json() for s in self.selectors],
        }


@dataclass
class LintReport:
    targets: list[Source]
    promtool: str | None
    results: list[RuleResult]

    @property
    def never_fire(self) -> list[RuleResult]:
        return [r for r in self.results if not r.can_fire]

    def to_json(self) -> dict[str, Any]:
        return {
            "targets": [
                {"location": t.location, "kind": t.kind, "description": t.describe()}
                for t in self.targets
            ],
            "promtool": self.promtool,
            "rules": [r.to_json() for r in self.results],
            "summary": {
                "rules": len(self.results),
                "can_fire": len(self.results) - len(self.never_fire),
                "can_never_fire": len(self.never_fire),
                "findings": sum(len(r.findings) for r in self.results),
            },
        }


def load_rules(paths: Iterable[Path]) -> list[tuple[str, RuleGroup]]:
    """(file, group) for every group of the rule files, in order; RuleError names a bad file."""
    return [(str(path), group) for path in paths for group in load_rule_file(path)]


def lint(
    loaded: Sequence[tuple[str, RuleGroup]],
    targets: Sequence[Source],
    *,
    promtool: str | None = None,
    target_labels: Iterable[str] = (),
) -> LintReport:
    """Check every rule of the ``loaded`` groups (see :func:`load_rules`) against what
    ``targets`` expose; ``promtool`` (its path) also checks each rule, when given."""
    recorded = {
        rule.name: f"{path}:{group.name}"
        for path, group in loaded
        for rule in group.rules
        if rule.kind == "record"
    }
    labels = TARGET_LABELS | frozenset(target_labels)
    scraping = any(t.kind != "prometheus" for t in targets)
    sources: list[Source] = [*targets, _SyntheticSource(scraping, labels)]
    if recorded:
        sources.append(_RecordedSource(recorded))
    rules = [(path, group, rule) for path, group in loaded for rule in group.rules]
    verdicts = promtool_errors(promtool, [(g, r) for _, g, r in rules]) if promtool else None
    results = []
    for index, (path, group, rule) in enumerate(rules):
        result = RuleResult(path, group.name, rule)
        problem = verdicts[index] if verdicts is not None else None
        if problem:
            result.add(Finding("invalid", f"promtool check rules: {problem}"))
        try:
            selectors = extract_selectors(rule.expr)
        except PromQLSyntaxError as exc:
            if verdicts is None:
                result.add(
                    Finding("invalid", f"PromQL parse error (promtool not installed): {exc}")
                )
            elif not problem:
                result.note(f"promql-parser cannot parse the expression ({exc}): not checked")
            selectors = []
        for selector in selectors:
            result.selectors.append(_check_selector(selector, sources, result))
        results.append(result)
    return LintReport(list(targets), promtool, results)


def _check_selector(
    selector: Selector, sources: Sequence[Source], result: RuleResult
) -> SelectorCheck:
    check = SelectorCheck(selector)
    candidates = _candidates(selector, sources)
    check.found_in = sorted({source.location for source, _ in candidates})
    if selector.in_absent:
        if not candidates and selector.metric:
            result.note(
                f"absent({selector}): no target exposes {selector.metric}, so absent() is true now"
            )
        return check
    if selector.metric is None and not selector.name_matchers:
        result.note(f"{selector} selects by labels alone: not checked")
        return check
    if not candidates:
        result.add(_unknown_metric(selector, sources))
        return check
    _deprecation_note(selector, result)
    for matcher in selector.label_matchers:
        verdict, note = _check_matcher(selector, matcher, candidates, result)
        check.matchers[str(matcher)] = verdict
        if note:
            result.note(note)
    return check


def _candidates(selector: Selector, sources: Sequence[Source]) -> list[tuple[Source, str]]:
    """(source, metric name) for every name the selector's name and __name__ matchers take."""
    found: list[tuple[Source, str]] = []
    for source in sources:
        names = source.names()
        if selector.metric is not None:
            picked = [selector.metric] if selector.metric in names else []
        else:
            try:
                picked = [n for n in names if all(m.matches(n) for m in selector.name_matchers)]
            except re.error:
                picked = []
        found.extend((source, name) for name in picked)
    return found


def _unknown_metric(selector: Selector, sources: Sequence[Source]) -> Finding:
    exposed: dict[str, str] = {}
    for source in sources:
        for name, typ in source.names().items():
            exposed.setdefault(name, typ)
    if selector.metric is None:
        matchers = ", ".join(map(str, selector.name_matchers))
        return Finding("unknown-metric", f"no exposed metric name matches {matchers}")
    suggestion = suggest_metric(selector.metric, exposed)
    message = f"no target exposes {selector.metric}"
    if suggestion is not None:
        message += f" ({suggestion.reason})"
    return Finding(
        "unknown-metric",
        message,
        suggestion.replacement if suggestion else None,
        metric=selector.metric,
    )


def _deprecation_note(selector: Selector, result: RuleResult) -> None:
    if selector.metric is None:
        return
    base, suffix = _split_suffix(selector.metric)
    rename = VLLM_RENAMES.get(selector.metric) or VLLM_RENAMES.get(base)
    if rename is not None:
        result.note(
            f"{selector.metric} is exposed, but {rename.history}: "
            f"use {rename.new}{'' if selector.metric in VLLM_RENAMES else suffix}"
        )


def _check_matcher(
    selector: Selector,
    matcher: LabelMatcher,
    candidates: Sequence[tuple[Source, str]],
    result: RuleResult,
) -> tuple[str, str]:
    """(verdict, note) for one label matcher; a finding goes straight into ``result``."""
    unchecked: list[str] = []
    refused: list[tuple[Source, str]] = []
    for source, name in candidates:
        answer, why = source.answer(name, matcher)
        if answer == "match":
            return "ok", ""
        if answer == "unchecked":
            unchecked.append(why)
        else:
            refused.append((source, name))
    names = sorted({name for _, name in candidates})
    label_names = {label for source, name in refused for label in source.label_names(name)}
    known = {value for name in names for value in KNOWN_LABEL_VALUES.get((name, matcher.name), ())}
    try:
        known_hit = [value for value in sorted(known) if matcher.matches(value)]
    except re.error:
        known_hit = []
    if known_hit and (matcher.name in label_names or not refused):
        return "known", (
            f"{selector}: {matcher} matches no series yet; {', '.join(known_hit)} is a value "
            f"{'/'.join(names)} gets once it happens"
        )
    if unchecked:
        return "unchecked", f"{matcher} not checked: {unchecked[0]}"
    metric = "/".join(names)
    if matcher.name not in label_names:
        close = suggest_label(matcher.name, label_names)
        listed = ", ".join(sorted(label_names)) or "none"
        result.add(
            Finding(
                "unknown-label",
                f"no series of {metric} has the label {matcher.name!r} (its labels: {listed})",
                str(LabelMatcher(close, matcher.op, matcher.value)) if close else None,
                metric=selector.metric,
                label=matcher.name,
            )
        )
        return "finding", ""
    seen = {value for source, name in refused for value in source.label_values(name, matcher.name)}
    shown = ", ".join(_quote(v) for v in sorted(seen)[:8]) + (" ..." if len(seen) > 8 else "")
    message = f"no series of {metric} has {matcher} (values seen: {shown or 'none'}"
    message += f"; values it can get: {', '.join(sorted(known))})" if known else ")"
    suggestion = None
    if matcher.op == "=":
        value = suggest_value(matcher.value, seen | known)
        suggestion = str(LabelMatcher(matcher.name, "=", value)) if value is not None else None
    result.add(Finding("label-value", message, suggestion, selector.metric, matcher.name))
    return "finding", ""
