"""free-port (PortInUse): stop whatever else holds the server's port, as ``lsof -i :PORT``
and ``kill -9`` do in the runbook.

The holder is found the way ``lsof`` finds it: the listening socket's inode in
``/proc/<pid>/net/tcp`` (of the server's network namespace), then the process with a
descriptor on that inode. The server itself is never a holder. Killing cannot be
undone, so this step records nothing to revert; it names every process it killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from gameday.core.errors import InjectionError
from gameday.remedies.base import Remedy, remedies
from gameday.runbooks.model import FreePort
from gameday.targets.local.target import LocalTarget

__all__ = ["FreePortRemedy", "port_holders"]

LISTEN = "0A"
RELEASE_TIMEOUT = 5.0


def _netns(pid: int | str) -> str | None:
    try:
        return str(Path(f"/proc/{pid}/ns/net").readlink())
    except OSError:
        return None


def _listening_inodes(pid: int | str, port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def _command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def port_holders(port: int, netns: str | None = None) -> dict[int, str]:
    """Processes (pid: command line) with a socket listening on ``port`` in ``netns``
    (default: this process's namespace)."""
    netns = netns or _netns("self")
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    inside = [pid for pid in pids if _netns(pid) == netns]
    if not inside:
        return {}
    inodes = {f"socket:[{inode}]" for inode in _listening_inodes(inside[0], port)}
    holders: dict[int, str] = {}
    for pid in inside:
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                if str(descriptor.readlink()) in inodes:
                    holders[pid] = _command_line(pid)
                    break
            except OSError:
                continue
    return holders


@remedies.register("local/free-port")
class FreePortRemedy(Remedy[FreePort, LocalTarget]):
    kind = "free-port"
    summary = "Kill the processes other than the server that listen on its port."

    @classmethod
    def describe(cls, action: FreePort) -> str:
        port = action.port or "the server's port"
        return f"find what listens on {port} (as lsof -i does) and kill it, sparing the server"

    def apply(self) -> dict[str, str]:
        port = self.action.port or self.target.port
        netns = None
        if self.target.network is not None:
            netns = _netns_of_named(self.target.network.namespace)
        spared = {os.getpid(), 1}
        server = self.target.require_supervisor().pid
        if server is not None:
            spared.add(server)
        if self.target.cgroup is not None:
            spared.update(self.target.cgroup.pids())  # the server's own children
        holders = {
            pid: command for pid, command in port_holders(port, netns).items() if pid not in spared
        }
        if not holders:
            return {"port": f"{port}: nothing but the server listens on it"}
        for pid, command in holders.items():
            self.ctx.note(f"free-port: killing pid {pid} ({command}), which holds port {port}")
        for pid in holders:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # the runbook's kill -9
        deadline = time.monotonic() + RELEASE_TIMEOUT
        left = list(holders)
        while left and time.monotonic() < deadline:
            time.sleep(0.05)  # the kernel closes a killed process's sockets as it exits
            left = [pid for pid in port_holders(port, netns) if pid in holders]
        if left:
            raise InjectionError(f"port {port} is still held by pid {left} after SIGKILL")
        return {
            "port": str(port),
            **{f"killed pid {pid}": command for pid, command in holders.items()},
        }


def _netns_of_named(name: str) -> str | None:
    """'net:[inode]' of a named namespace (``ip netns add``), as /proc/<pid>/ns/net reads."""
    try:
        return f"net:[{Path('/run/netns', name).stat().st_ino}]"
    except OSError:
        return None
