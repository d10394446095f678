"""Port-forwards through the API server: how the harness reaches a serving endpoint,
Prometheus or Alertmanager inside a cluster when no URL is given.

A :class:`PortForward` listens on ``127.0.0.1:<free port>`` and relays each connection
it accepts to a pod through the API server's ``pods/portforward`` subresource, with the
official client's :func:`kubernetes.stream.portforward` (one websocket per connection).
The pod is chosen when the connection is accepted, among the pods that are ready at
that moment (a Service's selector, or the workload's), in turn, as a Service spreads
connections. A pod that is deleted, restarting or not ready is never chosen, so a fault
that deletes or restarts pods does not pin the forward to a dead one: a connection
lives and dies with its pod, the next one goes to a pod that is ready now.

Threads, as the rest of the harness: one accepts, one relays each connection (and the
client runs one more per websocket). :meth:`PortForward.stop` closes the listener and
every connection and joins them all.

The kwok tier: its pods are fake; KWOK's PortForward and ClusterPortForward objects
relay a pod's port to a real address (the simulator on 127.0.0.1), and the API
server reaches kwok's kubelet server as it would a kubelet. Unlike a kubelet with
containerd, which ends the forward within a second of the server closing its end,
kwok keeps it open until the client closes it: a request sent on a keep-alive
connection the server already dropped as idle (5 s for uvicorn) gets no answer, and
the client's timeout ends it. Load that keeps its connections busy is not affected.
Nor does deleting a fake pod cut the connections relayed through it.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import re
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward
from urllib3.exceptions import HTTPError

from gameday.core.errors import ComponentUnreachable, UsageError
from gameday.core.events import ComponentReady, EventBus, Note
from gameday.core.processes import free_port
from gameday.targets.base import Endpoints
from gameday.targets.kubernetes.spec import (
    KubernetesTargetSpec,
    MonitoringServiceSpec,
    PortRef,
)

__all__ = [
    "PodPort",
    "PortForward",
    "PortForwards",
    "container_port",
    "is_ready",
    "pods_to_try",
    "service_pods",
    "workload_pods",
]

log = logging.getLogger(__name__)

JOIN_TIMEOUT = 10.0
"""How long stop() waits for each thread (one stuck in a handshake cannot be woken)."""
CHUNK = 64 * 1024
_HANDSHAKE = re.compile(r"Handshake status (\d+)")


@dataclass(frozen=True)
class PodPort:
    """Where a forward's connections go: a port of the ready pods a selector matches."""

    namespace: str
    selector: str
    """A label selector (``key=value,...``)."""
    port: int | str
    """The pods' port: a number, or the name of one of their containers' ports."""
    what: str
    """In words, for messages: ``service monitoring/prometheus-operated port web``."""


# -- choosing a pod (pure) -----------------------------------------------------------


def is_ready(pod: Any) -> bool:
    """Running on a node, not being deleted, and its Ready condition True."""
    if pod.metadata.deletion_timestamp is not None or not pod.spec.node_name:
        return False
    status = pod.status
    if status is None or status.phase != "Running":
        return False
    return any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])


def container_port(pod: Any, port: int | str) -> int | None:
    """``port`` on this pod: a number as it is; a name looked up among its containers'
    ports (as a Service's named targetPort is); None when no container has it."""
    if isinstance(port, int):
        return port
    for container in pod.spec.containers or []:
        for declared in container.ports or []:
            if declared.name == port:
                return int(declared.container_port)
    return None


def pods_to_try(pods: Iterable[Any], port: int | str, turn: int) -> list[tuple[Any, int]]:
    """The pods to try for a connection, with their port: the ready ones that have
    ``port``, ordered by name and rotated by ``turn`` (connections take turns)."""
    usable = sorted(
        (
            (pod, number)
            for pod in pods
            if is_ready(pod) and (number := container_port(pod, port)) is not None
        ),
        key=lambda pair: str(pair[0].metadata.name),
    )
    if not usable:
        return []
    start = turn % len(usable)
    return usable[start:] + usable[:start]


