"""The bundled rules pass the real promtool: syntax (`check rules`) and behaviour (`test rules`).

The behaviour is specified in tests/rules/*.test.yml, one file per rule file: each
alert fires once its condition has held for its `for`, stays quiet just below its
threshold and before `for` has elapsed, and resolves. The Kubernetes tiers' rules
(src/gameday/rules/kubernetes/, outside the local tier's glob) are checked the same
way, with their tests in tests/rules/kubernetes/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from gameday.rules import (
    alert_rules,
    bundled_rule_files,
    kubernetes_rule_files,
    load_bundled_rules,
    load_rule_files,
)

from .conftest import RULE_TESTS, PromtoolRunner, find_promtool, promtool_output

K8S_RULE_FILES = kubernetes_rule_files()
RULE_FILES = bundled_rule_files() + K8S_RULE_FILES
K8S_TEST_FILES = sorted((RULE_TESTS / "kubernetes").glob("*.test.yml"))
TEST_FILES = sorted(RULE_TESTS.glob("*.test.yml")) + K8S_TEST_FILES


def _load(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


def test_there_are_rules_and_tests() -> None:
    assert RULE_FILES, "no bundled rule files found"
    assert K8S_RULE_FILES, "no Kubernetes rule files found"
    assert TEST_FILES, f"no promtool test files in {RULE_TESTS}"


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(promtool: PromtoolRunner, rule_file: Path) -> None:
    result = promtool("check", "rules", rule_file)
    assert result.returncode == 0, promtool_output(result, ["check", "rules", rule_file])


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_test_rules(promtool: PromtoolRunner, test_file: Path) -> None:
    # promtool resolves rule_files relative to its working directory.
    result = promtool("test", "rules", test_file.name, cwd=test_file.parent)
    assert result.returncode == 0, promtool_output(result, ["test", "rules", test_file])
    assert "SUCCESS" in result.stdout


def test_every_rule_file_has_a_test_file() -> None:
    tested = {
        (test_file.parent / name).resolve()
        for test_file in TEST_FILES
        for name in _load(test_file).get("rule_files", [])
    }
    untested = [path.name for path in RULE_FILES if path.resolve() not in tested]
    assert not untested, f"rule files no promtool test loads: {untested}"


def test_every_alert_is_seen_firing_and_quiet() -> None:
    """Each alert has a case where it fires and one where it must not."""
    firing: set[str] = set()
    quiet: set[str] = set()
    for test_file in TEST_FILES:
        for group in _load(test_file)["tests"]:
            for case in group.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    groups = load_bundled_rules() + load_rule_files(K8S_RULE_FILES)
    names = {rule.name for rule in alert_rules(groups)}
    assert not names - firing, f"alerts never tested firing: {sorted(names - firing)}"
    assert not names - quiet, f"alerts never tested quiet: {sorted(names - quiet)}"
    assert not (firing | quiet) - names, f"tests of unknown alerts: {(firing | quiet) - names}"


def test_missing_promtool_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        find_promtool()


@pytest.mark.parametrize("ci", [None, "false", "1"])
def test_missing_promtool_skips_outside_ci(monkeypatch: pytest.MonkeyPatch, ci: str | None) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="promtool is not installed"):
        find_promtool()
