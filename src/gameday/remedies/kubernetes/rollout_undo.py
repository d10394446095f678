"""rollout-undo (DEPLOYMENT003 and any failure a rollout brought): roll the workload back
to its previous revision, as ``kubectl rollout undo`` does.

The previous revision is the Deployment's ReplicaSet with the highest revision below the
current one (or ``to_revision``); its pod template, without the ``pod-template-hash``
label, becomes the Deployment's, through a JSON patch that tests the current template
first. The undo record puts back the template the workload had when the run began (not
the broken one the remedy replaced: reverting a fix must not break the service again),
and only if the template is still the one the remedy set.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gameday.core.errors import InjectionError
from gameday.remedies.base import Remedy, remedies
from gameday.runbooks.model import RolloutUndo
from gameday.targets.kubernetes.cluster import as_json
from gameday.targets.kubernetes.target import KubernetesTarget

__all__ = ["RolloutUndoRemedy"]

REVISION = "deployment.kubernetes.io/revision"


def _revision(obj: Any) -> int:
    return int((obj.metadata.annotations or {}).get(REVISION, "0"))


@remedies.register("kubernetes/rollout-undo")
class RolloutUndoRemedy(Remedy[RolloutUndo, KubernetesTarget]):
    kind = "rollout-undo"
    summary = "Roll the workload's Deployment back to its previous revision (kubectl rollout undo)."

    @classmethod
    def describe(cls, action: RolloutUndo) -> str:
        which = f"revision {action.to_revision}" if action.to_revision else "its previous revision"
        return f"roll the workload's Deployment back to {which}, as kubectl rollout undo does"

    @classmethod
    def cannot(cls, action: RolloutUndo) -> str | None:
        if action.deployment is not None:
            return f"it rolls back {action.deployment}; this step acts on the scenario's workload"
        return None

    def apply(self) -> dict[str, str]:
        target = self.target
        api = target.require_api()
        apps = client.AppsV1Api(api)
        deployment = target.deployment()
        name, current = deployment.metadata.name, _revision(deployment)
        owned = [
            rs
            for rs in apps.list_namespaced_replica_set(
                target.namespace, label_selector=target.selector
            ).items
            if any(
                ref.uid == deployment.metadata.uid
                for ref in (rs.metadata.owner_references if rs.metadata else None) or []
            )
        ]
        wanted = self.action.to_revision
        candidates = sorted(
            (
                rs
                for rs in owned
                if (_revision(rs) == wanted if wanted else _revision(rs) < current)
            ),
            key=_revision,
        )
        if not candidates:
            raise InjectionError(
                f"deployment {target.namespace}/{name} has no "
                f"{'revision ' + str(wanted) if wanted else 'revision before ' + str(current)}"
            )
        previous = candidates[-1]

        def serialize(obj: object) -> Any:
            return as_json(api, obj)

        template = serialize(previous.spec.template)
        template.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
        now = serialize(deployment.spec.template)

        undo = self.ctx.changes.record(
            target.restore_workload_field("/spec/template", target.snapshot_template(), template)
        )
        patch = [
            {"op": "test", "path": "/spec/template", "value": now},
            {"op": "replace", "path": "/spec/template", "value": template},
        ]
        try:
            apps.patch_namespaced_deployment(name, target.namespace, patch)
        except ApiException as error:
            raise InjectionError(
                f"cannot roll back deployment {target.namespace}/{name}: "
                f"{error.status} {error.reason}"
            ) from None
        # the API server fills in defaults: the undo tests against what it stored
        stored = serialize(target.deployment().spec.template)
        self.ctx.changes.update(
            undo,
            target.restore_workload_field("/spec/template", target.snapshot_template(), stored),
        )
        return {
            "deployment": f"{target.namespace}/{name}",
            "revision": f"{current} -> back to the template of revision {_revision(previous)}",
            "images": ", ".join(c["image"] for c in template["spec"]["containers"]),
        }
