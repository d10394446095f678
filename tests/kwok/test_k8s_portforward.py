"""The kubernetes target's port-forward on the kwok tier: requests to a local port go
through the real API server (pods/portforward, authorized for deploy/rbac's account) to
kwok's kubelet server, which relays each fake pod's port where KWOK's PortForward
objects say, here to real simulator processes (`gameday sim serve`), one per pod, so the
model a request is answered by names the pod it went through."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from kubernetes import client

from gameday.core.events import ComponentReady, Event, EventBus, Note
from gameday.core.journal import Journal
from gameday.core.processes import free_port
from gameday.targets.base import TargetContext
from gameday.targets.kubernetes.spec import KubernetesTargetSpec
from gameday.targets.kubernetes.target import KubernetesTarget
from gameday.testenv import KwokEnvInfo
from tests.integration.load.loadtest_support import Simulator
from tests.kwok.conftest import poll_until
from tests.kwok.scenarios import (
    gameday_run,
    ready_pods,
    run_as_the_harness_account,
    scenario_report,
    workload,
)

pytestmark = pytest.mark.kwok

__all__ = ["workload"]  # the fixture, for pytest

KWOK = ("kwok.x-k8s.io", "v1alpha1")
FORWARD_THREADS = ("port-forward-", "Kubernetes port forward proxy")


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[dict[str, Simulator]]:
    """Three simulators, each serving a model named after it: a, b and c."""
    sims = {
        name: Simulator(free_port(), tmp_path / f"sim-{name}.log", "--served-model-name", name)
        for name in "abc"
    }
    try:
        for sim in sims.values():
            sim.start()
        yield sims
    finally:
        for sim in sims.values():
            sim.kill()


def forward_to(sim: Simulator) -> list[dict[str, Any]]:
    return [{"ports": [8000], "target": {"address": "127.0.0.1", "port": sim.port}}]


def forward_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith(FORWARD_THREADS)}


def test_requests_go_through_the_api_server_to_ready_pods_and_leave_a_deleted_one(
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    simulators: dict[str, Simulator],
    tmp_path: Path,
) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    custom = client.CustomObjectsApi(api)
    first, second = sorted(p.metadata.name for p in core.list_namespaced_pod(namespace).items)
    # KWOK relays each pod's port 8000 to a simulator: the two pods there now to a and
    # b (PortForward: one pod, by name); any other pod of the namespace to c
    # (ClusterPortForward), such as the one the ReplicaSet makes for a deleted pod
    model_of = {first: "a", second: "b"}
    for pod, model in model_of.items():
        custom.create_namespaced_custom_object(
            *KWOK,
            namespace,
            "portforwards",
            {
                "apiVersion": "kwok.x-k8s.io/v1alpha1",
                "kind": "PortForward",
                "metadata": {"name": pod},
                "spec": {"forwards": forward_to(simulators[model])},
            },
        )
    everyone_else = f"gameday-{namespace}"
    custom.create_cluster_custom_object(
        *KWOK,
        "clusterportforwards",
        {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "ClusterPortForward",
            "metadata": {"name": everyone_else},
            "spec": {
                "selector": {"matchNamespaces": [namespace]},
                "forwards": forward_to(simulators["c"]),
            },
        },
    )
    events: list[Event] = []
    bus = EventBus()
    bus.subscribe(events.append)
    spec = KubernetesTargetSpec(
        kubeconfig=str(run_as_the_harness_account(api, kwok, namespace, tmp_path)),
        contexts=[kwok.context],
        namespace=namespace,
        workload={"deployment": "inference-server"},
        serve={"service": "inference-server", "port": "http"},  # targetPort: http, 8000
    )
    target = KubernetesTarget(
        spec,
        TargetContext(
            scenario="port-forward",
            run_id="run",
            journal=Journal(tmp_path / "journal.jsonl", "run"),
            bus=bus,
            scenario_dir=tmp_path,
            artifacts=tmp_path,
            stop=threading.Event(),
        ),
    )
    threads_before = forward_threads()
    target.up()
    try:
        server = target.endpoints.server
        assert target.forwards is not None
        (forward,) = target.forwards.forwards
        assert server == forward.url and server.startswith("http://127.0.0.1:")
        (ready,) = [e for e in events if isinstance(e, ComponentReady)]
        assert (ready.component, ready.url, ready.detail) == (
            "server",
            server,
            f"port-forward to service {namespace}/inference-server port http",
        )

        def served() -> tuple[str, str]:
            """One request on a connection of its own: (the pod it went to, the model
            that answered)."""
            response = httpx.get(f"{server}/v1/models", timeout=10)
            response.raise_for_status()
            assert forward.last_pod is not None
            return forward.last_pod, response.json()["data"][0]["id"]

        def both_pods_relayed() -> bool | None:
            # kwok's informers learn of the forward objects a moment after they exist
            try:
                pod, model = served()
            except httpx.HTTPError:
                return None
            relayed.add((pod, model))
            return {(first, "a"), (second, "b")} <= relayed or None

        relayed: set[tuple[str, str]] = set()
        poll_until(both_pods_relayed, timeout=30, what="kwok relaying both pods")
        # connections take turns over the ready pods, each answered by its own simulator
        answers = [served() for _ in range(4)]
        assert {pod for pod, _ in answers} == {first, second}
        assert all(model == model_of[pod] for pod, model in answers), answers

        # the pod the last request went to goes away: no connection goes to it after
        gone = answers[-1][0]
        core.delete_namespaced_pod(gone, namespace)
        pod, _ = served()
        assert pod != gone
        answers = [served() for _ in range(4)]
        assert gone not in {pod for pod, _ in answers}, answers
        # ... and its replacement, once ready, takes its turn (kwok relays it to c)
        ready_pods(apps, namespace, "inference-server")
        current = {p.metadata.name for p in core.list_namespaced_pod(namespace).items}
        (replacement,) = current - {first, second}
        model_of[replacement] = "c"
        answers = [served() for _ in range(4)]
        assert {pod for pod, _ in answers} == current - {gone}, answers
        assert all(model == model_of[pod] for pod, model in answers), answers
        # a keep-alive connection still open when the target goes down
        held = socket.create_connection(("127.0.0.1", forward.port), timeout=10)
        held.sendall(b"GET /health HTTP/1.1\r\nHost: sim\r\n\r\n")
        assert held.recv(4096).startswith(b"HTTP/1.1 200 OK")
    finally:
        target.down()
        custom.delete_cluster_custom_object(*KWOK, "clusterportforwards", everyone_else)
    # the forwards' handshakes never disturbed the watches sharing the target's client
    watch_troubles = [e for e in events if isinstance(e, Note) and "watch of" in e.message]
    assert watch_troubles == []
    # stopped: the open connection closed, nothing listens on its port, none of its
    # threads is left
    with held:
        assert held.recv(1) == b""
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server}/health", timeout=5)
    assert forward_threads() == threads_before


LOAD_THROUGH_A_FORWARD = """
apiVersion: gameday/v1alpha1
kind: Scenario
metadata:
  name: load-through-a-port-forward
  description: Locust's users reach the workload through the harness's port-forward.
