"""image-pull-secret-removed (AUTH002): the workload's pods lose their registry credentials.

The pull secret (``secret``, default every one) is dropped from the Deployment's pod
template; the rollout's new pod pulls from the private registry without credentials
and the registry answers 401 Unauthorized (the kubelet's ``Failed to pull image ...
401 Unauthorized`` event, ErrImagePull, then ImagePullBackOff) while the old pods keep
serving. Kubelets since 1.35 check the credentials of an image already on the node
too (KubeletEnsureSecretPulledImages), so a cached image does not hide the fault.

Secrets the pods get from their ServiceAccount are not in the template: a workload
whose pods have them is refused, as the fault would not stop its pulls. The Secret
itself is never read or changed, only its name is written down. The change is a JSON
patch that tests the current list first; the revert puts it back only if the field is
still the fault's (see RestoreObjectField).

On the kwok tier the rollout and the events' delivery are real; the pull is simulated
by testenv/stages/pod-image-pull-auth.yaml, for the images of the tier's private
registry (private.registry.gameday.test).
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import Field

from gameday.core.errors import InjectionError
from gameday.injectors.base import Injector, faults
from gameday.scenario.model import NAME_PATTERN, FaultSpec
from gameday.targets.kubernetes.cluster import as_json
from gameday.targets.kubernetes.target import KubernetesTarget
from gameday.targets.kubernetes.undo import json_pointer

__all__ = ["ImagePullSecretRemoved", "ImagePullSecretRemovedSpec", "without_secret"]

PULL_SECRETS = json_pointer("spec", "template", "spec", "imagePullSecrets")


class ImagePullSecretRemovedSpec(FaultSpec):
    secret: str | None = Field(default=None, pattern=NAME_PATTERN)
    """The pull secret to drop from the pod template; default: every one it names."""


def without_secret(
    secrets: list[dict[str, Any]] | None, secret: str | None
) -> list[dict[str, Any]] | None:
    """The template's imagePullSecrets without ``secret`` (None: without any); None when
    nothing is left, as the API server stores an empty list. Refuses a template that
    does not name it."""
    names = [entry.get("name", "") for entry in secrets or []]
    if not names:
        raise InjectionError("the workload's pod template has no imagePullSecrets to remove")
    if secret is not None and secret not in names:
        raise InjectionError(
            f"the workload's pod template has no pull secret {secret!r} "
            f"(it has: {', '.join(names)})"
        )
    kept = [entry for entry in secrets or [] if secret is not None and entry["name"] != secret]
    return kept or None


@faults.register("image-pull-secret-removed")
class ImagePullSecretRemoved(Injector[ImagePullSecretRemovedSpec, KubernetesTarget]):
    Params = ImagePullSecretRemovedSpec
    target_kinds = frozenset({"kubernetes"})
    runbook = "AUTH002"
    summary = "Drop the pull secret from the workload's pod template (the registry answers 401)."

    @classmethod
    def describe(cls, spec: ImagePullSecretRemovedSpec) -> str:
        which = f"pull secret {spec.secret}" if spec.secret else "every pull secret"
        return (
            f"remove {which} from the workload Deployment's pod template (a JSON patch that "
            "tests the current list first); revert: the list it had, only if it is still "
            "the fault's"
        )

    def apply(self) -> dict[str, str]:
        target = self.target
        api = target.require_api()
        deployment = target.workload_within_cap()
        name = deployment.metadata.name
        original = as_json(api, deployment.spec.template)["spec"].get("imagePullSecrets")
        faulted = without_secret(original, self.spec.secret)
        self._refuse_secrets_from_the_service_account(original)
        self.ctx.changes.record(target.restore_workload_field(PULL_SECRETS, original, faulted))
        change = (
            {"op": "remove", "path": PULL_SECRETS}
            if faulted is None
            else {"op": "replace", "path": PULL_SECRETS, "value": faulted}
        )
        try:
            client.AppsV1Api(api).patch_namespaced_deployment(
                name,
                target.namespace,
                [{"op": "test", "path": PULL_SECRETS, "value": original}, change],
            )
        except ApiException as error:
            raise InjectionError(
                f"cannot patch deployment {target.namespace}/{name}: {error.status} {error.reason}"
            ) from None
        kept = ", ".join(entry["name"] for entry in faulted or []) or "none"
        removed = sorted({e["name"] for e in original} - {e["name"] for e in faulted or []})
        return {
            "deployment": f"{target.namespace}/{name}",
            "removed": ", ".join(removed),
            "kept": kept,
            "replicas": str(deployment.spec.replicas or 0),
        }

    def _refuse_secrets_from_the_service_account(self, template: list[dict[str, Any]]) -> None:
        """The ServiceAccount admission plugin adds its account's pull secrets to each pod;
        those the running pods have beyond the template's would keep the pulls working."""
        target = self.target
        api = target.require_api()
        pods = client.CoreV1Api(api).list_namespaced_pod(
            target.namespace, label_selector=target.selector
        )
        own = {entry["name"] for entry in template}
        extra = sorted(
            {
                str(reference["name"])
                for pod in as_json(api, pods)["items"]
                for reference in pod["spec"].get("imagePullSecrets") or []
                if reference["name"] not in own
            }
        )
        if extra:
            raise InjectionError(
                f"the workload's pods also get pull secrets {', '.join(extra)} from their "
                "ServiceAccount: removing the template's would not stop their pulls"
            )
