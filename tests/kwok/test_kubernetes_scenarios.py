"""The kubernetes target and its faults on the kwok tier: a real API server, scheduler and
controllers; kubelets simulated by the stages in testenv/stages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from gameday.core.undo import RevertFailed
from gameday.targets.kubernetes.cluster import as_json
from gameday.targets.kubernetes.objects import RUN_LABEL, DeleteCreatedObject, created_labels
from gameday.targets.kubernetes.undo import RestoreObjectField
from gameday.testenv import KwokEnvInfo
from tests.kwok.scenarios import (
    IMAGE,
    INTERRUPTS,
    deployment_spec,
    gameday,
    gpu_workload,
    interrupt_mid_fault,
    ready_pods,
    run_as_the_harness,
    run_as_the_harness_account,
    scenario_in,
    workload,
    workload_rolled_out,
)

pytestmark = pytest.mark.kwok

__all__ = ["workload"]  # the fixture, for pytest


def test_bad_image_tag_is_detected_diagnosed_and_rolled_back(
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    scenario = run_as_the_harness(kwok, api, namespace, tmp_path, "bad-image-tag")
    assert scenario["diagnosis"][0]["code"] == "DEPLOYMENT003", scenario["diagnosis"]
    evidence = " ".join(scenario["diagnosis"][0]["evidence"])
    assert "ImagePullBackOff" in evidence and "Failed to pull image" in evidence
    remedy = scenario["remedy"]
    assert remedy["outcome"] == "done"
    assert [s["kind"] for s in remedy["steps"] if s["outcome"] == "done"] == ["rollout-undo"]
    assert scenario["time_to_recover_s"] <= remedy["budget_s"]
    (fault,) = scenario["faults"]
    assert fault["details"]["image"].startswith(
        "llm-gameday/sim:0.1.0 -> llm-gameday/sim:gameday-missing-"
    )
    # what came from where: simulated kubelets, a real control plane
    assert any("kubelets are simulated by kwok stages" in line for line in scenario["simulated"])
    sources = {e["description"]: e["observed_from"] for e in scenario["expectations"]}
    assert sources["a pod waiting=ErrImagePull"] == ["kubelet: simulated by kwok stages"]
    pulled = next(v for k, v in sources.items() if k.startswith("event Failed"))
    assert pulled == ["kubelet: simulated by kwok stages"]  # a stage records it as the kubelet
    firing = sources["alert KubePodImagePullFailing firing"]
    assert firing == ["prometheus: real", "alertmanager: real"]
    # the workload is back as it was: its pod template, field by field
    apps = client.AppsV1Api(api)
    after = as_json(api, ready_pods(apps, namespace, "inference-server"))
    assert after["spec"] == workload["spec"]


def test_a_context_nobody_allowed_is_refused_and_nothing_changes(
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    reports = tmp_path / "reports"
    result = gameday(
        kwok,
        "run",
        str(scenario_in(namespace, tmp_path)),
        "--report-dir",
        str(reports),
        "--no-live",
    )
    assert result.returncode == 2, result.stderr  # refused before anything started
    assert f"context {kwok.context!r} is not allowed (allowed: none)" in result.stderr
    assert not reports.exists()
    deployment = client.AppsV1Api(api).read_namespaced_deployment("inference-server", namespace)
    assert as_json(api, deployment)["spec"] == workload["spec"]


def test_a_revert_does_not_overwrite_what_someone_else_changed(
    kwok: KwokEnvInfo, api: client.ApiClient, namespace: str, workload: dict[str, Any]
) -> None:
    apps = client.AppsV1Api(api)
    original = workload["spec"]["template"]["spec"]["containers"][0]["image"]
    undo = RestoreObjectField(
        kubeconfig=kwok.kubeconfig,
        context=kwok.context,
        namespace=namespace,
        name="inference-server",
        path=IMAGE,
        original=original,
        faulted="llm-gameday/sim:broken",
    )
    replace = [{"op": "replace", "path": IMAGE, "value": "llm-gameday/sim:broken"}]
    apps.patch_namespaced_deployment("inference-server", namespace, replace)
    # someone else fixes it their way before the harness reverts
    theirs = [{"op": "replace", "path": IMAGE, "value": "busybox:1.36"}]
    apps.patch_namespaced_deployment("inference-server", namespace, theirs)
    with pytest.raises(RevertFailed, match="was changed by someone else after the fault"):
        undo.revert()
    image = (
        apps.read_namespaced_deployment("inference-server", namespace)
        .spec.template.spec.containers[0]
        .image
    )
    assert image == "busybox:1.36"
    # and when the fault's value is still there, the original goes back
    apps.patch_namespaced_deployment("inference-server", namespace, replace)
    assert (
        undo.revert() == f"restored deployment {namespace}/inference-server {IMAGE} to {original!r}"
    )
    assert undo.revert() == f"deployment {namespace}/inference-server {IMAGE} already {original!r}"


def test_the_harness_account_is_forbidden_outside_its_namespace(
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    from kubernetes import config
    from kubernetes.client.exceptions import ApiException

    harness = run_as_the_harness_account(api, kwok, namespace, tmp_path)
    as_harness = config.new_client_from_config(config_file=str(harness))
    apps, core = client.AppsV1Api(as_harness), client.CoreV1Api(as_harness)
    # inside: what the fault library needs
    assert apps.read_namespaced_deployment("inference-server", namespace).metadata.name
    assert core.list_namespaced_pod(namespace).items
    # elsewhere, and beyond its verbs: forbidden by the real RBAC authorizer
    other = f"{namespace}-other"
    core_admin = client.CoreV1Api(api)
    core_admin.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    try:
        for attempt in (
            lambda: apps.list_namespaced_deployment(other),
            lambda: core.list_namespaced_pod(other),
            lambda: core.list_namespaced_pod("kube-system"),
            lambda: core.list_namespaced_secret(namespace),
            lambda: apps.delete_namespaced_deployment("inference-server", namespace),
        ):
            with pytest.raises(ApiException) as refused:
                attempt()
            assert refused.value.status == 403
    finally:
        core_admin.delete_namespace(other)


@pytest.mark.parametrize("scenario", ["bad-image-tag", "gpu-quota", "pvc-misconfig"])
@pytest.mark.parametrize("interrupt", INTERRUPTS)
def test_an_interrupted_fault_leaves_the_workload_as_it_was(
    interrupt: str,
    scenario: str,
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    if scenario == "gpu-quota":
        name = gpu_workload(api, namespace)["metadata"]["name"]
    else:
        name = workload_rolled_out(api, namespace)["metadata"]["name"]
    printed = interrupt_mid_fault(
        kwok, namespace, tmp_path, scenario, interrupt, deployment_spec(api, namespace, name)
    )
    if interrupt != "SIGINT":
        assert "restored deployment" in printed
    # the rollout back to the original template finishes; nothing the fault made is left
    ready_pods(client.AppsV1Api(api), namespace, name)
    core = client.CoreV1Api(api)
    assert core.list_namespaced_resource_quota(namespace).items == []
    assert core.list_namespaced_persistent_volume_claim(namespace).items == []


def test_gpu_quota_is_diagnosed_and_the_raised_quota_lets_the_rollout_finish(
    kwok: KwokEnvInfo, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    before = gpu_workload(api, namespace)
    report = run_as_the_harness(kwok, api, namespace, tmp_path, "gpu-quota")
    assert report["diagnosis"][0]["code"] == "DEPLOYMENT002", report["diagnosis"]
    assert "exceeded quota: gpu-quota" in " ".join(report["diagnosis"][0]["evidence"])
    (refused,) = [e for e in report["expectations"] if e["description"].startswith("event")][:1]
    assert refused["observed_from"] == ["replicaset-controller: real"]
    (step,) = [s for s in report["remedy"]["steps"] if s["outcome"] == "done"]
    assert step["kind"] == "raise-quota"
    assert step["details"]["requests.nvidia.com/gpu"].startswith("0 -> ")
    # the quota is gone and the template is the one the run began with
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    assert core.list_namespaced_resource_quota(namespace).items == []
    after = as_json(api, ready_pods(apps, namespace, "inference-server-gpu"))
    assert after["spec"] == before["spec"]


def test_pvc_misconfig_is_diagnosed_from_the_pv_controller_and_the_scheduler(
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    report = run_as_the_harness(kwok, api, namespace, tmp_path, "pvc-misconfig")
    assert report["diagnosis"][0]["code"] == "STORAGE001", report["diagnosis"]
    evidence = " ".join(report["diagnosis"][0]["evidence"])
    assert 'storageclass.storage.k8s.io "gameday-missing" not found' in evidence
    sources = {e["description"]: e["observed_from"] for e in report["expectations"]}
    provisioning = next(v for k, v in sources.items() if k.startswith("event ProvisioningFailed"))
    assert provisioning == ["persistentvolume-controller: real"]
    pending = next(v for k, v in sources.items() if "unschedulable" in k)
    assert pending == ["kube-scheduler: real"]
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    assert core.list_namespaced_persistent_volume_claim(namespace).items == []
    after = as_json(api, ready_pods(apps, namespace, "inference-server"))
    assert after["spec"] == workload["spec"]


def test_a_created_object_is_deleted_only_if_this_run_made_it(
    kwok: KwokEnvInfo, api: client.ApiClient, namespace: str
) -> None:
    """The record is written before the create, so it may outlive a create that failed
    because someone else's object has the name: that object must survive the revert."""
    core = client.CoreV1Api(api)
    theirs = client.V1ResourceQuota(
        metadata=client.V1ObjectMeta(name="gpu-quota"),
        spec=client.V1ResourceQuotaSpec(hard={"requests.nvidia.com/gpu": "8"}),
    )
    core.create_namespaced_resource_quota(namespace, theirs)

    def record(name: str, run_id: str) -> DeleteCreatedObject:
        return DeleteCreatedObject(
            kubeconfig=kwok.kubeconfig,
            context=kwok.context,
            api_version="v1",
            plural="resourcequotas",
            namespace=namespace,
            name=name,
            run_id=run_id,
        )

    left = record("gpu-quota", "r-1").revert()
    assert (
        left
        == f"resourcequota {namespace}/gpu-quota is not this run's (label {RUN_LABEL}); left alone"
    )
    assert core.read_namespaced_resource_quota("gpu-quota", namespace).spec.hard == {
        "requests.nvidia.com/gpu": "8"
    }
    # this run's own object goes, through the generic REST path, whatever its API group
    apps = client.AppsV1Api(api)
    ours = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "ours", "labels": created_labels("r-1")},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "ours"}},
            "template": {
                "metadata": {"labels": {"app": "ours"}},
                "spec": {"containers": [{"name": "c", "image": "example.com/tests/app:1.0"}]},
            },
        },
    }
    apps.create_namespaced_deployment(namespace, ours)
    undo = DeleteCreatedObject(
        kubeconfig=kwok.kubeconfig,
        context=kwok.context,
        api_version="apps/v1",
        plural="deployments",
        namespace=namespace,
        name="ours",
        run_id="r-1",
    )
    assert undo.revert() == f"deleted deployment {namespace}/ours"
    assert undo.revert() == f"deployment {namespace}/ours already gone"
    assert record("never-made", "r-1").revert() == (
        f"resourcequota {namespace}/never-made already gone"
    )
