"""What the kwok scenario tests share: the workload, the harness's own account, running
``gameday`` as it, and interrupting a run in the middle of its fault."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gameday.core.journal import outstanding_undos
from gameday.plugins import load_builtins
from gameday.targets.kubernetes.cluster import as_json
from gameday.testenv import KwokEnvInfo
from tests.kwok.conftest import watch_until
from tests.support.cleanup import gameday_cleanup

REPO = Path(__file__).resolve().parents[2]
WORKLOAD = REPO / "deploy" / "workload" / "inference-server.yaml"
SERVICE = REPO / "deploy" / "workload" / "inference-server-service.yaml"
IMAGE = "/spec/template/spec/containers/0/image"
RBAC = REPO / "deploy" / "rbac" / "harness.yaml"
KUBE_SYSTEM_RBAC = REPO / "deploy" / "rbac" / "harness-kube-system.yaml"
PRIVATE = REPO / "deploy" / "workload" / "inference-server-private.yaml"
REGISTRY = "private.registry.gameday.test"


def grant_kube_system(api: client.ApiClient, namespace: str) -> None:
    """deploy/rbac/harness-kube-system.yaml, binding the account of ``namespace``; it
    outlives the test's namespace: take it away with :func:`revoke_kube_system`."""
    rbac = client.RbacAuthorizationV1Api(api)
    for document in yaml.safe_load_all(KUBE_SYSTEM_RBAC.read_text()):
        for subject in document.get("subjects", []):
            subject["namespace"] = namespace
        create = {
            "Role": rbac.create_namespaced_role,
            "RoleBinding": rbac.create_namespaced_role_binding,
        }[document["kind"]]
        create("kube-system", document)


def revoke_kube_system(api: client.ApiClient) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    for document in yaml.safe_load_all(KUBE_SYSTEM_RBAC.read_text()):
        delete = {
            "Role": rbac.delete_namespaced_role,
            "RoleBinding": rbac.delete_namespaced_role_binding,
        }[document["kind"]]
        with contextlib.suppress(ApiException):  # 404: not granted (any more)
            delete(document["metadata"]["name"], "kube-system")


def run_as_the_harness_account(
    api: client.ApiClient,
    kwok: KwokEnvInfo,
    namespace: str,
    into: Path,
    *,
    kube_system: bool = False,
) -> Path:
    """deploy/rbac/harness.yaml applied in ``namespace`` (and, with ``kube_system``,
    harness-kube-system.yaml: see :func:`grant_kube_system`); a kubeconfig (mode 600)
    that authenticates as its ServiceAccount with a short-lived token, context named as
    the tier's."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    for document in yaml.safe_load_all(RBAC.read_text()):
        create = {
            "ServiceAccount": core.create_namespaced_service_account,
            "Role": rbac.create_namespaced_role,
            "RoleBinding": rbac.create_namespaced_role_binding,
        }[document["kind"]]
        create(namespace, document)
    if kube_system:
        grant_kube_system(api, namespace)
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


def workload_rolled_out(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    """deploy/workload/inference-server.yaml, rolled out, and its Service
    (inference-server-service.yaml); the Deployment as the API server holds it."""
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(namespace, yaml.safe_load(WORKLOAD.read_text()))
    client.CoreV1Api(api).create_namespaced_service(namespace, yaml.safe_load(SERVICE.read_text()))
    return as_json(api, ready_pods(apps, namespace, "inference-server"))  # type: ignore[no-any-return]


@pytest.fixture
def workload(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    """deploy/workload/inference-server.yaml, rolled out (see workload_rolled_out)."""
    return workload_rolled_out(api, namespace)


def coredns_ready(api: client.ApiClient) -> None:
    ready_pods(client.AppsV1Api(api), "kube-system", "coredns")


def pull_secret(api: client.ApiClient, namespace: str) -> str:
    """The Secret gameday-registry the private workload names, with made-up credentials
    for the tier's registry; returns the token, which must never show up in a report."""
    token = secrets.token_hex(16)
    auth = base64.b64encode(f"gameday:{token}".encode()).decode()
    config_json = json.dumps({"auths": {REGISTRY: {"auth": auth}}})
    client.CoreV1Api(api).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="gameday-registry"),
            type="kubernetes.io/dockerconfigjson",
            data={".dockerconfigjson": base64.b64encode(config_json.encode()).decode()},
        ),
    )
    return token


