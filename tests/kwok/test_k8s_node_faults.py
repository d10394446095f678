"""oom-kill and port-conflict on the kwok tier: a real API server, scheduler and
controllers; the kubelet's OOM kills and restarts simulated by testenv/stages."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch

from gameday.targets.kubernetes.cluster import as_json
from gameday.testenv import KwokEnvInfo
from tests.kwok.scenarios import (
    INTERRUPTS,
    deployment_spec,
    gameday_run,
    interrupt_mid_fault,
    ready_pods,
    run_as_the_harness,
    run_as_the_harness_account,
    scenario_report,
    start_run,
    wait_for_fault,
    workload,
    workload_rolled_out,
)
from tests.support.cleanup import gameday_cleanup

pytestmark = pytest.mark.kwok

__all__ = ["workload"]  # the fixture, for pytest

HOLDERS = "app.kubernetes.io/name=gameday-port-holder"
NODES = ["cpu-0", "cpu-1", "gpu-0", "gpu-1"]
"""The kwok tier's nodes; none is tainted, so the CPU workload may run on each."""


def evidence_of(report: dict[str, Any], code: str) -> str:
    (diagnosis, *_) = report["diagnosis"]
    assert diagnosis["code"] == code, report["diagnosis"]
    return " ".join(diagnosis["evidence"])


def no_holders_left(api: client.ApiClient, namespace: str, timeout: float = 60.0) -> None:
    """Watch until no port holder pod exists at all (terminating ones included)."""
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = core.list_namespaced_pod(namespace, label_selector=HOLDERS)
        if not listed.items:
            return
        for _ in watch.Watch().stream(
            core.list_namespaced_pod,
            namespace,
            label_selector=HOLDERS,
            resource_version=listed.metadata.resource_version,
            timeout_seconds=2,
        ):
            break  # a change: list again
    names = [p.metadata.name for p in core.list_namespaced_pod(namespace).items]
    raise AssertionError(f"port holders still there after {timeout:g}s: {names}")


