"""Objects a fault creates, and the one undo record that deletes them again.

Every object a fault creates carries the run's label (:func:`created_labels`). The record
is written before the object is created, so after a crash ``gameday cleanup`` may find a
record whose create never happened — or whose create was refused because an object of
that name already existed (a quota someone else made). Its revert therefore deletes only
an object that carries this run's label, and only that very object (a UID precondition):
anything else of that name is left alone and said so.

One record serves every resource (a ResourceQuota, a Pod, a Deployment, a Role, a custom
resource): it speaks to the API's REST paths directly, named by apiVersion and plural.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gameday.core.undo import RevertFailed, UndoAction, register_undo
from gameday.targets.kubernetes.cluster import api_client, object_path, rest

__all__ = [
    "MANAGED_BY",
    "RUN_LABEL",
    "DeleteCreatedObject",
    "created_labels",
    "labelled",
    "resource_name",
]

MANAGED_BY = {"app.kubernetes.io/managed-by": "llm-gameday"}
RUN_LABEL = "gameday.dev/run-id"


def created_labels(run_id: str) -> dict[str, str]:
    """The labels of an object a fault creates: who made it, and in which run."""
    return {**MANAGED_BY, RUN_LABEL: run_id}


def labelled(manifest: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """``manifest`` with ``labels`` added to its metadata's (a copy)."""
    metadata = manifest.get("metadata") or {}
    merged = {**metadata, "labels": {**(metadata.get("labels") or {}), **labels}}
    return {**manifest, "metadata": merged}


def resource_name(group: str, plural: str) -> str:
    """``deployments.apps``, ``serviceaccounts``: a resource as the API server names it."""
    return f"{plural}.{group}" if group else plural


@register_undo
class DeleteCreatedObject(UndoAction):
    """An object a fault creates in a namespace (recorded before it is created); deleted
    again only if it is the one this run made."""

    kind: ClassVar[str] = "delete-created-object"
    kubeconfig: str
    context: str
    api_version: str
    """``v1``, ``apps/v1``, ``rbac.authorization.k8s.io/v1``, ``inference.llm-d.io/v1alpha1``."""
    plural: str
    namespace: str
    name: str
    run_id: str
    """The run whose label the object must carry to be deleted."""

    def revert(self) -> str:
        api = api_client(self.kubeconfig, self.context)
        what = self.describe().removeprefix("delete ")
        path = object_path(self.api_version, self.plural, self.namespace, self.name)

        status, found = rest(api, "GET", path)
        if status == 404:  # never accepted, or gone already (its CRD too)
            return f"{what} already gone"
        if status != 200:
            raise RevertFailed(f"cannot read {what}: {status} {found.get('message', '')}")
        labels = (found.get("metadata") or {}).get("labels") or {}
        if labels.get(RUN_LABEL) != self.run_id:
            # never created by this run: its create failed, someone else's has the name
            return f"{what} is not this run's (label {RUN_LABEL}); left alone"
        options = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": "Background",  # a Deployment's pods go with it
            "preconditions": {"uid": found["metadata"]["uid"]},
        }
        status, answer = rest(api, "DELETE", path, options)
        if status == 404:
            return f"{what} already gone"
        if status == 409:  # the precondition: replaced since the GET
            return f"{what} was replaced by someone else; left alone"
        if status not in (200, 202):
            raise RevertFailed(f"cannot delete {what}: {status} {answer.get('message', '')}")
        return f"deleted {what}"

    def describe(self) -> str:
        return f"delete {self.plural.removesuffix('s')} {self.namespace}/{self.name}"
