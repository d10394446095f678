"""dns-breakage (NETWORK002) and image-pull-secret-removed (AUTH002) on the kwok tier.

Real: the API server, RBAC, the Deployment and ReplicaSet controllers, CoreDNS's
Deployment, ConfigMap and EndpointSlices, kube-state-metrics, Prometheus and
Alertmanager. Simulated by testenv/stages: every pod, CoreDNS's included, and the
image pulls (the private registry's 401 is pod-image-pull-auth.yaml's).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from gameday.core.undo import RevertFailed
from gameday.targets.kubernetes.cluster import as_json
from gameday.targets.kubernetes.undo import RestoreObjectField
from gameday.testenv import KwokEnvInfo
from tests.kwok.conftest import poll_until
from tests.kwok.scenarios import (
    INTERRUPTS,
    coredns_ready,
    deployment_spec,
    gameday_run,
    grant_kube_system,
    interrupt_mid_fault,
    private_workload,
    pull_secret,
    ready_pods,
    revoke_kube_system,
    run_as_the_harness,
    run_as_the_harness_account,
    scenario_in,
    scenario_report,
    workload,
    workload_rolled_out,
)

pytestmark = pytest.mark.kwok

__all__ = ["workload"]  # the fixture, for pytest

PULL_SECRETS = "/spec/template/spec/imagePullSecrets"


def coredns(api: client.ApiClient) -> dict[str, Any]:
    """kube-system/coredns's Deployment spec and ConfigMap data, as the API server has them."""
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    return {
        "deployment": as_json(api, apps.read_namespaced_deployment("coredns", "kube-system"))[
            "spec"
        ],
        "configmap": core.read_namespaced_config_map("coredns", "kube-system").data,
    }


@pytest.fixture
def kube_system_revoked(api: client.ApiClient) -> Iterator[None]:
    """Whatever a test grants in kube-system is taken away afterwards."""
    yield
    revoke_kube_system(api)


def variant(
    namespace: str, tmp_path: Path, name: str, edit: Callable[[dict[str, Any]], None]
) -> Path:
    """scenarios/kubernetes/NAME.yaml pointed at ``namespace``, changed by ``edit``."""
    document = yaml.safe_load(scenario_in(namespace, tmp_path, name).read_text())
    edit(document)
    path = tmp_path / f"{name}-variant.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def evidence_of(report: dict[str, Any], code: str) -> str:
    diagnosis, *_ = report["diagnosis"]
    assert diagnosis["code"] == code, report["diagnosis"]
    return " ".join(diagnosis["evidence"])


# -- dns-breakage ----------------------------------------------------------------------


def test_coredns_scaled_to_zero_is_diagnosed_and_scaled_back(
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    tmp_path: Path,
    kube_system_revoked: None,
) -> None:
    coredns_ready(api)
    before = coredns(api)
    report = run_as_the_harness(kwok, api, namespace, tmp_path, "dns-breakage", kube_system=True)
    assert "alert CoreDNSDown firing" in evidence_of(report, "NETWORK002")
    (fault,) = report["faults"]
    assert fault["details"] == {"deployment": "kube-system/coredns", "replicas": "2 -> 0"}
    assert any("kubelets are simulated by kwok stages" in line for line in report["simulated"])
    # CoreDNS and the workload are as they were, field by field; the grant is gone again
    assert coredns(api) == before
    coredns_ready(api)
    apps = client.AppsV1Api(api)
    assert (
        as_json(api, apps.read_namespaced_deployment("inference-server", namespace))["spec"]
        == workload["spec"]
    )
    with pytest.raises(ApiException) as gone:
        client.RbacAuthorizationV1Api(api).read_namespaced_role_binding(
            "gameday-harness-dns", "kube-system"
        )
    assert gone.value.status == 404


