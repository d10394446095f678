"""The kubernetes target's port-forwards, without a cluster: which pod a connection goes
to, which pod port a Service's port means, what the spec accepts, and a forward that
cannot reach its API server (it says so, and stops leaving nothing behind)."""

from __future__ import annotations

import re
import socket
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from pydantic import ValidationError

from gameday.core.errors import UsageError
from gameday.core.processes import free_port
from gameday.targets.kubernetes.portforward import (
    PodPort,
    PortForward,
    container_port,
    is_ready,
    pods_to_try,
    service_port,
    workload_pods,
)
from gameday.targets.kubernetes.spec import KubernetesTargetSpec


def pod(
    name: str,
    *,
    ready: bool = True,
    phase: str = "Running",
    node: str | None = "cpu-0",
    deleting: bool = False,
    ports: dict[str, int] | None = None,
) -> client.V1Pod:
    declared = [client.V1ContainerPort(name=n, container_port=p) for n, p in (ports or {}).items()]
    return client.V1Pod(
        metadata=client.V1ObjectMeta(
            name=name, deletion_timestamp=datetime.now(UTC) if deleting else None
        ),
        spec=client.V1PodSpec(
            node_name=node,
            containers=[
                client.V1Container(name="sidecar", ports=[]),
                client.V1Container(name="server", ports=declared),
            ],
        ),
        status=client.V1PodStatus(
            phase=phase,
            conditions=[client.V1PodCondition(type="Ready", status=str(ready))],
        ),
    )


def names(pairs: list[tuple[Any, int]]) -> list[str]:
    return [p.metadata.name for p, _ in pairs]


# -- which pod -----------------------------------------------------------------------


def test_only_running_ready_pods_on_a_node_that_are_not_being_deleted_are_chosen() -> None:
    assert is_ready(pod("a"))
    assert not is_ready(pod("b", ready=False))
    assert not is_ready(pod("c", phase="Pending"))
    assert not is_ready(pod("d", node=None))
    assert not is_ready(pod("e", deleting=True))  # deleted: its Ready lags behind
    pods = [pod("e", deleting=True), pod("b", ready=False), pod("a"), pod("c", phase="Failed")]
    assert names(pods_to_try(pods, 8000, 0)) == ["a"]
    assert pods_to_try([pod("b", ready=False)], 8000, 0) == []


def test_connections_take_turns_over_the_ready_pods_and_fall_back_on_the_others() -> None:
    pods = [pod("c"), pod("a"), pod("b"), pod("x", ready=False)]
    assert names(pods_to_try(pods, 8000, 0)) == ["a", "b", "c"]
    assert names(pods_to_try(pods, 8000, 1)) == ["b", "c", "a"]
    assert names(pods_to_try(pods, 8000, 5)) == ["c", "a", "b"]


def test_a_named_port_is_looked_up_in_each_pods_containers() -> None:
    old, new = pod("old", ports={"http": 8000}), pod("new", ports={"http": 9000})
    assert container_port(old, "http") == 8000
    assert container_port(old, "metrics") is None
    assert container_port(old, 7000) == 7000  # a number is taken as it is
    bare = pod("bare")  # no such port: not a candidate
    assert pods_to_try([old, new, bare], "http", 0) == [(new, 9000), (old, 8000)]


# -- which pod port --------------------------------------------------------------------


def service(*ports: client.V1ServicePort) -> client.V1Service:
    return client.V1Service(
        metadata=client.V1ObjectMeta(name="web", namespace="ns"),
        spec=client.V1ServiceSpec(selector={"app": "web"}, ports=list(ports)),
    )


def test_a_services_port_means_the_pod_port_it_targets() -> None:
    web = service(
        client.V1ServicePort(name="http", port=80, target_port="http"),
        client.V1ServicePort(name="metrics", port=9090, target_port=9100),
        client.V1ServicePort(name="same", port=7000),  # no targetPort: the same number
    )
    assert service_port(web, "http") == "http"
    assert service_port(web, 80) == "http"
    assert service_port(web, "metrics") == 9100
    assert service_port(web, 7000) == 7000
    with pytest.raises(
        UsageError,
        match=re.escape("service ns/web has no port grpc (its ports: http, metrics, same)"),
    ):
        service_port(web, "grpc")
    with pytest.raises(
        UsageError, match=re.escape("has several ports (http, metrics, same); name one")
    ):
        service_port(web, None)
    only = service(client.V1ServicePort(port=80, target_port="8000"))
    assert service_port(only, None) == 8000  # a numeric IntOrString is a number


