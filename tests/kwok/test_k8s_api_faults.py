"""Faults the API server itself refuses, on the kwok tier: crd-schema-drift (DEPLOYMENT001)
and rbac-denied (AUTH001). The API server's strict field validation, its RBAC authorizer
and its token authentication are real; no kubelet takes part."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from gameday.targets.kubernetes.cluster import as_json
from gameday.testenv import KwokEnvInfo
from tests.kwok.scenarios import (
    INTERRUPTS,
    gameday_run,
    interrupt_mid_fault,
    journal_records,
    run_as_the_harness,
    run_as_the_harness_account,
    scenario_in,
    scenario_report,
    workload,
)

pytestmark = pytest.mark.kwok

__all__ = ["workload"]  # the fixture, for pytest

CRD = ("inference.llm-d.io", "v1alpha1", "llmdeployments")


def llmdeployments(api: client.ApiClient, namespace: str) -> list[str]:
    listed = client.CustomObjectsApi(api).list_namespaced_custom_object(*CRD[:2], namespace, CRD[2])
    return sorted(item["metadata"]["name"] for item in listed["items"])


def accounts_and_roles(api: client.ApiClient, namespace: str) -> dict[str, list[str]]:
    """Every ServiceAccount, Role and RoleBinding of the namespace, by name."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    return {
        "serviceaccounts": sorted(
            a.metadata.name for a in core.list_namespaced_service_account(namespace).items
        ),
        "roles": sorted(r.metadata.name for r in rbac.list_namespaced_role(namespace).items),
        "rolebindings": sorted(
            b.metadata.name for b in rbac.list_namespaced_role_binding(namespace).items
        ),
    }


