"""dns-breakage (NETWORK002) on Kubernetes: names stop resolving in the cluster.

Three ways, by ``mode``:

- ``coredns-scaled-to-zero``: the Deployment kube-system/coredns is scaled to 0
  replicas. Nothing in the cluster resolves (the kube-dns Service has no endpoint);
  kube-state-metrics reports no available replica and CoreDNSDown fires. The revert
  puts the replica count back only if it is still 0.
- ``corefile``: the ``forward`` targets in the Corefile of the ConfigMap
  kube-system/coredns are replaced with ``resolver``, an address that does not answer.
  Names outside the cluster time out (``[Errno -3] Temporary failure in name
  resolution`` in the server's log); cluster.local names still resolve. CoreDNS's
  ``reload`` plugin picks the change up once the kubelet has synced the ConfigMap
  volume (a minute or two). The revert puts the Corefile back only if it is still the
  fault's.
- ``dns-config``: the workload's pod template gets ``dnsPolicy: None`` and a
  ``dnsConfig`` whose only nameserver is ``resolver``; its new pods resolve nothing.
  Touches the workload's namespace only; reverted field by field, conflict-safe.

The first two change kube-system: they run only where the scenario's target sets
``allow_kube_system: true`` and lists kube-system in ``namespaces`` (checked when the
plan is made and again here), and the harness's account needs
deploy/rbac/harness-kube-system.yaml.

On the kwok tier the CoreDNS Deployment, its ReplicaSet, the kube-dns EndpointSlices,
kube-state-metrics and the alert are real; CoreDNS's pods and the workload's are
simulated, so nobody actually resolves a name: ``corefile`` and ``dns-config`` change
the objects (and are reverted) but show no symptom there.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import Field

from gameday.core.errors import InjectionError
from gameday.injectors.base import Injector, faults
from gameday.scenario.model import NAME_PATTERN, FaultSpec
from gameday.targets.kubernetes.cluster import as_json
from gameday.targets.kubernetes.target import KubernetesTarget
from gameday.targets.kubernetes.undo import json_pointer, set_field

__all__ = ["DnsBreakage", "DnsBreakageSpec", "dead_dns_config", "with_forward_to"]

KUBE_SYSTEM = "kube-system"
COREFILE = "Corefile"
REPLICAS = json_pointer("spec", "replicas")
DNS_POLICY = json_pointer("spec", "template", "spec", "dnsPolicy")
DNS_CONFIG = json_pointer("spec", "template", "spec", "dnsConfig")

# `forward FROM TO... [{`: the zone, then the upstreams up to the options block
_FORWARD = re.compile(r"^(?P<head>[ \t]*forward[ \t]+\S+)(?P<to>(?:[ \t]+[^\s{]+)+)", re.MULTILINE)


class DnsBreakageSpec(FaultSpec):
    mode: Literal["coredns-scaled-to-zero", "corefile", "dns-config"] = "coredns-scaled-to-zero"
    """What breaks: CoreDNS itself (no replica), its upstream (Corefile), or the
    workload's own resolver (its pods' dnsConfig)."""
    resolver: ipaddress.IPv4Address = ipaddress.IPv4Address("192.0.2.1")
    """The address that does not answer (``corefile``, ``dns-config``). Default: in
    TEST-NET-1 (RFC 5737), routed nowhere, so queries time out."""
    deployment: str = Field(default="coredns", pattern=NAME_PATTERN)
    """CoreDNS's Deployment in kube-system (``coredns-scaled-to-zero``)."""
    configmap: str = Field(default="coredns", pattern=NAME_PATTERN)
    """CoreDNS's ConfigMap in kube-system, key ``Corefile`` (``corefile``)."""
    cluster_domain: str = "cluster.local"
    """The cluster's DNS domain, for the search path of ``dns-config``."""


def with_forward_to(corefile: str, resolver: str) -> tuple[str, list[str]]:
    """``corefile`` with every ``forward`` directive's upstreams replaced by ``resolver``,
    and the upstreams it had. A Corefile without ``forward`` is refused."""
    replaced: list[str] = []

    def forward_to(match: re.Match[str]) -> str:
        replaced.append(match["to"].strip())
        return f"{match['head']} {resolver}"

    rewritten = _FORWARD.sub(forward_to, corefile)
    if not replaced:
        raise InjectionError("the Corefile has no forward directive to point at a dead resolver")
    return rewritten, replaced


def dead_dns_config(namespace: str, resolver: str, cluster_domain: str) -> dict[str, Any]:
    """A pod dnsConfig (with dnsPolicy None) that asks only ``resolver``, searching as
    ClusterFirst would, so names are tried the usual way and none answers."""
    return {
        "nameservers": [resolver],
        "searches": [
            f"{namespace}.svc.{cluster_domain}",
            f"svc.{cluster_domain}",
            cluster_domain,
        ],
        "options": [{"name": "ndots", "value": "5"}],
    }