def test_the_harness_account_reaches_coredns_only_with_the_kube_system_rbac(
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
    kube_system_revoked: None,
) -> None:
    harness = run_as_the_harness_account(api, kwok, namespace, tmp_path)
    as_harness = config.new_client_from_config(config_file=str(harness))
    apps, core = client.AppsV1Api(as_harness), client.CoreV1Api(as_harness)
    scale_to_zero = [{"op": "replace", "path": "/spec/replicas", "value": 0}]

    def refused(attempt: Callable[[], Any]) -> None:
        with pytest.raises(ApiException) as error:
            attempt()
        assert error.value.status == 403

    def coredns_replicas() -> int | None:
        """As the harness reads them; None while it may not (the RBAC authorizer learns
        of a new binding through its informers, a moment after the API answered)."""
        try:
            deployment = apps.read_namespaced_deployment("coredns", "kube-system")
        except ApiException as error:
            assert error.status == 403
            return None
        return int(as_json(as_harness, deployment)["spec"]["replicas"])

    # deploy/rbac/harness.yaml alone: nothing in kube-system, CoreDNS included
    refused(lambda: apps.read_namespaced_deployment("coredns", "kube-system"))
    refused(lambda: apps.patch_namespaced_deployment("coredns", "kube-system", scale_to_zero))
    refused(lambda: core.read_namespaced_config_map("coredns", "kube-system"))
    # with harness-kube-system.yaml: CoreDNS's two objects, get and patch, nothing more
    grant_kube_system(api, namespace)
    assert poll_until(coredns_replicas, timeout=10, what="the grant taking effect") == 2
    assert "forward ." in core.read_namespaced_config_map("coredns", "kube-system").data["Corefile"]
    for attempt in (
        lambda: apps.list_namespaced_deployment("kube-system"),
        lambda: apps.delete_namespaced_deployment("coredns", "kube-system"),
        lambda: core.read_namespaced_config_map("kube-root-ca.crt", "kube-system"),
        lambda: core.list_namespaced_pod("kube-system"),
        lambda: core.read_namespaced_service("kube-dns", "kube-system"),
    ):
        refused(attempt)
    # and only for the account it binds: the same grant does nothing for another namespace's
    revoke_kube_system(api)
    grant_kube_system(api, f"{namespace}-other")
    poll_until(
        lambda: coredns_replicas() is None or None, timeout=10, what="the revocation taking effect"
    )


@pytest.mark.parametrize(
    "allowed",
    [{}, {"allow_kube_system": True}],
    ids=["neither switch", "allow_kube_system without listing kube-system"],
)
def test_a_scenario_that_does_not_allow_kube_system_is_refused_before_anything_changes(
    allowed: dict[str, Any],
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    tmp_path: Path,
    kube_system_revoked: None,
) -> None:
    def without_the_switches(document: dict[str, Any]) -> None:
        target = document["target"]["kubernetes"]
        del target["namespaces"], target["allow_kube_system"]
        target.update(allowed)

    scenario = variant(namespace, tmp_path, "dns-breakage", without_the_switches)
    before = coredns(api)
    # RBAC would let it through: the plan is what refuses
    harness = run_as_the_harness_account(api, kwok, namespace, tmp_path, kube_system=True)
    reports = tmp_path / "reports"
    result = gameday_run(kwok, scenario, reports, kubeconfig=harness)
    assert result.returncode == 2, result.stderr[-3000:]
    assert f"error: {scenario}:" in result.stderr
    assert (
        "faults[0].mode: fault coredns-gone (dns-breakage) changes objects in kube-system"
        in result.stderr
    )
    assert not reports.exists()  # no run began
    assert coredns(api) == before


