"""How soon the harness sees what the API server records, on the kwok tier; and
bad-image-tag against a Deployment of 500 replicas, with the harness's memory.

Part 1 (lag): the harness's own pod and event watches (gameday.observe.kubernetes) feed
an event bus, as in a run. For each of ``--changes`` changes, an Event is created through
the API; the lag is from the moment the API server answered the create (the change is
recorded) to the moment an ``event`` expectation, checked the way the runner checks
(woken by each new observation, at least four times a second), first holds. The same
number of pod annotation patches give the watch-level lag for pod changes.

Part 2 (scale): ``gameday run`` of a bad-image-tag scenario against ``--replicas``
replicas (max_pods raised to allow it): the time to the first ErrImagePull, to the
diagnosis, to every pod Running again after the revert, and the peak RSS of the
``gameday run`` process, sampled every 0.2 s.

    .venv/bin/python benchmarks/detect_lag.py [--changes 60] [--replicas 500]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import yaml
from kubernetes import client, config

from gameday.assertions.base import ExpectationContext
from gameday.assertions.event import EventExpectation, EventParams
from gameday.core.events import EventBus, PodObserved
from gameday.core.observations import Observations
from gameday.observe.kubernetes import ClusterWatch
from gameday.testenv import KwokEnv, KwokEnvConfig

REPO = Path(__file__).resolve().parents[1]
WORKLOAD = yaml.safe_load((REPO / "deploy" / "workload" / "inference-server.yaml").read_text())
TICK = 0.25  # the runner's own tick (gameday.engine.runner.TICK)


def wait_ready(apps: client.AppsV1Api, namespace: str, replicas: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        status = apps.read_namespaced_deployment_status("inference-server", namespace).status
        if (status.ready_replicas or 0) >= replicas and (status.updated_replicas or 0) >= replicas:
            return time.monotonic() - started
        time.sleep(0.5)  # a benchmark's outer wait, not what it measures
    raise TimeoutError(f"{replicas} replicas not ready within {timeout}s")


def lag(api: client.ApiClient, namespace: str, changes: int) -> None:
    core = client.CoreV1Api(api)
    bus = EventBus()
    observed = Observations("lag")
    bus.subscribe(observed)
    watcher = ClusterWatch(api, bus, "lag", namespace, "app.kubernetes.io/name=inference-server")
    watcher.start()
    pod = core.list_namespaced_pod(namespace).items[0].metadata.name
    event_lags, event_spans, pod_lags, pod_spans = [], [], [], []
    try:
        for index in range(changes):
            reason = f"GamedayLag{index}"
            expectation = EventExpectation(EventParams(reason=reason), ExpectationContext("lag"))
            body = client.CoreV1Event(
                metadata=client.V1ObjectMeta(generate_name="lag-"),
                involved_object=client.V1ObjectReference(kind="Pod", name=pod, namespace=namespace),
                reason=reason,
                message=f"change {index}",
                type="Normal",
            )
            seen = bus.sequence
            sent = time.time()
            core.create_namespaced_event(namespace, body)
            recorded = time.time()
            while not expectation.check(observed, sent - 5).met:
                seen = bus.wait(seen, TICK)
            held = time.time()
            event_lags.append(held - recorded)
            event_spans.append(held - sent)

            before = len(observed.pods)
            sent = time.time()
            core.patch_namespaced_pod(
                pod, namespace, {"metadata": {"annotations": {"gameday.dev/lag": str(index)}}}
            )
            recorded = time.time()
            seen = bus.sequence
            while len(observed.pods) == before:
                seen = bus.wait(seen, TICK)
            change = observed.pods[before]
            assert isinstance(change, PodObserved)
            pod_lags.append(change.ts - recorded)
            pod_spans.append(change.ts - sent)
    finally:
        watcher.stop()
    # The API server records a change between the request and its answer: the first
    # figure (from the answer) is a lower bound, the second (from the request) an upper one.
    for what, values in (
        ("event created (answer) -> event expectation held", event_lags),
        ("event created (request) -> event expectation held", event_spans),
        ("pod patched (answer) -> pod watch event on the bus", pod_lags),
        ("pod patched (request) -> pod watch event on the bus", pod_spans),
    ):
        ordered = sorted(values)
        print(
            f"{what}: n={len(values)} median {statistics.median(values) * 1000:.1f} ms, "
            f"p90 {ordered[int(0.9 * (len(ordered) - 1))] * 1000:.1f} ms, "
            f"max {max(values) * 1000:.1f} ms"
        )


def scale(info: Any, api: client.ApiClient, replicas: int, workdir: Path) -> None:
    apps = client.AppsV1Api(api)
    apps.patch_namespaced_deployment("inference-server", "lag", {"spec": {"replicas": replicas}})
    ready_s = wait_ready(apps, "lag", replicas, 600)
    print(f"{replicas} replicas Running and ready: {ready_s:.1f}s")
    scenario = yaml.safe_load(
        (REPO / "scenarios" / "kubernetes" / "bad-image-tag.yaml").read_text()
    )
    scenario["metadata"]["name"] = "bad-image-tag-at-scale"
    scenario["target"]["kubernetes"].update(namespace="lag", max_pods=replicas + 100)
    scenario.pop("remedy")
    # the namespace has the Deployment alone: no Service whose endpoints to expect
    scenario["steady_state"] = [e for e in scenario["steady_state"] if "endpoints" not in e]
    scenario["faults"][0]["duration"] = "20s"
    scenario["expect"] = [e for e in scenario["expect"] if "alert" not in e]
    scenario["recover"] = [
        {"pod": {"phase": "Running", "ready": True, "every": True, "within": "300s"}}
    ]
    path = workdir / "scale.yaml"
    path.write_text(yaml.safe_dump(scenario))
    env = {**os.environ, "KUBECONFIG": info.kubeconfig}
    command = [
        sys.executable,
        "-m",
        "gameday",
        "run",
        str(path),
        "--context",
        info.context,
        "--report-dir",
        str(workdir / "reports"),
        "--no-live",
    ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = 0
    watched = psutil.Process(process.pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                peak = max(peak, watched.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            done.wait(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, stderr = process.communicate(timeout=900)
    done.set()
    sampler.join()
    report = json.loads(next((workdir / "reports").glob("*/report.json")).read_text())
    (result,) = report["scenarios"]
    print(f"gameday run exit {process.returncode}, outcome {result['outcome']}: {result['reason']}")
    for e in result["expectations"]:
        print(
            f"  {e['phase']:<12} {e['description']:<55} {e['outcome']:<7} "
            f"held after {e['met_after_s']}"
        )
    print(
        f"time to detect {result['time_to_detect_s']}s, time to recover (revert -> every "
        f"pod ready) {result['time_to_recover_s']}s"
    )
    print(f"gameday run peak RSS: {peak / 2**20:.0f} MiB")
    if process.returncode != 0:
        print(stderr[-3000:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=60)
    parser.add_argument("--replicas", type=int, default=500)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="detect-lag-"))
    os.environ.setdefault("GAMEDAY_KWOK_DIR", str(workdir / "kwok"))
    nodes = max(2, -(-(args.replicas + 150) // 100))  # kubelets take 110 pods each
    env = KwokEnv(KwokEnvConfig(name="lag", cpu_nodes=nodes, gpu_nodes=0, monitoring=False))
    info = env.up()
    try:
        api = config.new_client_from_config(config_file=info.kubeconfig)
        client.CoreV1Api(api).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name="lag"))
        )
        apps = client.AppsV1Api(api)
        apps.create_namespaced_deployment(
            "lag", {**WORKLOAD, "spec": {**WORKLOAD["spec"], "replicas": 1}}
        )
        wait_ready(apps, "lag", 1, 120)
        print(f"kwok tier: {nodes} nodes; the harness and the tier share this machine")
        lag(api, "lag", args.changes)
        scale(info, api, args.replicas, workdir)
    finally:
        env.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