def deployment(*ports: client.V1ContainerPort, container: str = "server") -> client.V1Deployment:
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name="inference-server", namespace="ns"),
        spec=client.V1DeploymentSpec(
            selector=client.V1LabelSelector(match_labels={"b": "2", "a": "1"}),
            template=client.V1PodTemplateSpec(
                spec=client.V1PodSpec(
                    containers=[
                        client.V1Container(
                            name="proxy", ports=[client.V1ContainerPort(container_port=15001)]
                        ),
                        client.V1Container(name=container, ports=list(ports)),
                    ]
                )
            ),
        ),
    )


def test_the_workloads_pods_are_reached_at_the_serving_containers_port() -> None:
    workload = deployment(client.V1ContainerPort(name="http", container_port=8000))
    target = workload_pods(workload, "server", None)
    assert target == PodPort(
        namespace="ns",
        selector="a=1,b=2",
        port=8000,
        what="deployment ns/inference-server port 8000",
    )
    assert workload_pods(workload, None, None).port == 15001  # default: the first container
    assert workload_pods(workload, "server", "http").port == "http"  # resolved per pod
    with pytest.raises(UsageError, match=re.escape("declares no container port; give serve.port")):
        workload_pods(deployment(), "server", None)


# -- the spec --------------------------------------------------------------------------


def spec(**fields: Any) -> KubernetesTargetSpec:
    return KubernetesTargetSpec.model_validate(
        {"namespace": "sandbox", "workload": {"deployment": "inference-server"}, **fields}
    )


def test_serve_takes_a_service_and_a_port_by_number_or_name() -> None:
    assert spec(serve={}).serve is not None
    served = spec(serve={"service": "inference-server", "port": "http"}).serve
    assert served is not None and (served.service, served.port) == ("inference-server", "http")
    quoted = spec(serve={"port": "8000"}).serve
    assert quoted is not None and quoted.port == 8000  # a quoted number is still a number
    for port, message in [
        (0, "port 0 is not between 1 and 65535"),
        (70000, "port 70000 is not between 1 and 65535"),
        ("HTTP", "'HTTP' is not a port name"),
        ("http-", "'http-' is not a port name"),
        ("a-very-long-port", "'a-very-long-port' is not a port name"),
    ]:
        with pytest.raises(ValidationError, match=message):
            spec(serve={"port": port})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        spec(serve={"deployment": "other"})


def test_a_url_and_a_port_forward_to_the_same_endpoint_are_refused() -> None:
    monitoring = {"namespace": "monitoring", "service": "prometheus-operated", "port": "web"}
    assert spec(prometheus_service=monitoring).prometheus_service is not None
    for url, forward, value in [
        ("server", "serve", {}),
        ("prometheus", "prometheus_service", monitoring),
        ("alertmanager", "alertmanager_service", monitoring),
    ]:
        with pytest.raises(
            ValidationError, match=f"{url} .a URL. and {forward} .a port-forward. are both given"
        ):
            spec(**{url: "http://127.0.0.1:1", forward: value})
    with pytest.raises(ValidationError, match="service\n  Field required"):
        spec(alertmanager_service={"namespace": "monitoring"})


# -- a forward whose API server is not there ---------------------------------------------


def test_a_forward_without_an_api_server_says_so_closes_the_connection_and_stops_clean() -> None:
    nowhere = client.Configuration()
    nowhere.host = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    notes: list[tuple[str, str]] = []
    said = threading.Event()

    def note(level: str, message: str) -> None:
        notes.append((level, message))
        said.set()

    before = set(threading.enumerate())
    target = PodPort(namespace="ns", selector="app=web", port=8000, what="service ns/web port 80")
    forward = PortForward(client.ApiClient(nowhere), target, note)
    url = forward.start()
    assert url == f"http://127.0.0.1:{forward.port}"
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", forward.port), timeout=30) as conn:
            assert conn.recv(1) == b""  # closed: no pod to relay it to
    assert said.wait(30)
    assert len(notes) == 1  # the same trouble twice is said once
    level, message = notes[0]
    assert level == "warning" and message.startswith(
        "port-forward to service ns/web port 80: cannot list pods"
    ), notes
    assert forward.last_pod is None
    forward.stop()
    assert set(threading.enumerate()) - before == set()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", forward.port), timeout=5).close()
