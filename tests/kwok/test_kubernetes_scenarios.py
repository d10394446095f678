"""The kubernetes target and its faults on the kwok tier: a real API server, scheduler and
controllers; kubelets simulated by the stages in testenv/stages."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from gameday.engine.journal import outstanding_undos
from gameday.engine.undo import RevertFailed
from gameday.plugins import load_builtins
from gameday.targets.kubernetes.cluster import as_json
from gameday.targets.kubernetes.undo import RestoreDeploymentField
from gameday.testenv import KwokEnvInfo
from tests.kwok.conftest import watch_until
from tests.support.cleanup import gameday_cleanup

pytestmark = pytest.mark.kwok

REPO = Path(__file__).resolve().parents[2]
WORKLOAD = REPO / "deploy" / "workload" / "inference-server.yaml"
IMAGE = "/spec/template/spec/containers/0/image"
RBAC = REPO / "deploy" / "rbac" / "harness.yaml"


def run_as_the_harness_account(
    api: client.ApiClient, kwok: KwokEnvInfo, namespace: str, into: Path
) -> Path:
    """deploy/rbac/harness.yaml applied in ``namespace``; a kubeconfig (mode 600) that
    authenticates as its ServiceAccount with a short-lived token, context named as the
    tier's."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    for document in yaml.safe_load_all(RBAC.read_text()):
        create = {
            "ServiceAccount": core.create_namespaced_service_account,
            "Role": rbac.create_namespaced_role,
            "RoleBinding": rbac.create_namespaced_role_binding,
        }[document["kind"]]
        create(namespace, document)
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    token = core.create_namespaced_service_account_token(
        "gameday-harness", namespace, request
    ).status.token
    admin = yaml.safe_load(Path(kwok.kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == kwok.context)
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    path = into / "harness-kubeconfig.yaml"
    path.touch(mode=0o600)
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "gameday-harness", "user": {"token": token}}],
                "contexts": [
                    {
                        "name": kwok.context,
                        "context": {"cluster": cluster["name"], "user": "gameday-harness"},
                    }
                ],
                "current-context": kwok.context,
            }
        )
    )
    return path


def ready_pods(apps: client.AppsV1Api, namespace: str, name: str) -> Any:
    return watch_until(
        apps.list_namespaced_deployment,
        lambda d: (
            d
            if d.metadata.name == name
            and (d.status.ready_replicas or 0) == d.spec.replicas
            and (d.status.updated_replicas or 0) == d.spec.replicas
            and (d.status.replicas or 0) == d.spec.replicas
            else None
        ),
        namespace=namespace,
        timeout=90,
        what=f"deployment {name} ready",
    )