@pytest.mark.parametrize("mode", ["coredns-scaled-to-zero", "corefile", "dns-config"])
@pytest.mark.parametrize("interrupt", INTERRUPTS)
def test_an_interrupted_dns_breakage_leaves_coredns_and_the_workload_as_they_were(
    interrupt: str,
    mode: str,
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    workload_rolled_out(api, namespace)
    coredns_ready(api)
    spec = deployment_spec(api, namespace, "inference-server")

    def in_mode(document: dict[str, Any]) -> None:
        document["faults"][0]["mode"] = mode
        # no Prometheus in this run: the steady state is the pods alone
        document["steady_state"] = [e for e in document["steady_state"] if "alert" not in e]

    printed = interrupt_mid_fault(
        kwok,
        namespace,
        tmp_path,
        variant(namespace, tmp_path, "dns-breakage", in_mode),
        interrupt,
        lambda: {**coredns(api), "workload": spec()},
    )
    if interrupt != "SIGINT":
        assert {
            "coredns-scaled-to-zero": "restored deployment kube-system/coredns /spec/replicas",
            "corefile": "restored configmap kube-system/coredns /data/Corefile",
            "dns-config": f"restored deployment {namespace}/inference-server",
        }[mode] in printed
    coredns_ready(api)
    ready_pods(client.AppsV1Api(api), namespace, "inference-server")


def test_a_corefile_someone_else_fixed_meanwhile_is_left_as_they_made_it(
    kwok: KwokEnvInfo, api: client.ApiClient
) -> None:
    core = client.CoreV1Api(api)
    original = core.read_namespaced_config_map("coredns", "kube-system").data["Corefile"]
    broken = original.replace("forward . /etc/resolv.conf", "forward . 192.0.2.1")
    theirs = original.replace("forward . /etc/resolv.conf", "forward . 8.8.8.8")
    undo = RestoreObjectField(
        kubeconfig=kwok.kubeconfig,
        context=kwok.context,
        api_version="v1",
        plural="configmaps",
        namespace="kube-system",
        name="coredns",
        path="/data/Corefile",
        original=original,
        faulted=broken,
    )

    def set_corefile(text: str) -> None:
        core.patch_namespaced_config_map("coredns", "kube-system", {"data": {"Corefile": text}})

    try:
        set_corefile(broken)
        set_corefile(theirs)  # someone fixes it their way before the harness reverts
        with pytest.raises(RevertFailed, match="was changed by someone else after the fault"):
            undo.revert()
        assert core.read_namespaced_config_map("coredns", "kube-system").data["Corefile"] == theirs
        set_corefile(broken)  # the fault's text still there: the original goes back
        shown = f"<{len(repr(original))} characters>"  # a Corefile is not quoted in full
        assert undo.revert() == f"restored configmap kube-system/coredns /data/Corefile to {shown}"
        assert undo.revert() == f"configmap kube-system/coredns /data/Corefile already {shown}"
    finally:
        set_corefile(original)


# -- image-pull-secret-removed ---------------------------------------------------------


def test_a_removed_pull_secret_is_diagnosed_as_registry_authentication(
    kwok: KwokEnvInfo, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    token = pull_secret(api, namespace)
    before = private_workload(api, namespace)
    report = run_as_the_harness(kwok, api, namespace, tmp_path, "image-pull-secret-removed")
    evidence = evidence_of(report, "AUTH002")
    assert "401 Unauthorized" in evidence and "Failed to pull image" in evidence
    # not a missing image: DEPLOYMENT003 is at most a runner-up
    scores = {d["code"]: d["score"] for d in report["diagnosis"]}
    assert scores.get("DEPLOYMENT003", 0) < scores["AUTH002"]
    (fault,) = report["faults"]
    assert fault["details"]["removed"] == "gameday-registry"
    assert fault["details"]["kept"] == "none"
    # the template is back, field by field; the rollout with the secret finished
    apps = client.AppsV1Api(api)
    after = as_json(api, ready_pods(apps, namespace, "inference-server-private"))
    assert after["spec"] == before["spec"]
    # the credentials never reached a report or the journal
    written = [p for p in (tmp_path / "reports").rglob("*") if p.is_file()]
    assert written and not any(token in p.read_text(errors="replace") for p in written)


def test_a_workload_without_a_pull_secret_is_refused(
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    def on_the_public_workload(document: dict[str, Any]) -> None:
        document["target"]["kubernetes"]["workload"]["deployment"] = "inference-server"

    reports = tmp_path / "reports"
    result = gameday_run(
        kwok,
        variant(namespace, tmp_path, "image-pull-secret-removed", on_the_public_workload),
        reports,
    )
    assert result.returncode != 0
    scenario = scenario_report(reports)
    (fault,) = scenario["faults"]
    assert "the workload's pod template has no imagePullSecrets to remove" in json.dumps(fault)
    apps = client.AppsV1Api(api)
    deployment = apps.read_namespaced_deployment("inference-server", namespace)
    assert as_json(api, deployment)["spec"] == workload["spec"]


@pytest.mark.parametrize("interrupt", INTERRUPTS)
def test_an_interrupted_pull_secret_removal_leaves_the_workload_as_it_was(
    interrupt: str, kwok: KwokEnvInfo, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    pull_secret(api, namespace)
    private_workload(api, namespace)
    printed = interrupt_mid_fault(
        kwok,
        namespace,
        tmp_path,
        "image-pull-secret-removed",
        interrupt,
        deployment_spec(api, namespace, "inference-server-private"),
    )
    if interrupt != "SIGINT":
        assert f"restored deployment {namespace}/inference-server-private {PULL_SECRETS}" in printed
    ready_pods(client.AppsV1Api(api), namespace, "inference-server-private")


def test_pull_secrets_someone_else_set_meanwhile_are_left_as_they_made_them(
    kwok: KwokEnvInfo, api: client.ApiClient, namespace: str
) -> None:
    pull_secret(api, namespace)
    original = private_workload(api, namespace)["spec"]["template"]["spec"]["imagePullSecrets"]
    apps = client.AppsV1Api(api)
    undo = RestoreObjectField(
        kubeconfig=kwok.kubeconfig,
        context=kwok.context,
        namespace=namespace,
        name="inference-server-private",
        path=PULL_SECRETS,
        original=original,
        faulted=None,  # the fault removed the field
    )

    def pull_secrets() -> Any:
        template = apps.read_namespaced_deployment("inference-server-private", namespace)
        return as_json(api, template)["spec"]["template"]["spec"].get("imagePullSecrets")

    remove = [{"op": "remove", "path": PULL_SECRETS}]
    apps.patch_namespaced_deployment("inference-server-private", namespace, remove)
    theirs = [{"op": "add", "path": PULL_SECRETS, "value": [{"name": "their-registry"}]}]
    apps.patch_namespaced_deployment("inference-server-private", namespace, theirs)
    with pytest.raises(RevertFailed, match="was changed by someone else after the fault"):
        undo.revert()
    assert pull_secrets() == [{"name": "their-registry"}]
    apps.patch_namespaced_deployment("inference-server-private", namespace, remove)
    assert undo.revert().startswith(f"restored deployment {namespace}/inference-server-private")
    assert pull_secrets() == original
