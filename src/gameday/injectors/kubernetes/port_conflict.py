"""port-conflict (NETWORK001): the serving port is taken, or the traffic misses it.

Modes:

- ``host-port``: the serving port is already taken on every node the workload could run
  on. Holder pods (a pause container with that ``hostPort``) are created one at a time,
  with the workload's node selector, node affinity, tolerations and scheduler, and the
  real scheduler places each on a node whose port is still free, until one finds none
  (it is deleted again) - so the holders cover exactly the nodes the scheduler would
  consider, never more than ``max_pods``. Then the serving container's port gets the
  same ``hostPort``: the rollout's new pod stays Pending with the scheduler's "didn't
  have free ports for the requested pod ports" (FailedScheduling), while the old pods
  keep serving. Every part of it is the real scheduler and controllers, on kwok too (a
  holder's container "runs" there only as a kwok stage says).
- ``service-target-port``: a Service selecting the workload sends to a port the
  container does not listen on (``service``: the existing Service to patch; default: a
  new Service ``gameday-misrouted``): clients of the Service get connection refused on
  a real cluster. On kwok nothing carries traffic (no kube-proxy, no server behind the
  pods), so only the Service and its real EndpointSlice change; nothing fails there.

Holder pods and Services are recorded for deletion before they are created; the
template's hostPort and a Service's targetPort are put back only while they still hold
the fault's value.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Literal

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from pydantic import Field, model_validator

from gameday.core.errors import Aborted, InjectionError
from gameday.injectors.base import Injector, faults
from gameday.scenario.model import NAME_PATTERN, FaultSpec
from gameday.targets.kubernetes.cluster import as_json
from gameday.targets.kubernetes.objects import MANAGED_BY, labelled
from gameday.targets.kubernetes.target import KubernetesTarget
from gameday.targets.kubernetes.undo import json_pointer, set_field

__all__ = ["PortConflict", "PortConflictSpec", "serving_port"]

Mode = Literal["host-port", "service-target-port"]
HOLDER_IMAGE = "registry.k8s.io/pause:3.10"
MISROUTED = "gameday-misrouted"
SCHEDULING_TIMEOUT_S = 60.0


class PortConflictSpec(FaultSpec):
    mode: Mode = "host-port"
    """host-port: the port taken on every node the workload can run on (unschedulable);
    service-target-port: a Service whose targetPort misses the container's port."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """The serving port, a containerPort of the serving container; default: its port
    named ``http``, else its first."""
    holder_image: str = HOLDER_IMAGE
    """host-port: the image of the pods that hold the port (they only wait)."""
    service: str | None = Field(default=None, pattern=NAME_PATTERN)
    """service-target-port: the Service to patch; default: create ``gameday-misrouted``."""
    target_port: int | None = Field(default=None, ge=1, le=65535)
    """service-target-port: where the Service sends; default: a port the container does
    not declare (the serving port + 1, or the next free one)."""

    @model_validator(mode="after")
    def _mode_fields(self) -> PortConflictSpec:
        if self.mode != "service-target-port" and (self.service or self.target_port):
            raise ValueError("service and target_port are for mode service-target-port")
        if self.mode != "host-port" and self.holder_image != HOLDER_IMAGE:
            raise ValueError("holder_image is for mode host-port")
        return self


def serving_port(container: dict[str, Any], wanted: int | None) -> int:
    """The index, in the container's ``ports``, of the serving port."""
    ports = container.get("ports") or []
    if wanted is not None:
        for index, port in enumerate(ports):
            if port["containerPort"] == wanted:
                return index
        declared = ", ".join(str(p["containerPort"]) for p in ports) or "none"
        raise InjectionError(
            f"container {container['name']} declares no port {wanted} (it has: {declared})"
        )
    if not ports:
        raise InjectionError(f"container {container['name']} declares no port; name one")
    named = [i for i, p in enumerate(ports) if p.get("name") == "http"]
    return named[0] if named else 0


