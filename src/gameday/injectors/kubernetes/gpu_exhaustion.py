"""gpu-exhaustion (PodUnschedulable): another workload takes the GPUs the workload needs.

A hog Deployment (``gameday-gpu-hog``, in the workload's namespace) whose pods request
``nvidia.com/gpu`` and nothing else, placed like the workload's pods (its node
selector, node affinity, tolerations and priority class, so the workload cannot
preempt it), takes the free GPUs of the nodes the workload may use. By default it
asks for every free GPU: it starts with ``max_pods`` pods of ``gpus_per_pod`` GPUs;
once the scheduler has placed what fits, the pods left unschedulable are scaled away
(the ReplicaSet removes unscheduled pods first), so no hog pod stays Pending. The
workload is then restarted as ``kubectl rollout restart`` does: its new pod stays
Pending with the scheduler's "0/N nodes are available: ... Insufficient
nvidia.com/gpu" while the old pods keep serving. The hog is recorded for deletion
before it is created; the restart annotation is taken out again only while it is still
the fault's. Everything here is the real control plane (scheduler, controllers) on
every tier, kwok included.

Runbook code: PodUnschedulable, whose cause is exactly this ("No node can take the pod
- not enough nvidia.com/gpu ...") and whose remedy is the one that applies ("scale
down other workloads that hold the GPUs"). Not DEPLOYMENT002: no quota is involved,
the API server admits every pod. Not GPU002: the pod does request a GPU and the device
plugin advertises them; they are all allocated.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import Field, model_validator

from gameday.core.errors import InjectionError
from gameday.injectors.base import Injector, faults
from gameday.scenario.model import FaultSpec
from gameday.scenario.units import Duration
from gameday.targets.kubernetes.cluster import as_json
from gameday.targets.kubernetes.objects import labelled
from gameday.targets.kubernetes.target import KubernetesTarget
from gameday.targets.kubernetes.workload import (
    MANAGED_BY,
    placement_of,
    pod_condition,
    requested,
    restart_workload,
    watch_pods,
)

__all__ = ["HOG", "GpuExhaustion", "GpuExhaustionSpec", "hog_deployment"]

HOG = "gameday-gpu-hog"
"""The hog Deployment's name (deploy/rbac lets the harness delete this one only)."""
HOG_LABELS = {"app.kubernetes.io/name": HOG, **MANAGED_BY}


class GpuExhaustionSpec(FaultSpec):
    gpus: int | None = Field(default=None, ge=1)
    """GPUs the hog takes. Default: every free one on the nodes the workload may use
    (as many as ``max_pods`` hog pods of ``gpus_per_pod`` can hold)."""
    gpus_per_pod: int = Field(default=1, ge=1)
    """What each hog pod requests. Raise it where ``max_pods`` pods of one GPU are too
    few; GPUs left over on a node that fewer than this many are free stay free."""
    resource: str = Field(default="nvidia.com/gpu", pattern=r"^[a-z0-9.-]+/[A-Za-z0-9._-]+$")
    """The extended resource to take (a MIG profile such as ``nvidia.com/mig-1g.10gb``)."""
    image: str = "registry.k8s.io/pause:3.10"
    """The hog's container: it only holds its GPUs, so a pause container will do."""
    restart: bool = True
    """Restart the workload so its new pods need GPUs (as a rollout would)."""
    settle_within: Duration = 60.0
    """How long the scheduler may take to place (or refuse) every hog pod."""

    @model_validator(mode="after")
    def _blocks(self) -> GpuExhaustionSpec:
        if self.gpus is not None and self.gpus % self.gpus_per_pod:
            raise ValueError(
                f"gpus ({self.gpus}) must be a multiple of gpus_per_pod ({self.gpus_per_pod})"
            )
        return self


def hog_deployment(
    spec: GpuExhaustionSpec, template: dict[str, Any], replicas: int
) -> dict[str, Any]:
    """The hog: ``replicas`` pods of ``gpus_per_pod`` GPUs, placed as ``template``'s pods."""
    container = {
        "name": "hog",
        "image": spec.image,
        "resources": {
            "requests": {spec.resource: str(spec.gpus_per_pod)},
            "limits": {spec.resource: str(spec.gpus_per_pod)},
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": HOG, "labels": HOG_LABELS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": HOG_LABELS},
            "template": {
                "metadata": {"labels": HOG_LABELS},
                "spec": {
                    **placement_of(template),
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 5,
                    "containers": [container],
                },
            },
        },
    }


def _placed(pod: dict[str, Any]) -> str | None:
    """'node' once scheduled, '' once the scheduler found no room, None until then."""
    if (pod.get("spec") or {}).get("nodeName"):
        return str(pod["spec"]["nodeName"])
    scheduled = pod_condition(pod, "PodScheduled")
    if scheduled and scheduled.get("status") == "False" and scheduled.get("reason"):
        return ""
    return None


