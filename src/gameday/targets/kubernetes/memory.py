"""A container's memory in the Kubernetes target's terms: quantities as the API server
writes them back, the memory limit's path inside a container (set and reverted as one
field), and the serving container's working set (kwok's annotation, or Prometheus).
Shared by the oom-kill fault and the raise-memory-limit remedy."""

from __future__ import annotations

import copy
from typing import Any, Literal

import httpx
from kubernetes.utils import parse_quantity

from gameday.core.errors import InjectionError
from gameday.targets.kubernetes.target import KubernetesTarget

__all__ = [
    "WORKING_SET_ANNOTATION",
    "Amounts",
    "binary_quantity",
    "memory_parts",
    "to_bytes",
    "value_at",
    "with_memory",
    "working_set",
]

WORKING_SET_ANNOTATION = "kwok.gameday.dev/memory-working-set"
_SUFFIXES = ("Mi", "Gi", "Ti", "Pi", "Ei")
Amounts = Literal["limits", "requests"]


def binary_quantity(size: int) -> str:
    """``size`` bytes, rounded down to whole MiB, as the API server writes a quantity back
    (canonical binary SI: 1536Mi, 2Gi): a JSON patch's test must compare equal to it."""
    value, suffix = max(1, size // 2**20), 0
    while value % 1024 == 0 and suffix < len(_SUFFIXES) - 1:
        value, suffix = value // 1024, suffix + 1
    return f"{value}{_SUFFIXES[suffix]}"


def to_bytes(quantity: str) -> int:
    return int(parse_quantity(quantity))  # type: ignore[no-untyped-call]


def memory_parts(container: dict[str, Any], amounts: Amounts) -> tuple[str, ...]:
    """The path, inside a container, of its memory limit (or request) at the depth the
    container has it: ("resources", "limits", "memory") when it has limits,
    ("resources", "limits") when it has resources but no limits, ("resources",) when
    it has none. Setting (and reverting) that one field leaves the rest as it was."""
    resources = container.get("resources")
    if resources is None:
        return ("resources",)
    if resources.get(amounts) is None:
        return ("resources", amounts)
    return ("resources", amounts, "memory")


def value_at(container: dict[str, Any], parts: tuple[str, ...]) -> Any:
    node: Any = container
    for part in parts:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def with_memory(container: dict[str, Any], amounts: Amounts, quantity: str) -> dict[str, Any]:
    """A copy of ``container`` whose memory limit (or request) is ``quantity``."""
    changed = copy.deepcopy(container)
    resources = changed["resources"] = changed.get("resources") or {}
    section = resources[amounts] = resources.get(amounts) or {}
    section["memory"] = quantity
    return changed


def working_set(
    target: KubernetesTarget, template: dict[str, Any], container: str
) -> tuple[int, str] | None:
    """The serving container's working set in bytes and where it was read, or None."""
    if target.simulated():
        annotations = template.get("metadata", {}).get("annotations") or {}
        declared = annotations.get(WORKING_SET_ANNOTATION)
        if declared:
            try:
                return to_bytes(declared), f"pod annotation {WORKING_SET_ANNOTATION} (kwok)"
            except ValueError:
                raise InjectionError(
                    f"pod annotation {WORKING_SET_ANNOTATION}={declared!r} is not a quantity"
                ) from None
    prometheus = target.endpoints.prometheus
    if not prometheus:
        return None
    name = target.spec.workload.deployment
    # the pods of every ReplicaSet of the Deployment: NAME-<template hash>-<suffix>
    selector = (
        f'namespace="{target.namespace}", container="{container}", '
        f'pod=~"{name}-[a-z0-9]+-[a-z0-9]+"'
    )
    query = f"max(max_over_time(container_memory_working_set_bytes{{{selector}}}[1h]))"
    try:
        response = httpx.get(
            f"{prometheus.rstrip('/')}/api/v1/query", params={"query": query}, timeout=10.0
        )
        result = response.json()["data"]["result"]
    except (httpx.HTTPError, ValueError, KeyError) as error:
        raise InjectionError(f"cannot ask Prometheus for the working set: {error}") from None
    if not result:
        return None
    return int(
        float(result[0]["value"][1])
    ), "Prometheus container_memory_working_set_bytes, max 1h"
