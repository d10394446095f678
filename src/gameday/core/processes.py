"""Processes the harness starts: journaled before they exist, findable after we die.

Every process is started with a token in its environment
(``GAMEDAY_PROCESS_TOKEN``), recorded in the journal *before* the fork. The
token is inherited by anything the process starts, so ``KillProcesses`` finds
the whole family by scanning ``/proc/*/environ`` even when the harness was
``kill -9``-ed before it learnt a pid. Not every family keeps it: a process that
renames itself (vLLM's EngineCore and Worker, through setproctitle) overwrites the
memory ``/proc/PID/environ`` reads. So a process started in a cgroup is also found by
that cgroup's membership, which nothing inside can change.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, ClassVar

from gameday.core.changes import ChangeSet
from gameday.core.undo import UndoAction, register_undo

__all__ = [
    "TOKEN_VARIABLE",
    "KillProcesses",
    "Spawned",
    "find_processes",
    "free_port",
    "port_is_free",
    "private_shm",
    "private_shm_support",
    "spawn",
    "terminate",
]

TOKEN_VARIABLE = "GAMEDAY_PROCESS_TOKEN"  # noqa: S105 - a marker, not a secret


def find_processes(token: str, *, prefix: bool = False) -> list[int]:
    """Pids of live processes whose environment carries ``token`` (or a token starting so)."""
    needle = f"{TOKEN_VARIABLE}={token}".encode()
    found: list[int] = []
    own = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone, or a kernel thread
        variables = environ.split(b"\0")
        if needle in variables or (prefix and any(v.startswith(needle) for v in variables)):
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def terminate(pids: Sequence[int], grace: float) -> int:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL. Returns how many were signalled."""
    signalled = 0
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            signalled += 1
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)  # polling a pid we do not parent: no wait() is possible
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return signalled


@register_undo
class KillProcesses(UndoAction):
    """Processes the run started (a server, Prometheus, a port holder)."""

    kind: ClassVar[str] = "kill-processes"
    token: str
    name: str
    command: list[str]
    grace: float = 5.0
    cgroup_procs: str | None = None
    """The ``cgroup.procs`` file of the cgroup the processes run in, if any."""

    def _members(self) -> list[int]:
        found = set(find_processes(self.token))
        if self.cgroup_procs is not None:
            with contextlib.suppress(OSError, ValueError):
                found.update(int(p) for p in Path(self.cgroup_procs).read_text().split())
        return sorted(found)

    def revert(self) -> str:
        stopped: list[int] = []
        for _ in range(3):  # a dying parent may have started one more child: look again
            pids = [p for p in self._members() if p not in stopped]
            if not pids:
                break
            terminate(pids, self.grace)
            stopped.extend(pids)
        if not stopped:
            return f"{self.name}: no process left"
        return f"{self.name}: stopped {len(stopped)} process(es) {stopped}"

    def describe(self) -> str:
        return f"stop {self.name} ({' '.join(self.command)[:80]})"


@dataclass
class Spawned:
    name: str
    popen: subprocess.Popen[bytes]
    undo_id: str
    token: str

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, grace: float = 5.0) -> int | None:
        """Stop its process group, reap it, return its exit status.

        Strays that left the group are found by token when the change set is reverted."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        return self.popen.returncode


def spawn(
    command: Sequence[str],
    *,
    name: str,
    changes: ChangeSet,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stdout: int | IO[bytes] | None = subprocess.PIPE,
    stderr: int | IO[bytes] | None = subprocess.PIPE,
    cgroup_procs: Path | None = None,
    record: tuple[str, str] | None = None,
) -> Spawned:
    """Start ``command`` in its own process group, journaled first.

    With ``cgroup_procs`` the process enters that cgroup before it execs, so
    everything it allocates is charged there from its first byte. Pass the
    ``(undo_id, token)`` record of an earlier spawn to start a process that
    belongs to the same record (a restart of the same server).
    """
    if record is None:
        token = f"{changes.run_id}.{os.getpid()}.{time.monotonic_ns()}"
        undo_id = changes.record(
            KillProcesses(
                token=token,
                name=name,
                command=list(command),
                cgroup_procs=None if cgroup_procs is None else str(cgroup_procs),
            )
        )
    else:
        undo_id, token = record
    full_env = {**os.environ, **(env or {}), TOKEN_VARIABLE: token}
    argv = list(command)
    if cgroup_procs is not None:
        # sh joins the cgroup, then execs the real command: no preexec_fn in a threaded parent
        argv = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(cgroup_procs), *argv]
    popen = subprocess.Popen(
        argv,
        env=full_env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        process_group=0,
    )
    return Spawned(name, popen, undo_id, token)


SHM_MOUNT = 'mount -t tmpfs -o "size=$0,mode=1777,nosuid,nodev" shm /dev/shm && exec "$@"'
"""Run in a mount namespace of its own: a fresh /dev/shm for the command, then the command."""


def private_shm_support() -> str | None:
    """None when a server can get a /dev/shm of its own here, else why not."""
    if os.geteuid() != 0:
        return "a mount namespace needs root"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    if not Path("/dev/shm").is_dir():  # noqa: S108 - the mount point itself, not a file in it
        return "there is no /dev/shm"
    return None


def private_shm(command: Sequence[str], size: int) -> list[str]:
    """``command`` with a tmpfs /dev/shm of ``size`` bytes of its own, as a container has.

    The mount lives in a mount namespace only the command's processes share, so every
    shared-memory segment they make vanishes with the last of them: none can leak into
    the machine's /dev/shm, whether the harness stops them or dies."""
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        SHM_MOUNT,
        str(size),
        *command,
    ]


LISTEN_PORTS = (20000, 32767)
"""Where free_port looks: below Linux's default ephemeral range (32768-60999)."""
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, for a server the harness starts a moment later.

    Not one the kernel would pick (bind to port 0): those come from the ephemeral range,
    which every outgoing connection also draws its source port from, so one of them (the
    load, a scrape) could take the port before the server binds it — Prometheus once
    failed to start that way. Ports outside that range are never source ports."""
    low, high = LISTEN_PORTS
    ephemeral = _ephemeral_range()
    candidates = [
        port
        for port in range(low, high + 1)
        if not ephemeral[0] <= port <= ephemeral[1] and port not in _handed_out
    ]
    for port in random.sample(candidates, min(len(candidates), 200)):
        if port_is_free(port, host):
            _handed_out.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a crowded machine
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Could a server bind ``port`` now? (As servers do, TIME_WAIT leftovers don't count.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True
