"""The bundled alerts carry what the report, Alertmanager and the scenarios rely on."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from gameday.rules import Rule, alert_rules, bundled_rule_files, load_bundled_rules
from gameday.rules.durations import prometheus_duration_ms

ALERTS = alert_rules(load_bundled_rules())

# Scenarios reference these by name.
REQUIRED = {
    "ModelInferenceFailure",
    "InferenceTargetDown",
    "InferenceRequestsQueued",
    "KVCacheNearlyFull",
    "KVCacheExhausted",
    "HighTimeToFirstToken",
    "HighInterTokenLatency",
    "GPUMemoryPressure",
    "InferenceServerOOMKilled",
    "InferenceServerRestarting",
    "InferenceServerCrashLooping",
}
# The same shape the scenario model accepts for runbook codes.
RUNBOOK_CODE = re.compile(r"^[A-Z][A-Z0-9_-]*[0-9]{3}$|^[A-Z][A-Za-z0-9]+$")


def test_bundled_files_are_shipped_with_the_package() -> None:
    names = [path.name for path in bundled_rule_files()]
    assert names == sorted(names)
    assert {"serving.yml", "latency.yml", "capacity.yml", "gpu.yml", "containers.yml"} <= set(names)
    assert all(path.is_file() for path in bundled_rule_files())


def test_required_alerts_exist() -> None:
    assert {rule.name for rule in ALERTS} >= REQUIRED


def test_alert_names_are_unique() -> None:
    duplicates = [name for name, count in Counter(r.name for r in ALERTS).items() if count > 1]
    assert not duplicates


def test_group_names_are_unique() -> None:
    names = [group.name for group in load_bundled_rules()]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("rule", ALERTS, ids=lambda rule: rule.name)
def test_alert_metadata(rule: Rule) -> None:
    assert rule.labels.get("severity") in {"critical", "warning", "info"}
    assert RUNBOOK_CODE.match(rule.labels.get("runbook", "")), rule.labels
    for key in ("summary", "description", "runbook_url"):
        assert rule.annotations.get(key, "").strip(), f"{rule.name} lacks annotation {key}"
    assert (
        "$value" in rule.annotations["description"] or "$labels" in rule.annotations["description"]
    )
    assert rule.annotations["runbook_url"].startswith("seeds/0")
    assert "#" in rule.annotations["runbook_url"], "point at the runbook's section"


@pytest.mark.parametrize(
    ("name", "severity", "runbook", "for_"),
    [
        ("ModelInferenceFailure", "critical", "ModelInferenceFailure", "5m"),
        ("InferenceTargetDown", "critical", "NETWORK001", "1m"),
        ("InferenceServerOOMKilled", "critical", "MEMORY001", None),
        ("GPUMemoryPressure", "warning", "RUNTIME001", "5m"),
    ],
)
def test_runbook_facts(name: str, severity: str, runbook: str, for_: str | None) -> None:
    rule = next(rule for rule in ALERTS if rule.name == name)
    assert rule.labels["severity"] == severity
    assert rule.labels["runbook"] == runbook
    assert rule.for_ == for_


def test_model_inference_failure_follows_its_runbook() -> None:
    # "Model inference error rate > 5% over 5 minutes"
    rule = next(rule for rule in ALERTS if rule.name == "ModelInferenceFailure")
    assert "> 0.05" in rule.expr
    assert rule.expr.count("[5m]") == 2
    assert 'status="5xx"' in rule.expr


def test_target_down_watches_the_inference_job() -> None:
    rule = next(rule for rule in ALERTS if rule.name == "InferenceTargetDown")
    assert rule.expr.strip() == 'up{job="inference"} == 0'


def test_durations_are_valid() -> None:
    for rule in ALERTS:
        if rule.for_ is not None:
            prometheus_duration_ms(rule.for_)
