"""The kwok tier: a real control plane as local processes, with simulated kubelets.

    up()    kwokctl's binary runtime on loopback (etcd, kube-apiserver,
            kube-controller-manager, kube-scheduler, kwok-controller with our stages);
            CPU and GPU nodes; CoreDNS as kind has it; a default StorageClass;
            kube-state-metrics scraped by a private Prometheus with the Kubernetes
            rules, and Alertmanager
    down()  all of it stopped and removed

Each thing ``up`` starts is journaled before it starts, like a run's changes, so
``down`` (or ``gameday cleanup --journal STATE/journal.jsonl``) takes back what a
killed ``up`` left. Real here: admission, RBAC, quotas, scheduling, the controllers,
EndpointSlices, kube-state-metrics and the alerts. Simulated: what kubelets do (pod
status, image pulls, container exits), by the stages in ``testenv/stages``. A fake pod's
port can be forwarded (``pods/portforward``, through the real API server to kwok's
kubelet server) to a real address that a KWOK PortForward or ClusterPortForward object
names, such as a simulator on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from gameday.core.changes import ChangeSet
from gameday.core.errors import ComponentUnreachable, UsageError
from gameday.core.events import EventBus
from gameday.core.journal import Journal, outstanding_undos, revert_outstanding
from gameday.core.processes import free_port, spawn
from gameday.core.undo import RemoveTree, RevertFailed, UndoAction, register_undo
from gameday.rules import kubernetes_rule_files
from gameday.targets.base import TargetContext
from gameday.targets.local.monitoring import MonitoringStack
from gameday.targets.local.spec import AlertmanagerSpec, PrometheusSpec
from gameday.testenv.binaries import ensure_binaries, testenv_source

__all__ = ["DeleteKwokCluster", "KwokEnv", "KwokEnvConfig", "KwokEnvInfo", "state_root"]

CLUSTER_READY_TIMEOUT = 120.0
NODE_READY_TIMEOUT = 120.0


def state_root() -> Path:
    return Path(os.environ.get("GAMEDAY_KWOK_DIR", "~/.cache/llm-gameday/kwok")).expanduser()


@dataclass(frozen=True)
class KwokEnvConfig:
    name: str = "gameday"
    cpu_nodes: int = 2
    gpu_nodes: int = 2
    gpus_per_node: int = 8
    gpu_product: str = "NVIDIA-H100-80GB-HBM3"
    registry: tuple[str, ...] = ()
    """Images the simulated registry holds, besides ``testenv/registry.txt``; a pod with
    any other image gets ErrImagePull, then ImagePullBackOff."""
    monitoring: bool = True
    disable_qps_limits: bool = True
    """Lift client and apiserver rate limits (kwokctl's --disable-qps-limits): a test or a
    benchmark creates objects faster than a production control plane would allow."""
    time_compression: float = 30.0
    """Divides the Kubernetes rules' ``for:`` and windows, as in the local tier."""


@dataclass(frozen=True)
class KwokEnvInfo:
    """What a test or a user needs to reach a running tier (``env.json``)."""

    name: str
    run_id: str
    """Prefix of the process tokens of what the harness started (see processes.spawn)."""
    kubeconfig: str
    context: str
    bin_dir: str
    state_dir: str
    journal: str
    prometheus: str = ""
    alertmanager: str = ""
    kube_state_metrics: str = ""
    nodes: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> KwokEnvInfo:
        return cls(**json.loads(path.read_text()))


@register_undo
class DeleteKwokCluster(UndoAction):
    """A kwokctl cluster (its processes stopped through their pid files, its files removed)."""

    kind: ClassVar[str] = "delete-kwok-cluster"
    kwokctl: str
    name: str
    workdir: str
    path: str
    """PATH for kwokctl (it runs kubectl)."""

    def revert(self) -> str:
        if not Path(self.workdir, "clusters", self.name).exists():
            return f"kwok cluster {self.name}: already gone"
        result = subprocess.run(
            [self.kwokctl, "delete", "cluster", "--name", self.name],
            env={**os.environ, "KWOK_WORKDIR": self.workdir, "PATH": self.path},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RevertFailed(
                f"kwokctl delete cluster {self.name}: {result.stderr.strip()[-500:]}"
            )
        return f"kwok cluster {self.name} deleted"

    def describe(self) -> str:
        return f"delete kwok cluster {self.name} ({self.workdir})"


class KwokEnv:
    """One named kwok tier under ``state_root()/<name>``."""

    def __init__(self, config: KwokEnvConfig | None = None) -> None:
        self.config = config or KwokEnvConfig()
        self.state_dir = state_root() / self.config.name
        self.kubeconfig = self.state_dir / "kubeconfig.yaml"
        self.journal_path = self.state_dir / "journal.jsonl"
        self.info_path = self.state_dir / "env.json"
        self.workdir = self.state_dir / "kwok"
        self.source = testenv_source()

    # -- state -----------------------------------------------------------------------

    def is_up(self) -> bool:
        return self.journal_path.is_file() and bool(outstanding_undos(self.journal_path))

    def info(self) -> KwokEnvInfo:
        if not self.info_path.is_file():
            raise UsageError(f"the kwok tier {self.config.name!r} is not up (no {self.info_path})")
        return KwokEnvInfo.read(self.info_path)

    # -- up --------------------------------------------------------------------------

    def up(self) -> KwokEnvInfo:
        if self.is_up():
            raise UsageError(
                f"the kwok tier {self.config.name!r} is already up; `gameday testenv down` first"
            )
        bin_dir = ensure_binaries()
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
        self.state_dir.mkdir(parents=True)
        run_id = f"kwok-{self.config.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        journal = Journal(self.journal_path, run_id)
        changes = ChangeSet(journal, self.config.name, "testenv")
        try:
            info = self._up(bin_dir, journal, changes)
        except BaseException:
            journal.close()
            self.down()
            raise
        journal.close()
        self.info_path.write_text(json.dumps(asdict(info), indent=2) + "\n")
        return info

    def _env(self, bin_dir: Path) -> dict[str, str]:
        return {
            **os.environ,
            "KWOK_WORKDIR": str(self.workdir),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            # kubectl's discovery cache goes with the tier, not into ~/.kube
            "KUBECACHEDIR": str(self.state_dir / "kube-cache"),
        }

    def _up(self, bin_dir: Path, journal: Journal, changes: ChangeSet) -> KwokEnvInfo:
        name = self.config.name
        config_path = self.state_dir / "kwokctl.yaml"
        config_path.write_text(yaml.safe_dump_all(self.kwokctl_config(), sort_keys=False))
        env = self._env(bin_dir)
        changes.record(
            DeleteKwokCluster(
                kwokctl=str(bin_dir / "kwokctl"),
                name=name,
                workdir=str(self.workdir),
                path=env["PATH"],
            )
        )
        command = [
            str(bin_dir / "kwokctl"),
            "create",
            "cluster",
            "--name",
            name,
            "--runtime",
            "binary",
            "--config",
            str(config_path),
            "--kubeconfig",
            str(self.kubeconfig),
            "--kube-apiserver-binary",
            str(bin_dir / "kube-apiserver"),
            "--kube-controller-manager-binary",
            str(bin_dir / "kube-controller-manager"),
            "--kube-scheduler-binary",
            str(bin_dir / "kube-scheduler"),
            "--etcd-binary",
            str(bin_dir / "etcd"),
            "--kwok-controller-binary",
            str(bin_dir / "kwok"),
            "--wait",
            f"{CLUSTER_READY_TIMEOUT:g}s",
        ]
        result = subprocess.run(
            command,
            env=env,
            capture_output=True,
            text=True,
            timeout=CLUSTER_READY_TIMEOUT + 60,
            check=False,
        )
        (self.state_dir / "kwokctl-create.log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise ComponentUnreachable(
                f"kwokctl create cluster failed (exit {result.returncode}): "
                f"{result.stderr.strip()[-800:]}"
            )
        kubectl = Kubectl(bin_dir / "kubectl", self.kubeconfig)
        nodes = self.node_manifests()
        kubectl.apply(nodes)
        kubectl.apply(self.manifests())
        node_names = [n["metadata"]["name"] for n in nodes]
        kubectl.wait("node", node_names, "condition=Ready", NODE_READY_TIMEOUT)
        info = KwokEnvInfo(
            name=name,
            run_id=journal.run_id,
            kubeconfig=str(self.kubeconfig),
            context=f"kwok-{name}",
            bin_dir=str(bin_dir),
            state_dir=str(self.state_dir),
            journal=str(self.journal_path),
            nodes=node_names,
        )
        if self.config.monitoring:
            info = self._monitoring(bin_dir, journal, changes, info)
        return info

    def _monitoring(
        self, bin_dir: Path, journal: Journal, changes: ChangeSet, info: KwokEnvInfo
    ) -> KwokEnvInfo:
        logs = self.state_dir / "logs"
        logs.mkdir(exist_ok=True)
        ksm_port, ksm_telemetry = free_port(), free_port()
        with (logs / "kube-state-metrics.log").open("ab") as log:
            spawn(
                [
                    str(bin_dir / "kube-state-metrics"),
                    f"--kubeconfig={self.kubeconfig}",
                    "--host=127.0.0.1",
                    f"--port={ksm_port}",
                    "--telemetry-host=127.0.0.1",
                    f"--telemetry-port={ksm_telemetry}",
                ],
                name="kube-state-metrics",
                changes=changes,
                stdout=log,
                stderr=log,
            )
        scratch = self.state_dir / "scratch"
        changes.record(RemoveTree(path=str(scratch)))
        scratch.mkdir()
        ctx = TargetContext(
            scenario=self.config.name,
            run_id=journal.run_id,
            journal=journal,
            bus=EventBus(),
            scenario_dir=self.state_dir,
            artifacts=logs,
            stop=threading.Event(),
        )
        stack = MonitoringStack(
            ctx,
            changes,
            scratch,
            PrometheusSpec(
                rules=[str(p) for p in kubernetes_rule_files()],
                time_compression=self.config.time_compression,
            ),
            AlertmanagerSpec(),
        )
        stack.start(
            prometheus_port=free_port(),
            alertmanager_port=free_port(),
            scrape_jobs={"kube-state-metrics": f"127.0.0.1:{ksm_port}"},
            labels={"cluster": f"kwok-{self.config.name}"},
        )
        stack.wait_scraped("kube-state-metrics", 60.0)
        return KwokEnvInfo(
            **{
                **asdict(info),
                "prometheus": stack.prometheus_url,
                "alertmanager": stack.alertmanager_url,
                "kube_state_metrics": f"http://127.0.0.1:{ksm_port}",
            }
        )

    # -- down ------------------------------------------------------------------------

    def down(self) -> list[str]:
        """Stop and remove everything ``up`` started; returns what was done, in words."""
        if not self.journal_path.is_file():
            return []
        from gameday.plugins import load_builtins

        load_builtins()  # the process and file undo kinds
        outcomes = revert_outstanding(self.journal_path, self.config.name)
        failed = [o.message for o in outcomes if not o.ok]
        if failed:
            raise ComponentUnreachable("could not take down the kwok tier: " + "; ".join(failed))
        self.info_path.unlink(missing_ok=True)
        return [o.message for o in outcomes]

    # -- what it creates -------------------------------------------------------------

    def stages(self) -> list[dict[str, Any]]:
        """The stages in ``testenv/stages``, with the registry's images and the reachable
        NFS servers filled in."""
        placeholders = {
            "<registry>": sorted({*self.registry_images(), *self.config.registry}),
            "<nfs-servers>": sorted(set(self.nfs_servers())),
        }
        documents: list[dict[str, Any]] = []
        for path in sorted((self.source / "stages").glob("*.yaml")):
            for document in yaml.safe_load_all(path.read_text()):
                if not document:
                    continue
                for expression in document["spec"].get("selector", {}).get("matchExpressions", []):
                    values = expression.get("values")
                    if isinstance(values, list) and len(values) == 1 and values[0] in placeholders:
                        expression["values"] = placeholders[values[0]]
                documents.append(document)
        return documents

    def registry_images(self) -> list[str]:
        return self._list_file("registry.txt")

    def nfs_servers(self) -> list[str]:
        """NFS servers the simulated nodes reach; a pod mounting another gets FailedMount."""
        return self._list_file("nfs-servers.txt")

    def _list_file(self, name: str) -> list[str]:
        path = self.source / name
        lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
        return [line for line in lines if line]

    def kwokctl_config(self) -> list[dict[str, Any]]:
        """``testenv/kwokctl-local.yaml`` (loopback only), with our stages appended."""
        base = yaml.safe_load((self.source / "kwokctl-local.yaml").read_text())
        options = base.setdefault("options", {})
        options["runtime"] = "binary"
        if self.config.disable_qps_limits:
            options["disableQPSLimits"] = True
        return [base, *self.stages()]

    def node_manifests(self) -> list[dict[str, Any]]:
        config = self.config
        gpu_labels = {
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": config.gpu_product,
            "nvidia.com/gpu.count": str(config.gpus_per_node),
        }
        nodes = [
            *(node(f"cpu-{i}", cpu="32", memory="128Gi") for i in range(config.cpu_nodes)),
            *(
                node(
                    f"gpu-{i}",
                    cpu="96",
                    memory="1024Gi",
                    gpus=config.gpus_per_node,
                    labels=gpu_labels,
                )
                for i in range(config.gpu_nodes)
            ),
        ]
        # a /24 of pod addresses per node, as kind's kubeadm hands out from 10.244.0.0/16
        for index, manifest in enumerate(nodes):
            manifest["spec"]["podCIDR"] = f"10.{244 + index // 256}.{index % 256}.0/24"
        return nodes

    def manifests(self) -> list[dict[str, Any]]:
        documents: list[dict[str, Any]] = []
        for path in sorted((self.source / "manifests").glob("*.yaml")):
            documents.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
        return documents


def node(
    name: str,
    *,
    cpu: str,
    memory: str,
    gpus: int = 0,
    labels: dict[str, str] | None = None,
    pods: int = 110,
) -> dict[str, Any]:
    """A Node the kwok controller manages (its annotation), as a kubelet would register it."""
    capacity = {"cpu": cpu, "memory": memory, "pods": str(pods), "ephemeral-storage": "1Ti"}
    if gpus:
        capacity["nvidia.com/gpu"] = str(gpus)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                **(labels or {}),
            },
        },
        "spec": {},
        "status": {
            "allocatable": capacity,
            "capacity": capacity,
            # where the API server finds this node's kubelet (pods/portforward): the
            # kwok-controller on loopback (kube-apiserver prefers InternalDNS, see
            # testenv/kwokctl-local.yaml); the node stage adds InternalIP and Hostname
            "addresses": [{"type": "InternalDNS", "address": "localhost"}],
        },
    }


class Kubectl:
    """The tier's own kubectl, for applying manifests and waiting on conditions."""

    def __init__(self, binary: Path, kubeconfig: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(self, *args: str, stdin: str | None = None, timeout: float = 60.0) -> str:
        result = subprocess.run(
            [str(self.binary), f"--kubeconfig={self.kubeconfig}", *args],
            env={**os.environ, "KUBECACHEDIR": str(self.kubeconfig.parent / "kube-cache")},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise ComponentUnreachable(
                f"kubectl {' '.join(args[:3])}: {result.stderr.strip()[-800:]}"
            )
        return result.stdout

    def apply(self, documents: Iterable[dict[str, Any]]) -> None:
        text = yaml.safe_dump_all(list(documents), sort_keys=False)
        self.run("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=text)

    def wait(self, kind: str, names: Sequence[str], condition: str, timeout: float) -> None:
        self.run(
            "wait",
            f"--for={condition}",
            f"--timeout={timeout:g}s",
            *(f"{kind}/{n}" for n in names),
            timeout=timeout + 30,
        )
