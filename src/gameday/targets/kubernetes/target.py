"""The ``kubernetes`` target: connect to a cluster, check what may be touched, watch.

``up`` reads the kubeconfig, refuses a context the scenario (``contexts``) or the
command line (``--context``) does not name, finds the workload's Deployment and starts
watching its pods, its namespace's events and Deployments and the EndpointSlices of its
Services, and opens the port-forwards the spec asks for (``serve``,
``prometheus_service``, ``alertmanager_service``). It creates nothing in the cluster, so
``down`` only stops the watches and the forwards. Faults change objects through
:attr:`api` and journal how to undo it.
"""

from __future__ import annotations

from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gameday.core.errors import ComponentUnreachable, InjectionError, UsageError
from gameday.observe.kubernetes import ClusterWatch
from gameday.scenario.model import TargetParams
from gameday.targets.base import Endpoints, Target, TargetContext, targets
from gameday.targets.kubernetes.cluster import (
    api_client,
    as_json,
    current_context,
    kubeconfig_path,
)
from gameday.targets.kubernetes.objects import DeleteCreatedObject, created_labels
from gameday.targets.kubernetes.portforward import PortForwards
from gameday.targets.kubernetes.spec import KubernetesTargetSpec
from gameday.targets.kubernetes.undo import RestoreObjectField

__all__ = ["KubernetesTarget", "allowed_context"]

KWOK_KUBELET = frozenset({"kubelet", "kwok_controller"})
"""What reports as a kubelet on the kwok tier: its controller, through the stages."""


def allowed_context(spec: KubernetesTargetSpec, kube_context: str | None) -> str:
    """The context to use, if the scenario (``contexts``) or the command line (``--context``)
    allows it; reads the kubeconfig file only."""
    context = spec.context or kube_context or current_context(kubeconfig_path(spec.kubeconfig))
    allowed = {*spec.contexts, *([kube_context] if kube_context else [])}
    if context not in allowed:
        listed = ", ".join(sorted(allowed)) or "none"
        raise UsageError(
            f"context {context!r} is not allowed (allowed: {listed}); list it in "
            "target.kubernetes.contexts or pass --context to run against it"
        )
    return context


