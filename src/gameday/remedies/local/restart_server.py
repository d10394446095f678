"""restart-deployment on the local tier: restart the server, as ``kubectl rollout restart``
starts new pods.

A planned restart through the supervisor: the server is stopped and started at once,
or, while it waits out a crash-loop back-off, started without waiting further. Nothing
is changed that needs undoing.
"""

from __future__ import annotations

from gameday.remedies.base import Remedy, remedies
from gameday.runbooks.model import RestartDeployment
from gameday.targets.local.target import LocalTarget

__all__ = ["RestartServerRemedy"]


@remedies.register("local/restart-deployment")
class RestartServerRemedy(Remedy[RestartDeployment, LocalTarget]):
    kind = "restart-deployment"
    summary = "Restart the server now (a rollout restart), cutting any back-off short."

    @classmethod
    def describe(cls, action: RestartDeployment) -> str:
        return "restart the server now, as a rollout restart does"

    @classmethod
    def cannot(cls, action: RestartDeployment) -> str | None:
        if action.deployment is not None:
            return f"it restarts {action.deployment}, which the local tier does not run"
        return None

    def apply(self) -> dict[str, str]:
        supervisor = self.target.require_supervisor()
        before = supervisor.pid
        supervisor.restart()
        was = f"pid {before}" if before is not None else "not running (back-off)"
        return {"restart": f"planned restart; the server was {was}"}
