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

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import Field, model_validator

from gameday.core.errors import InjectionError
from gameday.injectors.base import Injector, faults
from gameday.scenario.model import FaultSpec
from gameday.scenario.units import ByteSize, format_bytes
from gameday.targets.kubernetes.cluster import as_json
from gameday.targets.kubernetes.memory import (
    WORKING_SET_ANNOTATION,
    Amounts,
    binary_quantity,
    memory_parts,
    to_bytes,
    value_at,
    with_memory,
    working_set,
)
from gameday.targets.kubernetes.target import KubernetesTarget
from gameday.targets.kubernetes.undo import json_pointer, set_field

__all__ = [
    "OomKill",
    "OomKillSpec",
]

MIN_LIMIT = 4 * 2**20


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