def gpu_workload(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    apps = client.AppsV1Api(api)
    manifest = REPO / "deploy" / "workload" / "inference-server-gpu.yaml"
    apps.create_namespaced_deployment(namespace, yaml.safe_load(manifest.read_text()))
    return as_json(api, ready_pods(apps, namespace, "inference-server-gpu"))  # type: ignore[no-any-return]


@pytest.fixture
def workload(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    """deploy/workload/inference-server.yaml, rolled out; its spec as the API server holds it."""
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(namespace, yaml.safe_load(WORKLOAD.read_text()))
    deployment = ready_pods(apps, namespace, "inference-server")
    return as_json(api, deployment)  # type: ignore[no-any-return]


def gameday(
    kwok: KwokEnvInfo, *args: str, kubeconfig: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig or kwok.kubeconfig)}
    return subprocess.run(
        [sys.executable, "-m", "gameday", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


def scenario_in(namespace: str, tmp_path: Path, name: str = "bad-image-tag") -> Path:
    """scenarios/kubernetes/NAME.yaml, pointed at the test's namespace."""
    path = tmp_path / f"{name}.yaml"
    text = (REPO / "scenarios" / "kubernetes" / f"{name}.yaml").read_text()
    path.write_text(text.replace("namespace: gameday-sandbox", f"namespace: {namespace}"))
    return path


def run_as_the_harness(
    kwok: KwokEnvInfo, api: client.ApiClient, namespace: str, tmp_path: Path, name: str
) -> dict[str, Any]:
    """Run the bundled scenario NAME as deploy/rbac's account (not the tier's
    administrator); it must pass and leave no undo record behind. Its report."""
    harness = run_as_the_harness_account(api, kwok, namespace, tmp_path)
    reports = tmp_path / "reports"
    result = gameday(
        kwok,
        "run",
        str(scenario_in(namespace, tmp_path, name)),
        "--context",
        kwok.context,
        "--prometheus",
        kwok.prometheus,
        "--alertmanager",
        kwok.alertmanager,
        "--report-dir",
        str(reports),
        "--no-live",
        kubeconfig=harness,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    (scenario,) = json.loads(next(reports.glob("*/report.json")).read_text())["scenarios"]
    assert scenario["outcome"] == "passed", scenario["reason"]
    assert all(e["outcome"] == "passed" for e in scenario["expectations"])
    load_builtins()
    assert outstanding_undos(next(reports.glob("*/journal.jsonl"))) == []
    return scenario  # type: ignore[no-any-return]


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
    assert result.returncode != 0
    assert f"context {kwok.context!r} is not allowed (allowed: none)" in result.stderr
    deployment = client.AppsV1Api(api).read_namespaced_deployment("inference-server", namespace)
    assert as_json(api, deployment)["spec"] == workload["spec"]


def test_a_revert_does_not_overwrite_what_someone_else_changed(
    kwok: KwokEnvInfo, api: client.ApiClient, namespace: str, workload: dict[str, Any]
) -> None:
    apps = client.AppsV1Api(api)
    original = workload["spec"]["template"]["spec"]["containers"][0]["image"]
    undo = RestoreDeploymentField(
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


def _journal_records(reports: Path) -> list[dict[str, Any]]:
    records = []
    for journal in reports.glob("*/journal.jsonl"):
        for line in journal.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):  # the line being written now
                records.append(json.loads(line))
    return records


def _start(kwok: KwokEnvInfo, scenario: Path, reports: Path, state: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "KUBECONFIG": kwok.kubeconfig,
        "GAMEDAY_STATE_DIR": str(state),
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "gameday", "run", str(scenario), "--context", kwok.context]
    command += ["--report-dir", str(reports), "--no-live"]
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_fault(harness: subprocess.Popen[str], reports: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert harness.poll() is None, harness.communicate()
        if any(r.get("event") == "FaultApplied" for r in _journal_records(reports)):
            return
        time.sleep(0.2)  # following a file another process appends to
    raise AssertionError("the fault was never applied")


@pytest.mark.parametrize("scenario", ["bad-image-tag", "gpu-quota", "pvc-misconfig"])
@pytest.mark.parametrize("interrupt", ["SIGINT", "kill -9 then gameday cleanup"])
def test_an_interrupted_fault_leaves_the_workload_as_it_was(
    interrupt: str,
    scenario: str,
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    if scenario == "gpu-quota":
        name, before = "inference-server-gpu", gpu_workload(api, namespace)
    else:
        apps = client.AppsV1Api(api)
        apps.create_namespaced_deployment(namespace, yaml.safe_load(WORKLOAD.read_text()))
        name, before = (
            "inference-server",
            as_json(api, ready_pods(apps, namespace, "inference-server")),
        )
    reports, state = tmp_path / "reports", tmp_path / "state"
    harness = _start(kwok, scenario_in(namespace, tmp_path, scenario), reports, state)
    _wait_for_fault(harness, reports)
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    changed = as_json(api, apps.read_namespaced_deployment(name, namespace))
    assert changed["spec"] != before["spec"]  # the fault is in place
    if interrupt == "SIGINT":
        harness.send_signal(signal.SIGINT)
        _, stderr = harness.communicate(timeout=120)
        assert harness.returncode == 4, stderr[-3000:]
    else:
        harness.kill()
        harness.communicate(timeout=30)
        cleanup = gameday_cleanup(state)
        assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
        assert "restored deployment" in cleanup.stdout
    # compared field by field with the snapshot taken before the run
    after = as_json(api, ready_pods(apps, namespace, name))
    assert after["spec"] == before["spec"]
    assert core.list_namespaced_resource_quota(namespace).items == []
    assert core.list_namespaced_persistent_volume_claim(namespace).items == []
    load_builtins()
    assert outstanding_undos(next(reports.glob("*/journal.jsonl"))) == []


def test_gpu_quota_is_diagnosed_and_the_raised_quota_lets_the_rollout_finish(
    kwok: KwokEnvInfo, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    before = gpu_workload(api, namespace)
    report = run_as_the_harness(kwok, api, namespace, tmp_path, "gpu-quota")
    assert report["diagnosis"][0]["code"] == "DEPLOYMENT002", report["diagnosis"]
    assert "exceeded quota: gpu-quota" in " ".join(report["diagnosis"][0]["evidence"])
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
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    assert core.list_namespaced_persistent_volume_claim(namespace).items == []
    after = as_json(api, ready_pods(apps, namespace, "inference-server"))
    assert after["spec"] == workload["spec"]
