"""raise-quota (DEPLOYMENT002): raise a ResourceQuota's hard limit so the workload fits.

The quota is the step's ``quota`` when the namespace has it, else the one whose hard
limits name ``resource``; the limit becomes ``to``, or what is used now plus one pod's
worth of the workload's request, enough for a rollout's surge. The undo puts back the
limit it found, only if the quota still holds the one the step set.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.utils import parse_quantity as _parse_quantity

from gameday.core.errors import InjectionError
from gameday.remedies.base import Remedy, remedies
from gameday.runbooks.model import RaiseQuota
from gameday.targets.kubernetes.target import KubernetesTarget
from gameday.targets.kubernetes.undo import json_pointer, set_field

__all__ = ["RaiseQuotaRemedy"]


def parse_quantity(text: str) -> float:
    """A Kubernetes quantity ("1", "500m", "2Gi") as a number."""
    return float(_parse_quantity(text))  # type: ignore[no-untyped-call]


@remedies.register("kubernetes/raise-quota")
class RaiseQuotaRemedy(Remedy[RaiseQuota, KubernetesTarget]):
    kind = "raise-quota"
    summary = "Raise the namespace's ResourceQuota limit on a resource so the workload fits."

    @classmethod
    def describe(cls, action: RaiseQuota) -> str:
        to = action.to or "what is used plus one pod's request"
        return f"raise the quota's {action.resource} limit to {to}"

    def _quota(self, core: client.CoreV1Api) -> tuple[Any, str]:
        quotas: list[Any] = core.list_namespaced_resource_quota(self.target.namespace).items
        named = [q for q in quotas if q.metadata.name == self.action.quota]
        for quota in named or quotas:
            for key in quota.spec.hard or {}:
                if key == self.action.resource or key.endswith("." + self.action.resource):
                    return quota, key
        raise InjectionError(
            f"no resourcequota in {self.target.namespace} limits {self.action.resource}"
        )

    def _one_pod(self, key: str) -> int:
        containers = self.target.deployment().spec.template.spec.containers
        resource = key.removeprefix("requests.")
        total = 0
        for container in containers:
            resources = container.resources
            amounts = {
                **((resources and resources.limits) or {}),
                **((resources and resources.requests) or {}),
            }
            if resource in amounts:
                total += int(parse_quantity(amounts[resource]))
        return max(total, 1)

    def apply(self) -> dict[str, str]:
        target = self.target
        core = client.CoreV1Api(target.require_api())
        quota, key = self._quota(core)
        original = quota.spec.hard[key]
        used = int(parse_quantity((quota.status.used or {}).get(key, "0")))
        raised = self.action.to or str(used + self._one_pod(key))
        path = json_pointer("spec", "hard", key)
        self.ctx.changes.record(
            target.restore_field("resourcequotas", quota.metadata.name, path, original, raised)
        )
        patch = set_field(path, original, raised)
        core.patch_namespaced_resource_quota(quota.metadata.name, target.namespace, patch)
        return {
            "quota": f"{target.namespace}/{quota.metadata.name}",
            key: f"{original} -> {raised} (used {used})",
        }
