"""pvc-misconfig (STORAGE001): the workload mounts a claim that cannot be provisioned.

A PersistentVolumeClaim naming a StorageClass that does not exist (``storage_class``,
default ``gameday-missing``) is created and mounted into the serving container; the
rollout's new pod stays Pending: the PV controller's ``ProvisioningFailed ...
storageclass ... not found`` event on the claim and the scheduler's "pod has unbound
immediate PersistentVolumeClaims" on the pod, both real control plane. The claim is
recorded for deletion before it is created; the volume and its mount are taken out of
the template again only while they are still the fault's.
"""

from __future__ import annotations

import secrets
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import Field

from gameday.core.errors import InjectionError
from gameday.injectors.base import Injector, faults
from gameday.scenario.model import NAME_PATTERN, FaultSpec
from gameday.scenario.units import ByteSize, format_bytes
from gameday.targets.kubernetes.cluster import as_json
from gameday.targets.kubernetes.target import KubernetesTarget
from gameday.targets.kubernetes.undo import json_pointer, set_field

__all__ = ["PvcMisconfig", "PvcMisconfigSpec"]

VOLUME = "gameday-model-cache"


class PvcMisconfigSpec(FaultSpec):
    storage_class: str = Field(default="gameday-missing", pattern=NAME_PATTERN)
    """A StorageClass the cluster does not have."""
    size: ByteSize = 2**30
    mount_path: str = "/gameday/model-cache"


@faults.register("pvc-misconfig")
class PvcMisconfig(Injector[PvcMisconfigSpec, KubernetesTarget]):
    Params = PvcMisconfigSpec
    target_kinds = frozenset({"kubernetes"})
    runbook = "STORAGE001"
    summary = "Mount a claim whose StorageClass does not exist: the new pod stays Pending."

    @classmethod
    def describe(cls, spec: PvcMisconfigSpec) -> str:
        return (
            f"create a {format_bytes(spec.size)} claim of StorageClass {spec.storage_class} "
            f"and mount it at {spec.mount_path} in the workload (JSON patches); revert: the "
            "mount, the volume and the claim"
        )

    def apply(self) -> dict[str, str]:
        target = self.target
        api = target.require_api()
        core = client.CoreV1Api(api)
        try:
            classes: list[Any] = client.StorageV1Api(api).list_storage_class().items
        except ApiException as error:
            if error.status != 403:
                raise
            classes = []  # a namespaced account cannot list classes; the events will tell
        if any(sc.metadata.name == self.spec.storage_class for sc in classes):
            raise InjectionError(
                f"StorageClass {self.spec.storage_class} exists here; name one that does not"
            )
        claim = f"gameday-claim-{secrets.token_hex(3)}"
        self.ctx.changes.record(target.delete_created("persistentvolumeclaims", claim))
        core.create_namespaced_persistent_volume_claim(
            target.namespace,
            client.V1PersistentVolumeClaim(
                metadata=client.V1ObjectMeta(name=claim, labels=target.created_labels()),
                spec=client.V1PersistentVolumeClaimSpec(
                    access_modes=["ReadWriteOnce"],
                    storage_class_name=self.spec.storage_class,
                    resources=client.V1VolumeResourceRequirements(
                        requests={"storage": str(self.spec.size)}
                    ),
                ),
            ),
        )
        deployment = target.deployment()
        template = as_json(api, deployment.spec.template)
        containers = template["spec"]["containers"]
        index = target.serving_container(template)
        volume = {"name": VOLUME, "persistentVolumeClaim": {"claimName": claim}}
        mount = {"name": VOLUME, "mountPath": self.spec.mount_path}
        patch = []
        for path, existing, item in (
            (
                json_pointer("spec", "template", "spec", "volumes"),
                template["spec"].get("volumes"),
                volume,
            ),
            (
                json_pointer("spec", "template", "spec", "containers", index, "volumeMounts"),
                containers[index].get("volumeMounts"),
                mount,
            ),
        ):
            faulted = [*(existing or []), item]
            self.ctx.changes.record(target.restore_workload_field(path, existing, faulted))
            patch += set_field(path, existing, faulted)
        try:
            client.AppsV1Api(api).patch_namespaced_deployment(
                deployment.metadata.name, target.namespace, patch
            )
        except ApiException as error:
            raise InjectionError(f"cannot mount the claim: {error.status} {error.reason}") from None
        return {
            "claim": f"{target.namespace}/{claim}",
            "size and class": f"{format_bytes(self.spec.size)}, {self.spec.storage_class}",
            "mounted": f"{containers[index]['name']}:{self.spec.mount_path}",
        }