def what_the_faults_touch(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    """The workload's spec and every object either fault creates, as stored."""
    deployment = client.AppsV1Api(api).read_namespaced_deployment("inference-server", namespace)
    return {
        "workload": as_json(api, deployment)["spec"],
        "llmdeployments": llmdeployments(api, namespace),
        **accounts_and_roles(api, namespace),
    }


def without_the_harness(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` less deploy/rbac's account, Role and RoleBinding (run_as_the_harness
    creates them in the test's namespace)."""
    return {
        key: [name for name in value if name != "gameday-harness"]
        if key in ("serviceaccounts", "roles", "rolebindings")
        else value
        for key, value in state.items()
    }


def no_token_written(run_dir: Path) -> None:
    """Service account tokens are JWTs ("eyJ..."): none in any file of the run."""
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert "eyJ" not in path.read_text(errors="replace"), path


def test_crd_schema_drift_is_refused_by_strict_validation_and_diagnosed(
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    before = what_the_faults_touch(api, namespace)
    report = run_as_the_harness(kwok, api, namespace, tmp_path, "crd-schema-drift")
    assert report["diagnosis"][0]["code"] == "DEPLOYMENT001", report["diagnosis"]
    evidence = " ".join(report["diagnosis"][0]["evidence"])
    # the API server's own answer, to the harness's own account
    assert (
        '400 BadRequest: LLMDeployment in version "v1alpha1" cannot be handled as a '
        'LLMDeployment: strict decoding error: unknown field "spec.model.name"'
    ) in evidence
    harness = f"system:serviceaccount:{namespace}:gameday-harness"
    assert f"as {harness}" in evidence
    (fault,) = report["faults"]
    assert fault["details"]["unknown fields"] == "spec.model.name"
    assert fault["details"]["as"] == harness
    # the refusal is in the journal as a typed event
    (refused,) = [
        r for r in journal_records(tmp_path / "reports") if r.get("event") == "ApiRefused"
    ]
    assert (refused["status"], refused["reason"], refused["verb"]) == (400, "BadRequest", "create")
    assert refused["resource"] == "llmdeployments.inference.llm-d.io"
    # nothing was created; the workload and the namespace's accounts are as they were
    assert without_the_harness(what_the_faults_touch(api, namespace)) == before


def test_a_missing_crd_is_the_same_code_from_the_api_servers_404(
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    # the same object, of a version the installed CRD does not serve
    scenario = scenario_in(namespace, tmp_path, "crd-schema-drift")
    text = scenario.read_text().replace("duration: 15s}", "duration: 1s, version: v1}")
    assert "version: v1}" in text
    scenario.write_text(text)
    harness = run_as_the_harness_account(api, kwok, namespace, tmp_path)
    reports = tmp_path / "reports"
    result = gameday_run(kwok, scenario, reports, kubeconfig=harness)
    assert result.returncode == 0, result.stderr[-5000:]
    report = scenario_report(reports)
    assert report["diagnosis"][0]["code"] == "DEPLOYMENT001", report["diagnosis"]
    evidence = " ".join(report["diagnosis"][0]["evidence"])
    assert "api-error status=404" in evidence and ": 404 Not Found: 404 page not found" in evidence
    (fault,) = report["faults"]
    assert "serves no llmdeployments.inference.llm-d.io/v1" in fault["details"]["served"]
    assert llmdeployments(api, namespace) == []


def test_rbac_denied_is_refused_by_the_rbac_authorizer_and_diagnosed(
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    before = what_the_faults_touch(api, namespace)
    report = run_as_the_harness(kwok, api, namespace, tmp_path, "rbac-denied")
    assert report["diagnosis"][0]["code"] == "AUTH001", report["diagnosis"]
    evidence = " ".join(report["diagnosis"][0]["evidence"])
    account = f"system:serviceaccount:{namespace}:gameday-denied-"
    assert (
        f'403 Forbidden: deployments.apps "inference-server" is forbidden: User "{account}'
    ) in evidence
    assert (
        f'cannot patch resource "deployments" in API group "apps" in the namespace "{namespace}"'
    ) in evidence
    (fault,) = report["faults"]
    assert fault["details"]["withheld"] == "patch deployments.apps"
    assert fault["details"]["role"].endswith(": get, list, watch on deployments.apps")
    reverted = sorted(fault["revert_details"].values())
    assert [line.split(" ")[:2] for line in reverted] == [
        ["deleted", "role"],
        ["deleted", "rolebinding"],
        ["deleted", "serviceaccount"],
    ]
    # no account, Role or RoleBinding left; the workload never changed; no token written
    assert without_the_harness(what_the_faults_touch(api, namespace)) == before
    no_token_written(next((tmp_path / "reports").iterdir()))


def test_the_granted_verb_lets_the_refused_action_through(
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    """AUTH001's remedy: the fault held until the remedy (no duration), grant-permission
    gives its Role the verb back, and the same action as the same account is allowed."""
    scenario = scenario_in(namespace, tmp_path, "rbac-denied")
    text = scenario.read_text().replace("at: 1s, duration: 15s,", "at: 1s,")
    text = text.replace("\nrecover:", "\nremedy: {runbook: AUTH001}\nrecover:")
    assert "remedy: {runbook: AUTH001}" in text and "duration" not in text
    scenario.write_text(text)
    harness = run_as_the_harness_account(api, kwok, namespace, tmp_path)
    before = what_the_faults_touch(api, namespace)
    reports = tmp_path / "reports"
    result = gameday_run(kwok, scenario, reports, kubeconfig=harness)
    assert result.returncode == 0, result.stderr[-5000:]
    report = scenario_report(reports)
    assert report["outcome"] == "passed", report["reason"]
    (step,) = report["remedy"]["steps"]
    assert (step["kind"], step["outcome"]) == ("grant-permission", "done")
    (role,) = [key for key in step["details"] if key.startswith("role gameday-denied-")]
    assert step["details"][role] == "+ patch on deployments.apps"
    assert step["details"]["retried"].startswith(
        f"as system:serviceaccount:{namespace}:gameday-denied-"
    )
    assert ": allowed (attempt " in step["details"]["retried"]
    # the grant and the fault both undone: the namespace holds what it held before
    assert what_the_faults_touch(api, namespace) == before
    no_token_written(next(reports.iterdir()))


@pytest.mark.parametrize("scenario", ["crd-schema-drift", "rbac-denied"])
@pytest.mark.parametrize("interrupt", INTERRUPTS)
def test_an_interrupted_api_fault_leaves_nothing_behind(
    interrupt: str,
    scenario: str,
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    printed = interrupt_mid_fault(
        kwok,
        namespace,
        tmp_path,
        scenario,
        interrupt,
        lambda: what_the_faults_touch(api, namespace),
        # crd-schema-drift's object was refused: nothing of it exists mid-fault either
        changed_by_the_fault=scenario == "rbac-denied",
    )
    if interrupt != "SIGINT":
        if scenario == "rbac-denied":
            assert "deleted serviceaccount" in printed, printed
        else:
            assert f"llmdeployment {namespace}/gameday-drift-" in printed, printed
