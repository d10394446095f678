"""gpu-quota (DEPLOYMENT002): a ResourceQuota on nvidia.com/gpu below what the workload uses.

A quota named ``gpu-quota`` (as the runbook's example names it) caps
``requests.nvidia.com/gpu`` at ``gpus``; the workload is then restarted as ``kubectl
rollout restart`` does, so its new pods meet the quota at admission: the ReplicaSet
controller's ``FailedCreate ... exceeded quota`` events, a rollout that cannot progress,
while the old pods keep serving. Everything here is the real control plane on every
tier. The quota is recorded for deletion before it is created; the restart annotation
is taken out again only if it is still the fault's.
"""

from __future__ import annotations

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import Field

from gameday.core.errors import InjectionError
from gameday.injectors.base import Injector, faults
from gameday.scenario.model import FaultSpec
from gameday.targets.kubernetes.target import KubernetesTarget
from gameday.targets.kubernetes.workload import restart_workload

__all__ = ["GpuQuota", "GpuQuotaSpec"]

QUOTA = "gpu-quota"
RESOURCE = "requests.nvidia.com/gpu"


class GpuQuotaSpec(FaultSpec):
    gpus: int = Field(default=0, ge=0)
    """The quota's hard limit on requested GPUs in the namespace."""
    restart: bool = True
    """Restart the workload so its new pods meet the quota (as a rollout would)."""


@faults.register("gpu-quota")
class GpuQuota(Injector[GpuQuotaSpec, KubernetesTarget]):
    Params = GpuQuotaSpec
    target_kinds = frozenset({"kubernetes"})
    runbook = "DEPLOYMENT002"
    summary = "A ResourceQuota on nvidia.com/gpu the workload's new pods exceed (FailedCreate)."

    @classmethod
    def describe(cls, spec: GpuQuotaSpec) -> str:
        restart = "; restart the workload (rollout restart annotation)" if spec.restart else ""
        return f"create resourcequota {QUOTA} with {RESOURCE}: {spec.gpus}{restart}"

    def apply(self) -> dict[str, str]:
        target = self.target
        api = target.require_api()
        core = client.CoreV1Api(api)
        quota = client.V1ResourceQuota(
            metadata=client.V1ObjectMeta(name=QUOTA, labels=target.created_labels()),
            spec=client.V1ResourceQuotaSpec(hard={RESOURCE: str(self.spec.gpus)}),
        )
        self.ctx.changes.record(target.delete_created("resourcequotas", QUOTA))
        try:
            core.create_namespaced_resource_quota(target.namespace, quota)
        except ApiException as error:
            if error.status == 409:
                raise InjectionError(
                    f"resourcequota {target.namespace}/{QUOTA} already exists; it is not ours "
                    "to change"
                ) from None
            raise InjectionError(
                f"cannot create the quota: {error.status} {error.reason}"
            ) from None
        details = {"quota": f"{target.namespace}/{QUOTA}: {RESOURCE} = {self.spec.gpus}"}
        if self.spec.restart:
            details["restart"] = restart_workload(target, self.ctx.changes)
        return details
