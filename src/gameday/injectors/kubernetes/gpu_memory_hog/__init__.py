"""gpu-memory-hog (RUNTIME001): a pod on the workload's nodes holds the GPUs' memory.

One hog pod per node the workload's pods run on (``gameday-gpu-memory-hog-N``), placed
there by the scheduler (a required node affinity on the node's name, the workload's
tolerations), requests no GPU: it sees them all through ``NVIDIA_VISIBLE_DEVICES=all``,
as a stray debugging pod or a time-sliced neighbour would, and its holder
(gpu_memory_hog/holder.py, run with the image's ``python3``; the image defaults to the
serving container's own, which the node already has) takes the free memory of each
GPU but ``leave_gib``. Once every hog pod is ready (the memory held), the workload is
restarted as ``kubectl rollout restart`` does, with the annotation
``kwok.gameday.dev/gpu-memory-hog`` naming the hog pods and their nodes on its pod
template (harmless on a real cluster: it only says where the hogs are). The new
serving container gets a GPU whose memory is taken: vLLM refuses to start ("Free memory
on device ... is less than desired GPU memory utilization", exit code 1) and the pod
crash-loops while the old pods keep serving. Each hog pod is recorded for deletion
before it is created; the annotations are taken out again only while they are still
the fault's.

On the kwok tier the API server, the scheduler placing each hog pod on its node
without a GPU request, and the rollout are real; no GPU memory exists, and the serving
container's failure (terminated Error, exit code 1, vLLM's message as the last lines of
its log when its terminationMessagePolicy is FallbackToLogsOnError, then
CrashLoopBackOff) is the simulation of testenv/stages/pod-gpu-memory.yaml, set off by
that annotation on a pod running on one of the nodes it names. The fault's report
says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import Field

from gameday.core.errors import InjectionError
from gameday.injectors.base import Injector, faults
from gameday.injectors.kubernetes.gpu_memory_hog import holder
from gameday.scenario.model import FaultSpec
from gameday.scenario.units import Duration
from gameday.targets.kubernetes.cluster import as_json
from gameday.targets.kubernetes.objects import labelled
from gameday.targets.kubernetes.target import KubernetesTarget
from gameday.targets.kubernetes.workload import (
    MANAGED_BY,
    pod_condition,
    restart_workload,
    watch_pods,
)

__all__ = ["HELD_ON", "HOG", "GpuMemoryHog", "GpuMemoryHogSpec", "hog_pod", "holder_command"]

HOG = "gameday-gpu-memory-hog"
HOG_LABELS = {"app.kubernetes.io/name": HOG, **MANAGED_BY}
HELD_ON = "kwok.gameday.dev/gpu-memory-hog"
"""The workload template's annotation naming the hog pods and their nodes
(``POD@NODE,...``): the kwok stage's trigger."""


def holder_command() -> list[str]:
    """``python3 -c`` with the text of holder.py (stdlib and libcuda only)."""
    return ["python3", "-c", Path(holder.__file__).read_text(encoding="utf-8")]


class GpuMemoryHogSpec(FaultSpec):
    leave_gib: float = Field(default=1.0, ge=0)
    """What the holder leaves free on each GPU."""
    image: str | None = None
    """The hog's image; default: the serving container's (it has a python3, and the
    node already holds it)."""
    command: list[str] | None = None
    """The hog's command; default: ``python3 -c`` with the text of
    gameday/injectors/kubernetes/gpu_memory_hog/holder.py, which holds the memory of every
    GPU it sees through the CUDA driver, creates /tmp/gameday-gpu-memory-held (the
    readiness probe's file) and waits for SIGTERM. Another command must create that file
    once it holds the memory, or give no readiness signal at all."""
    restart: bool = True
    """Restart the workload so its new serving containers meet the memory held."""
    ready_within: Duration = 120.0
    """How long the hog pods may take to be scheduled and hold the memory."""


def hog_pod(
    spec: GpuMemoryHogSpec,
    name: str,
    node: str,
    template: dict[str, Any],
    serving_container: str | None = None,
) -> dict[str, Any]:
    """A pod on ``node`` that sees every GPU there without requesting one; its image is
    the serving container's unless ``spec`` names one."""
    containers = template["spec"]["containers"]
    serving = next((c for c in containers if c["name"] == serving_container), containers[0])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": HOG_LABELS},
        "spec": {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchFields": [
                                    {"key": "metadata.name", "operator": "In", "values": [node]}
                                ]
                            }
                        ]
                    }
                }
            },
            **(
                {"tolerations": template["spec"]["tolerations"]}
                if template["spec"].get("tolerations")
                else {}
            ),
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 5,
            "containers": [
                {
                    "name": "holder",
                    "image": spec.image or serving["image"],
                    "command": spec.command or holder_command(),
                    "env": [
                        {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
                        {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "compute,utility"},
                        {"name": "GAMEDAY_LEAVE_GIB", "value": f"{spec.leave_gib:g}"},
                    ],
                    "readinessProbe": {
                        "exec": {"command": ["cat", holder.READY_FILE]},
                        "periodSeconds": 2,
                    },
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                }
            ],
        },
    }


