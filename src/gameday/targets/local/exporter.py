"""The supervisor's view of the server, as kube-state-metrics series.

Exporting the server's container state under kube-state-metrics' own names
(``kube_pod_container_status_restarts_total``, ``..._waiting_reason`` and so
on, scraped as ``job="kube-state-metrics"``) lets one set of alert rules work on
Kubernetes and in the local tier alike. The series are produced by the
harness's supervisor, not by a kubelet; reports say so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gameday.targets.local.supervisor import ContainerState

__all__ = ["ContainerStateCollector", "MetricsExporter"]

WAITING_REASONS = ("ContainerCreating", "CrashLoopBackOff")
TERMINATED_REASONS = ("Completed", "Error", "OOMKilled")


class ContainerStateCollector(Collector):
    def __init__(
        self, namespace: str, pod: str, container: str, state: Callable[[], ContainerState]
    ) -> None:
        self.labels = {"namespace": namespace, "pod": pod, "container": container, "uid": pod}
        self.state = state

    def collect(self) -> Iterator[Metric]:
        state = self.state()
        names = list(self.labels)
        values = list(self.labels.values())

        def gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, help_text, labels=names)
            family.add_metric(values, value)
            return family

        restarts = CounterMetricFamily(
            "kube_pod_container_status_restarts",
            "The number of container restarts per container.",
            labels=names,
        )
        restarts.add_metric(values, state.restarts)
        yield restarts
        yield gauge(
            "kube_pod_container_status_running",
            "Describes whether the container is currently in running state.",
            1.0 if state.running else 0.0,
        )
        yield gauge(
            "kube_pod_container_status_ready",
            "Describes whether the containers readiness check succeeded.",
            1.0 if state.ready else 0.0,
        )
        yield gauge(
            "kube_pod_container_status_waiting",
            "Describes whether the container is currently in waiting state.",
            1.0 if state.waiting_reason else 0.0,
        )
        waiting = GaugeMetricFamily(
            "kube_pod_container_status_waiting_reason",
            "Describes the reason the container is currently in waiting state.",
            labels=[*names, "reason"],
        )
        for reason in WAITING_REASONS:
            waiting.add_metric([*values, reason], 1.0 if state.waiting_reason == reason else 0.0)
        yield waiting
        terminated = GaugeMetricFamily(
            "kube_pod_container_status_last_terminated_reason",
            "Describes the last reason the container was in terminated state.",
            labels=[*names, "reason"],
        )
        if state.last_terminated_reason is not None:
            terminated.add_metric([*values, state.last_terminated_reason], 1.0)
        yield terminated
        if state.last_exit_code is not None:
            yield gauge(
                "kube_pod_container_status_last_terminated_exitcode",
                "Describes the exit code for the last container in terminated state.",
                float(state.last_exit_code),
            )


class MetricsExporter:
    """A /metrics endpoint on loopback for series the harness itself produces."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def add(self, collector: Collector) -> None:
        self.registry.register(collector)

    def start(self, port: int) -> None:
        self._server, self._thread = start_http_server(port, "127.0.0.1", registry=self.registry)
        self.port = port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
