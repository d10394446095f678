"""process-kill (ContainerRestarts): signal the server's main process; it must come back.

SIGKILL by default.

Nothing is reverted: recovery is the supervisor's restart, which is exactly
what the scenario's recovery expectations check.
"""

from __future__ import annotations

import signal
from typing import Literal

from pydantic import Field

from gameday.core.errors import InjectionError
from gameday.injectors.base import Injector, faults
from gameday.scenario.model import FaultSpec
from gameday.scenario.units import Duration
from gameday.targets.local.target import LocalTarget

__all__ = ["ProcessKill", "ProcessKillSpec"]


class ProcessKillSpec(FaultSpec):
    signal: Literal["SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT", "SIGABRT", "SIGSEGV"] = "SIGKILL"
    count: int = Field(default=1, ge=1, le=20)
    """Kill this many times; each later kill waits for the server to be running again."""
    interval: Duration = 0.0
    """Pause between one restart and the next kill."""
    restart_timeout: Duration = 60.0
    """How long to wait for the server to come back between kills."""


@faults.register("process-kill")
class ProcessKill(Injector[ProcessKillSpec, LocalTarget]):
    Params = ProcessKillSpec
    target_kinds = frozenset({"local"})
    runbook = "ContainerRestarts"
    summary = "Signal the server's main process (SIGKILL by default); the supervisor restarts it."

    @classmethod
    def describe(cls, spec: ProcessKillSpec) -> str:
        times = f" {spec.count} times" if spec.count > 1 else ""
        return f"send {spec.signal} to the server's main process{times}"

    def apply(self) -> dict[str, str]:
        supervisor = self.target.require_supervisor()
        sig = signal.Signals[self.spec.signal]
        killed: list[int] = []
        for round_ in range(self.spec.count):
            if round_ > 0:
                supervisor.wait_running(
                    self.spec.restart_timeout, self.ctx.stop, not_pid=killed[-1]
                )
                if self.spec.interval:
                    self.ctx.stop.wait(self.spec.interval)
            if supervisor.pid is None:
                raise InjectionError("the server is not running; nothing to kill")
            killed.append(supervisor.kill(sig))
        return {"signal": self.spec.signal, "pids": ", ".join(map(str, killed))}