target:
  kubernetes:
    namespace: {namespace}
    workload: {{deployment: inference-server}}
    serve: {{service: inference-server, port: http}}
load: {{profile: openai-chat, users: 4, spawn_rate: 4, stream: true}}
steady_state:
  - http: {{url: "{{server}}/health", status: 200}}
  - load: {{error_ratio: {{max: 0.01}}, window: 5s, min_requests: 20, within: 60s}}
"""


def test_locust_loads_the_workload_through_the_port_forward(
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    simulators: dict[str, Simulator],
    tmp_path: Path,
) -> None:
    custom = client.CustomObjectsApi(api)
    # only the workload's pods are relayed: load sent anywhere else would fail
    for pod in client.CoreV1Api(api).list_namespaced_pod(namespace).items:
        custom.create_namespaced_custom_object(
            *KWOK,
            namespace,
            "portforwards",
            {
                "apiVersion": "kwok.x-k8s.io/v1alpha1",
                "kind": "PortForward",
                "metadata": {"name": pod.metadata.name},
                "spec": {"forwards": forward_to(simulators["a"])},
            },
        )
    scenario = tmp_path / "load-through-a-port-forward.yaml"
    scenario.write_text(LOAD_THROUGH_A_FORWARD.format(namespace=namespace))
    reports = tmp_path / "reports"
    result = gameday_run(
        kwok,
        scenario,
        reports,
        kubeconfig=run_as_the_harness_account(api, kwok, namespace, tmp_path),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = scenario_report(reports)
    assert report["outcome"] == "passed", report["reason"]
    assert "port-forward to service" in report["components"]["server"], report["components"]
    load = [s for s in report["load"] if s["requests"]]
    assert sum(s["requests"] for s in load) >= 20 and not any(s["failures"] for s in load)
    # the forwards' handshakes never disturbed the watches sharing the target's client
    troubles = [n for n in report["notes"] if ": port-forward to " in n or "watch of" in n]
    assert troubles == []


def test_the_kubelet_server_the_api_server_forwards_to_listens_on_loopback_only(
    kwok: KwokEnvInfo, api: client.ApiClient
) -> None:
    node = client.CoreV1Api(api).read_node(kwok.nodes[0])
    assert {"type": "InternalDNS", "address": "localhost"} in [
        {"type": a.type, "address": a.address} for a in node.status.addresses
    ]
    kubelet_port = node.status.daemon_endpoints.kubelet_endpoint.port
    (controller,) = [
        p
        for p in psutil.process_iter(["cmdline"])
        if any(kwok.state_dir in part for part in p.info["cmdline"] or [])
        and any(part.startswith("--server-address=") for part in p.info["cmdline"] or [])
    ]
    listening = {
        (c.laddr.ip, c.laddr.port)
        for c in controller.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }
    assert ("127.0.0.1", kubelet_port) in listening
    assert {ip for ip, _ in listening} == {"127.0.0.1"}
