"""The pure parts of the Kubernetes oom-kill and port-conflict faults: quantities as the
API server writes them back, where a container's memory limit lives, which port serves,
and the parameters each mode accepts. Their effect on a cluster is tested on the kwok
tier (tests/kwok/test_k8s_node_faults.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gameday.core.errors import InjectionError
from gameday.injectors.kubernetes.oom_kill import OomKill, OomKillSpec
from gameday.injectors.kubernetes.port_conflict import (
    PortConflict,
    PortConflictSpec,
    serving_port,
)
from gameday.targets.kubernetes.memory import binary_quantity, memory_parts, value_at, with_memory


@pytest.mark.parametrize(
    ("size", "quantity"),
    [
        (2**29, "512Mi"),
        (3 * 2**29, "1536Mi"),
        (2**30, "1Gi"),
        (2**40, "1Ti"),
        (48 * 2**30, "48Gi"),
        (2**20 + 2**19, "1Mi"),  # whole MiB, rounded down
        (100, "1Mi"),
    ],
)
def test_quantities_are_written_as_the_api_server_writes_them_back(
    size: int, quantity: str
) -> None:
    assert binary_quantity(size) == quantity


@pytest.mark.parametrize(
    ("container", "parts", "before", "after"),
    [
        # no resources at all: the whole resources object is the fault's
        ({"name": "s"}, ("resources",), None, {"limits": {"memory": "512Mi"}}),
        # resources without limits: the limits object is the fault's
        (
            {"name": "s", "resources": {"requests": {"cpu": "1"}}},
            ("resources", "limits"),
            None,
            {"memory": "512Mi"},
        ),
        # limits without memory: only the memory entry
        (
            {"name": "s", "resources": {"limits": {"cpu": "1"}}},
            ("resources", "limits", "memory"),
            None,
            "512Mi",
        ),
        (
            {"name": "s", "resources": {"limits": {"memory": "2Gi", "cpu": "1"}}},
            ("resources", "limits", "memory"),
            "2Gi",
            "512Mi",
        ),
    ],
)
def test_the_memory_limit_is_changed_at_the_depth_the_container_has_it(
    container: dict[str, Any], parts: tuple[str, ...], before: Any, after: Any
) -> None:
    assert memory_parts(container, "limits") == parts
    assert value_at(container, parts) == before
    changed = with_memory(container, "limits", "512Mi")
    assert value_at(changed, parts) == after
    assert value_at(changed, ("resources", "limits", "memory")) == "512Mi"


def test_with_memory_leaves_the_container_it_was_given_alone() -> None:
    container = {"name": "s", "resources": {"limits": {"cpu": "1"}}}
    with_memory(container, "limits", "1Gi")
    assert container == {"name": "s", "resources": {"limits": {"cpu": "1"}}}


def test_an_explicit_limit_has_a_floor() -> None:
    with pytest.raises(ValidationError, match="limit must be at least 4Mi"):
        OomKillSpec(name="f", type="oom-kill", limit=1024)
    assert "0.5 x its working set" in OomKill.describe(OomKillSpec(name="f", type="oom-kill"))


@pytest.mark.parametrize(
    ("ports", "wanted", "index"),
    [
        ([{"containerPort": 9000}, {"name": "http", "containerPort": 8000}], None, 1),
        ([{"name": "grpc", "containerPort": 9000}, {"containerPort": 8000}], None, 0),
        ([{"containerPort": 9000}, {"containerPort": 8000}], 8000, 1),
    ],
)
def test_the_serving_port_is_the_one_named_http_else_the_first(
    ports: list[dict[str, Any]], wanted: int | None, index: int
) -> None:
    assert serving_port({"name": "server", "ports": ports}, wanted) == index


def test_a_port_the_container_does_not_declare_is_refused() -> None:
    with pytest.raises(InjectionError, match="declares no port 8001 \\(it has: 8000\\)"):
        serving_port({"name": "server", "ports": [{"containerPort": 8000}]}, 8001)
    with pytest.raises(InjectionError, match="declares no port; name one"):
        serving_port({"name": "server"}, None)


def test_each_mode_takes_only_its_own_parameters() -> None:
    with pytest.raises(ValidationError, match="service and target_port are for mode"):
        PortConflictSpec(name="f", type="port-conflict", service="inference-server")
    with pytest.raises(ValidationError, match="holder_image is for mode host-port"):
        PortConflictSpec(
            name="f", type="port-conflict", mode="service-target-port", holder_image="busybox"
        )
    host = PortConflictSpec(name="f", type="port-conflict", port=8000)
    assert "holding port 8000 as a hostPort on every node" in PortConflict.describe(host)
    service = PortConflictSpec(
        name="f", type="port-conflict", mode="service-target-port", service="inference-server"
    )
    assert PortConflict.describe(service).startswith("patch service inference-server")
