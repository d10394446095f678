"""Real control-plane behaviour on the kwok tier: the scheduler, the PV controller,
quota admission, RBAC, the deployment controller, EndpointSlices, kube-state-metrics
and the Kubernetes alert rules in a real Prometheus. Pod status comes from the stages
(simulated kubelets); everything else here is the real Kubernetes code."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gameday.testenv import KwokEnvInfo
from tests.kwok.conftest import poll_until, watch_until

pytestmark = pytest.mark.kwok


def container(image: str = "busybox:1.36", **resources: dict[str, str]) -> client.V1Container:
    return client.V1Container(
        name="app",
        image=image,
        resources=client.V1ResourceRequirements(**resources) if resources else None,
    )


def pod(name: str, *containers: client.V1Container, **spec: Any) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": name}),
        spec=client.V1PodSpec(containers=list(containers), **spec),
    )


def event_for(name: str, reason: str) -> Any:
    def match(event: client.CoreV1Event) -> client.CoreV1Event | None:
        if event.involved_object.name == name and event.reason == reason:
            return event
        return None

    return match


def test_nodes_advertise_gpus(api: client.ApiClient, kwok: KwokEnvInfo) -> None:
    nodes = client.CoreV1Api(api).list_node(label_selector="nvidia.com/gpu.present=true").items
    assert len(nodes) == 2
    for node in nodes:
        assert node.status.allocatable["nvidia.com/gpu"] == "8"
        assert node.metadata.labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
        ready = {c.type: c.status for c in node.status.conditions}["Ready"]
        assert ready == "True"


def test_pod_runs_on_a_node(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, pod("web", container()))
    running = watch_until(
        core.list_namespaced_pod,
        lambda p: p if p.status.phase == "Running" else None,
        namespace=namespace,
        what="pod web Running",
    )
    assert running.spec.node_name
    assert running.status.container_statuses[0].ready is True


def test_pvc_with_a_missing_storage_class_stays_pending(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_persistent_volume_claim(
        namespace,
        client.V1PersistentVolumeClaim(
            metadata=client.V1ObjectMeta(name="weights"),
            spec=client.V1PersistentVolumeClaimSpec(
                storage_class_name="fast-nvme",
                access_modes=["ReadWriteOnce"],
                resources=client.V1VolumeResourceRequirements(requests={"storage": "100Gi"}),
            ),
        ),
    )
    event = watch_until(
        core.list_namespaced_event,
        event_for("weights", "ProvisioningFailed"),
        namespace=namespace,
        what="ProvisioningFailed event",
    )
    assert 'storageclass.storage.k8s.io "fast-nvme" not found' in event.message
    claim = core.read_namespaced_persistent_volume_claim("weights", namespace)
    assert claim.status.phase == "Pending"


def test_more_gpus_than_any_node_has_is_unschedulable(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    gpus = {"nvidia.com/gpu": "16"}
    core.create_namespaced_pod(namespace, pod("big", container(limits=gpus, requests=gpus)))
    event = watch_until(
        core.list_namespaced_event,
        event_for("big", "FailedScheduling"),
        namespace=namespace,
        what="FailedScheduling event",
    )
    assert "Insufficient nvidia.com/gpu" in event.message
    scheduled = core.read_namespaced_pod("big", namespace).status.conditions[0]
    assert (scheduled.type, scheduled.status, scheduled.reason) == (
        "PodScheduled",
        "False",
        "Unschedulable",
    )


def test_gpu_quota_rejects_a_pod(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_resource_quota(
        namespace,
        client.V1ResourceQuota(
            metadata=client.V1ObjectMeta(name="gpus"),
            spec=client.V1ResourceQuotaSpec(hard={"requests.nvidia.com/gpu": "1"}),
        ),
    )
    # the quota controller must have computed usage before admission enforces it
    watch_until(
        core.list_namespaced_resource_quota,
        lambda q: q if q.status and q.status.hard else None,
        namespace=namespace,
        what="quota status",
    )
    gpus = {"nvidia.com/gpu": "2"}
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_pod(namespace, pod("greedy", container(limits=gpus, requests=gpus)))
    assert raised.value.status == 403
    message = json.loads(raised.value.body)["message"]
    assert "exceeded quota: gpus, requested: requests.nvidia.com/gpu=2" in message


def test_service_account_without_a_role_is_forbidden(
    api: client.ApiClient, namespace: str, kwok: KwokEnvInfo
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="runner"))
    )
    token = core.create_namespaced_service_account_token(
        "runner", namespace, client.AuthenticationV1TokenRequest(spec={"expirationSeconds": 600})
    ).status.token
    configuration = client.Configuration()
    configuration.host = api.configuration.host
    configuration.ssl_ca_cert = api.configuration.ssl_ca_cert
    configuration.verify_ssl = api.configuration.verify_ssl
    configuration.api_key = {"authorization": f"Bearer {token}"}
    as_runner = client.CoreV1Api(client.ApiClient(configuration))
    with pytest.raises(ApiException) as raised:
        as_runner.list_namespaced_pod(namespace)
    assert raised.value.status == 403
    message = json.loads(raised.value.body)["message"]
    assert message == (
        f'pods is forbidden: User "system:serviceaccount:{namespace}:runner" cannot list '
        f'resource "pods" in API group "" in the namespace "{namespace}"'
    )


def test_missing_image_backs_off_and_the_rollout_stalls(
    api: client.ApiClient, namespace: str
) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    labels = {"app": "server"}
    apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="server"),
            spec=client.V1DeploymentSpec(
                replicas=1,
                progress_deadline_seconds=10,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(
                        containers=[container("vllm/vllm-openai:v9.9.9-does-not-exist")]
                    ),
                ),
            ),
        ),
    )

    def waiting(reason: str) -> Any:
        def match(p: client.V1Pod) -> client.V1ContainerStateWaiting | None:
            for status in p.status.container_statuses or []:
                if status.state.waiting and status.state.waiting.reason == reason:
                    return status.state.waiting
            return None

        return match

    err = watch_until(
        core.list_namespaced_pod, waiting("ErrImagePull"), namespace=namespace, what="ErrImagePull"
    )
    assert "vllm/vllm-openai:v9.9.9-does-not-exist" in err.message
    backoff = watch_until(
        core.list_namespaced_pod,
        waiting("ImagePullBackOff"),
        namespace=namespace,
        what="ImagePullBackOff",
    )
    # kubelets since 1.30 append the last pull error to the back-off message
    assert backoff.message.startswith(
        'Back-off pulling image "vllm/vllm-openai:v9.9.9-does-not-exist": ErrImagePull: '
    )
    failed = watch_until(
        core.list_namespaced_event,
        lambda e: e if e.reason == "Failed" and "ErrImagePull" in e.message else None,
        namespace=namespace,
        what="kubelet Failed event",
    )
    assert failed.source.component == "kubelet" or failed.reporting_component == "kubelet"
    stalled = watch_until(
        apps.list_namespaced_deployment,
        lambda d: next(
            (
                c
                for c in (d.status.conditions or [])
                if c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded"
            ),
            None,
        ),
        namespace=namespace,
        timeout=90,
        what="ProgressDeadlineExceeded",
    )
    assert stalled.status == "False"
    assert apps.read_namespaced_deployment("server", namespace).status.available_replicas is None


def _alert_state(prometheus: str, alert: str) -> str | None:
    response = httpx.get(f"{prometheus}/api/v1/alerts", timeout=5)
    states = [
        a["state"] for a in response.json()["data"]["alerts"] if a["labels"]["alertname"] == alert
    ]
    return states[0] if states else None


def test_coredns_scaled_to_zero_empties_endpoints_and_fires_the_alert(
    api: client.ApiClient, kwok: KwokEnvInfo
) -> None:
    apps = client.AppsV1Api(api)
    discovery = client.DiscoveryV1Api(api)

    def ready_addresses(slice_: client.V1EndpointSlice) -> int:
        return sum(
            len(e.addresses) for e in slice_.endpoints or [] if e.conditions and e.conditions.ready
        )

    selector = "kubernetes.io/service-name=kube-dns"
    watch_until(
        discovery.list_namespaced_endpoint_slice,
        lambda s: s if ready_addresses(s) == 2 else None,
        namespace="kube-system",
        label_selector=selector,
        what="CoreDNS endpoints ready",
    )
    assert _alert_state(kwok.prometheus, "CoreDNSDown") is None
    apps.patch_namespaced_deployment_scale("coredns", "kube-system", {"spec": {"replicas": 0}})
    try:
        watch_until(
            discovery.list_namespaced_endpoint_slice,
            lambda s: s if ready_addresses(s) == 0 else None,
            namespace="kube-system",
            label_selector=selector,
            what="CoreDNS endpoints gone",
        )
        poll_until(
            lambda: _alert_state(kwok.prometheus, "CoreDNSDown") == "firing" or None,
            timeout=90,
            what="CoreDNSDown firing",
        )
    finally:
        apps.patch_namespaced_deployment_scale("coredns", "kube-system", {"spec": {"replicas": 2}})
    poll_until(
        lambda: _alert_state(kwok.prometheus, "CoreDNSDown") is None or None,
        timeout=90,
        what="CoreDNSDown resolved",
    )
