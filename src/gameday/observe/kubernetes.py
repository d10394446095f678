"""Watches on the workload's pods, its namespace's events, Deployments and the
EndpointSlices of its Services, feeding the event bus.

resourceVersion-based: one list to learn where to start, then watches that resume from
the last version seen (a 410 Gone relists; what vanished meanwhile is reported deleted).
Nothing polls. Each watch asks the API server to end it after a few seconds, so stopping
never waits long; it then resumes from where it was. A watch the harness's account may
not make (403) says so once and tries again every few seconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from gameday.core.events import (
    DeploymentObserved,
    EndpointSliceObserved,
    Event,
    EventBus,
    KubeEvent,
    Note,
    PodObserved,
)

__all__ = ["ClusterWatch", "deployment_observed", "endpoint_slice_observed", "pod_observed"]

log = logging.getLogger(__name__)

WATCH_SECONDS = 3
RETRY = 1.0
FORBIDDEN_RETRY = 10.0


def _containers(pod: Any) -> tuple[tuple[str, str, str, str, int | None, int], ...]:
    found = []
    for status in pod.status.container_statuses or []:
        state, reason, message, code = "waiting", "", "", None
        if status.state.running is not None:
            state = "running"
            last = status.last_state.terminated if status.last_state else None
            if last is not None:
                reason, message, code = last.reason or "", last.message or "", last.exit_code
        elif status.state.terminated is not None:
            term = status.state.terminated
            state, reason, message, code = (
                "terminated",
                term.reason or "",
                term.message or "",
                term.exit_code,
            )
        elif status.state.waiting is not None:
            reason = status.state.waiting.reason or ""
            message = status.state.waiting.message or ""
        found.append((status.name, state, reason, message, code, status.restart_count or 0))
    return tuple(found)


def pod_observed(pod: Any, scenario: str, deleted: bool = False) -> PodObserved:
    conditions = {c.type: c for c in pod.status.conditions or []}
    scheduled = conditions.get("PodScheduled")
    unschedulable = ""
    if scheduled is not None and scheduled.status == "False":
        unschedulable = scheduled.message or scheduled.reason or ""
    ready = conditions.get("Ready")
    return PodObserved(
        scenario=scenario,
        pod=pod.metadata.name,
        namespace=pod.metadata.namespace,
        phase=pod.status.phase or "",
        ready=ready is not None and ready.status == "True",
        containers=_containers(pod),
        unschedulable=unschedulable,
        conditions=tuple((c.type, c.status, c.reason or "") for c in (pod.status.conditions or [])),
        deleted=deleted,
        resource_version=pod.metadata.resource_version or "",
    )


def deployment_observed(
    deployment: Any, scenario: str, workload: str, deleted: bool = False
) -> DeploymentObserved:
    status = deployment.status
    return DeploymentObserved(
        scenario=scenario,
        deployment=deployment.metadata.name,
        namespace=deployment.metadata.namespace,
        workload=deployment.metadata.name == workload,
        generation=deployment.metadata.generation or 0,
        observed_generation=(status and status.observed_generation) or 0,
        # spec.replicas is defaulted to 1 by the API server; None only in a partial object
        replicas=deployment.spec.replicas if deployment.spec.replicas is not None else 1,
        current=(status and status.replicas) or 0,
        updated=(status and status.updated_replicas) or 0,
        ready=(status and status.ready_replicas) or 0,
        available=(status and status.available_replicas) or 0,
        conditions=tuple(
            (c.type, c.status, c.reason or "", c.message or "")
            for c in (status and status.conditions) or []
        ),
        deleted=deleted,
        resource_version=deployment.metadata.resource_version or "",
    )


SERVICE_NAME = "kubernetes.io/service-name"
"""The label the endpointslice controller puts on each slice: the Service it serves."""


def endpoint_slice_observed(
    endpoint_slice: Any, scenario: str, deleted: bool = False
) -> EndpointSliceObserved:
    ready: list[str] = []
    not_ready: list[str] = []
    for endpoint in endpoint_slice.endpoints or []:
        conditions = endpoint.conditions
        # an unset ready condition means ready (discovery.k8s.io/v1 EndpointConditions)
        is_ready = conditions is None or conditions.ready is None or conditions.ready
        (ready if is_ready else not_ready).extend(endpoint.addresses or [])
    return EndpointSliceObserved(
        scenario=scenario,
        service=(endpoint_slice.metadata.labels or {}).get(SERVICE_NAME, ""),
        slice=endpoint_slice.metadata.name,
        namespace=endpoint_slice.metadata.namespace,
        ready=tuple(sorted(ready)),
        not_ready=tuple(sorted(not_ready)),
        deleted=deleted,
        resource_version=endpoint_slice.metadata.resource_version or "",
    )


def kube_event(event: Any, scenario: str) -> KubeEvent:
    recorded = event.last_timestamp or event.event_time or event.first_timestamp
    return KubeEvent(
        scenario=scenario,
        reason=event.reason or "",
        message=event.message or "",
        type=event.type or "",
        involved_kind=event.involved_object.kind or "",
        involved_name=event.involved_object.name or "",
        count=event.count or 1,
        recorded=recorded.isoformat() if recorded is not None else "",
        resource_version=event.metadata.resource_version or "",
        reporter=event.reporting_component
        or (event.source.component if event.source is not None else "")
        or "",
    )


def _version(item: Any) -> str | None:
    """The resourceVersion of a watched object, typed or (a bookmark) a plain dict."""
    if isinstance(item, dict):
        version = item.get("metadata", {}).get("resourceVersion")
        return str(version) if version else None
    metadata = getattr(item, "metadata", None)
    return getattr(metadata, "resource_version", None)


class ClusterWatch:
    """Pods matching ``selector``, every Event and Deployment of ``namespace`` and the
    EndpointSlices of its Services, as events on the bus. ``workload``: the name of the
    target's Deployment, which its DeploymentObserved events say they are."""

    def __init__(
        self,
        api: client.ApiClient,
        bus: EventBus,
        scenario: str,
        namespace: str,
        selector: str,
        *,
        workload: str = "",
    ) -> None:
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.discovery = client.DiscoveryV1Api(api)
        self.bus = bus
        self.scenario = scenario
        self.namespace = namespace
        self.selector = selector
        self.workload = workload
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._pods, name="watch-pods", daemon=True),
            threading.Thread(target=self._events, name="watch-events", daemon=True),
            threading.Thread(target=self._deployments, name="watch-deployments", daemon=True),
            threading.Thread(target=self._slices, name="watch-endpointslices", daemon=True),
        ]
        self.started = threading.Event()
        self._ready = 0
        self._lock = threading.Lock()

    def start(self, timeout: float = 30.0) -> None:
        for thread in self._threads:
            thread.start()
        self.started.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(WATCH_SECONDS + 5)

    def _listed(self) -> None:
        with self._lock:
            self._ready += 1
            if self._ready == len(self._threads):
                self.started.set()

    def _pods(self) -> None:
        def emit(kind: str, pod: Any) -> Event:
            return pod_observed(pod, self.scenario, deleted=kind == "DELETED")

        self._follow(
            self.core.list_namespaced_pod,
            emit,
            replay_listing=True,
            namespace=self.namespace,
            label_selector=self.selector,
        )

    def _events(self) -> None:
        # events from before the watch began are history, not observations of this run
        self._follow(
            self.core.list_namespaced_event,
            lambda kind, event: kube_event(event, self.scenario),
            replay_listing=False,
            namespace=self.namespace,
        )

    def _deployments(self) -> None:
        def emit(kind: str, deployment: Any) -> Event:
            return deployment_observed(
                deployment, self.scenario, self.workload, deleted=kind == "DELETED"
            )

        self._follow(
            self.apps.list_namespaced_deployment,
            emit,
            replay_listing=True,
            namespace=self.namespace,
        )

    def _slices(self) -> None:
        def emit(kind: str, endpoint_slice: Any) -> Event:
            return endpoint_slice_observed(endpoint_slice, self.scenario, deleted=kind == "DELETED")

        # only the slices of Services (the label); other controllers' slices have no Service
        self._follow(
            self.discovery.list_namespaced_endpoint_slice,
            emit,
            replay_listing=True,
            namespace=self.namespace,
            label_selector=SERVICE_NAME,
        )

    def _follow(
        self,
        list_fn: Callable[..., Any],
        to_event: Callable[[str, Any], Event],
        *,
        replay_listing: bool,
        **kwargs: Any,
    ) -> None:
        version: str | None = None
        first = True
        # the last state of each object seen, so that a relist can tell what went away
        known: dict[str, Any] = {}
        forbidden = False
        while not self._stop.is_set():
            try:
                if version is None:
                    listing = list_fn(**kwargs)
                    version = listing.metadata.resource_version
                    forbidden = False
                    if replay_listing:  # events are never replayed: old ones are history
                        listed = {item.metadata.name: item for item in listing.items}
                        for name in sorted(known.keys() - listed.keys()):
                            self.bus.emit(to_event("DELETED", known.pop(name)))
                        for name, item in listed.items():
                            known[name] = item
                            self.bus.emit(to_event("ADDED", item))
                    if first:
                        first = False
                        self._listed()
                stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                    list_fn,
                    resource_version=version,
                    timeout_seconds=WATCH_SECONDS,
                    allow_watch_bookmarks=True,
                    **kwargs,
                )
                for change in stream:
                    item = change["object"]
                    if change["type"] == "ERROR":  # a Status, as a dict: 410 Gone, mostly
                        code = item.get("code") if isinstance(item, dict) else None
                        if code != 410:
                            self._trouble(f"watch of {list_fn.__name__} ended: {item}")
                        version = None
                        break
                    if change["type"] == "BOOKMARK":  # only a newer resourceVersion
                        version = _version(item) or version
                        continue
                    version = item.metadata.resource_version
                    if replay_listing:
                        if change["type"] == "DELETED":
                            known.pop(item.metadata.name, None)
                        else:
                            known[item.metadata.name] = item
                    self.bus.emit(to_event(change["type"], item))
            except ApiException as error:
                if error.status == 410:  # too old: list again from now
                    version = None
                    continue
                if error.status == 403:
                    # said once, not every second; the start need not wait for it, and
                    # the watch tries again now and then (a fault may be what forbids it)
                    if not forbidden:
                        forbidden = True
                        self._trouble(
                            f"watch of {list_fn.__name__} is forbidden to this account; "
                            "what it would observe cannot be expected until it is allowed",
                            wait=0,
                        )
                    if first:
                        first = False
                        self._listed()
                    self._stop.wait(FORBIDDEN_RETRY)
                    continue
                self._trouble(f"watch of {list_fn.__name__} failed: {error.status} {error.reason}")
            except (HTTPError, OSError) as error:
                self._trouble(f"watch of {list_fn.__name__} lost its connection: {error}")
            except Exception as error:  # a watch must outlive what it does not expect
                log.debug("watch of %s", list_fn.__name__, exc_info=True)
                self._trouble(
                    f"watch of {list_fn.__name__} failed: {type(error).__name__}: {error}"
                )

    def _trouble(self, message: str, wait: float = RETRY) -> None:
        self.bus.emit(Note(scenario=self.scenario, level="warning", message=message))
        self._stop.wait(wait)
