"""The GPU faults on the kwok tier: gpu-exhaustion (a hog Deployment takes the free GPUs,
the real scheduler leaves the restarted pod Pending) and the Kubernetes gpu-memory-hog
(pods on the workload's nodes hold the GPUs' memory; the serving container's failure is
the simulated kubelet's, testenv/stages/pod-gpu-memory.yaml)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from gameday.injectors.kubernetes import gpu_memory_hog
from gameday.targets.kubernetes.cluster import as_json
from gameday.testenv import KwokEnvInfo
from tests.kwok.conftest import watch_until
from tests.kwok.scenarios import (
    INTERRUPTS,
    deployment_spec,
    gpu_workload,
    interrupt_mid_fault,
    ready_pods,
    run_as_the_harness,
)

pytestmark = pytest.mark.kwok

WORKLOAD = "inference-server-gpu"
HOGS = "app.kubernetes.io/managed-by=llm-gameday"
VLLM_SAID = (
    "(EngineCore_DP0 pid=91) ValueError: Free memory on device (0.98/79.19 GiB) on startup is "
    "less than desired GPU memory utilization (0.9, 71.27 GiB). Decrease GPU memory utilization "
    "or reduce GPU memory used by other processes.\n"
    "(APIServer pid=1) RuntimeError: Engine core initialization failed. See root cause above. "
    "Failed core proc(s): {}"
)
SCENARIOS = {"gpu-exhaustion": "deployment", "gpu-memory-hog": "pod"}
"""Each scenario, and the kind of object its fault creates."""


def pods_gone(api: client.ApiClient, namespace: str, selector: str, timeout: float = 60) -> None:
    """Watch until no pod of ``selector`` is left (the garbage collector and the kwok
    pod-delete stage take them after their owner, or they themselves, are deleted)."""
    core = client.CoreV1Api(api)
    listed = core.list_namespaced_pod(namespace, label_selector=selector)
    left = {p.metadata.name for p in listed.items}
    version = listed.metadata.resource_version
    deadline = time.monotonic() + timeout
    while left:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"pods still there after {timeout:g}s: {sorted(left)}"
        for change in watch.Watch().stream(
            core.list_namespaced_pod,
            namespace,
            label_selector=selector,
            resource_version=version,
            timeout_seconds=max(1, int(remaining)),
        ):
            version = change["object"].metadata.resource_version
            if change["type"] == "DELETED":
                left.discard(change["object"].metadata.name)
            elif change["type"] == "ADDED":
                left.add(change["object"].metadata.name)
            if not left:
                break


def deployments(api: client.ApiClient, namespace: str) -> list[str]:
    return sorted(
        d.metadata.name for d in client.AppsV1Api(api).list_namespaced_deployment(namespace).items
    )


def nodes_of(api: client.ApiClient, namespace: str) -> set[str]:
    pods = client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=f"app.kubernetes.io/name={WORKLOAD}"
    )
    return {p.spec.node_name for p in pods.items}


def test_gpu_exhaustion_leaves_the_restarted_pod_pending_and_is_diagnosed(
    kwok: KwokEnvInfo, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    before = gpu_workload(api, namespace)
    report = run_as_the_harness(kwok, api, namespace, tmp_path, "gpu-exhaustion")
    assert report["diagnosis"][0]["code"] == "PodUnschedulable", report["diagnosis"]
    evidence = " ".join(report["diagnosis"][0]["evidence"])
    assert "Insufficient nvidia.com/gpu" in evidence
    (fault,) = report["faults"]
    # two GPU nodes of eight, two taken by the workload: the hog took the other 14, and
    # the 6 pods of max_pods (20) that found no GPU were scaled away
    assert fault["details"]["hog"] == (
        f"deployment {namespace}/gameday-gpu-hog: 14 pods of 1 nvidia.com/gpu"
    )
    assert fault["details"]["taken"].startswith("14 nvidia.com/gpu: ")
    assert fault["details"]["scaled away"].startswith("6 hog pods")
    # back as it was: the template field by field, no hog and none of its pods
    after = as_json(api, ready_pods(client.AppsV1Api(api), namespace, WORKLOAD))
    assert after["spec"] == before["spec"]
    assert deployments(api, namespace) == [WORKLOAD]
    pods_gone(api, namespace, HOGS)


def test_gpu_memory_hog_crash_loops_the_restarted_server_and_is_diagnosed(
    kwok: KwokEnvInfo, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    before = gpu_workload(api, namespace)
    nodes = nodes_of(api, namespace)
    report = run_as_the_harness(kwok, api, namespace, tmp_path, "gpu-memory-hog")
    assert report["diagnosis"][0]["code"] == "RUNTIME001", report["diagnosis"]
    evidence = " ".join(report["diagnosis"][0]["evidence"])
    assert "container-terminated reason=Error, exit_code=1" in evidence
    assert "terminated Error (exit 1)" in evidence
    (fault,) = report["faults"]
    # one hog pod on each node of the workload, placed there by the scheduler
    hogs = fault["details"]["hogs"].split(", ")
    assert sorted(h.rsplit(" on ", 1)[1] for h in hogs) == sorted(nodes)
    # the report says what kwok simulates here
    assert "the serving container's GPU memory error" in fault["details"]["simulated"]
    assert "pod-gpu-memory.yaml" in fault["details"]["simulated"]
    after = as_json(api, ready_pods(client.AppsV1Api(api), namespace, WORKLOAD))
    assert after["spec"] == before["spec"]
    pods_gone(api, namespace, HOGS)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("interrupt", INTERRUPTS)
def test_an_interrupted_gpu_fault_leaves_nothing_behind(
    interrupt: str,
    scenario: str,
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    gpu_workload(api, namespace)
    spec = deployment_spec(api, namespace, WORKLOAD)
    printed = interrupt_mid_fault(
        kwok,
        namespace,
        tmp_path,
        scenario,
        interrupt,
        lambda: (spec(), deployments(api, namespace)),
    )
    if interrupt != "SIGINT":
        assert "restored deployment" in printed
        assert f"deleted {SCENARIOS[scenario]} {namespace}/gameday-gpu" in printed
    # the rollout back to the original template finishes; the hog's pods are gone
    ready_pods(client.AppsV1Api(api), namespace, WORKLOAD)
    pods_gone(api, namespace, HOGS)


def stage_pod(name: str, node: str, held_on: str, policy: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": {gpu_memory_hog.HELD_ON: held_on}},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "containers": [
                {
                    "name": "server",
                    "image": "vllm/vllm-openai:v0.11.0",
                    "terminationMessagePolicy": policy,
                }
            ],
        },
    }


def test_the_gpu_memory_stage_fails_only_containers_on_a_node_a_hog_holds(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    watch_until(
        core.list_namespaced_service_account,
        lambda sa: sa if sa.metadata.name == "default" else None,
        namespace=namespace,
        what="the default ServiceAccount",
    )
    held_on = "gameday-gpu-memory-hog-0@gpu-0"
    for pod in (
        stage_pod("on-the-hogs-node", "gpu-0", held_on, "FallbackToLogsOnError"),
        stage_pod("file-policy", "gpu-0", held_on, "File"),
        stage_pod("elsewhere", "gpu-1", held_on, "FallbackToLogsOnError"),
    ):
        core.create_namespaced_pod(namespace, pod)

    def crash_looping(pod: Any) -> Any:
        status = (pod.status.container_statuses or [None])[0]
        if status is None or status.restart_count < 2 or status.state.waiting is None:
            return None
        return pod if status.state.waiting.reason == "CrashLoopBackOff" else None

    looping = {}
    for name in ("on-the-hogs-node", "file-policy"):
        looping[name] = watch_until(
            core.list_namespaced_pod,
            lambda p, name=name: crash_looping(p) if p.metadata.name == name else None,
            namespace=namespace,
            timeout=90,
            what=f"{name} in CrashLoopBackOff after two restarts",
        )
    failed = looping["on-the-hogs-node"].status.container_statuses[0]
    assert failed.last_state.terminated.reason == "Error"
    assert failed.last_state.terminated.exit_code == 1
    assert failed.last_state.terminated.message == VLLM_SAID
    assert failed.state.waiting.message.startswith("back-off 20s restarting failed container=")
    assert looping["on-the-hogs-node"].status.phase == "Running"
    # with the default policy the kubelet puts nothing in the message
    quiet = looping["file-policy"].status.container_statuses[0].last_state.terminated
    assert (quiet.reason, quiet.exit_code, quiet.message) == ("Error", 1, None)
    # the kubelet's BackOff event for it
    watch_until(
        core.list_namespaced_event,
        lambda e: (
            e
            if e.reason == "BackOff"
            and e.involved_object.name == "on-the-hogs-node"
            and e.message.startswith("Back-off restarting failed container server in pod")
            else None
        ),
        namespace=namespace,
        what="the BackOff event",
    )
    # the same annotation on a pod of another node: by now (it started with the others,
    # which failed twice) it would have failed too; it runs, never restarted
    (elsewhere,) = [
        p for p in core.list_namespaced_pod(namespace).items if p.metadata.name == "elsewhere"
    ]
    status = elsewhere.status.container_statuses[0]
    assert status.state.running is not None and status.ready
    assert status.restart_count == 0 and status.last_state.terminated is None