@faults.register("port-conflict")
class PortConflict(Injector[PortConflictSpec, KubernetesTarget]):
    Params = PortConflictSpec
    target_kinds = frozenset({"kubernetes"})
    runbook = "NETWORK001"
    summary = "Take the serving port on every node (hostPort: unschedulable) or misroute a Service."

    @classmethod
    def describe(cls, spec: PortConflictSpec) -> str:
        port = f"port {spec.port}" if spec.port else "the serving port"
        if spec.mode == "host-port":
            return (
                f"create pods holding {port} as a hostPort on every node the workload can "
                "run on (placed by the scheduler, at most max_pods), then make the serving "
                f"container ask for {port} as its hostPort (JSON patch); revert: the "
                "hostPort removed, the holders deleted"
            )
        where = (
            f"patch service {spec.service} so that its"
            if spec.service
            else f"create service {MISROUTED} whose"
        )
        missed = spec.target_port or "a port the container does not declare"
        return f"{where} targetPort for {port} is {missed}; revert: put back or delete it"

    def apply(self) -> dict[str, str]:
        target = self.target
        deployment = target.workload_within_cap()
        template = as_json(target.require_api(), deployment.spec.template)
        index = target.serving_container(template)
        try:
            if self.spec.mode == "host-port":
                return self._host_port(deployment, template, index)
            return self._service_target_port(deployment, template, index)
        except ApiException as error:
            raise InjectionError(f"port-conflict: {error.status} {error.reason}") from None

    # -- host-port ------------------------------------------------------------------------

    def _host_port(self, deployment: Any, template: dict[str, Any], index: int) -> dict[str, str]:
        target = self.target
        container = template["spec"]["containers"][index]
        at = serving_port(container, self.spec.port)
        port = container["ports"][at]
        if port.get("hostPort"):
            raise InjectionError(
                f"container {container['name']} port {port['containerPort']} already has "
                f"hostPort {port['hostPort']}"
            )
        number, protocol = port["containerPort"], port.get("protocol", "TCP")
        run = secrets.token_hex(3)
        nodes: list[str] = []
        refused = ""
        for n in range(target.spec.max_pods):
            name = f"gameday-port-holder-{run}-{n}"
            undo = self.ctx.changes.record(target.delete_created("pods", name))
            holder = labelled(
                self._holder(name, template["spec"], number, protocol), target.created_labels()
            )
            client.CoreV1Api(target.require_api()).create_namespaced_pod(
                target.namespace,
                holder,  # type: ignore[arg-type]
            )
            node, refused = self._placed(name)
            if node is None:
                self.ctx.changes.revert(undo)  # the probe that found every node taken
                break
            nodes.append(node)
        else:
            raise InjectionError(
                f"all {target.spec.max_pods} port holders found a node (max_pods): the "
                "workload may still find a free one; raise max_pods or pin the workload to "
                "fewer nodes"
            )
        if not nodes:
            raise InjectionError(f"no node can take a pod with hostPort {number}: {refused}")
        path = json_pointer(
            "spec", "template", "spec", "containers", index, "ports", at, "hostPort"
        )
        self.ctx.changes.record(target.restore_workload_field(path, None, number))
        where = json_pointer("spec", "template", "spec", "containers", index, "ports", at)
        patch = [
            {"op": "test", "path": f"{where}/containerPort", "value": number},
            {"op": "add", "path": path, "value": number},
        ]
        client.AppsV1Api(target.require_api()).patch_namespaced_deployment(
            deployment.metadata.name, target.namespace, patch
        )
        return {
            "holders": f"{len(nodes)} pods holding {protocol} hostPort {number}, on "
            + ", ".join(sorted(nodes)),
            "no free node left": refused,
            "deployment": f"{target.namespace}/{deployment.metadata.name} container "
            f"{container['name']} port {number}: hostPort {number}",
        }

    def _holder(
        self, name: str, pod_spec: dict[str, Any], port: int, protocol: str
    ) -> dict[str, Any]:
        """A pod that only holds ``port`` on its node, where the workload's pods may go."""
        spec: dict[str, Any] = {
            "containers": [
                {
                    "name": "holder",
                    "image": self.spec.holder_image,
                    "ports": [{"containerPort": port, "hostPort": port, "protocol": protocol}],
                    "resources": {
                        "requests": {"cpu": "1m", "memory": "8Mi"},
                        "limits": {"cpu": "10m", "memory": "16Mi"},
                    },
                }
            ],
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 1,
        }
        # the nodes the workload may use, as the scheduler sees them; not its pod
        # (anti-)affinity, which names the workload's own pods
        for key in ("nodeSelector", "tolerations", "schedulerName", "priorityClassName"):
            if pod_spec.get(key):
                spec[key] = pod_spec[key]
        node_affinity = (pod_spec.get("affinity") or {}).get("nodeAffinity")
        if node_affinity:
            spec["affinity"] = {"nodeAffinity": node_affinity}
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "labels": {**MANAGED_BY, "app.kubernetes.io/name": "gameday-port-holder"},
            },
            "spec": spec,
        }

    def _placed(self, name: str) -> tuple[str | None, str]:
        """Watch the holder until the scheduler binds it (its node) or finds no node for
        it (None, and the scheduler's message)."""
        core = client.CoreV1Api(self.target.require_api())
        namespace = self.target.namespace
        selector = f"metadata.name={name}"
        deadline = time.monotonic() + SCHEDULING_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.ctx.stop.is_set():
                raise Aborted("signal")
            # list, then watch from there for a while; a watch that ends or breaks (410
            # Gone) starts over from a new list
            listed = core.list_namespaced_pod(namespace, field_selector=selector)
            for pod in listed.items:
                if (found := _scheduling(pod)) is not None:
                    return found
            stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                core.list_namespaced_pod,
                namespace,
                field_selector=selector,
                resource_version=listed.metadata.resource_version,  # type: ignore[union-attr]
                timeout_seconds=2,
            )
            for event in stream:
                if event["type"] == "ERROR":
                    break
                if (found := _scheduling(event["object"])) is not None:
                    return found
        raise InjectionError(
            f"port holder {namespace}/{name} was neither scheduled nor refused within "
            f"{SCHEDULING_TIMEOUT_S:g}s"
        )

    # -- service-target-port -------------------------------------------------------------

    def _service_target_port(
        self, deployment: Any, template: dict[str, Any], index: int
    ) -> dict[str, str]:
        target = self.target
        core = client.CoreV1Api(target.require_api())
        container = template["spec"]["containers"][index]
        port = container["ports"][serving_port(container, self.spec.port)]
        number = port["containerPort"]
        declared = {p["containerPort"] for p in container.get("ports") or []}
        missed = self.spec.target_port or next(
            p for p in range(number + 1, 65536) if p not in declared
        )
        if missed in declared:
            raise InjectionError(f"target_port {missed} is a port the container declares")
        if self.spec.service is None:
            self.ctx.changes.record(target.delete_created("services", MISROUTED))
            service = client.V1Service(
                metadata=client.V1ObjectMeta(name=MISROUTED, labels=target.created_labels()),
                spec=client.V1ServiceSpec(
                    selector=deployment.spec.selector.match_labels,
                    ports=[client.V1ServicePort(name="http", port=number, target_port=missed)],
                ),
            )
            try:
                core.create_namespaced_service(target.namespace, service)
            except ApiException as error:
                if error.status == 409:
                    raise InjectionError(
                        f"service {target.namespace}/{MISROUTED} already exists; it is not ours"
                    ) from None
                raise
            return {
                "service": f"{target.namespace}/{MISROUTED} (created): port {number} -> "
                f"targetPort {missed}; the container listens on {number}",
            }
        service = as_json(
            core.api_client, core.read_namespaced_service(self.spec.service, target.namespace)
        )
        ports = service["spec"].get("ports") or []
        names = {port.get("name"), number}
        at = next((i for i, p in enumerate(ports) if p.get("targetPort") in names), None)
        if at is None:
            raise InjectionError(
                f"service {self.spec.service} sends no port to the container's {number}"
            )
        path = json_pointer("spec", "ports", at, "targetPort")
        original = ports[at]["targetPort"]
        self.ctx.changes.record(
            target.restore_field("services", self.spec.service, path, original, missed)
        )
        core.patch_namespaced_service(
            self.spec.service,
            target.namespace,
            set_field(path, original, missed),
        )
        return {
            "service": f"{target.namespace}/{self.spec.service}: targetPort {original} -> {missed}"
        }


def _scheduling(pod: Any) -> tuple[str | None, str] | None:
    """(node, "") once bound; (None, message) once the scheduler found no node; else None."""
    if pod.spec.node_name:
        return pod.spec.node_name, ""
    for condition in pod.status.conditions or []:
        if (condition.type, condition.status, condition.reason) == (
            "PodScheduled",
            "False",
            "Unschedulable",
        ):
            return None, condition.message or ""
    return None
