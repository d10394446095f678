"""The kwok tier's part of the kill -9 soak: a tier of its own for the soak, a namespace
of its own for each trial with the workload the fault needs, and the cluster's objects
compared field by field before the run and after ``gameday cleanup``.

What is compared: every object of the kinds a fault or the harness could create or
change, in the trial's namespace and in kube-system (Deployments, Services, ConfigMaps,
Secrets by a digest of their data, ServiceAccounts, Roles and RoleBindings,
ResourceQuotas, LimitRanges, PersistentVolumeClaims, NetworkPolicies, the llm-d
LLMDeployments, and pods no controller owns), and the cluster's own (Nodes, CRDs,
ClusterRoles and ClusterRoleBindings, PersistentVolumes, StorageClasses, Namespaces).
Each object is its metadata (less what the API server writes: uid, resourceVersion,
generation, timestamps, managedFields) and its spec, flattened to one line per field;
status is left out (what controllers observe, not what anyone set), and so is a
Deployment's revision annotation (a rollback moves it on: the template is compared).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from gameday.targets.kubernetes.cluster import rest
from gameday.testenv import KwokEnv, KwokEnvConfig, KwokEnvInfo
from tests.kwok.scenarios import (
    coredns_ready,
    gpu_workload,
    private_workload,
    pull_secret,
    scenario_in,
    workload_rolled_out,
)
from tests.soak.trial import Plan, RunRecord, Trial

Setup = Callable[[client.ApiClient, str], Any]


def _workload(api: client.ApiClient, namespace: str) -> None:
    workload_rolled_out(api, namespace)


def _with_coredns(api: client.ApiClient, namespace: str) -> None:
    workload_rolled_out(api, namespace)
    coredns_ready(api)


def _private(api: client.ApiClient, namespace: str) -> None:
    pull_secret(api, namespace)
    private_workload(api, namespace)


# fault -> what its bundled scenario (scenarios/kubernetes/FAULT.yaml) needs in place
FAULTS: dict[str, Setup] = {
    "bad-image-tag": _workload,
    "crd-schema-drift": _workload,
    "dns-breakage": _with_coredns,
    "gpu-exhaustion": gpu_workload,
    "gpu-memory-hog": gpu_workload,
    "gpu-quota": gpu_workload,
    "image-pull-secret-removed": _private,
    "oom-kill": _workload,
    "port-conflict": _workload,
    "pvc-misconfig": _workload,
    "rbac-denied": _workload,
}

NAMESPACED = [
    ("apps/v1", "deployments"),
    ("apps/v1", "statefulsets"),
    ("apps/v1", "daemonsets"),
    ("v1", "services"),
    ("v1", "configmaps"),
    ("v1", "secrets"),
    ("v1", "serviceaccounts"),
    ("v1", "resourcequotas"),
    ("v1", "limitranges"),
    ("v1", "persistentvolumeclaims"),
    ("v1", "pods"),
    ("rbac.authorization.k8s.io/v1", "roles"),
    ("rbac.authorization.k8s.io/v1", "rolebindings"),
    ("networking.k8s.io/v1", "networkpolicies"),
    ("inference.llm-d.io/v1alpha1", "llmdeployments"),
]
CLUSTER = [
    ("v1", "nodes"),
    ("v1", "namespaces"),
    ("v1", "persistentvolumes"),
    ("apiextensions.k8s.io/v1", "customresourcedefinitions"),
    ("rbac.authorization.k8s.io/v1", "clusterroles"),
    ("rbac.authorization.k8s.io/v1", "clusterrolebindings"),
    ("storage.k8s.io/v1", "storageclasses"),
]
WRITTEN_BY_THE_SERVER = {
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
}
MOVED_BY_A_ROLLOUT = {"deployment.kubernetes.io/revision"}
NAMESPACE_GONE_S = 120
TRIAL_PREFIX = "soak-"
KUBERNETES_SETTLE_S = 60
"""How long what cleanup deleted may take to leave the API server (a Deployment's pods
go through the garbage collector and kwok's pod-delete stage first)."""


def starting(record: RunRecord) -> bool:
    """The kubernetes target journals nothing as it starts (it connects, checks the
    workload, opens its port-forward): the point is the phase that brings it up."""
    return record.get("event") == "PhaseStarted" and record.get("phase") == "up"


def _root(api_version: str) -> str:
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


def _flatten(prefix: str, value: Any, into: set[str]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, into)
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            _flatten(f"{prefix}[{index}]", item, into)
    else:
        into.add(f"{prefix}={json.dumps(value, sort_keys=True)}")


def _comparable(plural: str, item: dict[str, Any]) -> dict[str, Any] | None:
    metadata = {k: v for k, v in item.get("metadata", {}).items() if k not in WRITTEN_BY_THE_SERVER}
    annotations = {
        k: v for k, v in metadata.get("annotations", {}).items() if k not in MOVED_BY_A_ROLLOUT
    }
    if plural == "pods" and metadata.get("ownerReferences"):
        return None  # a controller's: its owner is compared
    if plural == "nodes":  # the node's agent (kwok) writes its annotations as it goes
        annotations = {}
    metadata["annotations"] = annotations
    kept: dict[str, Any] = {"metadata": metadata}
    for key, value in item.items():
        if key in ("metadata", "status", "kind", "apiVersion"):
            continue
        if plural == "secrets" and key in ("data", "stringData"):
            # never a secret's value in the soak's output: a digest of each
            value = {k: hashlib.sha256(str(v).encode()).hexdigest()[:12] for k, v in value.items()}
        kept[key] = value
    return kept


def objects(api: client.ApiClient, namespaces: list[str]) -> frozenset[str]:
    """Every field of every compared object, one ``plural ns/name field=value`` line each
    (other trials' namespaces left out: trials run side by side)."""
    paths = [
        (plural, f"{_root(version)}/namespaces/{namespace}/{plural}")
        for namespace in namespaces
        for version, plural in NAMESPACED
    ] + [(plural, f"{_root(version)}/{plural}") for version, plural in CLUSTER]
    lines: set[str] = set()
    for plural, path in paths:
        status, listed = rest(api, "GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {listed.get('message', '')}")
        for item in listed.get("items", []):
            meta = item["metadata"]
            if (
                plural == "namespaces"
                and _a_trials(meta["name"])
                and meta["name"] not in namespaces
            ):
                continue
            kept = _comparable(plural, item)
            if kept is None:
                continue
            name = f"{meta.get('namespace', '')}/{meta['name']}".lstrip("/")
            _flatten(f"{plural} {name} ", kept, lines)
    return frozenset(line.replace(" .", " ", 1) for line in lines)


def _a_trials(namespace: str) -> bool:
    return namespace.startswith(TRIAL_PREFIX)


EXCLUSIVE = {"dns-breakage"}
"""Faults that change what every namespace shares (kube-system's CoreDNS): run alone."""
SHARE_THE_GPUS = {"gpu-exhaustion", "gpu-memory-hog", "gpu-quota"}
"""Faults whose workloads need the GPU nodes, which gpu-exhaustion fills and a hog
fails: one at a time."""


class Scheduler:
    """Hands the kwok trials to the workers that run them side by side: the next pending
    trial whose fault, or group of faults sharing the GPU nodes, has none running; an
    exclusive fault's trial only when nothing runs, and nothing beside it. Exclusive
    trials go first, so the rest run side by side once they are done."""

    def __init__(self, trials: list[Trial]) -> None:
        self._pending = sorted(trials, key=lambda t: t.fault not in EXCLUSIVE)
        self._busy: set[str] = set()  # the groups running now
        self._changed = threading.Condition()

    @staticmethod
    def group(fault: str) -> str:
        return "gpus" if fault in SHARE_THE_GPUS else fault

    def _next(self) -> Trial | None:
        if "exclusive" in self._busy:
            return None
        for trial in self._pending:
            if trial.fault in EXCLUSIVE:
                return trial if not self._busy else None  # nothing after it starts first
            if self.group(trial.fault) not in self._busy:
                return trial
        return None

    def take(self) -> Trial | None:
        """The next trial to run (waiting until one may start), or None when all are out."""
        with self._changed:
            while self._pending:
                trial = self._next()
                if trial is not None:
                    self._pending.remove(trial)
                    exclusive = trial.fault in EXCLUSIVE
                    self._busy.add("exclusive" if exclusive else self.group(trial.fault))
                    return trial
                self._changed.wait()
            return None

    def done(self, trial: Trial) -> None:
        with self._changed:
            exclusive = trial.fault in EXCLUSIVE
            self._busy.discard("exclusive" if exclusive else self.group(trial.fault))
            self._changed.notify_all()


class KwokSoak:
    """The tier (up for the whole soak, down at its end) and each trial's namespace."""

    def __init__(self) -> None:
        self._state = tempfile.TemporaryDirectory(prefix="soak-kwok-")
        os.environ["GAMEDAY_KWOK_DIR"] = self._state.name
        self.env = KwokEnv(KwokEnvConfig(name="soak"))
        self.info: KwokEnvInfo | None = None
        self.api: client.ApiClient | None = None

    def __enter__(self) -> KwokSoak:
        started = time.monotonic()
        self.info = self.env.up()
        self.api = config.new_client_from_config(config_file=self.info.kubeconfig)
        print(f"soak: kwok tier up in {time.monotonic() - started:.0f} s", flush=True)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.env.down()
        self._state.cleanup()

    @contextlib.contextmanager
    def trial(self, fault: str, work: Path) -> Iterator[Plan]:
        """A namespace with what ``fault`` needs; the scenario pointed at it, the run's
        arguments and environment. The namespace is deleted afterwards, and gone before
        the next trial (its pods hold the nodes' GPUs until then)."""
        assert self.info is not None and self.api is not None
        api = self.api
        namespace = f"{TRIAL_PREFIX}{secrets.token_hex(3)}"
        core = client.CoreV1Api(self.api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        try:
            FAULTS[fault](self.api, namespace)
            args = ["--context", self.info.context]
            args += ["--prometheus", self.info.prometheus]
            args += ["--alertmanager", self.info.alertmanager]
            yield Plan(
                scenario=scenario_in(namespace, work, fault),
                args=args,
                env={"KUBECONFIG": self.info.kubeconfig},
                objects=lambda: objects(api, [namespace, "kube-system"]),
                starting=starting,
                settle_s=KUBERNETES_SETTLE_S,
                # the target and the faults change the API server's objects only; the
                # machine's links, mounts and rules are the local tier's to compare
                machine_wide=False,
            )
        finally:
            core.delete_namespace(namespace)
            self._until_gone(namespace)

    def _until_gone(self, namespace: str) -> None:
        """Watch the namespace until the namespace controller has emptied and removed it."""
        assert self.api is not None
        core = client.CoreV1Api(self.api)
        selector = f"metadata.name={namespace}"
        listed = core.list_namespace(field_selector=selector)
        if not listed.items:
            return
        for change in watch.Watch().stream(
            core.list_namespace,
            field_selector=selector,
            resource_version=listed.metadata.resource_version,
            timeout_seconds=NAMESPACE_GONE_S,
        ):
            if change["type"] == "DELETED":
                return
        raise RuntimeError(f"namespace {namespace} still there after {NAMESPACE_GONE_S} s")
