"""bad-image-tag (DEPLOYMENT003): point the serving container at a tag that does not exist.

The Deployment's pod template gets the same repository with a tag no registry has; the
rollout's new pod fails to pull (ErrImagePull, then ImagePullBackOff, with the kubelet's
"Failed to pull image" events) while the old pods keep serving, and the rollout stalls.
The change is a JSON patch that tests the current image first; the revert tests the
fault's image before putting the original back (see RestoreObjectField).
"""

from __future__ import annotations

import secrets

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import Field

from gameday.core.errors import InjectionError
from gameday.injectors.base import Injector, faults
from gameday.scenario.model import FaultSpec
from gameday.targets.kubernetes.cluster import as_json
from gameday.targets.kubernetes.target import KubernetesTarget
from gameday.targets.kubernetes.undo import json_pointer, set_field

__all__ = ["BadImageTag", "BadImageTagSpec"]


class BadImageTagSpec(FaultSpec):
    tag: str = Field(default="", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$|^$")
    """The tag to set; default: ``gameday-missing-<random>``, which no registry has."""


def with_tag(image: str, tag: str) -> str:
    """``image`` with its tag (or digest) replaced: reg:5000/repo:1 -> reg:5000/repo:TAG."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]
    return f"{name}:{tag}"


@faults.register("bad-image-tag")
class BadImageTag(Injector[BadImageTagSpec, KubernetesTarget]):
    Params = BadImageTagSpec
    target_kinds = frozenset({"kubernetes"})
    runbook = "DEPLOYMENT003"
    summary = "Set the serving container's image to a tag that does not exist (image pull fails)."

    @classmethod
    def describe(cls, spec: BadImageTagSpec) -> str:
        tag = spec.tag or "gameday-missing-<random>"
        return (
            f"patch the workload Deployment's serving container image to tag {tag} "
            "(a JSON patch that tests the current image first); revert: the original image, "
            "only if the fault's is still there"
        )

    def apply(self) -> dict[str, str]:
        target = self.target
        deployment = target.workload_within_cap()
        replicas = deployment.spec.replicas or 0
        containers = deployment.spec.template.spec.containers
        index = target.serving_container(as_json(target.require_api(), deployment.spec.template))
        original = containers[index].image
        faulted = with_tag(original, self.spec.tag or f"gameday-missing-{secrets.token_hex(3)}")
        path = json_pointer("spec", "template", "spec", "containers", index, "image")
        self.ctx.changes.record(target.restore_workload_field(path, original, faulted))
        patch = set_field(path, original, faulted)
        try:
            client.AppsV1Api(target.require_api()).patch_namespaced_deployment(
                deployment.metadata.name, target.namespace, patch
            )
        except ApiException as error:
            raise InjectionError(
                f"cannot patch deployment {target.namespace}/{deployment.metadata.name}: "
                f"{error.status} {error.reason}"
            ) from None
        return {
            "deployment": f"{target.namespace}/{deployment.metadata.name}",
            "container": containers[index].name,
            "image": f"{original} -> {faulted}",
            "replicas": str(replicas),
        }