@faults.register("gpu-exhaustion")
class GpuExhaustion(Injector[GpuExhaustionSpec, KubernetesTarget]):
    Params = GpuExhaustionSpec
    target_kinds = frozenset({"kubernetes"})
    runbook = "PodUnschedulable"
    summary = "A hog Deployment takes the free GPUs of the workload's nodes; new pods stay Pending."

    @classmethod
    def describe(cls, spec: GpuExhaustionSpec) -> str:
        amount = (
            f"{spec.gpus} {spec.resource}"
            if spec.gpus
            else f"every free {spec.resource} (at most max_pods pods)"
        )
        restart = "; restart the workload (rollout restart annotation)" if spec.restart else ""
        return (
            f"create deployment {HOG}, pods of {spec.gpus_per_pod} {spec.resource} placed as "
            f"the workload's (node selector, node affinity, tolerations, priority class), "
            f"taking {amount}{restart}; revert: the annotation, then the hog"
        )

    def apply(self) -> dict[str, str]:
        target, spec = self.target, self.spec
        api = target.require_api()
        apps = client.AppsV1Api(api)
        template = as_json(api, target.deployment().spec.template)
        if requested(template, spec.resource) == 0:
            raise InjectionError(
                f"the workload's pods request no {spec.resource}: there is nothing for a hog "
                "to take from them"
            )
        replicas = spec.gpus // spec.gpus_per_pod if spec.gpus else target.spec.max_pods
        if replicas > target.spec.max_pods:
            raise InjectionError(
                f"{spec.gpus} {spec.resource} in pods of {spec.gpus_per_pod} is {replicas} "
                f"pods, more than max_pods ({target.spec.max_pods}); raise gpus_per_pod"
            )
        try:
            apps.read_namespaced_deployment(HOG, target.namespace)
        except ApiException as error:
            if error.status != 404:
                raise InjectionError(
                    f"cannot read deployment {HOG}: {error.status} {error.reason}"
                ) from None
        else:
            raise InjectionError(
                f"deployment {target.namespace}/{HOG} already exists; it is not ours to change "
                "(a run killed before `gameday cleanup` leaves it: run that first)"
            )
        self.ctx.changes.record(target.delete_created("deployments", HOG, "apps/v1"))
        try:
            apps.create_namespaced_deployment(
                target.namespace,
                labelled(hog_deployment(spec, template, replicas), target.created_labels()),  # type: ignore[arg-type]
            )
        except ApiException as error:
            raise InjectionError(
                f"cannot create deployment {HOG}: {error.status} {error.reason}"
            ) from None
        nodes = self._settle(replicas)
        held = len(nodes)
        if held == 0:
            raise InjectionError(
                f"no hog pod found a free {spec.resource} on the workload's nodes: there is "
                "none to take"
            )
        if held < replicas:  # the rest found no room: every free GPU is taken
            scale = [{"op": "replace", "path": "/spec/replicas", "value": held}]
            try:
                apps.patch_namespaced_deployment(HOG, target.namespace, scale)
            except ApiException as error:
                raise InjectionError(
                    f"cannot scale deployment {HOG} to {held}: {error.status} {error.reason}"
                ) from None
        elif spec.gpus is None:
            raise InjectionError(
                f"all {replicas} hog pods found room, so {spec.resource} may still be free on "
                "the workload's nodes; raise max_pods or gpus_per_pod"
            )
        taken = held * spec.gpus_per_pod
        by_node = {node: nodes.count(node) * spec.gpus_per_pod for node in sorted(set(nodes))}
        details = {
            "hog": f"deployment {target.namespace}/{HOG}: {held} pods of "
            f"{spec.gpus_per_pod} {spec.resource}",
            "taken": f"{taken} {spec.resource}: "
            + ", ".join(f"{count} on {node}" for node, count in by_node.items()),
        }
        if held < replicas:
            details["scaled away"] = (
                f"{replicas - held} hog pods the scheduler could not place (no free "
                f"{spec.resource} left)"
            )
        if spec.restart:
            details["restart"] = restart_workload(target, self.ctx.changes)
        return details

    def _settle(self, replicas: int) -> list[str]:
        """Wait until the scheduler placed or refused every hog pod; the nodes of those
        it placed."""

        def settled(pods: dict[str, dict[str, Any]]) -> list[str] | None:
            live = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
            placed = [_placed(p) for p in live]
            if len(live) < replicas or any(node is None for node in placed):
                return None
            return [node for node in placed if node]

        return watch_pods(
            self.target.require_api(),
            self.target.namespace,
            ",".join(f"{k}={v}" for k, v in HOG_LABELS.items()),
            settled,
            timeout=self.spec.settle_within,
            what=f"the scheduler placing {replicas} hog pods",
            stop=self.ctx.stop,
        )
