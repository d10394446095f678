"""port-conflict (PortInUse): another process takes the serving port; the server restarts.

The server is stopped, a stray process binds its port, and the server is
started again: it fails with the kernel's ``[Errno 98] Address already in
use`` and the supervisor keeps restarting it (CrashLoopBackOff) until the
fault is reverted and the stray process is gone.
"""

from __future__ import annotations

import sys

from gameday.core.errors import InjectionError
from gameday.core.processes import Spawned, spawn
from gameday.injectors.base import Injector, faults
from gameday.scenario.model import FaultSpec
from gameday.targets.local.target import LocalTarget

__all__ = ["PortConflict", "PortConflictSpec"]


class PortConflictSpec(FaultSpec):
    restart_server: bool = True
    """Restart the server after the port is taken (the documented failure happens at
    startup). False only blocks the port for the next restart, whenever that comes."""


@faults.register("port-conflict")
class PortConflict(Injector[PortConflictSpec, LocalTarget]):
    Params = PortConflictSpec
    target_kinds = frozenset({"local"})
    runbook = "PortInUse"
    summary = "A stray process binds the serving port; the restarted server fails with Errno 98."

    holder: Spawned | None = None

    @classmethod
    def describe(cls, spec: PortConflictSpec) -> str:
        return (
            "stop the server, bind its port from another process that resets every "
            "connection, then start the server again (it fails with [Errno 98])"
        )

    def _hold_port(self) -> None:
        port = self.target.port
        command = [
            sys.executable,
            "-m",
            "gameday.injectors.port_holder",
            str(port),
            self.target.host,
        ]
        if self.target.network is not None:
            command = self.target.network.wrap(command)  # the server's port, in its namespace
        self.holder = spawn(
            command,
            name="port-holder",
            changes=self.ctx.changes,
        )
        assert self.holder.popen.stdout is not None and self.holder.popen.stderr is not None
        if self.holder.popen.stdout.readline().strip() != b"ready":  # printed once bound
            error = self.holder.popen.stderr.read().decode().strip()
            raise InjectionError(f"could not hold port {port}: {error or 'the holder exited'}")

    def apply(self) -> dict[str, str]:
        supervisor = self.target.require_supervisor()
        if self.spec.restart_server:
            # the port is taken between the server's exit and its restart
            supervisor.restart_through(self._hold_port, timeout=30)
        else:
            self._hold_port()
        assert self.holder is not None
        return {"port": str(self.target.port), "holder pid": str(self.holder.pid)}
