"""``rollout``: a Deployment's rollout, as the deployment controller reports it in its
status, reaches a state: Progressing and Available conditions (with a reason such as
ProgressDeadlineExceeded or NewReplicaSetAvailable), or complete.

Read from the Deployment watch: each observed version of the Deployment is a state that
lasts until the next one, so a state that began before the phase and still lasts counts
from the phase's start. ``complete`` is what ``kubectl rollout status`` waits for: the
controller has seen the latest spec (observedGeneration >= generation) and every wanted
replica is updated, ready and available, with no old one left.
"""

from __future__ import annotations

from pydantic import model_validator

from gameday.assertions.base import Expectation, Verdict, clock, expectations
from gameday.core.events import DeploymentObserved
from gameday.core.observations import Observations
from gameday.scenario.model import ExpectationParams

__all__ = ["RolloutExpectation", "RolloutParams", "complete", "describe_deployment"]

STATES = ("progressing", "available", "reason", "complete")


def complete(deployment: DeploymentObserved) -> bool:
    """The rollout finished: the latest spec is acted on and every replica is the new one."""
    return (
        deployment.observed_generation >= deployment.generation
        and deployment.updated
        == deployment.ready
        == deployment.available
        == deployment.current
        == deployment.replicas
    )


def _condition(deployment: DeploymentObserved, kind: str) -> tuple[str, str, str, str] | None:
    return next((c for c in deployment.conditions if c[0] == kind), None)


class RolloutParams(ExpectationParams):
    deployment: str | None = None
    """The Deployment, in the target's namespace; default: the target's workload."""
    progressing: bool | None = None
    """The Progressing condition is True (a rollout moves, or finished) or False (it
    stalled: reason ProgressDeadlineExceeded, after spec.progressDeadlineSeconds)."""
    available: bool | None = None
    """The Available condition is True (at least the replicas the strategy allows are
    available: MinimumReplicasAvailable) or False (MinimumReplicasUnavailable)."""
    reason: str | None = None
    """A condition has this reason: ProgressDeadlineExceeded, NewReplicaSetAvailable,
    ReplicaSetUpdated (Progressing); MinimumReplicasAvailable (Available); FailedCreate
    (ReplicaFailure)."""
    complete: bool | None = None
    """The rollout finished (true) or has not (false): observedGeneration >= generation
    and updated == ready == available == current == wanted replicas."""

    @model_validator(mode="after")
    def _something(self) -> RolloutParams:
        if all(getattr(self, name) is None for name in STATES):
            raise ValueError(f"give at least one of: {', '.join(STATES)}")
        return self

    def describe(self) -> str:
        parts = [
            f"{name}={value}"
            for name, value in (
                ("progressing", self.progressing),
                ("available", self.available),
                ("reason", self.reason),
            )
            if value is not None
        ]
        if self.complete is not None:
            parts.insert(0, "complete" if self.complete else "not complete")
        return f"rollout of {self.deployment or 'the workload'} {' '.join(parts)}"

    def selects(self, deployment: DeploymentObserved) -> bool:
        if self.deployment is None:
            return deployment.workload
        return deployment.deployment == self.deployment

    def holds(self, deployment: DeploymentObserved) -> bool:
        for kind, wanted in (("Progressing", self.progressing), ("Available", self.available)):
            if wanted is None:
                continue
            condition = _condition(deployment, kind)
            if condition is None or condition[1] != ("True" if wanted else "False"):
                return False
        if self.reason is not None and not any(c[2] == self.reason for c in deployment.conditions):
            return False
        return self.complete is None or complete(deployment) == self.complete


def describe_deployment(deployment: DeploymentObserved) -> str:
    if deployment.deleted:
        return f"{deployment.deployment} deleted"
    stale = (
        f" (status of generation {deployment.observed_generation})"
        if deployment.observed_generation < deployment.generation
        else ""
    )
    figures = (
        f"{deployment.deployment} generation {deployment.generation}{stale}: "
        f"{deployment.replicas} wanted, {deployment.current} current, "
        f"{deployment.updated} updated, {deployment.ready} ready, "
        f"{deployment.available} available"
    )
    conditions = "; ".join(
        f"{kind}={status} {reason}" + (f": {message}" if message else "")
        for kind, status, reason, message in deployment.conditions
    )
    return f"{figures}; {conditions or 'no conditions yet'}"


@expectations.register("rollout")
class RolloutExpectation(Expectation[RolloutParams]):
    Params = RolloutParams
    summary = (
        "A Deployment's rollout (default: the workload's) is complete, or its Progressing/"
        "Available conditions have a status and reason (ProgressDeadlineExceeded)."
    )

    def reported_by(self) -> tuple[str, ...]:
        # the deployment controller writes the status, from the readiness kubelets report
        return ("deployment-controller", "kubelet")

    def _states(self, observed: Observations) -> list[DeploymentObserved]:
        return [d for d in observed.deployments if self.params.selects(d)]

    def check(self, observed: Observations, since: float) -> Verdict:
        states = self._states(observed)
        for position, deployment in enumerate(states):
            nxt = states[position + 1].ts if position + 1 < len(states) else None
            if nxt is not None and nxt <= since:
                continue  # a state that ended before the phase began
            if not deployment.deleted and self.params.holds(deployment):
                at = max(deployment.ts, since)
                return Verdict.held(at, f"{clock(at, since)} {describe_deployment(deployment)}")
        return Verdict.pending()

    def explain(self, observed: Observations, since: float) -> list[str]:
        states = self._states(observed)
        which = f"deployment {self.params.deployment}" if self.params.deployment else "workload"
        if not states:
            return [f"the {which} was never observed in the target's namespace"]
        recent = [d for d in states if d.ts >= since][-4:-1]
        last = states[-1]
        return [
            f"never {self.params.describe()}; as last seen ({clock(last.ts, since)}):",
            describe_deployment(last),
            *(f"before, {clock(d.ts, since)}: {describe_deployment(d)}" for d in recent),
        ]
