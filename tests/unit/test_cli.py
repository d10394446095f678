"""The command line: bad input exits 2 with one precise line per problem and touches nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import run_gameday

REPO = Path(__file__).resolve().parents[2]
GOOD = (REPO / "scenarios" / "local" / "port-conflict.yaml").read_text()


def gameday(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_gameday(*args, cwd=cwd)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("users: 8,", "userz: 8,"),
            ":18:30: load.userz: unknown field 'userz' (did you mean 'users'?)",
        ),
        (
            ("type: port-conflict, at: 2s}", "type: port-conflict, at: 2x}"),
            ":23:48: faults[0].at: invalid duration '2x'",
        ),
        (("load: {profile", "load: {{profile"), "invalid YAML"),
    ],
)
def test_invalid_file_exits_2_with_one_line_and_starts_nothing(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace(*change))
    for command in (
        ["run", str(bad), "--report-dir", str(tmp_path / "reports")],
        ["validate", str(bad)],
    ):
        result = gameday(*command, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"error: {bad}:") and expected in lines[0], lines[0]
        assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "reports").exists()


def test_a_context_the_scenario_does_not_allow_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    """Only the kubeconfig file is read: its server does not exist, and nothing is run."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: production\n"
        "clusters: [{name: c, cluster: {server: 'https://192.0.2.1:6443'}}]\n"
        "users: [{name: u, user: {token: not-a-real-token}}]\n"
        "contexts: [{name: production, context: {cluster: c, user: u}}]\n"
    )
    scenario = tmp_path / "s.yaml"
    text = (REPO / "scenarios" / "kubernetes" / "bad-image-tag.yaml").read_text()
    scenario.write_text(
        text.replace(
            "  kubernetes:\n",
            f"  kubernetes:\n    kubeconfig: {kubeconfig}\n    contexts: [staging]\n",
        )
    )
    result = gameday("run", str(scenario), "--report-dir", str(tmp_path / "reports"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"error: {scenario}: context 'production' is not allowed (allowed: staging); list it "
        "in target.kubernetes.contexts or pass --context to run against it"
    )
    assert "not-a-real-token" not in result.stderr + result.stdout
    assert not (tmp_path / "reports").exists()


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    result = gameday("run", "nope.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "no such file or directory: nope.yaml" in result.stderr


def test_dry_run_prints_the_plan_and_changes_nothing(tmp_path: Path) -> None:
    result = gameday(
        "run",
        str(REPO / "scenarios" / "local" / "port-conflict.yaml"),
        "--dry-run",
        "--report-dir",
        str(tmp_path / "r"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "nothing will be started or changed" in result.stdout
    assert "fault hold-port (port-conflict)" in result.stdout
    assert not (tmp_path / "r").exists()


def test_validate_bundled(tmp_path: Path) -> None:
    result = gameday("validate", str(REPO / "scenarios"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "port-conflict.yaml: ok" in result.stdout


def test_schema_is_json_schema_and_committed_copy_is_fresh(tmp_path: Path) -> None:
    result = gameday("schema", cwd=tmp_path)
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    # one branch per target kind, each with that kind's faults
    branches = {ref["$ref"].rsplit("/", 1)[1] for ref in schema["anyOf"]}
    assert branches == {"KubernetesScenario", "LocalScenario"}
    assert "apiVersion" in schema["$defs"]["LocalScenario"]["properties"]
    committed = json.loads((REPO / "schema" / "scenario.schema.json").read_text())
    assert committed == schema, "schema/scenario.schema.json is stale: run `make schema`"


def test_the_schema_accepts_every_bundled_scenario_and_refuses_a_fault_of_another_tier() -> None:
    import jsonschema  # type: ignore[import-untyped]
    from ruamel.yaml import YAML

    schema = json.loads((REPO / "schema" / "scenario.schema.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    yaml = YAML(typ="safe")
    paths = sorted((REPO / "scenarios").rglob("*.yaml"))
    assert len(paths) >= 10
    for path in paths:
        errors = list(validator.iter_errors(yaml.load(path.read_text())))
        assert errors == [], f"{path}: {errors[0].message}"
    local = yaml.load((REPO / "scenarios" / "local" / "port-conflict.yaml").read_text())
    local["faults"][0]["type"] = "bad-image-tag"  # a kubernetes fault
    assert not validator.is_valid(local)


def test_list_shows_faults_and_kinds(tmp_path: Path) -> None:
    result = gameday("list", "--scenario-dir", str(REPO / "scenarios"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for word in (
        "port-conflict",
        "process-kill",
        "oom-kill",
        "alert",
        "load",
        "http",
        "process",
        "local",
        "PortInUse",
    ):
        assert word in result.stdout
    assert gameday("list", "nonsense", cwd=tmp_path).returncode == 2


def test_cleanup_with_nothing_to_do(tmp_path: Path) -> None:
    result = gameday("cleanup", cwd=tmp_path)
    assert result.returncode == 0
    assert "nothing to clean up" in result.stdout


def test_list_runbooks_shows_the_catalog_and_who_reproduces_each_code(tmp_path: Path) -> None:
    # in a pipe (as here) a row is one line, whatever the terminal's width was
    result = gameday("list", "--runbooks", "--scenario-dir", str(REPO / "scenarios"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert {"DEPLOYMENT001", "AUTH002", "ModelInferenceFailure", "PortInUse"} <= set(rows)
    assert "port-conflict (local)" in rows["PortInUse"]
    assert "model-missing (local)" in rows["InferenceModelLoading"]
    assert "none" in rows["GPU001"]  # not reproducible on any tier we have
    found = [line for line in result.stdout.splitlines() if "DEPLOYMENT00" in line]
    assert [line.split("│")[1].strip() for line in found] == [
        "DEPLOYMENT001",
        "DEPLOYMENT002",
        "DEPLOYMENT003",
    ]


def test_list_as_json_holds_every_section_and_every_catalog_code(tmp_path: Path) -> None:
    from gameday.runbooks import load_catalog

    result = gameday(
        "list", "--format", "json", "--scenario-dir", str(REPO / "scenarios"), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert list(listed) == [
        "faults",
        "expectations",
        "remedies",
        "targets",
        "scenarios",
        "runbooks",
    ]
    codes = [row["code"] for row in listed["runbooks"]]
    assert codes == [entry.code for entry in load_catalog().entries]
    kill = next(row for row in listed["faults"] if row["type"] == "process-kill")
    assert kill["target"] == "local" and kill["what it does"]
    (only,) = json.loads(
        gameday("list", "targets", "--format", "json", cwd=tmp_path).stdout
    ).values()
    assert {row["kind"] for row in only} >= {"local", "kubernetes"}


def test_run_rules_takes_a_directory_of_rule_files(tmp_path: Path) -> None:
    team = tmp_path / "team"
    team.mkdir()
    rules = REPO / "tests" / "e2e" / "scenarios" / "team-rules.prometheusrule.yaml"
    (team / rules.name).write_text(rules.read_text())
    scenario = str(REPO / "tests" / "e2e" / "scenarios" / "team-rules.yaml")
    accepted = gameday("run", "--dry-run", scenario, "--rules", str(team), cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = gameday("run", "--dry-run", scenario, "--rules", str(empty), cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"error: {empty}: no *.yml or *.yaml rule files in this directory"
    )