# -- what to forward to ------------------------------------------------------------


def selector_of(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def service_port(service: Any, port: PortRef | None) -> int | str:
    """The pod port a Service's ``port`` (number or name; None: its only port) targets."""
    name = f"service {service.metadata.namespace}/{service.metadata.name}"
    ports = service.spec.ports or []
    if port is None:
        if len(ports) != 1:
            listed = ", ".join(str(p.name or p.port) for p in ports) or "none"
            raise UsageError(f"{name} has several ports ({listed}); name one in port")
        chosen = ports[0]
    else:
        found = [p for p in ports if port in (p.port, p.name)]
        if not found:
            listed = ", ".join(str(p.name or p.port) for p in ports) or "none"
            raise UsageError(f"{name} has no port {port} (its ports: {listed})")
        chosen = found[0]
    target = chosen.target_port if chosen.target_port is not None else chosen.port
    # the API returns an IntOrString as int or str; a numeric string is a number
    return int(target) if isinstance(target, int) or str(target).isdigit() else str(target)


def service_pods(api: client.ApiClient, namespace: str, name: str, port: PortRef | None) -> PodPort:
    """The ready pods behind Service ``namespace/name``, at the pod port its ``port``
    targets. Reads the Service (services get)."""
    try:
        service = client.CoreV1Api(api).read_namespaced_service(name, namespace)
    except ApiException as error:
        if error.status == 404:
            raise UsageError(f"service {namespace}/{name} not found") from None
        raise ComponentUnreachable(
            f"cannot read service {namespace}/{name}: {error.status} {error.reason}"
        ) from None
    selector = service.spec.selector if service.spec is not None else None
    if not selector:
        raise UsageError(
            f"service {namespace}/{name} has no selector: the harness forwards to the pods "
            "a selector picks"
        )
    target = service_port(service, port)
    return PodPort(
        namespace=namespace,
        selector=selector_of(selector),
        port=target,
        what=f"service {namespace}/{name} port {port if port is not None else target}",
    )


def workload_pods(deployment: Any, container: str | None, port: PortRef | None) -> PodPort:
    """The ready pods of the workload's Deployment at ``port`` (number or container port
    name; None: the serving container's first declared port)."""
    namespace, name = deployment.metadata.namespace, deployment.metadata.name
    if port is None:
        containers = deployment.spec.template.spec.containers or []
        serving = next((c for c in containers if c.name == container), None) if container else None
        serving = serving or (containers[0] if containers else None)
        declared = (serving.ports or []) if serving is not None else []
        if not declared:
            raise UsageError(
                f"deployment {namespace}/{name} declares no container port; give serve.port"
            )
        port = int(declared[0].container_port)
    return PodPort(
        namespace=namespace,
        selector=selector_of(deployment.spec.selector.match_labels or {}),
        port=port,
        what=f"deployment {namespace}/{name} port {port}",
    )


# -- the forward -----------------------------------------------------------------------


def _handshake_status(error: ApiException) -> str:
    """What a failed websocket handshake said, without the response's headers and body."""
    reason = str(error.reason or "")
    if match := _HANDSHAKE.search(reason):
        return f"HTTP {match.group(1)}"
    return reason.split(" -+-+- ")[0][:200]


def _proxy_thread(forward: Any) -> threading.Thread | None:
    """The thread kubernetes.stream started to pump ``forward``'s websocket. The client
    keeps no handle on it; it is the one running ``forward._proxy``, so stop() can join
    it rather than leave it behind."""
    for thread in threading.enumerate():
        if getattr(thread, "_target", None) == forward._proxy:
            return thread
    return None


class PortForward:
    """``127.0.0.1:<port>``, relayed connection by connection to the ready pods of
    ``target`` (see the module's docstring)."""

    def __init__(
        self,
        api: client.ApiClient,
        target: PodPort,
        note: Callable[[str, str], None],
    ) -> None:
        """``note(level, message)``: how it says what goes wrong with a connection."""
        self.core = client.CoreV1Api(api)
        self.target = target
        self._note = note
        self._last_trouble: str | None = None
        self.port = 0
        self.last_pod: str | None = None
        """The pod the latest connection went to."""
        self._turns = itertools.count()
        self._listener: socket.socket | None = None
        self._wake_read, self._wake_write = socket.socketpair()
        self._lock = threading.Lock()
        self._stopping = False
        self._accepting: threading.Thread | None = None
        self._relays: set[threading.Thread] = set()
        self._clients: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Listen and accept; returns the local URL."""
        for attempt in itertools.count(1):
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                port = free_port()
                listener.bind(("127.0.0.1", port))
            except OSError as error:
                listener.close()
                # free_port's port taken in the meantime: take another
                if error.errno == errno.EADDRINUSE and attempt < 5:
                    continue
                raise ComponentUnreachable(f"port-forward cannot listen: {error}") from None
            break
        listener.listen(64)
        self._listener, self.port = listener, port
        self._accepting = threading.Thread(
            target=self._accept, name=f"port-forward-{port}", daemon=True
        )
        self._accepting.start()
        return self.url

    def stop(self) -> None:
        """Close the listener and every connection; join every thread it started."""
        with self._lock:
            self._stopping = True
            clients = list(self._clients)
        with contextlib.suppress(OSError):
            self._wake_write.close()  # wakes the accept loop and every relay
        for conn in clients:  # a relay blocked sending to its client wakes up too
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        threads = [self._accepting] if self._accepting is not None else []
        with self._lock:
            threads += list(self._relays)
        deadline = time.monotonic() + JOIN_TIMEOUT
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._listener is not None:
            self._listener.close()
        self._wake_read.close()
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            log.warning("port-forward %s: threads still running: %s", self.url, stuck)

    # -- accepting -------------------------------------------------------------------

    def _accept(self) -> None:
        assert self._listener is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_read, selectors.EVENT_READ)
            while True:
                events = selector.select()
                if any(key.fileobj is self._wake_read for key, _ in events):
                    return
                try:
                    conn, _ = self._listener.accept()
                except OSError:
                    continue  # the client went away before we took it
                with self._lock:  # started under the lock: stop() never joins an unstarted one
                    if self._stopping:
                        conn.close()
                        return
                    relay = threading.Thread(
                        target=self._relay,
                        args=(conn,),
                        name=f"port-forward-{self.port}-relay",
                        daemon=True,
                    )
                    self._clients.add(conn)
                    self._relays.add(relay)
                    relay.start()

    # -- relaying one connection -----------------------------------------------------

    def _relay(self, conn: socket.socket) -> None:
        forward: Any = None
        try:
            connected = self._connect()
            if connected is None:
                return
            forward, port = connected
            self._pump(conn, forward.socket(port))
            error = forward.error(port)
            if error:  # what the kubelet said: the pod refused the connection, say
                self._trouble(error.strip())
        except Exception as error:  # a connection's trouble must not outlive it
            log.debug("port-forward relay", exc_info=True)
            self._trouble(f"{type(error).__name__}: {error}")
        finally:
            with contextlib.suppress(OSError):
                conn.close()
            if forward is not None:
                proxy = _proxy_thread(forward)
                forward.close()  # its proxy thread sees the EOF and closes the websocket
                if proxy is not None:
                    proxy.join(JOIN_TIMEOUT)
            with self._lock:
                self._clients.discard(conn)
                self._relays.discard(threading.current_thread())

    def _connect(self) -> tuple[Any, int] | None:
        """A websocket to a ready pod's port, trying each ready pod once."""
        target = self.target
        try:
            pods = self.core.list_namespaced_pod(
                target.namespace, label_selector=target.selector
            ).items
        except (ApiException, HTTPError, OSError) as error:
            said = getattr(error, "status", None) or error
            self._trouble(f"cannot list pods: {said}")
            return None
        candidates = pods_to_try(pods, target.port, next(self._turns))
        if not candidates:
            self._trouble("no ready pod")
            return None
        failures = []
        for pod, port in candidates:
            if self._stopping:
                return None
            name = pod.metadata.name
            try:
                forward = self._open(name, port)
            except ApiException as error:
                said = _handshake_status(error)
                if said == "HTTP 403":
                    self._trouble(
                        f"pods/portforward is forbidden to this account in namespace "
                        f"{target.namespace}",
                        level="error",
                    )
                    return None
                failures.append(f"{name}: {said}")
                continue
            self.last_pod = name
            self._last_trouble = None
            return forward, port
        self._trouble("; ".join(failures))
        return None

    def _trouble(self, message: str, level: str = "warning") -> None:
        """Say what went wrong with a connection, once while it stays the same: load
        opens many connections, and a fault may leave no pod ready for a while."""
        if message != self._last_trouble:
            self._last_trouble = message
            self._note(level, f"port-forward to {self.target.what}: {message}")

    def _open(self, pod: str, port: int) -> Any:
        """The client's PortForward to ``pod``'s ``port`` (a websocket, handshake done).

        kubernetes.stream swaps the ApiClient's call_api for a websocket call while it
        opens one, so any other request on that client meanwhile (a watch, a listing,
        another connection's handshake) would go astray: each handshake gets a client of
        its own, sharing the configuration (credentials included)."""
        with client.ApiClient(self.core.api_client.configuration) as own:
            return portforward(
                client.CoreV1Api(own).connect_get_namespaced_pod_portforward,
                pod,
                self.target.namespace,
                ports=str(port),
            )

    def _pump(self, conn: socket.socket, remote: Any) -> None:
        """Copy both ways until either side closes or the forward stops."""
        with selectors.DefaultSelector() as selector:
            selector.register(conn, selectors.EVENT_READ, remote)
            selector.register(remote, selectors.EVENT_READ, conn)
            selector.register(self._wake_read, selectors.EVENT_READ, None)
            while True:
                for key, _ in selector.select():
                    if key.data is None:
                        return
                    try:
                        data = key.fileobj.recv(CHUNK)  # type: ignore[union-attr]
                        if not data:
                            return
                        key.data.sendall(data)
                    except OSError:
                        return


class PortForwards:
    """The port-forwards a kubernetes target opens; :meth:`close` stops them all."""

    def __init__(self, api: client.ApiClient, bus: EventBus, scenario: str) -> None:
        self.api = api
        self.bus = bus
        self.scenario = scenario
        self.forwards: list[PortForward] = []

    def open(self, target: PodPort, component: str) -> str:
        forward = PortForward(self.api, target, self._note)
        self.forwards.append(forward)  # before start: close() stops a half-started one
        url = forward.start()
        self.bus.emit(
            ComponentReady(
                scenario=self.scenario,
                component=component,
                url=url,
                pid=None,
                detail=f"port-forward to {target.what}",
            )
        )
        return url

    def close(self) -> None:
        while self.forwards:
            self.forwards.pop().stop()

    def endpoints(
        self,
        spec: KubernetesTargetSpec,
        deployment: Any,
        prometheus: str | None,
        alertmanager: str | None,
    ) -> Endpoints:
        """The target's endpoints: a URL given wins (the command line's first), else a
        port-forward where the spec names what to forward to."""
        server = spec.server or ""
        if not server and spec.serve is not None:
            serve = spec.serve
            if serve.service is not None:
                target = service_pods(self.api, spec.namespace, serve.service, serve.port)
            else:
                target = workload_pods(deployment, spec.workload.container, serve.port)
            server = self.open(target, "server")
        return Endpoints(
            server=server,
            prometheus=prometheus
            or spec.prometheus
            or self._monitoring(spec.prometheus_service, "prometheus"),
            alertmanager=alertmanager
            or spec.alertmanager
            or self._monitoring(spec.alertmanager_service, "alertmanager"),
        )

    def _monitoring(self, service: MonitoringServiceSpec | None, component: str) -> str | None:
        if service is None:
            return None
        target = service_pods(self.api, service.namespace, service.service, service.port)
        return self.open(target, component)

    def _note(self, level: str, message: str) -> None:
        self.bus.emit(Note(scenario=self.scenario, level=level, message=message))