def _state(pod: dict[str, Any]) -> str | None:
    """'ready', or why the pod will never be (its failure), or None while it may be."""
    ready = pod_condition(pod, "Ready")
    if ready and ready.get("status") == "True":
        return "ready"
    scheduled = pod_condition(pod, "PodScheduled")
    if scheduled and scheduled.get("status") == "False" and scheduled.get("reason"):
        return f"not scheduled: {scheduled.get('message') or scheduled['reason']}"
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        ended = (status.get("state") or {}).get("terminated")
        if ended:
            said = (ended.get("message") or "").strip()
            return f"exited {ended.get('exitCode')} ({ended.get('reason')}): {said}"
    return None


@faults.register("gpu-memory-hog")
class GpuMemoryHog(Injector[GpuMemoryHogSpec, KubernetesTarget]):
    Params = GpuMemoryHogSpec
    target_kinds = frozenset({"kubernetes"})
    runbook = "RUNTIME001"
    summary = (
        "A pod on the workload's nodes holds the GPUs' memory (no GPU request); the "
        "restarted server finds too little free."
    )

    @classmethod
    def describe(cls, spec: GpuMemoryHogSpec) -> str:
        restart = (
            f"; restart the workload with annotation {HELD_ON} naming them" if spec.restart else ""
        )
        return (
            f"create a pod {HOG}-N on each node running a pod of the workload, with "
            f"NVIDIA_VISIBLE_DEVICES=all and no GPU request, holding all but "
            f"{spec.leave_gib:g} GiB of each GPU{restart}; revert: the annotations, then "
            "the pods"
        )

    def apply(self) -> dict[str, str]:
        target, spec = self.target, self.spec
        api = target.require_api()
        core = client.CoreV1Api(api)
        template = as_json(api, target.deployment().spec.template)
        try:
            pods: Any = core.list_namespaced_pod(target.namespace, label_selector=target.selector)
        except ApiException as error:
            raise InjectionError(
                f"cannot list the workload's pods: {error.status} {error.reason}"
            ) from None
        nodes = sorted(
            {
                p.spec.node_name
                for p in pods.items
                if p.spec.node_name and not p.metadata.deletion_timestamp
            }
        )
        if not nodes:
            raise InjectionError("no pod of the workload runs on a node: no node to share")
        if len(nodes) > target.spec.max_pods:
            raise InjectionError(
                f"the workload runs on {len(nodes)} nodes: one hog pod each is more than "
                f"max_pods ({target.spec.max_pods})"
            )
        hogs = {f"{HOG}-{index}": node for index, node in enumerate(nodes)}
        for name in hogs:
            try:
                core.read_namespaced_pod(name, target.namespace)
            except ApiException as error:
                if error.status != 404:
                    raise InjectionError(
                        f"cannot read pod {name}: {error.status} {error.reason}"
                    ) from None
            else:
                raise InjectionError(
                    f"pod {target.namespace}/{name} already exists; it is not ours to change "
                    "(a run killed before `gameday cleanup` leaves it: run that first)"
                )
        for name, node in hogs.items():
            self.ctx.changes.record(target.delete_created("pods", name))
            try:
                core.create_namespaced_pod(
                    target.namespace,
                    labelled(
                        hog_pod(spec, name, node, template, target.spec.workload.container),  # type: ignore[arg-type]
                        target.created_labels(),
                    ),
                )
            except ApiException as error:
                raise InjectionError(
                    f"cannot create pod {name}: {error.status} {error.reason}"
                ) from None
        self._wait_ready(hogs)
        details = {
            "hogs": ", ".join(f"pod {target.namespace}/{name} on {n}" for name, n in hogs.items()),
            "held": f"all but {spec.leave_gib:g} GiB of every GPU of those nodes, with no GPU "
            "request (NVIDIA_VISIBLE_DEVICES=all)",
        }
        if spec.restart:
            held_on = ",".join(f"{name}@{node}" for name, node in hogs.items())
            details["restart"] = restart_workload(target, self.ctx.changes, {HELD_ON: held_on})
        if target.simulated():
            details["simulated"] = (
                "kwok has no GPU memory: the hog pods' scheduling onto the workload's nodes is "
                "real; the serving container's GPU memory error (exit 1, vLLM's 'Free memory "
                "on device' message, then CrashLoopBackOff) is simulated by "
                f"testenv/stages/pod-gpu-memory.yaml, set off by the {HELD_ON} annotation on "
                "pods running on those nodes"
            )
        return details

    def _wait_ready(self, hogs: dict[str, str]) -> None:
        def settled(pods: dict[str, dict[str, Any]]) -> bool | None:
            states = {name: _state(pods[name]) if name in pods else None for name in hogs}
            failed = {name: s for name, s in states.items() if s not in (None, "ready")}
            if failed:
                raise InjectionError(
                    "the GPU memory hog cannot hold the memory: "
                    + "; ".join(f"{name} {why}" for name, why in failed.items())
                )
            return True if all(s == "ready" for s in states.values()) else None

        watch_pods(
            self.target.require_api(),
            self.target.namespace,
            ",".join(f"{k}={v}" for k, v in HOG_LABELS.items()),
            settled,
            timeout=self.spec.ready_within,
            what=f"the GPU memory hog pods ({', '.join(hogs)}) holding the memory",
            stop=self.ctx.stop,
        )
