"""Objects a fault creates and the undo record that deletes them again."""

from __future__ import annotations

from typing import ClassVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gameday.engine.undo import RevertFailed, UndoAction, register_undo
from gameday.targets.kubernetes.cluster import api_client

__all__ = ["DeletePersistentVolumeClaim", "DeleteResourceQuota"]


@register_undo
class DeleteResourceQuota(UndoAction):
    """A ResourceQuota a fault created (recorded before it is created)."""

    kind: ClassVar[str] = "delete-resource-quota"
    kubeconfig: str
    context: str
    namespace: str
    name: str

    def revert(self) -> str:
        core = client.CoreV1Api(api_client(self.kubeconfig, self.context))
        try:
            core.delete_namespaced_resource_quota(self.name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return f"resourcequota {self.namespace}/{self.name} already gone"
            raise RevertFailed(
                f"cannot delete resourcequota {self.namespace}/{self.name}: "
                f"{error.status} {error.reason}"
            ) from None
        return f"deleted resourcequota {self.namespace}/{self.name}"

    def describe(self) -> str:
        return f"delete resourcequota {self.namespace}/{self.name}"


@register_undo
class DeletePersistentVolumeClaim(UndoAction):
    """A PersistentVolumeClaim a fault created (recorded before it is created)."""

    kind: ClassVar[str] = "delete-persistent-volume-claim"
    kubeconfig: str
    context: str
    namespace: str
    name: str

    def revert(self) -> str:
        core = client.CoreV1Api(api_client(self.kubeconfig, self.context))
        try:
            core.delete_namespaced_persistent_volume_claim(self.name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return f"persistentvolumeclaim {self.namespace}/{self.name} already gone"
            raise RevertFailed(
                f"cannot delete persistentvolumeclaim {self.namespace}/{self.name}: "
                f"{error.status} {error.reason}"
            ) from None
        return f"deleted persistentvolumeclaim {self.namespace}/{self.name}"

    def describe(self) -> str:
        return f"delete persistentvolumeclaim {self.namespace}/{self.name}"