@faults.register("dns-breakage")
class DnsBreakage(Injector[DnsBreakageSpec, KubernetesTarget]):
    Params = DnsBreakageSpec
    target_kinds = frozenset({"kubernetes"})
    runbook = "NETWORK002"
    summary = (
        "Scale CoreDNS to zero, point its Corefile at a dead upstream, or give the "
        "workload a dead resolver."
    )

    @classmethod
    def needs_kube_system(cls, spec: DnsBreakageSpec) -> bool:
        return spec.mode != "dns-config"

    @classmethod
    def describe(cls, spec: DnsBreakageSpec) -> str:
        return {
            "coredns-scaled-to-zero": (
                f"scale deployment kube-system/{spec.deployment} to 0 replicas (a JSON patch "
                "that tests the current count); revert: the count it had, only if it is "
                "still 0"
            ),
            "corefile": (
                f"point the forward directives of configmap kube-system/{spec.configmap}'s "
                f"Corefile at {spec.resolver}, which does not answer; revert: the Corefile "
                "it had, only if it is still the fault's"
            ),
            "dns-config": (
                f"give the workload's pod template dnsPolicy None and a dnsConfig whose only "
                f"nameserver is {spec.resolver} (JSON patches); revert: the fields it had, "
                "only if they are still the fault's"
            ),
        }[spec.mode]

    def apply(self) -> dict[str, str]:
        if self.needs_kube_system(self.spec):
            self._check_kube_system()
        if self.spec.mode == "coredns-scaled-to-zero":
            return self._scale_coredns_to_zero()
        if self.spec.mode == "corefile":
            return self._break_corefile()
        return self._dead_resolver_for_the_workload()

    def _check_kube_system(self) -> None:
        spec = self.target.spec
        if not (spec.allow_kube_system and KUBE_SYSTEM in spec.allowed_namespaces()):
            raise InjectionError(
                f"dns-breakage mode {self.spec.mode} changes kube-system, which this "
                "scenario does not allow: set allow_kube_system: true and list kube-system "
                "in target.kubernetes.namespaces"
            )

    def _scale_coredns_to_zero(self) -> dict[str, str]:
        target, name = self.target, self.spec.deployment
        apps = client.AppsV1Api(target.require_api())
        where = f"deployment {KUBE_SYSTEM}/{name}"
        try:
            replicas = apps.read_namespaced_deployment(name, KUBE_SYSTEM).spec.replicas
        except ApiException as error:
            raise InjectionError(f"cannot read {where}: {error.status} {error.reason}") from None
        if not replicas:
            raise InjectionError(f"{where} has no replica already: nothing to scale down")
        if replicas > target.spec.max_pods:
            raise InjectionError(
                f"{where} has {replicas} replicas: more pods than max_pods "
                f"({target.spec.max_pods}) allows this fault to touch"
            )
        self.ctx.changes.record(
            target.restore_field(
                "deployments",
                name,
                REPLICAS,
                replicas,
                0,
                api_version="apps/v1",
                namespace=KUBE_SYSTEM,
            )
        )
        patch = set_field(REPLICAS, replicas, 0)
        try:
            apps.patch_namespaced_deployment(name, KUBE_SYSTEM, patch)
        except ApiException as error:
            raise InjectionError(f"cannot scale {where}: {error.status} {error.reason}") from None
        return {"deployment": f"{KUBE_SYSTEM}/{name}", "replicas": f"{replicas} -> 0"}

    def _break_corefile(self) -> dict[str, str]:
        target, name = self.target, self.spec.configmap
        core = client.CoreV1Api(target.require_api())
        where = f"configmap {KUBE_SYSTEM}/{name}"
        try:
            data = core.read_namespaced_config_map(name, KUBE_SYSTEM).data or {}
        except ApiException as error:
            raise InjectionError(f"cannot read {where}: {error.status} {error.reason}") from None
        if COREFILE not in data:
            raise InjectionError(f"{where} has no {COREFILE} key")
        original = data[COREFILE]
        faulted, upstreams = with_forward_to(original, str(self.spec.resolver))
        path = json_pointer("data", COREFILE)
        record = target.restore_field(
            "configmaps", name, path, original, faulted, namespace=KUBE_SYSTEM
        )
        self.ctx.changes.record(record)
        patch = set_field(record.path, original, faulted)
        try:
            core.patch_namespaced_config_map(name, KUBE_SYSTEM, patch)
        except ApiException as error:
            raise InjectionError(
                f"cannot rewrite {where}'s {COREFILE}: {error.status} {error.reason}"
            ) from None
        return {
            "configmap": f"{KUBE_SYSTEM}/{name}",
            "forward": f"{'; '.join(upstreams)} -> {self.spec.resolver}",
        }

    def _dead_resolver_for_the_workload(self) -> dict[str, str]:
        target = self.target
        api = target.require_api()
        deployment = target.workload_within_cap()
        pod_spec = as_json(api, deployment.spec.template)["spec"]
        dns_config = dead_dns_config(
            target.namespace, str(self.spec.resolver), self.spec.cluster_domain
        )
        patch: list[dict[str, Any]] = []
        # undone newest first: the policy goes back before the config it needs (the API
        # server refuses dnsPolicy None without nameservers)
        for path, existing, faulted in (
            (DNS_CONFIG, pod_spec.get("dnsConfig"), dns_config),
            (DNS_POLICY, pod_spec.get("dnsPolicy"), "None"),
        ):
            self.ctx.changes.record(target.restore_workload_field(path, existing, faulted))
            patch += set_field(path, existing, faulted)
        try:
            client.AppsV1Api(api).patch_namespaced_deployment(
                deployment.metadata.name, target.namespace, patch
            )
        except ApiException as error:
            raise InjectionError(
                f"cannot set the workload's dnsConfig: {error.status} {error.reason}"
            ) from None
        return {
            "deployment": f"{target.namespace}/{deployment.metadata.name}",
            "dnsPolicy": f"{pod_spec.get('dnsPolicy') or 'ClusterFirst'} -> None",
            "nameservers": str(self.spec.resolver),
        }
