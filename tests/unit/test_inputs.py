"""What `run` would only find once its target is up is refused before: by `validate` and
`run --dry-run`, one located line each, exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from gameday.core.inputs import UnreadableInput, read_input_text
from gameday.rules.durations import prometheus_duration_ms
from tests.unit.test_cli import GOOD, gameday

WITH_RULES = GOOD.replace(
    "  local:\n", "  local:\n    prometheus: {rules: [bundled, team.yml]}\n", 1
)
RULES = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    for: {for_}\n"


def scenario_with_rules(tmp_path: Path, rules: bytes | None) -> Path:
    assert WITH_RULES != GOOD
    path = tmp_path / "s.yaml"
    path.write_text(WITH_RULES)
    if rules is not None:
        (tmp_path / "team.yml").write_bytes(rules)
    return path


@pytest.mark.parametrize(
    ("rules", "error"),
    [
        (None, "team.yml: cannot read rule file: No such file or directory"),
        (b"groups: [\xff]\n", "team.yml:1:10: rule file is not UTF-8 text (byte 0xff at offset 9)"),
        (
            RULES.format(for_="99999999999999999999y").encode(),
            "for: invalid Prometheus duration '99999999999999999999y': out of range",
        ),
    ],
    ids=["missing", "not-utf8", "duration-out-of-range"],
)
@pytest.mark.parametrize("command", [["validate"], ["run", "--dry-run"]])
def test_a_rule_file_the_scenario_names_is_checked_before_anything_runs(
    tmp_path: Path, rules: bytes | None, error: str, command: list[str]
) -> None:
    path = scenario_with_rules(tmp_path, rules)
    result = gameday(*command, str(path), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert error in result.stderr
    assert result.stderr.startswith(f"error: {path}:15:")  # the scenario's rules entry
    assert "target.local.prometheus.rules[1]" in result.stderr


def test_a_good_rule_file_passes(tmp_path: Path) -> None:
    path = scenario_with_rules(tmp_path, RULES.format(for_="5m").encode())
    result = gameday("validate", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("value", ["inf", "1e400"])
def test_time_compression_must_be_finite(tmp_path: Path, value: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD)
    result = gameday("run", "--dry-run", str(path), "--time-compression", value, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "error: --time-compression must be a finite number >= 1, not inf\n"


def test_a_scenario_that_is_not_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(GOOD.encode().replace(b"port-conflict", b"port-\xe9", 1))
    result = gameday("validate", str(path), cwd=tmp_path)
    assert result.returncode == 2
    line = GOOD[: GOOD.index("port-conflict")].count("\n") + 1
    assert result.stderr.startswith(f"error: {path}:{line}:")
    assert "scenario is not UTF-8 text (byte 0xe9" in result.stderr


def test_read_input_text_refuses_a_file_over_its_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"a" * 1025)
    with pytest.raises(UnreadableInput, match=r"huge.yaml: scenario larger than"):
        read_input_text(path, "scenario", limit=1024)
    assert read_input_text(path, "scenario", limit=1025) == "a" * 1025


def test_prometheus_durations_stop_where_prometheus_does() -> None:
    assert prometheus_duration_ms("292y") == 292 * 365 * 24 * 3600 * 1000
    with pytest.raises(ValueError, match="out of range"):
        prometheus_duration_ms("293y")
