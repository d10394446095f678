"""oom-kill (MEMORY001): lower the server's memory limit below its working set.

The kernel does the killing. On cgroup v2, writing ``memory.max`` below usage
makes the kernel reclaim and then OOM-kill at once. cgroup v1 refuses such a
write (EBUSY), so there the server is restarted under the new limit — the way
a Kubernetes rollout applies a lowered limit — and is OOM-killed as its
working set grows past it while it starts. Either way the exit is 137 and the
cgroup's own ``oom_kill`` counter goes up; the supervisor reads that counter
to call the exit OOMKilled.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from gameday.core.cgroup import CgroupBusy, RestoreCgroupFile
from gameday.injectors.base import Injector, faults
from gameday.scenario.model import FaultSpec
from gameday.scenario.units import ByteSize, format_bytes
from gameday.targets.local.target import LocalTarget

__all__ = ["OomKill", "OomKillSpec"]

MIN_LIMIT = 4 * 2**20


class OomKillSpec(FaultSpec):
    limit: ByteSize | None = None
    """The new memory limit. Default: ``fraction`` of the working set when applied."""
    fraction: float = Field(default=0.5, gt=0.0, lt=1.0)
    """New limit as a fraction of the server's working set (when no ``limit`` is given)."""

    @model_validator(mode="after")
    def _sane(self) -> OomKillSpec:
        if self.limit is not None and self.limit < MIN_LIMIT:
            raise ValueError(f"limit must be at least {format_bytes(MIN_LIMIT)}")
        return self


@faults.register("oom-kill")
class OomKill(Injector[OomKillSpec, LocalTarget]):
    Params = OomKillSpec
    target_kinds = frozenset({"local"})
    runbook = "MEMORY001"
    summary = "Lower the server's memory cgroup limit below its working set: a real OOM kill."

    @classmethod
    def describe(cls, spec: OomKillSpec) -> str:
        new = format_bytes(spec.limit) if spec.limit else f"{spec.fraction:g} x working set"
        return f"lower the server's memory cgroup limit to {new}; the kernel OOM-kills it"

    def apply(self) -> dict[str, str]:
        cgroup = self.target.require_cgroup()
        supervisor = self.target.require_supervisor()
        working_set = cgroup.working_set()
        limit = self.spec.limit or max(MIN_LIMIT, int(working_set * self.spec.fraction))
        self.ctx.changes.record(
            RestoreCgroupFile(path=str(cgroup.limit_file), value=cgroup.limit_text())
        )
        details = {
            "cgroup": f"{cgroup.path} (v{cgroup.version})",
            "working set": format_bytes(working_set),
            "new limit": format_bytes(limit),
        }
        try:
            cgroup.set_limit(limit)
            details["how"] = "limit lowered in place; the kernel reclaims, then OOM-kills"
        except CgroupBusy:
            # cgroup v1 will not shrink below usage; apply it across a restart instead
            supervisor.restart(before_start=lambda: cgroup.set_limit(limit))
            details["how"] = (
                "cgroup v1 refused a limit below usage (EBUSY); the server was restarted "
                "under the new limit, as a rollout applies one"
            )
        return details
