"""The kwok tier's configuration, before anything starts: stages, nodes, kwokctl config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gameday.core.undo import undo_actions
from gameday.plugins import load_builtins
from gameday.testenv import KwokEnv, KwokEnvConfig


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KwokEnv:
    monkeypatch.setenv("GAMEDAY_KWOK_DIR", str(tmp_path))
    return KwokEnv(KwokEnvConfig(name="unit", gpu_nodes=3, registry=("example.com/app:1",)))


def test_registry_and_nfs_placeholders_are_filled(env: KwokEnv) -> None:
    text = json.dumps(env.stages())
    assert "<registry>" not in text and "<nfs-servers>" not in text
    values = [
        e["values"]
        for stage in env.stages()
        for e in stage["spec"].get("selector", {}).get("matchExpressions", [])
        if "values" in e
    ]
    registry = next(v for v in values if "example.com/app:1" in v)
    assert "registry.k8s.io/coredns/coredns:v1.12.0" in registry  # from testenv/registry.txt


def test_every_stage_is_a_kwok_stage_with_a_name(env: KwokEnv) -> None:
    stages = env.stages()
    names = [s["metadata"]["name"] for s in stages]
    assert len(names) == len(set(names)), names
    assert all(s["apiVersion"] == "kwok.x-k8s.io/v1alpha1" and s["kind"] == "Stage" for s in stages)
    kinds = {s["spec"]["resourceRef"]["kind"] for s in stages}
    assert kinds == {"Node", "Pod"}


def test_kwokctl_config_binds_to_loopback(env: KwokEnv) -> None:
    base, *stages = env.kwokctl_config()
    assert base["kind"] == "KwokctlConfiguration"
    assert base["options"]["bindAddress"] == "127.0.0.1"
    assert base["options"]["disableQPSLimits"] is True
    args = {a["key"]: a["value"] for a in base["componentsPatches"][0]["extraArgs"]}
    assert args == {
        "advertise-address": "127.0.0.1",
        "endpoint-reconciler-type": "none",
        "kubelet-preferred-address-types": "InternalDNS,InternalIP,Hostname,ExternalDNS,ExternalIP",
    }
    # pods/portforward to fake pods: kwok's objects say where to, its kubelet server
    # (on loopback, like every component) answers the API server
    assert base["options"]["enableCRDs"] == ["PortForward", "ClusterPortForward"]
    assert len(stages) == len(env.stages())
    yaml.safe_dump_all([base, *stages])  # what kwokctl is given must serialise


def test_gpu_nodes_advertise_gpus_and_labels(env: KwokEnv) -> None:
    nodes = {n["metadata"]["name"]: n for n in env.node_manifests()}
    assert sorted(nodes) == ["cpu-0", "cpu-1", "gpu-0", "gpu-1", "gpu-2"]
    gpu = nodes["gpu-2"]
    assert gpu["status"]["allocatable"]["nvidia.com/gpu"] == "8"
    assert gpu["metadata"]["labels"]["nvidia.com/gpu.present"] == "true"
    assert gpu["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert "nvidia.com/gpu" not in nodes["cpu-0"]["status"]["allocatable"]
    # the API server finds every node's kubelet (kwok's) on loopback
    assert all(
        n["status"]["addresses"] == [{"type": "InternalDNS", "address": "localhost"}]
        for n in nodes.values()
    )


def test_down_of_a_tier_that_never_came_up_does_nothing(env: KwokEnv) -> None:
    assert env.is_up() is False
    assert env.down() == []


def test_cleanup_knows_how_to_delete_a_cluster() -> None:
    load_builtins()
    assert "delete-kwok-cluster" in undo_actions
