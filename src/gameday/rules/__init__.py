"""Prometheus alert rules shipped with the harness, and the tools to load and compress rules.

The bundled files (``*.yml`` beside this module) are plain Prometheus rule files
written against the series a vLLM server, dcgm-exporter and kube-state-metrics
expose; their promtool tests live in ``tests/rules/``. Scenarios name these alerts
(``ModelInferenceFailure``, ``InferenceTargetDown``, ...), so their names are fixed.

    bundled_rule_files()           the shipped files, for Prometheus' rule_files
    load_rule_file(path)           groups from a rule file or PrometheusRule manifests
    compress(groups, factor, floor_seconds)
                                   the same rules on a faster clock, with the changes made
    write_rule_file(groups, path)  groups back to a Prometheus rule file
"""

from __future__ import annotations

from pathlib import Path

from gameday.rules.compress import Change, compress, compress_expr, scale_duration
from gameday.rules.durations import (
    format_prometheus_duration,
    parse_prometheus_duration,
    prometheus_duration_ms,
)
from gameday.rules.loader import (
    dump_rule_file,
    load_rule_file,
    load_rule_files,
    parse_rule_documents,
    rule_files_in,
    write_rule_file,
)
from gameday.rules.model import PrometheusDuration, Rule, RuleError, RuleFile, RuleGroup
from gameday.rules.promql import DurationSpan, PromQLScanError, find_durations, replace_durations

__all__ = [
    "Change",
    "DurationSpan",
    "PromQLScanError",
    "PrometheusDuration",
    "Rule",
    "RuleError",
    "RuleFile",
    "RuleGroup",
    "alert_rules",
    "bundled_rule_files",
    "compress",
    "compress_expr",
    "dump_rule_file",
    "find_durations",
    "format_prometheus_duration",
    "kubernetes_rule_files",
    "load_bundled_rules",
    "load_rule_file",
    "load_rule_files",
    "parse_prometheus_duration",
    "parse_rule_documents",
    "prometheus_duration_ms",
    "replace_durations",
    "rule_files_in",
    "scale_duration",
    "write_rule_file",
]


def bundled_rule_files() -> list[Path]:
    """The rule files shipped in this package, sorted by name.

    Real paths (not importlib Traversables): Prometheus and promtool read them."""
    return sorted(Path(__file__).parent.glob("*.yml"))


def kubernetes_rule_files() -> list[Path]:
    """Rules over kube-state-metrics series, for tiers with a Kubernetes control plane."""
    return sorted((Path(__file__).parent / "kubernetes").glob("*.yml"))


def load_bundled_rules() -> list[RuleGroup]:
    """The groups of every bundled rule file."""
    return load_rule_files(bundled_rule_files())


def alert_rules(groups: list[RuleGroup]) -> list[Rule]:
    """Every alerting rule of ``groups``, in order."""
    return [rule for group in groups for rule in group.alerts]
