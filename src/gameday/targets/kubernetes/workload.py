"""What several Kubernetes faults do around the workload.

- :func:`restart_workload`: restart it as ``kubectl rollout restart`` does (a
  ``restartedAt`` annotation on its pod template), optionally with annotations of the
  fault's own; each one is recorded first, and taken out again only while it is still
  the fault's.
- :func:`placement_of`: what decides which nodes its pods may run on, for pods a fault
  wants on the same nodes.
- :func:`watch_pods`: wait, by a list and a resourceVersion-based watch, until pods of
  the fault's own have settled (scheduled, unschedulable, ready, failed).
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from gameday.core.changes import ChangeSet
from gameday.core.errors import Aborted, InjectionError
from gameday.targets.kubernetes.cluster import as_json
from gameday.targets.kubernetes.objects import MANAGED_BY
from gameday.targets.kubernetes.target import KubernetesTarget
from gameday.targets.kubernetes.undo import json_pointer

__all__ = [
    "MANAGED_BY",
    "RESTARTED_AT",
    "placement_of",
    "pod_condition",
    "requested",
    "restart_workload",
    "watch_pods",
]

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
WATCH_SECONDS = 2
"""How long one watch request lasts: the longest a stop request waits to be seen."""

T = TypeVar("T")


def restart_workload(
    target: KubernetesTarget, changes: ChangeSet, annotations: Mapping[str, str] | None = None
) -> str:
    """Restart the workload's rollout, with ``annotations`` set on its pod template too.

    Every annotation is recorded (original value, fault's value) before the patch, so
    reverting puts back the template the run began with; the rollout back to it is the
    Deployment controller's."""
    deployment = target.deployment()
    name = deployment.metadata.name
    replicas = deployment.spec.replicas or 0
    if replicas > target.spec.max_pods:  # a restart replaces every one of its pods
        raise InjectionError(
            f"deployment {target.namespace}/{name} has {replicas} replicas: restarting it "
            f"touches more pods than max_pods ({target.spec.max_pods}) allows"
        )
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    wanted = {RESTARTED_AT: now, **(annotations or {})}
    existing = deployment.spec.template.metadata.annotations
    patch: list[dict[str, Any]] = []
    for key, value in wanted.items():
        path = json_pointer("spec", "template", "metadata", "annotations", key)
        changes.record(target.restore_workload_field(path, (existing or {}).get(key), value))
        patch.append({"op": "add", "path": path, "value": value})
    if existing is None:  # no map to add keys to: add the map
        path = json_pointer("spec", "template", "metadata", "annotations")
        patch = [{"op": "add", "path": path, "value": wanted}]
    try:
        client.AppsV1Api(target.require_api()).patch_namespaced_deployment(
            name, target.namespace, patch
        )
    except ApiException as error:
        raise InjectionError(
            f"cannot restart deployment {target.namespace}/{name}: {error.status} {error.reason}"
        ) from None
    return f"deployment {target.namespace}/{name} restarted at {now}"


def placement_of(template: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a pod template's spec (as JSON) that decide where its pods may run:
    the node selector, node affinity, tolerations and priority class. Pod (anti-)affinity
    is left out: it is about the workload's own pods, and would keep others away."""
    spec = template.get("spec") or {}
    placement: dict[str, Any] = {}
    if spec.get("nodeSelector"):
        placement["nodeSelector"] = spec["nodeSelector"]
    node_affinity = (spec.get("affinity") or {}).get("nodeAffinity")
    if node_affinity:
        placement["affinity"] = {"nodeAffinity": node_affinity}
    if spec.get("tolerations"):
        placement["tolerations"] = spec["tolerations"]
    if spec.get("priorityClassName"):
        placement["priorityClassName"] = spec["priorityClassName"]
    return placement


def requested(template: Mapping[str, Any], resource: str) -> int:
    """How much of an extended resource (``nvidia.com/gpu``) a pod of the template asks
    for: the sum over its containers, where a request defaults to the limit."""
    total = 0
    for container in (template.get("spec") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        amount = (resources.get("requests") or {}).get(resource)
        if amount is None:
            amount = (resources.get("limits") or {}).get(resource)
        total += int(amount or 0)
    return total


def pod_condition(pod: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """A pod's (as JSON) condition of this type, if it has one."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition  # type: ignore[no-any-return]
    return None


def watch_pods(
    api: client.ApiClient,
    namespace: str,
    selector: str,
    settled: Callable[[dict[str, dict[str, Any]]], T | None],
    *,
    timeout: float,
    what: str,
    stop: threading.Event | None = None,
) -> T:
    """List, then watch, the pods of ``selector`` until ``settled`` (called with every
    live pod, by name, as JSON) returns a result; InjectionError after ``timeout``
    seconds, Aborted once ``stop`` is set (the run was interrupted)."""
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    pods: dict[str, dict[str, Any]] = {}
    version: str | None = None
    while True:
        if version is None:  # first, or after 410 Gone: list again
            try:
                listed: Any = core.list_namespaced_pod(namespace, label_selector=selector)
            except ApiException as error:
                raise InjectionError(
                    f"cannot list pods {selector} in {namespace}: {error.status} {error.reason}"
                ) from None
            pods = {p.metadata.name: as_json(api, p) for p in listed.items}
            version = listed.metadata.resource_version
        found = settled(pods)
        if found is not None:
            return found
        if stop is not None and stop.is_set():
            raise Aborted("a signal")
        left = deadline - time.monotonic()
        if left <= 0:
            raise InjectionError(f"{what} did not happen within {timeout:g}s")
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            core.list_namespaced_pod,
            namespace,
            label_selector=selector,
            resource_version=version,
            timeout_seconds=max(1, min(WATCH_SECONDS, int(left))),
        )
        try:
            for change in stream:
                if change["type"] == "ERROR":  # a Status as a dict: 410 Gone, mostly
                    version = None
                    break
                pod = change["object"]
                version = pod.metadata.resource_version
                if change["type"] == "DELETED":
                    pods.pop(pod.metadata.name, None)
                elif change["type"] != "BOOKMARK":
                    pods[pod.metadata.name] = as_json(api, pod)
                found = settled(pods)
                if found is not None:
                    return found
        except ApiException as error:
            if error.status != 410:
                raise InjectionError(
                    f"cannot watch pods {selector} in {namespace}: {error.status} {error.reason}"
                ) from None
            version = None