def private_workload(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    """deploy/workload/inference-server-private.yaml, rolled out (its pods pull with the
    secret: the stage lets them)."""
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(namespace, yaml.safe_load(PRIVATE.read_text()))
    return as_json(api, ready_pods(apps, namespace, "inference-server-private"))  # type: ignore[no-any-return]


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


def gameday_run(
    kwok: KwokEnvInfo,
    scenario: Path,
    reports: Path,
    *extra: str,
    kubeconfig: Path | None = None,
    monitoring: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``gameday run SCENARIO --context <the tier's> --report-dir REPORTS --no-live EXTRA``
    as ``kubeconfig``'s account (default the tier's administrator); ``monitoring``: with
    the tier's Prometheus and Alertmanager."""
    urls = ["--prometheus", kwok.prometheus, "--alertmanager", kwok.alertmanager]
    return gameday(
        kwok,
        "run",
        str(scenario),
        "--context",
        kwok.context,
        *(urls if monitoring else []),
        "--report-dir",
        str(reports),
        "--no-live",
        *extra,
        kubeconfig=kubeconfig,
    )


def scenario_report(reports: Path) -> dict[str, Any]:
    """The one scenario of the run's report.json under ``reports``."""
    scenario: dict[str, Any]
    (scenario,) = json.loads(next(reports.glob("*/report.json")).read_text())["scenarios"]
    return scenario


def run_as_the_harness(
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
    name: str,
    *,
    kube_system: bool = False,
) -> dict[str, Any]:
    """Run the bundled scenario NAME as deploy/rbac's account (not the tier's
    administrator; ``kube_system``: with harness-kube-system.yaml for the run); it must
    pass and leave no undo record behind. Its report."""
    harness = run_as_the_harness_account(api, kwok, namespace, tmp_path, kube_system=kube_system)
    reports = tmp_path / "reports"
    try:
        result = gameday_run(
            kwok,
            scenario_in(namespace, tmp_path, name),
            reports,
            kubeconfig=harness,
            monitoring=True,
        )
    finally:
        if kube_system:
            revoke_kube_system(api)
    assert result.returncode == 0, result.stderr[-5000:]
    scenario = scenario_report(reports)
    assert scenario["outcome"] == "passed", scenario["reason"]
    assert all(e["outcome"] == "passed" for e in scenario["expectations"])
    load_builtins()
    assert outstanding_undos(next(reports.glob("*/journal.jsonl"))) == []
    return scenario


def journal_records(reports: Path) -> list[dict[str, Any]]:
    records = []
    for journal in reports.glob("*/journal.jsonl"):
        for line in journal.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):  # the line being written now
                records.append(json.loads(line))
    return records


def start_run(
    kwok: KwokEnvInfo, scenario: Path, reports: Path, state: Path
) -> subprocess.Popen[str]:
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


def wait_for_fault(harness: subprocess.Popen[str], reports: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert harness.poll() is None, harness.communicate()
        if any(r.get("event") == "FaultApplied" for r in journal_records(reports)):
            return
        time.sleep(0.2)  # following a file another process appends to
    raise AssertionError("the fault was never applied")


def interrupt_mid_fault(
    kwok: KwokEnvInfo,
    namespace: str,
    tmp_path: Path,
    scenario: str | Path,
    interrupt: str,
    observe: Callable[[], Any],
    *,
    changed_by_the_fault: bool = True,
) -> str:
    """Run scenarios/kubernetes/SCENARIO, or the file SCENARIO (pointed at ``namespace``
    already), as the tier's administrator; interrupt it once
    its fault is applied (SIGINT, or kill -9 followed by ``gameday cleanup``), and check
    that what ``observe`` reads (the objects the fault touches, as plain JSON) is the same
    afterwards as before the run, field by field, with no undo record left.
    ``changed_by_the_fault``: also check ``observe`` differs while the fault is in place.
    Returns what ``gameday cleanup`` printed (empty after SIGINT)."""
    before = observe()
    reports, state = tmp_path / "reports", tmp_path / "state"
    path = scenario if isinstance(scenario, Path) else scenario_in(namespace, tmp_path, scenario)
    harness = start_run(kwok, path, reports, state)
    wait_for_fault(harness, reports)
    if changed_by_the_fault:
        assert observe() != before  # the fault is in place
    printed = ""
    if interrupt == "SIGINT":
        harness.send_signal(signal.SIGINT)
        _, stderr = harness.communicate(timeout=120)
        assert harness.returncode == 4, stderr[-3000:]
    else:
        harness.kill()
        harness.communicate(timeout=30)
        cleanup = gameday_cleanup(state)
        assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
        printed = cleanup.stdout
    assert observe() == before
    load_builtins()
    assert outstanding_undos(next(reports.glob("*/journal.jsonl"))) == []
    return printed


def deployment_spec(api: client.ApiClient, namespace: str, name: str) -> Callable[[], Any]:
    """An ``observe`` for :func:`interrupt_mid_fault`: the Deployment's spec as stored."""
    apps = client.AppsV1Api(api)
    return lambda: as_json(api, apps.read_namespaced_deployment(name, namespace))["spec"]


INTERRUPTS = ["SIGINT", "kill -9 then gameday cleanup"]
