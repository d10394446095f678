"""The kwok tier at game-day scale: 200 GPU nodes and 2,000 pods.

Brings up its own tier (named ``scale``, no monitoring), registers the nodes, creates
the pods through Deployments (the real ReplicaSet controller and scheduler place them;
the stages run them) and prints how long each step took, the memory of this harness
process and that of the tier's processes. Run:

    .venv/bin/python benchmarks/kwok_scale.py [--nodes 200] [--pods 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import psutil
from kubernetes import client, config, watch

from gameday.testenv import KwokEnv, KwokEnvConfig


def deployment(name: str, replicas: int) -> client.V1Deployment:
    labels = {"app": name}
    server = client.V1Container(
        name="server",
        image="vllm/vllm-openai:v0.11.0",
        resources=client.V1ResourceRequirements(requests={"cpu": "100m", "memory": "128Mi"}),
    )
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[server]),
            ),
        ),
    )


def seconds_until_count(
    list_fn: Callable[..., Any], want: int, good: Callable[[Any], bool], **kwargs: Any
) -> float:
    """Seconds until ``want`` objects are ``good``: a list, then a resourceVersion watch."""
    started = time.monotonic()
    listed = list_fn(**kwargs)
    names = {o.metadata.name for o in listed.items if good(o)}
    version = listed.metadata.resource_version
    while len(names) < want:
        for event in watch.Watch().stream(
            list_fn, resource_version=version, timeout_seconds=60, **kwargs
        ):
            obj = event["object"]
            version = obj.metadata.resource_version
            if event["type"] != "DELETED" and good(obj):
                names.add(obj.metadata.name)
            else:
                names.discard(obj.metadata.name)
            if len(names) >= want:
                break
    return time.monotonic() - started


def rss_mib(processes: list[psutil.Process]) -> float:
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += process.memory_info().rss
    return total / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description="The kwok tier at scale.")
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--deployments", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("GAMEDAY_KWOK_DIR", tempfile.mkdtemp(prefix="kwok-scale-"))
    env = KwokEnv(KwokEnvConfig(name="scale", cpu_nodes=0, gpu_nodes=args.nodes, monitoring=False))
    started = time.monotonic()
    info = env.up()  # returns once every node is Ready
    up_s = time.monotonic() - started
    try:
        api = config.new_client_from_config(config_file=info.kubeconfig)
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="scale")))
        per = args.pods // args.deployments
        created = time.monotonic()
        for index in range(args.deployments):
            apps.create_namespaced_deployment("scale", deployment(f"server-{index}", per))
        running_s = seconds_until_count(
            core.list_namespaced_pod,
            per * args.deployments,
            lambda p: p.status.phase == "Running",
            namespace="scale",
        )
        total_s = time.monotonic() - created
        tier = [
            p
            for p in psutil.process_iter(["cmdline"])
            if any(info.state_dir in part for part in p.info["cmdline"] or [])
        ]
        print(f"tier up, {args.nodes} GPU nodes Ready: {up_s:.1f}s")
        print(
            f"{per * args.deployments} pods Running: {running_s:.1f}s after their "
            f"Deployments were created ({total_s:.1f}s including the creation)"
        )
        print(f"harness process RSS: {rss_mib([psutil.Process()]):.0f} MiB")
        print(f"tier processes RSS ({len(tier)} processes): {rss_mib(tier):.0f} MiB")
    finally:
        env.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
