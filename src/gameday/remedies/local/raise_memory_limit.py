"""raise-memory-limit (MEMORY001): give the server's memory cgroup room above what it needs.

The runbook sets the limit 50% above the requests ("requests 32Gi, limits 48Gi"): here
``factor`` times the most the server has used (the cgroup's peak, which its steady state
before the failure set), or the ``to`` the step names. Then the server is restarted at
once under the new limit, as a rollout of a changed limit starts a new pod instead of
waiting out the crash-loop back-off.

The undo writes back the limit the scenario configured, not the one in force before
the step (a fault's): reverting a fix on the way out must not break the server again.
"""

from __future__ import annotations

from gameday.core.cgroup import RestoreCgroupFile
from gameday.remedies.base import Remedy, remedies
from gameday.runbooks.model import RaiseMemoryLimit
from gameday.scenario.units import format_bytes
from gameday.targets.local.target import LocalTarget

__all__ = ["RaiseMemoryLimitRemedy"]


@remedies.register("local/raise-memory-limit")
class RaiseMemoryLimitRemedy(Remedy[RaiseMemoryLimit, LocalTarget]):
    kind = "raise-memory-limit"
    summary = "Raise the server's memory cgroup limit above its peak use; restart it."

    @classmethod
    def describe(cls, action: RaiseMemoryLimit) -> str:
        to = format_bytes(action.to) if action.to else f"{action.factor:g} x its peak use"
        return f"raise the server's memory limit to {to} and restart it under the new limit"

    def apply(self) -> dict[str, str]:
        cgroup = self.target.require_cgroup()
        supervisor = self.target.require_supervisor()
        peak = cgroup.peak_usage()
        before = cgroup.limit_text()
        limit = self.action.to or int(peak * (self.action.factor or 1.0))
        self.ctx.changes.record(
            RestoreCgroupFile(
                path=str(cgroup.limit_file), value=self.target.configured_memory_limit or before
            )
        )
        cgroup.set_limit(limit)
        supervisor.restart()
        return {
            "peak use": format_bytes(peak),
            "limit": f"{_readable(before)} -> {format_bytes(limit)}",
            "restart": "the server was restarted under the new limit",
        }


def _readable(limit_text: str) -> str:
    return format_bytes(int(limit_text)) if limit_text.isdigit() else limit_text
