"""oom-kill (MEMORY001): lower the serving container's memory limit below its working set.

The workload Deployment's serving container gets ``resources.limits.memory`` set to
``limit``, or to ``fraction`` of its working set; the rollout's new pod is OOM-killed as
its memory grows past the limit (terminated OOMKilled, exit code 137), restarted, killed
again and left in CrashLoopBackOff, while the old pods keep serving. A memory request
above the new limit is lowered to it as well (the API refuses requests above limits).

Where the working set comes from:

- on the kwok tier, the pod annotation ``kwok.gameday.dev/memory-working-set`` of the
  workload's template: the simulated kubelet (testenv/stages/pod-oom.yaml) OOM-kills a
  container whose memory limit is below it, so it is that tier's ground truth;
- on any other cluster, Prometheus' ``container_memory_working_set_bytes`` (cAdvisor's,
  the kubelet's own measure for OOM decisions), the most the workload's serving
  container used in the last hour, when the target has a Prometheus URL;
- otherwise it is unknown, and the fault needs an explicit ``limit``.

On kwok the API server, the rollout and the Deployment's conditions are real; the
container's memory, the kill, the restarts and the back-off are the stage's simulation.

Every change is a JSON patch recorded before it is made, at the depth the container's
resources had (a container without limits gets them, and the revert removes them
again), and reverted only while it still holds the fault's value.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import httpx
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity
from pydantic import Field, model_validator

from gameday.core.errors import InjectionError
from gameday.injectors.base import Injector, faults
from gameday.scenario.model import FaultSpec
from gameday.scenario.units import ByteSize, format_bytes
from gameday.targets.kubernetes.cluster import as_json
from gameday.targets.kubernetes.target import KubernetesTarget
from gameday.targets.kubernetes.undo import json_pointer, set_field

__all__ = [
    "WORKING_SET_ANNOTATION",
    "OomKill",
    "OomKillSpec",
    "binary_quantity",
    "memory_parts",
    "to_bytes",
    "value_at",
    "with_memory",
    "working_set",
]

WORKING_SET_ANNOTATION = "kwok.gameday.dev/memory-working-set"
MIN_LIMIT = 4 * 2**20
_SUFFIXES = ("Mi", "Gi", "Ti", "Pi", "Ei")
Amounts = Literal["limits", "requests"]


class OomKillSpec(FaultSpec):
    limit: ByteSize | None = None
    """The new memory limit. Needed where the working set is not known (no kwok
    annotation, no Prometheus URL); it must be below the working set to kill anything."""
    fraction: float = Field(default=0.5, gt=0.0, lt=1.0)
    """Without ``limit``: the new limit as a fraction of the working set."""

    @model_validator(mode="after")
    def _sane(self) -> OomKillSpec:
        if self.limit is not None and self.limit < MIN_LIMIT:
            raise ValueError(f"limit must be at least {format_bytes(MIN_LIMIT)}")
        return self


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


@faults.register("oom-kill")
class OomKill(Injector[OomKillSpec, KubernetesTarget]):
    Params = OomKillSpec
    target_kinds = frozenset({"kubernetes"})
    runbook = "MEMORY001"
    summary = (
        "Lower the serving container's memory limit below its working set: OOMKilled, crash loop."
    )

    @classmethod
    def describe(cls, spec: OomKillSpec) -> str:
        new = format_bytes(spec.limit) if spec.limit else f"{spec.fraction:g} x its working set"
        return (
            f"patch the workload Deployment's serving container memory limit to {new} (and a "
            "memory request above it down to it; JSON patches); revert: the original "
            "resources, only while they still hold the fault's"
        )

    def apply(self) -> dict[str, str]:
        target = self.target
        api = target.require_api()
        deployment = target.workload_within_cap()
        name = deployment.metadata.name
        template = as_json(api, deployment.spec.template)
        index = target.serving_container(template)
        container = template["spec"]["containers"][index]
        measured = working_set(target, template, container["name"])
        if self.spec.limit is not None:
            limit = self.spec.limit
            if measured is not None and limit >= measured[0]:
                raise InjectionError(
                    f"limit {format_bytes(limit)} is not below the working set "
                    f"{format_bytes(measured[0])} ({measured[1]}): nothing would be killed"
                )
        elif measured is None:
            raise InjectionError(
                "the working set of the serving container is unknown (no "
                f"{WORKING_SET_ANNOTATION} annotation on kwok, no Prometheus URL or no "
                "container_memory_working_set_bytes for it): give the fault a limit"
            )
        else:
            limit = max(MIN_LIMIT, int(measured[0] * self.spec.fraction))
        quantity = binary_quantity(limit)
        details = {
            "deployment": f"{target.namespace}/{name}",
            "container": container["name"],
            "working set": (
                f"{format_bytes(measured[0])} ({measured[1]})" if measured else "unknown"
            ),
        }
        patch: list[dict[str, Any]] = []
        # a request above the new limit is refused by the API: lower it first, and record
        # it first so the limit goes back before it when reverting
        request = value_at(container, ("resources", "requests", "memory"))
        if request is not None and to_bytes(request) > to_bytes(quantity):
            patch += self._change(index, container, "requests", quantity)
            details["memory request"] = f"{request} -> {quantity}"
            container = with_memory(container, "requests", quantity)
        before = value_at(container, ("resources", "limits", "memory"))
        patch += self._change(index, container, "limits", quantity)
        details["memory limit"] = f"{before or 'none'} -> {quantity}"
        try:
            client.AppsV1Api(api).patch_namespaced_deployment(name, target.namespace, patch)
        except ApiException as error:
            raise InjectionError(
                f"cannot patch deployment {target.namespace}/{name}: {error.status} {error.reason}"
            ) from None
        return details

    def _change(
        self, index: int, container: dict[str, Any], amounts: Amounts, quantity: str
    ) -> list[dict[str, Any]]:
        """Record the undo of setting the container's memory ``amounts`` to ``quantity``;
        the JSON patch operations that set it."""
        parts = memory_parts(container, amounts)
        original = value_at(container, parts)
        faulted = value_at(with_memory(container, amounts, quantity), parts)
        path = json_pointer("spec", "template", "spec", "containers", index, *parts)
        self.ctx.changes.record(self.target.restore_workload_field(path, original, faulted))
        return set_field(path, original, faulted)
