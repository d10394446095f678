"""The ``kubernetes`` target: connect to a cluster, check what may be touched, watch.

``up`` reads the kubeconfig, refuses a context the scenario (``contexts``) or the
command line (``--context``) does not name, finds the workload's Deployment and starts
watching its pods and its namespace's events. It creates nothing, so ``down`` only stops
the watches. Faults change objects through :attr:`api` and journal how to undo it.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gameday.errors import ComponentUnreachable, UsageError
from gameday.observe.kubernetes import ClusterWatch
from gameday.scenario.model import TargetParams
from gameday.targets.base import Endpoints, Target, TargetContext, targets
from gameday.targets.kubernetes.cluster import (
    api_client,
    as_json,
    current_context,
    kubeconfig_path,
)
from gameday.targets.kubernetes.objects import DeleteNamespacedObject, Kind
from gameday.targets.kubernetes.spec import KubernetesTargetSpec
from gameday.targets.kubernetes.undo import RestoreDeploymentField

__all__ = ["KubernetesTarget", "allowed_context"]


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
            self.api, self.ctx.bus, self.ctx.scenario, self.namespace, self.selector
        )
        self.watch.start()
        prometheus = self.ctx.prometheus or self.spec.prometheus
        alertmanager = self.ctx.alertmanager or self.spec.alertmanager
        self._endpoints = Endpoints(
            server=self.spec.server or "", prometheus=prometheus, alertmanager=alertmanager
        )

    def down(self) -> None:
        if self.watch is not None:
            self.watch.stop()
            self.watch = None

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

    def restore_workload_field(
        self, path: str, original: Any, faulted: Any
    ) -> RestoreDeploymentField:
        """The undo record for a field of the workload's Deployment a change sets."""
        return RestoreDeploymentField(
            kubeconfig=self.kubeconfig,
            context=self.context,
            namespace=self.namespace,
            name=self.spec.workload.deployment,
            path=path,
            original=original,
            faulted=faulted,
        )

    def delete_created(self, object_kind: Kind, name: str) -> DeleteNamespacedObject:
        """The undo record for an object a change creates in the namespace."""
        return DeleteNamespacedObject(
            kubeconfig=self.kubeconfig,
            context=self.context,
            object_kind=object_kind,
            namespace=self.namespace,
            name=name,
        )

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

    def simulated(self) -> list[str]:
        if not self.context.startswith("kwok-"):
            return []
        return [
            "kubelets are simulated by kwok stages: pod status, image pulls, container starts "
            "and exits, and the events a kubelet records; the API server, scheduler, "
            "controllers, admission and the Events of the control plane are real"
        ]
