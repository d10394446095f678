"""Objects a fault creates, and the undo record that deletes them again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gameday.engine.undo import RevertFailed, UndoAction, register_undo
from gameday.targets.kubernetes.cluster import api_client

__all__ = ["DeleteNamespacedObject"]

Kind = Literal["resourcequota", "persistentvolumeclaim"]

_DELETE: dict[str, Callable[[client.CoreV1Api], Callable[..., Any]]] = {
    "resourcequota": lambda core: core.delete_namespaced_resource_quota,
    "persistentvolumeclaim": lambda core: core.delete_namespaced_persistent_volume_claim,
}


@register_undo
class DeleteNamespacedObject(UndoAction):
    """An object a fault created (recorded before it is created): a ResourceQuota, a
    PersistentVolumeClaim."""

    kind: ClassVar[str] = "delete-namespaced-object"
    kubeconfig: str
    context: str
    object_kind: Kind
    namespace: str
    name: str

    def revert(self) -> str:
        core = client.CoreV1Api(api_client(self.kubeconfig, self.context))
        what = f"{self.object_kind} {self.namespace}/{self.name}"
        try:
            _DELETE[self.object_kind](core)(self.name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return f"{what} already gone"
            raise RevertFailed(f"cannot delete {what}: {error.status} {error.reason}") from None
        return f"deleted {what}"

    def describe(self) -> str:
        return f"delete {self.object_kind} {self.namespace}/{self.name}"