def test_oom_kill_is_diagnosed_and_the_raised_limit_lets_the_rollout_finish(
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    container = workload["spec"]["template"]["spec"]["containers"][0]
    assert "limits" not in container["resources"]  # the revert must take them out again
    report = run_as_the_harness(kwok, api, namespace, tmp_path, "oom-kill")
    evidence = evidence_of(report, "MEMORY001")
    assert "terminated OOMKilled (exit 137)" in evidence
    (fault,) = report["faults"]
    # half the working set the workload declares for the simulated kubelet (1Gi)
    assert fault["details"]["memory limit"] == "none -> 512Mi"
    assert "kwok.gameday.dev/memory-working-set" in fault["details"]["working set"]
    (step,) = [s for s in report["remedy"]["steps"] if s["outcome"] == "done"]
    assert step["kind"] == "raise-memory-limit"
    assert step["details"]["memory limit"] == "512Mi -> 1536Mi"  # the runbook's 50% above
    assert report["time_to_recover_s"] <= report["remedy"]["budget_s"]
    assert any("kubelets are simulated by kwok stages" in line for line in report["simulated"])
    # the limit is gone again: the template is the one the run began with
    after = as_json(api, ready_pods(client.AppsV1Api(api), namespace, "inference-server"))
    assert after["spec"] == workload["spec"]


def test_port_conflict_leaves_the_rollout_unschedulable_on_every_node(
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    report = run_as_the_harness(kwok, api, namespace, tmp_path, "port-conflict")
    evidence = evidence_of(report, "NETWORK001")
    # the workload's own pod, refused by the real scheduler for the port
    assert "inference-server-" in evidence
    assert "didn't have free ports for the requested pod ports" in evidence
    (fault,) = report["faults"]
    holders = fault["details"]["holders"]
    assert holders == f"4 pods holding TCP hostPort 8000, on {', '.join(NODES)}"
    assert "4 node(s) didn't have free ports" in fault["details"]["no free node left"]
    no_holders_left(api, namespace)
    after = as_json(api, ready_pods(client.AppsV1Api(api), namespace, "inference-server"))
    assert after["spec"] == workload["spec"]


@pytest.mark.parametrize("scenario", ["oom-kill", "port-conflict"])
@pytest.mark.parametrize("interrupt", INTERRUPTS)
def test_an_interrupted_fault_leaves_the_workload_and_no_holder(
    interrupt: str,
    scenario: str,
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    workload_rolled_out(api, namespace)
    spec = deployment_spec(api, namespace, "inference-server")
    core = client.CoreV1Api(api)

    def observe() -> tuple[Any, list[str]]:
        # holders being deleted (their deletion is the revert) count as gone; that they
        # vanish is checked below
        pods = core.list_namespaced_pod(namespace, label_selector=HOLDERS).items
        return spec(), sorted(p.metadata.name for p in pods if not p.metadata.deletion_timestamp)

    printed = interrupt_mid_fault(kwok, namespace, tmp_path, scenario, interrupt, observe)
    if interrupt != "SIGINT":
        assert "restored deployment" in printed
        if scenario == "port-conflict":
            assert "deleted pod" in printed
    no_holders_left(api, namespace)
    ready_pods(client.AppsV1Api(api), namespace, "inference-server")


def misroute(namespace: str, into: Path, **fault: Any) -> Path:
    """A scenario of port-conflict's service-target-port mode against the workload."""
    service = fault.get("service", "gameday-misrouted")
    scenario = {
        "apiVersion": "gameday/v1alpha1",
        "kind": "Scenario",
        "metadata": {"name": "misrouted-service", "runbook": "NETWORK001"},
        "target": {
            "kubernetes": {"namespace": namespace, "workload": {"deployment": "inference-server"}}
        },
        "steady_state": [{"pod": {"phase": "Running", "ready": True, "every": True}}],
        "faults": [
            {"name": "misroute", "type": "port-conflict", "mode": "service-target-port", **fault}
        ],
        # the endpointslice controller still lists both ready pods: nothing on the
        # control plane says the port is wrong
        "expect": [{"endpoints": {"service": service, "ready": 2, "within": "30s"}}],
    }
    path = into / "misrouted-service.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def test_a_misrouted_service_selects_the_ready_pods_and_is_deleted_again(
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    """service-target-port without a Service given: one is created, as the harness's
    account; the real endpointslice controller lists both ready pods behind it (on kwok
    nothing sends traffic, so no connection is refused here); it is deleted afterwards."""
    harness = run_as_the_harness_account(api, kwok, namespace, tmp_path)
    reports = tmp_path / "reports"
    result = gameday_run(
        kwok, misroute(namespace, tmp_path, duration="5s"), reports, kubeconfig=harness
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (fault,) = scenario_report(reports)["faults"]
    assert fault["details"]["service"] == (
        f"{namespace}/gameday-misrouted (created): port 8000 -> targetPort 8001; the container "
        "listens on 8000"
    )
    names = [
        s.metadata.name for s in client.CoreV1Api(api).list_namespaced_service(namespace).items
    ]
    assert names == ["inference-server"]  # the workload's own, and nothing else


def test_a_patched_service_is_put_back_by_cleanup_after_kill_9(
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    core = client.CoreV1Api(api)  # the workload comes with its Service

    def target_ports() -> list[Any]:
        service = core.read_namespaced_service("inference-server", namespace)
        return [port.target_port for port in service.spec.ports]

    assert target_ports() == ["http"]
    reports, state = tmp_path / "reports", tmp_path / "state"
    scenario = misroute(
        namespace, tmp_path, service="inference-server", target_port=9999, duration="120s"
    )
    harness = start_run(kwok, scenario, reports, state)
    wait_for_fault(harness, reports)
    assert target_ports() == [9999]
    harness.kill()
    harness.communicate(timeout=30)
    cleanup = gameday_cleanup(state)
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert (
        f"restored service {namespace}/inference-server /spec/ports/0/targetPort" in cleanup.stdout
    )
    assert target_ports() == ["http"]
