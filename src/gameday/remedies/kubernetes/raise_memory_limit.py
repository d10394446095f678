"""raise-memory-limit (MEMORY001): give the serving container room above its working set.

The runbook sets the limit 50% above what the server needs ("requests 32Gi, limits
48Gi"): the new limit is the step's ``to``, else ``factor`` times the working set (read
as the oom-kill fault reads it: the kwok annotation on that tier, Prometheus' most in
the last hour elsewhere), else - the working set unknown - the limit the run began
with. It is a JSON patch of the workload's Deployment (testing the limit it replaces),
so the rollout starts a new pod under it instead of waiting out the crash-loop back-off.

The undo writes back the resources the workload had when the run began, not the fault's
(reverting a fix on the way out must not break the server again), and only while the
limit is still the one the step set.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gameday.core.errors import InjectionError
from gameday.remedies.base import Remedy, remedies
from gameday.runbooks.model import RaiseMemoryLimit
from gameday.scenario.units import format_bytes
from gameday.targets.kubernetes.cluster import as_json
from gameday.targets.kubernetes.memory import (
    binary_quantity,
    memory_parts,
    to_bytes,
    value_at,
    with_memory,
    working_set,
)
from gameday.targets.kubernetes.target import KubernetesTarget
from gameday.targets.kubernetes.undo import json_pointer, set_field

__all__ = ["RaiseMemoryLimitRemedy"]


@remedies.register("kubernetes/raise-memory-limit")
class RaiseMemoryLimitRemedy(Remedy[RaiseMemoryLimit, KubernetesTarget]):
    kind = "raise-memory-limit"
    summary = "Raise the serving container's memory limit above its working set (a rollout)."

    @classmethod
    def describe(cls, action: RaiseMemoryLimit) -> str:
        to = format_bytes(action.to) if action.to else f"{action.factor:g} x its working set"
        return f"patch the workload's serving container memory limit to {to} (a rollout)"

    def _new_limit(self, template: dict[str, Any], container: dict[str, Any]) -> tuple[int, str]:
        if self.action.to is not None:
            return self.action.to, "the step's own"
        measured = working_set(self.target, template, container["name"])
        if measured is not None:
            size, source = measured
            factor = self.action.factor or 1.0
            return int(size * factor), f"{factor:g} x working set {format_bytes(size)} ({source})"
        before = value_at(self._before(container), ("resources", "limits", "memory"))
        if before is None:
            raise InjectionError(
                "the working set is unknown (no kwok annotation, no Prometheus series) and the "
                "container had no memory limit when the run began: give the step `to`"
            )
        return to_bytes(before), "the limit the run began with (the working set is unknown)"

    def _before(self, container: dict[str, Any]) -> dict[str, Any]:
        """The container as it was when the run began."""
        for candidate in self.target.snapshot_template()["spec"]["containers"]:
            if candidate["name"] == container["name"]:
                return candidate  # type: ignore[no-any-return]
        return container

    def apply(self) -> dict[str, str]:
        target = self.target
        api = target.require_api()
        deployment = target.deployment()
        name = deployment.metadata.name
        template = as_json(api, deployment.spec.template)
        index = target.serving_container(template)
        container = template["spec"]["containers"][index]
        size, why = self._new_limit(template, container)
        current = value_at(container, ("resources", "limits", "memory"))
        raised = binary_quantity(size)
        if current is not None and to_bytes(raised) <= to_bytes(current):
            raise InjectionError(f"the limit is {current} already, not below {raised} ({why})")
        # undo at the depth the container had its resources when the run began, back to
        # what they were then
        before = self._before(container)
        parts = memory_parts(before, "limits")
        path = json_pointer("spec", "template", "spec", "containers", index, *parts)
        value = value_at(with_memory(container, "limits", raised), parts)
        self.ctx.changes.record(target.restore_workload_field(path, value_at(before, parts), value))
        now = value_at(container, parts)
        patch = set_field(path, now, value)
        try:
            client.AppsV1Api(api).patch_namespaced_deployment(name, target.namespace, patch)
        except ApiException as error:
            raise InjectionError(
                f"cannot patch deployment {target.namespace}/{name}: {error.status} {error.reason}"
            ) from None
        return {
            "deployment": f"{target.namespace}/{name}",
            "memory limit": f"{current or 'none'} -> {raised}",
            "why": why,
        }
