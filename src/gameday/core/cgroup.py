"""Memory cgroups for the server under test, on cgroup v2 or v1.

The server runs in a cgroup of its own so a fault can lower its memory limit
and the kernel, not the harness, kills it. The two hierarchies differ in one
way that matters here: v2 reclaims and then OOM-kills when ``memory.max`` is
written below usage; v1 refuses such a write with EBUSY (see
``set_limit``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from gameday.core.errors import PermissionProblem
from gameday.core.undo import RevertFailed, UndoAction, register_undo

__all__ = [
    "CgroupBusy",
    "MemoryCgroup",
    "RemoveCgroup",
    "RestoreCgroupFile",
    "memory_cgroup_support",
]

CGROUP_ROOT = Path("/sys/fs/cgroup")
UNLIMITED_V1 = "-1"
UNLIMITED_V2 = "max"


class CgroupBusy(Exception):
    """cgroup v1 refused a limit below current usage (EBUSY)."""


def _mounts() -> list[tuple[str, str, str]]:
    entries: list[tuple[str, str, str]] = []
    try:
        text = Path("/proc/self/mounts").read_text()
    except OSError:
        return entries
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            entries.append((parts[1], parts[2], parts[3]))
    return entries


def _hierarchy() -> tuple[int, Path] | None:
    """(version, root) of the hierarchy that has the memory controller, if any."""
    for mount_point, fs_type, options in _mounts():
        if fs_type == "cgroup" and "memory" in options.split(","):
            return 1, Path(mount_point)
    for mount_point, fs_type, _ in _mounts():
        if fs_type == "cgroup2":
            controllers = Path(mount_point) / "cgroup.controllers"
            try:
                if "memory" in controllers.read_text().split():
                    return 2, Path(mount_point)
            except OSError:
                continue
    return None


def memory_cgroup_support() -> str | None:
    """None when this process can create memory cgroups, else why not."""
    found = _hierarchy()
    if found is None:
        return "no cgroup hierarchy with the memory controller is mounted"
    _, root = found
    if not os.access(root, os.W_OK):
        return f"{root} is not writable (memory cgroups need root)"
    return None


@dataclass
class MemoryCgroup:
    version: int
    path: Path

    @staticmethod
    def path_for(name: str) -> Path:
        """Where ``create(name)`` will put the cgroup, so it can be journaled first."""
        found = _hierarchy()
        if found is None:
            raise PermissionProblem("no cgroup hierarchy with the memory controller is mounted")
        return found[1] / name

    @classmethod
    def create(cls, name: str) -> MemoryCgroup:
        found = _hierarchy()
        if found is None:
            raise PermissionProblem("no cgroup hierarchy with the memory controller is mounted")
        version, root = found
        if version == 2:
            control = root / "cgroup.subtree_control"
            try:
                if "memory" not in control.read_text().split():
                    control.write_text("+memory")
            except OSError as error:
                raise PermissionProblem(
                    f"cannot enable the memory controller in {control}: {error.strerror}"
                ) from None
        path = root / name
        try:
            path.mkdir(exist_ok=True)
        except OSError as error:
            raise PermissionProblem(
                f"cannot create memory cgroup {path}: {error.strerror} (run as root)"
            ) from None
        return cls(version, path)

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    @property
    def limit_file(self) -> Path:
        return self.path / ("memory.max" if self.version == 2 else "memory.limit_in_bytes")

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in self.procs_file.read_text().split()]
        except OSError:
            return []

    def kill_members(self, timeout: float = 5.0) -> list[int]:
        """SIGKILL every process in the cgroup until none is left (or ``timeout``), as a
        container runtime does when a container's main process has exited. Returns the
        pids it signalled."""
        killed: list[int] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            members = self.pids()
            if not members:
                break
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                if pid not in killed:
                    killed.append(pid)
            time.sleep(0.02)  # killed processes leave cgroup.procs as the kernel reaps them
        return killed

    def usage(self) -> int:
        name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        return int((self.path / name).read_text())

    def peak_usage(self) -> int:
        """The most memory the cgroup has used since it was made (v2 ``memory.peak``, on
        kernels from 5.19; v1 ``memory.max_usage_in_bytes``); the current usage without one."""
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        try:
            return int((self.path / name).read_text())
        except (OSError, ValueError):
            return self.usage()

    def working_set(self) -> int:
        """Usage minus inactive file cache, as the kubelet computes a container's working set."""
        usage = self.usage()
        stat = self.stat()
        inactive = stat.get("inactive_file", stat.get("total_inactive_file", 0))
        return max(0, usage - inactive)

    def stat(self) -> dict[str, int]:
        values: dict[str, int] = {}
        try:
            text = (self.path / "memory.stat").read_text()
        except OSError:
            return values
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if value.strip().isdigit():
                values[key] = int(value)
        return values

    def limit_text(self) -> str:
        return self.limit_file.read_text().strip()

    def set_limit(self, limit: int | None) -> None:
        """Write the limit (None: unlimited). cgroup v1 raises CgroupBusy below usage."""
        if limit is None:
            value = UNLIMITED_V2 if self.version == 2 else UNLIMITED_V1
        else:
            value = str(limit)
        try:
            self.limit_file.write_text(value)
        except OSError as error:
            if error.errno == errno.EBUSY:
                raise CgroupBusy(str(error)) from None
            raise

    def oom_kills(self) -> int:
        """The kernel's count of OOM kills in this cgroup."""
        source = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            text = (self.path / source).read_text()
        except OSError:
            return 0
        match = re.search(r"^oom_kill (\d+)$", text, re.MULTILINE)
        return int(match.group(1)) if match else 0


@register_undo
class RestoreCgroupFile(UndoAction):
    """A cgroup control file (a memory limit) that a fault rewrote."""

    kind: ClassVar[str] = "restore-cgroup-file"
    path: str
    value: str

    def revert(self) -> str:
        target = Path(self.path)
        if not target.exists():
            return f"{target.parent} is gone; nothing to restore"
        value = self.value
        if value.isdigit() and int(value) >= 2**62:
            value = UNLIMITED_V1  # v1 reads back "unlimited" as a huge number
        target.write_text(value)
        return f"restored {target} to {self.value}"

    def describe(self) -> str:
        return f"write {self.value} back to {self.path}"


@register_undo
class RemoveCgroup(UndoAction):
    kind: ClassVar[str] = "remove-cgroup"
    path: str

    def revert(self) -> str:
        path = Path(self.path)
        if not path.exists():
            return f"{path} already removed"
        procs = path / "cgroup.procs"
        for pid in (int(p) for p in procs.read_text().split()):
            # stragglers are ours: the cgroup was made for this run's server
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            try:
                path.rmdir()
                return f"removed {path}"
            except OSError as error:
                if error.errno != errno.EBUSY:
                    raise RevertFailed(f"cannot remove {path}: {error.strerror}") from None
            time.sleep(0.05)  # killed processes leave the cgroup asynchronously
        raise RevertFailed(f"cannot remove {path}: still busy")

    def describe(self) -> str:
        return f"remove cgroup {self.path}"
