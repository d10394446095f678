"""The supervisor with real processes: restarts, kubelet-like backoff, real OOM kills, no leftovers."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from gameday.core.cgroup import MemoryCgroup, RemoveCgroup, memory_cgroup_support
from gameday.core.changes import ChangeSet
from gameday.core.events import Event, EventBus, ProcessBackoff, ProcessExited, ProcessStarted
from gameday.core.journal import Journal, outstanding_undos
from gameday.core.processes import find_processes
from gameday.targets.base import TargetContext
from gameday.targets.local.supervisor import BackoffPolicy, Supervisor

IN_CI = os.environ.get("CI") == "true"
E = TypeVar("E", bound=Event)


class Recorder:
    def __init__(self, bus: EventBus) -> None:
        self.events: list[Event] = []
        self.bus = bus
        bus.subscribe(self.events.append)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        seen = self.bus.sequence
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while not predicate():
                assert not deadline.is_set(), f"timed out; events: {self.events}"
                seen = self.bus.wait(seen, 0.2)
        finally:
            timer.cancel()


@pytest.fixture
def ctx(tmp_path: Path) -> TargetContext:
    journal = Journal(tmp_path / "journal.jsonl", "t")
    return TargetContext(
        scenario="s",
        run_id="t",
        journal=journal,
        bus=EventBus(),
        scenario_dir=tmp_path,
        artifacts=tmp_path / "artifacts",
        stop=threading.Event(),
    )


def test_crash_loop_backs_off_exponentially_and_stops_cleanly(ctx: TargetContext) -> None:
    recorder = Recorder(ctx.bus)
    changes = ChangeSet(ctx.journal, "s", "target/local")
    supervisor = Supervisor(
        "server",
        [
            sys.executable,
            "-c",
            "import sys; print('[Errno 98] Address already in use', file=sys.stderr); sys.exit(1)",
        ],
        ctx=ctx,
        changes=changes,
        restart="always",
        backoff=BackoffPolicy(initial=0.1, maximum=0.4, reset_after=60),
    )
    supervisor.start()
    recorder.wait_for(lambda: len(recorder.of(ProcessBackoff)) >= 4, 20)
    supervisor.stop()
    delays = [e.delay for e in recorder.of(ProcessBackoff)][:4]
    assert delays == [0.1, 0.2, 0.4, 0.4]
    exits = recorder.of(ProcessExited)
    assert all(e.exit_code == 1 and e.reason == "Error" for e in exits[:3])
    assert supervisor.state.waiting_reason == "CrashLoopBackOff"
    assert supervisor.state.restarts >= 3
    assert (ctx.artifacts / "server.log").read_text().count("Address already in use") >= 4
    changes.revert_all()
    assert outstanding_undos(ctx.journal.path) == []


def test_planned_restart_runs_the_hook_between_stop_and_start(ctx: TargetContext) -> None:
    recorder = Recorder(ctx.bus)
    changes = ChangeSet(ctx.journal, "s", "target/local")
    supervisor = Supervisor(
        "server",
        [sys.executable, "-c", "import time; time.sleep(300)"],
        ctx=ctx,
        changes=changes,
        restart="always",
        backoff=BackoffPolicy(initial=5, maximum=5, reset_after=60),
    )
    supervisor.start()
    first = supervisor.pid
    hook_saw_running: list[bool] = []
    supervisor.restart(before_start=lambda: hook_saw_running.append(supervisor.state.running))
    recorder.wait_for(lambda: len(recorder.of(ProcessStarted)) == 2, 20)
    assert hook_saw_running == [False]
    (exited,) = recorder.of(ProcessExited)
    assert exited.expected
    assert supervisor.pid not in (None, first)
    token = supervisor._record[1]  # type: ignore[index]
    supervisor.stop()
    changes.revert_all()
    assert find_processes(token) == []


@pytest.mark.skipif(
    memory_cgroup_support() is not None and not IN_CI, reason=str(memory_cgroup_support())
)
def test_kernel_oom_kill_is_reported_as_oomkilled(ctx: TargetContext) -> None:
    assert memory_cgroup_support() is None, memory_cgroup_support()
    recorder = Recorder(ctx.bus)
    changes = ChangeSet(ctx.journal, "s", "target/local")
    name = f"gameday-test-{os.getpid()}"
    changes.record(RemoveCgroup(path=str(MemoryCgroup.path_for(name))))
    cgroup = MemoryCgroup.create(name)
    cgroup.set_limit(48 * 2**20)
    supervisor = Supervisor(
        "server",
        # touches 200 MiB, far past the 48 MiB limit: the kernel must kill it
        [sys.executable, "-c", "b = bytearray(200 * 2**20); b[::4096] = b'x' * (len(b) // 4096)"],
        ctx=ctx,
        changes=changes,
        restart="never",
        backoff=BackoffPolicy(initial=1, maximum=1, reset_after=60),
        cgroup=cgroup,
    )
    supervisor.start()
    recorder.wait_for(lambda: bool(recorder.of(ProcessExited)), 30)
    supervisor.stop()
    (exited,) = recorder.of(ProcessExited)
    assert (exited.exit_code, exited.signal, exited.reason) == (137, "SIGKILL", "OOMKilled")
    assert cgroup.oom_kills() >= 1
    changes.revert_all()
    assert not cgroup.path.exists()