@targets.register("kubernetes")
class KubernetesTarget(Target):
    kind = "kubernetes"
    Params = KubernetesTargetSpec

    def __init__(self, params: TargetParams, ctx: TargetContext) -> None:
        assert isinstance(params, KubernetesTargetSpec)
        self.spec = params
        self.ctx = ctx
        self.kubeconfig = kubeconfig_path(params.kubeconfig)
        self.context = ""
        self.api: client.ApiClient | None = None
        self.watch: ClusterWatch | None = None
        self.forwards: PortForwards | None = None
        self.selector = ""
        self._endpoints: Endpoints | None = None
        self._snapshot: dict[str, Any] | None = None

    @property
    def namespace(self) -> str:
        return self.spec.namespace

    def require_api(self) -> client.ApiClient:
        if self.api is None:
            raise ComponentUnreachable("the kubernetes target is not up")
        return self.api

    @classmethod
    def preflight(cls, params: TargetParams, kube_context: str | None) -> None:
        assert isinstance(params, KubernetesTargetSpec)
        allowed_context(params, kube_context)

    def up(self) -> None:
        self.context = allowed_context(self.spec, self.ctx.kube_context)
        self.api = api_client(self.kubeconfig, self.context)
        deployment = self.deployment()
        self._snapshot = as_json(self.require_api(), deployment)
        labels = deployment.spec.selector.match_labels or {}
        self.selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
        self.watch = ClusterWatch(
            self.api,
            self.ctx.bus,
            self.ctx.scenario,
            self.namespace,
            self.selector,
            workload=self.spec.workload.deployment,
        )
        self.watch.start()
        self.forwards = PortForwards(self.api, self.ctx.bus, self.ctx.scenario)
        self._endpoints = self.forwards.endpoints(
            self.spec, deployment, self.ctx.prometheus, self.ctx.alertmanager
        )

    def down(self) -> None:
        if self.watch is not None:
            self.watch.stop()
            self.watch = None
        if self.forwards is not None:
            self.forwards.close()
            self.forwards = None

    def deployment(self) -> Any:
        apps = client.AppsV1Api(self.require_api())
        name = self.spec.workload.deployment
        try:
            return apps.read_namespaced_deployment(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                raise UsageError(
                    f"deployment {self.namespace}/{name} not found in context {self.context}"
                ) from None
            raise ComponentUnreachable(
                f"cannot read deployment {self.namespace}/{name}: {error.status} {error.reason}"
            ) from None
        except urllib3.exceptions.HTTPError as error:  # no answer at all: refused, TLS, DNS
            host = self.require_api().configuration.host
            reason = getattr(error, "reason", None) or error
            raise ComponentUnreachable(
                f"cannot reach the Kubernetes API at {host} (context {self.context}): {reason}"
            ) from None

    def workload_within_cap(self) -> Any:
        """The workload's Deployment, for a change to its pod template: refused when that
        would touch more pods (its replicas) than ``max_pods`` allows."""
        deployment = self.deployment()
        replicas = deployment.spec.replicas or 0
        if replicas > self.spec.max_pods:
            raise InjectionError(
                f"deployment {self.namespace}/{deployment.metadata.name} has {replicas} "
                f"replicas: more pods than max_pods ({self.spec.max_pods}) allows a fault to "
                "touch"
            )
        return deployment

    def serving_container(self, template: dict[str, Any]) -> int:
        """The index of the serving container (``workload.container``, default the first)
        in a pod template as JSON."""
        containers = template["spec"]["containers"]
        wanted = self.spec.workload.container
        for index, container in enumerate(containers):
            if wanted is None or container["name"] == wanted:
                return index
        names = ", ".join(c["name"] for c in containers)
        raise InjectionError(f"no container {wanted!r} in the deployment (it has: {names})")

    def restore_field(
        self,
        plural: str,
        name: str,
        path: str,
        original: Any,
        faulted: Any,
        *,
        api_version: str = "v1",
        namespace: str | None = None,
    ) -> RestoreObjectField:
        """The undo record for a field of an object a change sets (in the target's
        namespace unless another is named): ``("services", name, "/spec/ports/0/targetPort",
        ...)``."""
        return RestoreObjectField(
            kubeconfig=self.kubeconfig,
            context=self.context,
            api_version=api_version,
            plural=plural,
            namespace=namespace or self.namespace,
            name=name,
            path=path,
            original=original,
            faulted=faulted,
        )

    def restore_workload_field(self, path: str, original: Any, faulted: Any) -> RestoreObjectField:
        """The undo record for a field of the workload's Deployment a change sets."""
        workload = self.spec.workload.deployment
        return self.restore_field(
            "deployments", workload, path, original, faulted, api_version="apps/v1"
        )

    def delete_created(
        self, plural: str, name: str, api_version: str = "v1"
    ) -> DeleteCreatedObject:
        """The undo record for an object a change creates in the namespace (give it
        :meth:`created_labels`): ``("resourcequotas", name)``, ``("deployments", name,
        "apps/v1")``."""
        return DeleteCreatedObject(
            kubeconfig=self.kubeconfig,
            context=self.context,
            api_version=api_version,
            plural=plural,
            namespace=self.namespace,
            name=name,
            run_id=self.ctx.run_id,
        )

    def created_labels(self) -> dict[str, str]:
        """The labels of an object a fault creates: its undo record deletes only that."""
        return created_labels(self.ctx.run_id)

    def snapshot_template(self) -> dict[str, Any]:
        """The workload's pod template as it was when the run began."""
        if self._snapshot is None:
            raise ComponentUnreachable("the kubernetes target is not up")
        template: dict[str, Any] = self._snapshot["spec"]["template"]
        return template

    @property
    def endpoints(self) -> Endpoints:
        if self._endpoints is None:
            raise ComponentUnreachable("the kubernetes target is not up")
        return self._endpoints

    def provenance(self, reporter: str) -> str:
        if self.context.startswith("kwok-") and reporter in KWOK_KUBELET:
            return "simulated by kwok stages"
        return "real"

    def simulated(self) -> list[str]:
        if not self.context.startswith("kwok-"):
            return []
        return [
            "kubelets are simulated by kwok stages: pod status, image pulls, container starts "
            "and exits, and the events a kubelet records; the API server, scheduler, "
            "controllers, admission and the Events of the control plane are real"
        ]
