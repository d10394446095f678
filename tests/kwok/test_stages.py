"""The simulated kubelets (testenv/stages) report what a real kubelet reports.

Each failure a stage simulates is checked for the exact container states, pod
conditions and kubelet events a Kubernetes 1.36 kubelet produces (the wording is
copied from the kubelet source, cited in the stage files), and for recovery once the
workload is fixed. Everything else here (Deployments, ReplicaSets, rollouts) is the
real control plane.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client, watch

from tests.kwok.conftest import watch_until

pytestmark = pytest.mark.kwok

MISSING = "vllm/vllm-openai:v9.9.9-does-not-exist"
MISSING_REF = "docker.io/vllm/vllm-openai:v9.9.9-does-not-exist"
PULL_ERROR = (
    f'rpc error: code = NotFound desc = failed to pull and unpack image "{MISSING_REF}": '
    f'failed to resolve reference "{MISSING_REF}": {MISSING_REF}: not found'
)
WORKING_SET = "kwok.gameday.dev/memory-working-set"


# -- helpers -----------------------------------------------------------------------


def deployment(
    name: str,
    image: str,
    *,
    memory_limit: str | None = None,
    annotations: dict[str, str] | None = None,
) -> client.V1Deployment:
    labels = {"app": name}
    resources = (
        client.V1ResourceRequirements(limits={"memory": memory_limit}) if memory_limit else None
    )
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels, annotations=annotations),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="app", image=image, resources=resources)]
                ),
            ),
        ),
    )


def create_pod(core: client.CoreV1Api, namespace: str, pod: client.V1Pod) -> client.V1Pod:
    """Create a bare pod once the namespace's default ServiceAccount exists (admission
    refuses the pod until the serviceaccount controller has made it)."""
    watch_until(
        core.list_namespaced_service_account,
        lambda sa: sa if sa.metadata.name == "default" else None,
        namespace=namespace,
        what="the default ServiceAccount",
    )
    return core.create_namespaced_pod(namespace, pod)


def status_of(pod: client.V1Pod, container: str = "app") -> client.V1ContainerStatus | None:
    return next((s for s in pod.status.container_statuses or [] if s.name == container), None)


def condition(pod: client.V1Pod, kind: str) -> client.V1PodCondition:
    return next(c for c in pod.status.conditions or [] if c.type == kind)


def pod_where(check: Callable[[client.V1Pod], bool]) -> Callable[[client.V1Pod], Any]:
    def match(pod: client.V1Pod) -> client.V1Pod | None:
        return pod if pod.status and check(pod) else None

    return match


def waiting(reason: str, container: str = "app") -> Callable[[client.V1Pod], bool]:
    def check(pod: client.V1Pod) -> bool:
        status = status_of(pod, container)
        return bool(status and status.state.waiting and status.state.waiting.reason == reason)

    return check


def kubelet_events(
    core: client.CoreV1Api, namespace: str, pod: str, expected: list[tuple[str, str, str]]
) -> dict[tuple[str, str, str], client.CoreV1Event]:
    """Wait until the pod has an event for each (type, reason, message); return them."""
    wanted = set(expected)
    seen: dict[tuple[str, str, str], client.CoreV1Event] = {}

    def match(event: client.CoreV1Event) -> dict[tuple[str, str, str], Any] | None:
        key = (event.type, event.reason, event.message)
        if key in wanted:
            seen.setdefault(key, event)
        return seen if len(seen) == len(wanted) else None

    found = watch_until(
        core.list_namespaced_event,
        match,
        namespace=namespace,
        field_selector=f"involvedObject.name={pod}",
        what=f"events {sorted(wanted - set(seen))} on pod {pod}",
    )
    for event in found.values():
        assert event.source.component == "kubelet"
        assert event.reporting_component == "kubelet"
        assert event.source.host == event.reporting_instance
        assert event.source.host.startswith(("cpu-", "gpu-"))
        assert event.involved_object.kind == "Pod"
    return found


def wait_deleted(
    list_fn: Callable[..., Any], name: str, *, timeout: float = 60, **kwargs: Any
) -> None:
    """Watch until the object called ``name`` is gone (watch_until skips deletions)."""
    listed = list_fn(**kwargs)
    if all(item.metadata.name != name for item in listed.items):
        return
    version = listed.metadata.resource_version
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        for event in watch.Watch().stream(
            list_fn, resource_version=version, timeout_seconds=max(1, int(left)), **kwargs
        ):
            version = event["object"].metadata.resource_version
            if event["type"] == "DELETED" and event["object"].metadata.name == name:
                return
    raise AssertionError(f"{name} was not deleted within {timeout:g}s")


def observe(
    list_fn: Callable[..., Any], predicate: Callable[[Any], Any], *, seconds: float, **kwargs: Any
) -> Any:
    """Watch for ``seconds`` (an observation window, not synchronisation); return the
    first object the predicate accepts, or None."""
    try:
        return watch_until(list_fn, predicate, timeout=seconds, what="(observation)", **kwargs)
    except AssertionError:
        return None


def rolled_out(name: str) -> Callable[[client.V1Deployment], Any]:
    def match(d: client.V1Deployment) -> client.V1Deployment | None:
        s = d.status
        done = (
            d.metadata.name == name
            and (s.observed_generation or 0) >= d.metadata.generation
            and s.updated_replicas == d.spec.replicas
            and s.available_replicas == d.spec.replicas
            and s.ready_replicas == d.spec.replicas
            and not s.unavailable_replicas
            and (s.replicas or 0) == d.spec.replicas
        )
        return d if done else None

    return match


# -- image pull failure ------------------------------------------------------------


def test_missing_image_fails_to_pull_like_a_kubelet_then_the_fixed_rollout_runs(
    api: client.ApiClient, namespace: str
) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment(namespace, deployment("server", MISSING))

    pod = watch_until(
        core.list_namespaced_pod,
        pod_where(waiting("ErrImagePull")),
        namespace=namespace,
        what="ErrImagePull",
    )
    assert status_of(pod).state.waiting.message == PULL_ERROR
    assert pod.status.phase == "Pending"
    assert pod.status.pod_ip  # the sandbox exists; only the image is missing
    ready = condition(pod, "Ready")
    assert (ready.status, ready.reason, ready.message) == (
        "False",
        "ContainersNotReady",
        "containers with unready status: [app]",
    )
    assert status_of(pod).restart_count == 0 and status_of(pod).ready is False

    pod = watch_until(
        core.list_namespaced_pod,
        pod_where(waiting("ImagePullBackOff")),
        namespace=namespace,
        what="ImagePullBackOff",
    )
    # the kubelet appends the last pull error to the back-off message (not to the event)
    assert (
        status_of(pod).state.waiting.message
        == f'Back-off pulling image "{MISSING}": ErrImagePull: {PULL_ERROR}'
    )
    assert pod.status.phase == "Pending"

    events = kubelet_events(
        core,
        namespace,
        pod.metadata.name,
        [
            ("Normal", "Pulling", f'Pulling image "{MISSING}"'),
            ("Warning", "Failed", f'Failed to pull image "{MISSING}": {PULL_ERROR}'),
            ("Warning", "Failed", "Error: ErrImagePull"),
            ("Normal", "BackOff", f'Back-off pulling image "{MISSING}"'),
            ("Warning", "Failed", "Error: ImagePullBackOff"),
        ],
    )
    for event in events.values():
        assert event.involved_object.field_path == "spec.containers{app}"
        assert event.involved_object.uid == pod.metadata.uid
        assert event.source.host == pod.spec.node_name

    broken = pod.metadata.name
    apps.patch_namespaced_deployment(
        "server",
        namespace,
        {
            "spec": {
                "template": {"spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]}}
            }
        },
    )
    watch_until(
        apps.list_namespaced_deployment,
        rolled_out("server"),
        namespace=namespace,
        what="the fixed rollout",
    )
    wait_deleted(core.list_namespaced_pod, broken, namespace=namespace)
    (running,) = core.list_namespaced_pod(namespace, label_selector="app=server").items
    assert running.status.phase == "Running"
    assert status_of(running).image == "busybox:1.36"
    assert status_of(running).state.running and status_of(running).ready
    assert condition(running, "Ready").status == "True"
    kubelet_events(
        core,
        namespace,
        running.metadata.name,
        [
            (
                "Normal",
                "Pulled",
                'Container image "busybox:1.36" already present on machine '
                "and can be accessed by the pod",
            ),
            ("Normal", "Created", "Container created"),
            ("Normal", "Started", "Container started"),
        ],
    )


def test_a_missing_sidecar_image_leaves_the_other_container_running(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    create_pod(
        core,
        namespace,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="mixed"),
            spec=client.V1PodSpec(
                containers=[
                    client.V1Container(name="app", image="busybox:1.36"),
                    client.V1Container(name="proxy", image="example.com/proxy:missing"),
                ]
            ),
        ),
    )
    pod = watch_until(
        core.list_namespaced_pod,
        pod_where(
            lambda p: (
                waiting("ErrImagePull", "proxy")(p)
                and bool(status_of(p, "app") and status_of(p, "app").state.running)
            )
        ),
        namespace=namespace,
        what="proxy ErrImagePull with app running",
    )
    # a container that never ran keeps the pod Pending (kubelet getPhase)
    assert pod.status.phase == "Pending"
    assert pod.status.host_ip and pod.status.pod_ip
    assert condition(pod, "Ready").message == "containers with unready status: [proxy]"
    assert status_of(pod, "proxy").state.waiting.message == (
        "rpc error: code = NotFound desc = failed to pull and unpack image "
        '"example.com/proxy:missing": failed to resolve reference '
        '"example.com/proxy:missing": example.com/proxy:missing: not found'
    )


# -- OOMKilled, CrashLoopBackOff -----------------------------------------------------


def test_container_over_its_memory_limit_is_oom_killed_and_crash_loops_until_the_limit_is_raised(
    api: client.ApiClient, namespace: str
) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment(
        namespace,
        deployment(
            "llm",
            "vllm/vllm-openai:v0.11.0",
            memory_limit="1536Mi",
            annotations={WORKING_SET: "2Gi"},
        ),
    )

    def oom_killed(p: client.V1Pod) -> bool:
        s = status_of(p)
        return bool(s and s.state.terminated and s.state.terminated.reason == "OOMKilled")

    pod = watch_until(
        core.list_namespaced_pod, pod_where(oom_killed), namespace=namespace, what="OOMKilled"
    )
    killed = status_of(pod).state.terminated
    assert killed.exit_code == 137
    assert killed.started_at and killed.finished_at
    assert pod.status.phase == "Running"  # restartPolicy Always: it will be restarted
    assert condition(pod, "Ready").status == "False"
    name, uid = pod.metadata.name, pod.metadata.uid

    def crash_looping(min_restarts: int) -> Callable[[client.V1Pod], bool]:
        def check(p: client.V1Pod) -> bool:
            s = status_of(p)
            return bool(
                waiting("CrashLoopBackOff")(p)
                and s.restart_count >= min_restarts
                and s.last_state.terminated
                and s.last_state.terminated.reason == "OOMKilled"
            )

        return check

    # first exit restarts at once; the second is the first back-off (10 s nominal)
    pod = watch_until(
        core.list_namespaced_pod,
        pod_where(crash_looping(1)),
        namespace=namespace,
        what="CrashLoopBackOff",
    )
    s = status_of(pod)
    assert s.restart_count == 1
    assert s.last_state.terminated.exit_code == 137
    assert s.state.waiting.message == (
        f"back-off 10s restarting failed container=app pod={name}_{namespace}({uid})"
    )
    assert pod.status.phase == "Running"
    ready = condition(pod, "Ready")
    assert (ready.status, ready.reason) == ("False", "ContainersNotReady")

    # restarted again after the back-off, OOM-killed again: restartCount keeps rising
    pod = watch_until(
        core.list_namespaced_pod,
        pod_where(crash_looping(2)),
        namespace=namespace,
        timeout=60,
        what="second CrashLoopBackOff",
    )
    s = status_of(pod)
    assert s.restart_count == 2
    assert s.state.waiting.message == (
        f"back-off 20s restarting failed container=app pod={name}_{namespace}({uid})"
    )
    kubelet_events(
        core,
        namespace,
        name,
        [
            (
                "Warning",
                "BackOff",
                f"Back-off restarting failed container app in pod {name}_{namespace}({uid})",
            ),
            ("Normal", "Started", "Container started"),
        ],
    )

    # the limit raised above the working set: the new pod runs and stays up
    apps.patch_namespaced_deployment(
        "llm",
        namespace,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"name": "app", "resources": {"limits": {"memory": "4Gi"}}}]
                    }
                }
            }
        },
    )
    watch_until(
        apps.list_namespaced_deployment,
        rolled_out("llm"),
        namespace=namespace,
        what="the rollout with the raised limit",
    )
    wait_deleted(core.list_namespaced_pod, name, namespace=namespace)
    (fixed,) = core.list_namespaced_pod(namespace, label_selector="app=llm").items
    assert fixed.spec.containers[0].resources.limits["memory"] == "4Gi"
    assert status_of(fixed).state.running and status_of(fixed).restart_count == 0
    # an OOM kill comes 1 to 2 s after a start; watch the new pod for longer than that
    killed_again = observe(
        core.list_namespaced_pod,
        pod_where(
            lambda p: p.metadata.name == fixed.metadata.name and not status_of(p).state.running
        ),
        seconds=4,
        namespace=namespace,
    )
    assert killed_again is None, status_of(killed_again)


def test_restart_policy_never_leaves_an_oom_killed_pod_failed(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    create_pod(
        core,
        namespace,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="batch", annotations={WORKING_SET: "1.5Gi"}),
            spec=client.V1PodSpec(
                restart_policy="Never",
                containers=[
                    client.V1Container(
                        name="app",
                        image="busybox:1.36",
                        resources=client.V1ResourceRequirements(limits={"memory": "1Gi"}),
                    )
                ],
            ),
        ),
    )
    pod = watch_until(
        core.list_namespaced_pod,
        pod_where(lambda p: p.status.phase == "Failed"),
        namespace=namespace,
        what="pod Failed",
    )
    terminated = status_of(pod).state.terminated
    assert (terminated.reason, terminated.exit_code) == ("OOMKilled", 137)
    assert status_of(pod).restart_count == 0
    assert condition(pod, "Ready").reason == "PodFailed"


# -- mount failure -------------------------------------------------------------------


def nfs_pod(name: str, server: str) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="app",
                    image="vllm/vllm-openai:v0.11.0",
                    volume_mounts=[client.V1VolumeMount(name="weights", mount_path="/models")],
                )
            ],
            volumes=[
                client.V1Volume(
                    name="weights",
                    nfs=client.V1NFSVolumeSource(server=server, path="/exports/models"),
                )
            ],
        ),
    )


def test_unreachable_nfs_server_fails_the_mount_and_the_pod_stays_container_creating(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    pod = create_pod(core, namespace, nfs_pod("reader", "nfs.gone.example"))
    create_pod(core, namespace, nfs_pod("control", "nfs.storage.svc.cluster.local"))

    target = f"/var/lib/kubelet/pods/{pod.metadata.uid}/volumes/kubernetes.io~nfs/weights"
    message = (
        'MountVolume.SetUp failed for volume "weights" : mount failed: exit status 32\n'
        "Mounting command: mount\n"
        f"Mounting arguments: -t nfs nfs.gone.example:/exports/models {target}\n"
        "Output: mount.nfs: Connection timed out\n"
    )
    events = kubelet_events(core, namespace, "reader", [("Warning", "FailedMount", message)])
    assert next(iter(events.values())).involved_object.field_path is None

    pod = core.read_namespaced_pod("reader", namespace)
    assert pod.status.phase == "Pending"
    assert not pod.status.pod_ip  # no sandbox before the volumes are mounted
    assert status_of(pod).state.waiting.reason == "ContainerCreating"
    assert condition(pod, "PodReadyToStartContainers").status == "False"
    assert condition(pod, "Ready").message == "containers with unready status: [app]"

    # the same pod with a reachable server runs
    watch_until(
        core.list_namespaced_pod,
        pod_where(lambda p: p.metadata.name == "control" and p.status.phase == "Running"),
        namespace=namespace,
        what="control pod Running",
    )
    assert core.read_namespaced_pod("reader", namespace).status.phase == "Pending"
