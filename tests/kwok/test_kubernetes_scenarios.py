"""The kubernetes target and its faults on the kwok tier: a real API server, scheduler and
controllers; kubelets simulated by the stages in testenv/stages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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

pytestmark = pytest.mark.kwok

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "kubernetes" / "bad-image-tag.yaml"
WORKLOAD = REPO / "deploy" / "workload" / "inference-server.yaml"
IMAGE = "/spec/template/spec/containers/0/image"


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


@pytest.fixture
def workload(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    """deploy/workload/inference-server.yaml, rolled out; its spec as the API server holds it."""
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(namespace, yaml.safe_load(WORKLOAD.read_text()))
    deployment = ready_pods(apps, namespace, "inference-server")
    return as_json(api, deployment)  # type: ignore[no-any-return]


def gameday(kwok: KwokEnvInfo, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": kwok.kubeconfig}
    return subprocess.run(
        [sys.executable, "-m", "gameday", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


def scenario_in(namespace: str, tmp_path: Path) -> Path:
    path = tmp_path / "bad-image-tag.yaml"
    text = SCENARIO.read_text().replace("namespace: gameday-sandbox", f"namespace: {namespace}")
    path.write_text(text)
    return path


def test_bad_image_tag_is_detected_diagnosed_and_rolled_back(
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
        "--context",
        kwok.context,
        "--prometheus",
        kwok.prometheus,
        "--alertmanager",
        kwok.alertmanager,
        "--report-dir",
        str(reports),
        "--no-live",
    )
    assert result.returncode == 0, result.stderr[-5000:]
    report = json.loads(next(reports.glob("*/report.json")).read_text())
    (scenario,) = report["scenarios"]
    assert scenario["outcome"] == "passed", scenario["reason"]
    assert all(e["outcome"] == "passed" for e in scenario["expectations"])
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
    assert after["spec"]["template"] == workload["spec"]["template"]
    assert after["spec"]["replicas"] == workload["spec"]["replicas"]
    load_builtins()
    assert outstanding_undos(next(reports.glob("*/journal.jsonl"))) == []


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
