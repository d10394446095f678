"""Undo records for changes to cluster objects: conflict-safe, and honest about conflicts.

Each record names the object, the field, the value before the change and the value the
fault set. Reverting is a JSON patch that first *tests* that the field still holds the
fault's value, then puts the original back: if someone changed the object meanwhile,
the API server refuses the patch, and the revert reports what it found instead of
overwriting it. The cluster is reached from the kubeconfig path and context alone.
"""

from __future__ import annotations

from typing import Any, ClassVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gameday.engine.undo import RevertFailed, UndoAction, register_undo
from gameday.targets.kubernetes.cluster import api_client, as_json

__all__ = ["RestoreDeploymentField", "json_pointer"]


def json_pointer(*parts: str | int) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def read_pointer(document: Any, pointer: str) -> Any:
    node = document
    for raw in pointer.lstrip("/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            index = int(part)
            node = node[index] if index < len(node) else None
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node


@register_undo
class RestoreDeploymentField(UndoAction):
    """A field of a Deployment a fault changed, to be set back if it still holds the
    fault's value."""

    kind: ClassVar[str] = "restore-deployment-field"
    kubeconfig: str
    context: str
    namespace: str
    name: str
    path: str
    """A JSON pointer into the Deployment (/spec/template/spec/containers/0/image)."""
    original: Any
    """None: the field was absent, and the revert removes it."""
    faulted: Any

    def _apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(api_client(self.kubeconfig, self.context))

    def revert(self) -> str:
        apps = self._apps()
        put_back = (
            {"op": "remove", "path": self.path}
            if self.original is None  # the fault added the field
            else {"op": "replace", "path": self.path, "value": self.original}
        )
        patch = [{"op": "test", "path": self.path, "value": self.faulted}, put_back]
        where = f"deployment {self.namespace}/{self.name} {self.path}"
        try:
            apps.patch_namespaced_deployment(self.name, self.namespace, patch)
        except ApiException as error:
            if error.status == 404:
                return f"{where}: the deployment is gone; nothing to restore"
            if error.status not in (409, 422):
                raise RevertFailed(f"{where}: {error.status} {error.reason}") from None
            current = read_pointer(
                as_json(
                    apps.api_client, apps.read_namespaced_deployment(self.name, self.namespace)
                ),
                self.path,
            )
            if current == self.original:
                return f"{where} already {self.original!r}"
            raise RevertFailed(
                f"{where} was changed by someone else after the fault (it is {current!r}, "
                f"the fault set {self.faulted!r}); left as it is, not overwritten with "
                f"{self.original!r}"
            ) from None
        return f"restored {where} to {self.original!r}"

    def describe(self) -> str:
        return (
            f"set deployment {self.namespace}/{self.name} {self.path} back to "
            f"{self.original!r} if it is still {self.faulted!r}"
        )
