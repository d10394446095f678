"""The Kubernetes GPU faults' pure parts: what the hogs ask for and where they go. Their
effect on a cluster is tests/kwok/test_k8s_gpu.py's."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gameday.injectors.kubernetes.gpu_exhaustion import (
    GpuExhaustion,
    GpuExhaustionSpec,
    hog_deployment,
)
from gameday.injectors.kubernetes.gpu_memory_hog import (
    GpuMemoryHog,
    GpuMemoryHogSpec,
    hog_pod,
    holder_command,
)
from gameday.injectors.kubernetes.gpu_memory_hog import holder as gpu_memory_holder
from gameday.targets.kubernetes.workload import placement_of, requested

TEMPLATE: dict[str, Any] = {
    "spec": {
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "affinity": {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"x": 1}},
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"y": 2}]},
        },
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "priorityClassName": "inference",
        "containers": [
            {"name": "sidecar", "image": "proxy:1", "resources": {}},
            {
                "name": "server",
                "image": "vllm/vllm-openai:v0.11.0",
                "resources": {"limits": {"nvidia.com/gpu": "2"}},
            },
        ],
    }
}


def exhaustion(**params: Any) -> GpuExhaustionSpec:
    return GpuExhaustionSpec(name="take", type="gpu-exhaustion", **params)


def memory_hog(**params: Any) -> GpuMemoryHogSpec:
    return GpuMemoryHogSpec(name="hold", type="gpu-memory-hog", **params)


def test_the_hog_goes_where_the_workload_may_go_and_nowhere_it_would_keep_out() -> None:
    assert placement_of(TEMPLATE) == {
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
        # node affinity only: the workload's pod anti-affinity would keep the hog away
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"x": 1}}},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        # the same priority: the workload's pending pod cannot preempt the hog
        "priorityClassName": "inference",
    }
    assert placement_of({"spec": {"containers": []}}) == {}


def test_a_request_defaults_to_the_limit_as_for_every_extended_resource() -> None:
    assert requested(TEMPLATE, "nvidia.com/gpu") == 2
    both = {
        "spec": {
            "containers": [
                {"resources": {"requests": {"nvidia.com/gpu": "1"}}},
                {"resources": {"limits": {"nvidia.com/gpu": "4"}}},
            ]
        }
    }
    assert requested(both, "nvidia.com/gpu") == 5
    assert requested(TEMPLATE, "nvidia.com/mig-1g.10gb") == 0


def test_the_hog_deployment_asks_for_gpus_and_nothing_else() -> None:
    hog = hog_deployment(exhaustion(gpus_per_pod=2), TEMPLATE, 3)
    assert hog["metadata"]["name"] == "gameday-gpu-hog"
    assert hog["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "llm-gameday"
    assert hog["spec"]["replicas"] == 3
    assert hog["spec"]["selector"]["matchLabels"] == hog["spec"]["template"]["metadata"]["labels"]
    pod = hog["spec"]["template"]["spec"]
    assert {k: pod[k] for k in placement_of(TEMPLATE)} == placement_of(TEMPLATE)
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["image"] == "registry.k8s.io/pause:3.10"
    assert container["resources"] == {
        "requests": {"nvidia.com/gpu": "2"},
        "limits": {"nvidia.com/gpu": "2"},
    }


def test_gpus_come_in_whole_hog_pods() -> None:
    assert exhaustion(gpus=6, gpus_per_pod=3).gpus == 6
    with pytest.raises(ValidationError, match=r"gpus \(5\) must be a multiple of gpus_per_pod"):
        exhaustion(gpus=5, gpus_per_pod=2)
    with pytest.raises(ValidationError):
        exhaustion(gpus_per_pod=0)


def test_describe_says_what_each_fault_will_change() -> None:
    assert GpuExhaustion.describe(exhaustion()) == (
        "create deployment gameday-gpu-hog, pods of 1 nvidia.com/gpu placed as the "
        "workload's (node selector, node affinity, tolerations, priority class), taking every "
        "free nvidia.com/gpu (at most max_pods pods); restart the workload (rollout restart "
        "annotation); revert: the annotation, then the hog"
    )
    assert "taking 8 nvidia.com/gpu;" in GpuExhaustion.describe(exhaustion(gpus=8, restart=False))
    assert GpuMemoryHog.describe(memory_hog(leave_gib=2)) == (
        "create a pod gameday-gpu-memory-hog-N on each node running a pod of the workload, "
        "with NVIDIA_VISIBLE_DEVICES=all and no GPU request, holding all but 2 GiB of each "
        "GPU; restart the workload with annotation kwok.gameday.dev/gpu-memory-hog naming "
        "them; revert: the annotations, then the pods"
    )


def test_the_memory_hog_sees_every_gpu_of_its_node_without_requesting_one() -> None:
    pod = hog_pod(memory_hog(), "gameday-gpu-memory-hog-0", "gpu-7", TEMPLATE, "server")
    spec = pod["spec"]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms == {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["gpu-7"]}]}
        ]
    }
    assert "nodeName" not in spec  # the scheduler places it
    assert spec["tolerations"] == TEMPLATE["spec"]["tolerations"]
    assert spec["restartPolicy"] == "Never"
    (container,) = spec["containers"]
    assert "resources" not in container
    assert {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"} in container["env"]
    assert {"name": "GAMEDAY_LEAVE_GIB", "value": "1"} in container["env"]
    # the serving container's image (the node has it), the holder as its command
    assert container["image"] == "vllm/vllm-openai:v0.11.0"
    assert container["command"] == holder_command()
    assert container["command"][:2] == ["python3", "-c"]
    assert container["readinessProbe"]["exec"]["command"] == ["cat", gpu_memory_holder.READY_FILE]
    # the first container when the workload names none; the scenario's image and command
    # when it gives them
    assert hog_pod(memory_hog(), "h", "n", TEMPLATE)["spec"]["containers"][0]["image"] == "proxy:1"
    custom = hog_pod(memory_hog(image="cuda:12", command=["hold"]), "h", "n", TEMPLATE, "server")
    assert custom["spec"]["containers"][0]["image"] == "cuda:12"
    assert custom["spec"]["containers"][0]["command"] == ["hold"]
