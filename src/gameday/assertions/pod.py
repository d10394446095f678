"""``pod``: the workload's pods reach a state: a phase, readiness, a container waiting or
terminated with a reason, a restart count; in any pod, or (``every``) in all of them.

Read from the pod watch: each observed change is a moment at which the pods' states are
checked together, so ``every`` means all the workload's pods at once.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from gameday.assertions.base import Expectation, Verdict, clock, expectations
from gameday.core.events import PodObserved
from gameday.core.observations import Observations
from gameday.scenario.model import ExpectationParams, StrictModel
from gameday.scenario.units import Regex

__all__ = ["PodExpectation", "PodParams"]


class PodCondition(StrictModel):
    type: str
    """PodScheduled, Initialized, ContainersReady, Ready, DisruptionTarget..."""
    status: Literal["True", "False", "Unknown"] = "True"
    reason: str | None = None

    def __str__(self) -> str:
        return f"{self.type}={self.status}" + (f"/{self.reason}" if self.reason else "")

    def holds(self, pod: PodObserved) -> bool:
        return any(
            kind == self.type and status == self.status and self.reason in (None, reason)
            for kind, status, reason in pod.conditions
        )


class PodParams(ExpectationParams):
    phase: str | None = None
    """Pending, Running, Succeeded, Failed."""
    ready: bool | None = None
    waiting: str | None = None
    """A container waiting with this reason (ErrImagePull, ImagePullBackOff,
    CrashLoopBackOff, CreateContainerConfigError...)."""
    terminated: str | None = None
    """A container terminated, now or last time, with this reason (OOMKilled, Error)."""
    exit_code: int | None = None
    restarts: int | None = Field(default=None, ge=0)
    """At least this many restarts of a container."""
    unschedulable: Regex | None = None
    """The scheduler cannot place it, and says this (a regular expression; ``.`` for any
    reason): "Insufficient nvidia.com/gpu", "unbound immediate PersistentVolumeClaims"."""
    condition: PodCondition | None = None
    """A pod condition with this type and status (and reason): ``{type: Ready, status:
    "False", reason: ContainersNotReady}``, ``{type: DisruptionTarget, status: "True"}``."""
    every: bool = False
    """All of the workload's pods at once, instead of any one."""

    def describe(self) -> str:
        parts = [
            f"{name}={value}"
            for name, value in (
                ("phase", self.phase),
                ("ready", self.ready),
                ("waiting", self.waiting),
                ("terminated", self.terminated),
                ("exit_code", self.exit_code),
                ("restarts>=", self.restarts),
                ("unschedulable", self.unschedulable),
                ("condition", self.condition),
            )
            if value is not None
        ]
        return f"{'every' if self.every else 'a'} pod {' '.join(parts) or 'exists'}"

    def holds(self, pod: PodObserved) -> bool:
        if self.phase is not None and pod.phase != self.phase:
            return False
        if self.ready is not None and pod.ready != self.ready:
            return False
        containers = pod.containers
        if self.waiting is not None and not any(
            c[1] == "waiting" and c[2] == self.waiting for c in containers
        ):
            return False
        if self.terminated is not None and not any(
            c[1] in ("terminated", "running")
            and c[2] == self.terminated
            and (self.exit_code is None or c[4] == self.exit_code)
            for c in containers
        ):
            return False
        if self.unschedulable is not None and not (
            pod.unschedulable and re.search(self.unschedulable, pod.unschedulable)
        ):
            return False
        if self.condition is not None and not self.condition.holds(pod):
            return False
        return self.restarts is None or any(c[5] >= self.restarts for c in containers)


def describe_pod(pod: PodObserved) -> str:
    states = ", ".join(
        f"{name} {state}{' ' + reason if reason else ''}"
        + (f" (restarts {restarts})" if restarts else "")
        for name, state, reason, _, _, restarts in pod.containers
    )
    ready = "ready" if pod.ready else "not ready"
    scheduler = f"; unschedulable: {pod.unschedulable}" if pod.unschedulable else ""
    return f"{pod.pod} {pod.phase or '?'} {ready}: {states or 'no container status'}{scheduler}"


@expectations.register("pod")
class PodExpectation(Expectation[PodParams]):
    Params = PodParams
    summary = "The workload's pods (any, or every one) reach a phase, readiness or container state."

    def reported_by(self) -> tuple[str, ...]:
        # phases, readiness and container states are the kubelet's; PodScheduled the scheduler's
        params = self.params
        # conditions are the kubelet's, but PodScheduled (the scheduler's) and
        # DisruptionTarget (the evicting controller's)
        condition = params.condition.type if params.condition is not None else None
        kubelet = condition not in (None, "PodScheduled", "DisruptionTarget")
        kubelet = (
            kubelet
            or params.phase not in (None, "Pending")
            or any(
                value is not None
                for value in (
                    params.ready,
                    params.waiting,
                    params.terminated,
                    params.exit_code,
                    params.restarts,
                )
            )
        )
        scheduler = params.unschedulable is not None or condition == "PodScheduled"
        return (*(["kubelet"] if kubelet else []), *(["kube-scheduler"] if scheduler else []))

    def _moments(self, observed: Observations) -> list[tuple[float, list[PodObserved]]]:
        """After each observed change: every live pod's latest state."""
        latest: dict[str, PodObserved] = {}
        moments = []
        for pod in observed.pods:
            if pod.deleted:
                latest.pop(pod.pod, None)
            else:
                latest[pod.pod] = pod
            moments.append((pod.ts, list(latest.values())))
        return moments

    def check(self, observed: Observations, since: float) -> Verdict:
        moments = self._moments(observed)
        for position, (ts, pods) in enumerate(moments):
            nxt = moments[position + 1][0] if position + 1 < len(moments) else None
            if nxt is not None and nxt <= since:
                continue  # a state that ended before the phase began
            matching = [p for p in pods if self.params.holds(p)]
            if matching and (not self.params.every or len(matching) == len(pods)):
                at = max(ts, since)
                return Verdict.held(
                    at, *(f"{clock(at, since)} {describe_pod(p)}" for p in matching[:5])
                )
        return Verdict.pending()

    def explain(self, observed: Observations, since: float) -> list[str]:
        moments = self._moments(observed)
        if not moments:
            return ["no pod of the workload was observed"]
        ts, pods = moments[-1]
        return [
            f"never {self.params.describe()}; the pods as last seen ({clock(ts, since)}):",
            *(describe_pod(p) for p in pods[:10]),
        ]
