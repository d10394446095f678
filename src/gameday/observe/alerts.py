"""Alert states from Prometheus (``/api/v1/alerts``) and Alertmanager (``/api/v2/alerts``).

A poller thread reads both APIs once per interval and emits an ``AlertChanged``
event whenever an alert's state changes at either source, so the event stream
(and the report) has each alert's pending, firing and resolved times.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from gameday.core.events import AlertChanged, EventBus

__all__ = ["AlertPoller", "AlertSnapshot", "alertmanager_alerts", "prometheus_alerts"]

log = logging.getLogger(__name__)

_RANK = {"inactive": 0, "pending": 1, "firing": 2}


@dataclass(frozen=True)
class AlertSnapshot:
    name: str
    state: str
    labels: tuple[tuple[str, str], ...]
    active_at: str | None
    value: str | None


def _labels(raw: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in raw.items()))


def prometheus_alerts(client: httpx.Client, base_url: str) -> dict[str, AlertSnapshot]:
    """Pending and firing alerts, one per alert name (the most advanced state wins)."""
    response = client.get(f"{base_url}/api/v1/alerts")
    response.raise_for_status()
    found: dict[str, AlertSnapshot] = {}
    for alert in response.json()["data"]["alerts"]:
        labels = alert.get("labels", {})
        name = labels.get("alertname", "?")
        snapshot = AlertSnapshot(
            name,
            alert.get("state", "inactive"),
            _labels(labels),
            alert.get("activeAt"),
            alert.get("value"),
        )
        current = found.get(name)
        if current is None or _RANK.get(snapshot.state, 0) > _RANK.get(current.state, 0):
            found[name] = snapshot
    return found


def alertmanager_alerts(client: httpx.Client, base_url: str) -> dict[str, AlertSnapshot]:
    """Alerts Alertmanager holds as active (received from Prometheus, not silenced)."""
    response = client.get(
        f"{base_url}/api/v2/alerts",
        params={"active": "true", "silenced": "false", "inhibited": "false"},
    )
    response.raise_for_status()
    found: dict[str, AlertSnapshot] = {}
    for alert in response.json():
        if alert.get("status", {}).get("state") != "active":
            continue
        labels = alert.get("labels", {})
        name = labels.get("alertname", "?")
        found[name] = AlertSnapshot(name, "active", _labels(labels), alert.get("startsAt"), None)
    return found


class AlertPoller:
    def __init__(
        self,
        bus: EventBus,
        scenario: str,
        prometheus: str | None,
        alertmanager: str | None,
        interval: float = 1.0,
    ) -> None:
        self.bus = bus
        self.scenario = scenario
        self.sources = [
            (name, url, reader)
            for name, url, reader in (
                ("prometheus", prometheus, prometheus_alerts),
                ("alertmanager", alertmanager, alertmanager_alerts),
            )
            if url
        ]
        self.interval = interval
        self._known: dict[tuple[str, str], str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-poller", daemon=True)
        self.errors = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def poll_once(self, client: httpx.Client) -> None:
        for source, url, reader in self.sources:
            assert url is not None
            try:
                current = reader(client, url)
            except (httpx.HTTPError, ValueError, KeyError) as error:
                self.errors += 1
                log.debug("reading alerts from %s failed: %s", source, error)
                continue
            self._diff(source, current.values(), set(current))

    def _diff(self, source: str, current: Iterable[AlertSnapshot], names: set[str]) -> None:
        gone_state = "resolved" if source == "alertmanager" else "inactive"
        for snapshot in current:
            key = (source, snapshot.name)
            if self._known.get(key) != snapshot.state:
                self._known[key] = snapshot.state
                self.bus.emit(
                    AlertChanged(
                        scenario=self.scenario,
                        alert=snapshot.name,
                        state=snapshot.state,
                        source=source,
                        labels=snapshot.labels,
                        active_at=snapshot.active_at,
                        value=snapshot.value,
                    )
                )
        for (known_source, name), state in list(self._known.items()):
            if known_source == source and name not in names and state != gone_state:
                self._known[(known_source, name)] = gone_state
                self.bus.emit(
                    AlertChanged(
                        scenario=self.scenario, alert=name, state=gone_state, source=source
                    )
                )

    def _run(self) -> None:
        with httpx.Client(timeout=max(self.interval, 2.0)) as client:
            while not self._stop.is_set():
                self.poll_once(client)
                self._stop.wait(self.interval)
