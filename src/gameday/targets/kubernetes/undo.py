"""Undo records for changes to cluster objects: conflict-safe, and honest about conflicts.

Each record names the object, the field, the value before the change and the value the
fault set. Reverting is a JSON patch that first *tests* that the field still holds the
fault's value, then puts the original back: if someone changed the object meanwhile,
the API server refuses the patch, and the revert reports what it found instead of
overwriting it. The cluster is reached from the kubeconfig path and context alone.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gameday.core.undo import RevertFailed, UndoAction, register_undo
from gameday.targets.kubernetes.cluster import api_client, object_path, rest

__all__ = ["RestoreObjectField", "json_pointer", "read_pointer", "set_field"]


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


def set_field(path: str, current: Any, value: Any) -> list[dict[str, Any]]:
    """The JSON patch that changes ``path`` from ``current`` to ``value``: it tests the
    current value first, so a change someone made since it was read is refused; a field
    that is absent (``current`` None) is added."""
    if current is None:
        return [{"op": "add", "path": path, "value": value}]
    return [
        {"op": "test", "path": path, "value": current},
        {"op": "replace", "path": path, "value": value},
    ]


def _shown(value: Any) -> str:
    """A value for a message: itself when short, else only that it is (a Corefile)."""
    text = repr(value)
    return text if len(text) <= 80 else f"<{len(text)} characters>"


@register_undo
class RestoreObjectField(UndoAction):
    """A field of a namespaced object a fault changed (a Deployment's image, a Service's
    targetPort, a ConfigMap's Corefile), to be set back if it still holds the fault's
    value. Any resource: the object is named by apiVersion and plural. What the field
    holds goes into the journal, so never use it for a Secret."""

    kind: ClassVar[str] = "restore-object-field"
    kubeconfig: str
    context: str
    api_version: str = "apps/v1"
    plural: str = "deployments"
    namespace: str
    name: str
    path: str
    """A JSON pointer into the object (/spec/template/spec/containers/0/image)."""
    original: Any
    """None: the field was absent, and the revert removes it."""
    faulted: Any
    """None: the fault removed the field, and the revert adds it back."""

    @property
    def where(self) -> str:
        return f"{self.plural.removesuffix('s')} {self.namespace}/{self.name} {self.path}"

    def revert(self) -> str:
        api = api_client(self.kubeconfig, self.context)
        put_back = (
            {"op": "remove", "path": self.path}
            if self.original is None  # the fault added the field
            # the fault removed the field: add it back (a null test passes on absence)
            else {
                "op": "add" if self.faulted is None else "replace",
                "path": self.path,
                "value": self.original,
            }
        )
        patch = [{"op": "test", "path": self.path, "value": self.faulted}, put_back]
        path = object_path(self.api_version, self.plural, self.namespace, self.name)
        status, answer = rest(api, "PATCH", path, patch, "application/json-patch+json")
        if status == 200:
            return f"restored {self.where} to {_shown(self.original)}"
        if status == 404:
            return f"{self.where}: the {self.plural.removesuffix('s')} is gone; nothing to restore"
        if status not in (409, 422):  # the test failed: someone else's value is there
            raise RevertFailed(f"{self.where}: {status} {answer.get('message', '')}")
        status, found = rest(api, "GET", path)
        current = read_pointer(found, self.path) if status == 200 else None
        if current == self.original:
            return f"{self.where} already {_shown(self.original)}"
        raise RevertFailed(
            f"{self.where} was changed by someone else after the fault (it is "
            f"{_shown(current)}, the fault set {_shown(self.faulted)}); left as it is, not "
            f"overwritten with {_shown(self.original)}"
        )

    def describe(self) -> str:
        return (
            f"set {self.where} back to {_shown(self.original)} if it is still "
            f"{_shown(self.faulted)}"
        )
