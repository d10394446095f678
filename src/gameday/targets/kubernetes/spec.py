"""The ``kubernetes`` target's parameters: where the cluster is, what may be touched."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from gameday.scenario.model import NAME_PATTERN, StrictModel, TargetParams

__all__ = [
    "KubernetesTargetSpec",
    "MonitoringServiceSpec",
    "PortRef",
    "ServeSpec",
    "WorkloadSpec",
]


def _port(port: int | str) -> int | str:
    if isinstance(port, int):
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port} is not between 1 and 65535")
        return port
    if port.isdigit():  # "8000", quoted in YAML: a number still (a name has a letter)
        return _port(int(port))
    # Kubernetes' IANA_SVC_NAME: what a container or Service port may be named
    if not (len(port) <= 15 and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", port)):
        raise ValueError(
            f"{port!r} is not a port name (lowercase letters, digits and '-', 15 at most)"
        )
    return port


PortRef = Annotated[int | str, AfterValidator(_port)]
"""A port by number, or by the name a Service or a container gives it."""


class WorkloadSpec(StrictModel):
    deployment: str = Field(pattern=NAME_PATTERN)
    """The Deployment serving the model (vLLM, SGLang or the simulator)."""
    container: str | None = None
    """Its serving container; default: the first."""


class ServeSpec(StrictModel):
    """The serving endpoint inside the cluster, reached through a port-forward the harness
    opens through the API server (pods/portforward): a local URL whose connections each
    go to a pod that is ready when the connection is made, so pods a fault deletes or
    restarts are left out."""

    service: str | None = Field(default=None, pattern=NAME_PATTERN)
    """A Service of ``namespace`` in front of the workload: connections go to the ready
    pods its selector picks, at the pod port its ``port`` targets. Default: the pods of
    the workload's Deployment."""
    port: PortRef | None = None
    """With ``service``: one of the Service's ports (number or name); default its only
    one. Without: a port of the workload's pods (number or container port name); default
    the serving container's first declared port."""


class MonitoringServiceSpec(StrictModel):
    """A Prometheus or Alertmanager Service in the cluster, reached through a
    port-forward to its ready pods. The harness's account needs ``services`` get, ``pods``
    list and ``pods/portforward`` get and create in its namespace; forwarding changes
    nothing, so ``namespaces`` (what faults may touch) need not list it."""

    namespace: str = Field(pattern=NAME_PATTERN)
    """Where the Service is, e.g. ``monitoring``."""
    service: str = Field(pattern=NAME_PATTERN)
    """E.g. the Prometheus Operator's ``prometheus-operated`` or
    ``alertmanager-operated``."""
    port: PortRef | None = None
    """One of the Service's ports (number or name, e.g. ``web``); default its only one."""


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
    """The serving endpoint's URL, when the harness can reach it (load needs it); else
    see ``serve``."""
    serve: ServeSpec | None = None
    """When ``server`` is not given: reach the serving endpoint through a port-forward to
    the workload's pods (``{}``) or to a Service's (``{service: NAME, port: http}``)."""
    prometheus: str | None = None
    """The cluster Prometheus' URL; ``--prometheus`` on the command line overrides it."""
    prometheus_service: MonitoringServiceSpec | None = None
    """When no URL is given (``--prometheus``, ``prometheus``): a port-forward to this
    Service."""
    alertmanager: str | None = None
    """The cluster Alertmanager's URL; ``--alertmanager`` on the command line overrides
    it."""
    alertmanager_service: MonitoringServiceSpec | None = None
    """When no URL is given (``--alertmanager``, ``alertmanager``): a port-forward to this
    Service."""

    @model_validator(mode="after")
    def _namespaces(self) -> KubernetesTargetSpec:
        if "kube-system" in self.namespaces and not self.allow_kube_system:
            raise ValueError("kube-system is in namespaces; set allow_kube_system: true")
        return self

    @model_validator(mode="after")
    def _one_way_to_each_endpoint(self) -> KubernetesTargetSpec:
        for url, forward in (
            ("server", "serve"),
            ("prometheus", "prometheus_service"),
            ("alertmanager", "alertmanager_service"),
        ):
            if getattr(self, url) is not None and getattr(self, forward) is not None:
                raise ValueError(
                    f"{url} (a URL) and {forward} (a port-forward) are both given; keep one"
                )
        return self

    def describe(self) -> str:
        context = self.context or "the current context (or --context)"
        where = f"deployment {self.namespace}/{self.workload.deployment} in {context}"
        touch = ", ".join(self.allowed_namespaces())
        return f"{where}; faults may touch namespaces {touch}, at most {self.max_pods} pods"

    def allowed_namespaces(self) -> list[str]:
        return sorted({self.namespace, *self.namespaces})
