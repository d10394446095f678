"""The ``kubernetes`` target's parameters: where the cluster is, what may be touched."""

from __future__ import annotations

from pydantic import Field, model_validator

from gameday.scenario.model import NAME_PATTERN, StrictModel, TargetParams

__all__ = ["KubernetesTargetSpec", "WorkloadSpec"]


class WorkloadSpec(StrictModel):
    deployment: str = Field(pattern=NAME_PATTERN)
    """The Deployment serving the model (vLLM, SGLang or the simulator)."""
    container: str | None = None
    """Its serving container; default: the first."""


class KubernetesTargetSpec(TargetParams):
    """A workload on a Kubernetes cluster, reached through a kubeconfig; only what the
    scenario allows is touched."""

    kubeconfig: str | None = None
    """Default: $KUBECONFIG, else ~/.kube/config. Only its path is ever written down."""
    context: str | None = None
    """Default: the one ``--context`` names, else the kubeconfig's current context."""
    contexts: list[str] = Field(default_factory=list)
    """Contexts this scenario may run against; ``--context`` on the command line adds one.
    Any other context is refused before anything is read or changed."""
    namespace: str = Field(pattern=NAME_PATTERN)
    workload: WorkloadSpec
    namespaces: list[str] = Field(default_factory=list)
    """Namespaces faults may touch; default: ``namespace`` alone. kube-system only with
    ``allow_kube_system`` and only for faults that declare they need it (DNS)."""
    allow_kube_system: bool = False
    max_pods: int = Field(default=20, ge=1)
    """The most pods a fault may touch (delete, evict, patch the owner of)."""
    server: str | None = None
    """The serving endpoint's URL, when the harness can reach it (load needs it)."""
    prometheus: str | None = None
    """The cluster Prometheus' URL; ``--prometheus`` on the command line overrides it."""
    alertmanager: str | None = None

    @model_validator(mode="after")
    def _namespaces(self) -> KubernetesTargetSpec:
        if "kube-system" in self.namespaces and not self.allow_kube_system:
            raise ValueError("kube-system is in namespaces; set allow_kube_system: true")
        return self

    def allowed_namespaces(self) -> list[str]:
        return sorted({self.namespace, *self.namespaces})
