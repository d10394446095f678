"""A kubelet-like supervisor for the server under test.

It starts the command, streams its output into the event stream and a log
file, notices how it ended (the kernel's OOM kill counter of its cgroup tells
an OOM kill apart from any other SIGKILL), and restarts it with an exponential
backoff as a kubelet does with CrashLoopBackOff — with game-day sized delays.

The server is treated as a container: when its main process exits, every process
left in its cgroup (and its process group) is killed, as a container runtime kills
a container whose PID 1 has gone. vLLM's EngineCore and Worker outlive a killed API
server otherwise, holding its memory and its output pipes; the exit is recorded when
the main process is reaped, never after the pipe readers, which such children hold.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Literal

import httpx

from gameday.core.cgroup import MemoryCgroup
from gameday.core.changes import ChangeSet
from gameday.core.errors import Aborted, ComponentUnreachable
from gameday.core.events import LogLine, Note, ProcessBackoff, ProcessExited, ProcessStarted
from gameday.core.processes import Spawned, spawn
from gameday.core.redact import redact_text
from gameday.targets.base import TargetContext

__all__ = ["BackoffPolicy", "ContainerState", "Supervisor"]

RestartPolicy = Literal["always", "on-failure", "never"]
LOG_EVENT_LIMIT = 3000
"""Log lines per process forwarded as events; the log file always has all of them."""


@dataclass(frozen=True)
class BackoffPolicy:
    initial: float
    maximum: float
    reset_after: float

    def delay(self, consecutive: int) -> float:
        """Delay before restart number ``consecutive`` (1-based) since the last reset."""
        return float(min(self.initial * (2 ** max(consecutive - 1, 0)), self.maximum))


@dataclass
class ContainerState:
    """What kube-state-metrics would report for the server's container."""

    restarts: int = 0
    running: bool = False
    ready: bool = False
    waiting_reason: str | None = "ContainerCreating"
    last_terminated_reason: str | None = None
    last_exit_code: int | None = None
    pid: int | None = None
    oom_kills: int = 0


@dataclass
class _PlannedRestart:
    before_start: Callable[[], None] | None


class Supervisor:
    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        ctx: TargetContext,
        restart: RestartPolicy,
        backoff: BackoffPolicy,
        env: dict[str, str] | None = None,
        changes: ChangeSet,
        cgroup: MemoryCgroup | None = None,
        health_url: str | None = None,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.ctx = ctx
        self.restart_policy = restart
        self.backoff = backoff
        self.env = env or {}
        self.cgroup = cgroup
        self.changes = changes
        self.health_url = health_url
        self.state = ContainerState()
        self.log_path = ctx.artifacts / f"{name}.log"
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._planned: _PlannedRestart | None = None
        self._current: Spawned | None = None
        self._record: tuple[str, str] | None = None  # (undo id, token) shared by restarts
        self._attempt = 0
        self._log_events = 0
        self._log_file: IO[str] | None = None
        self._monitor: threading.Thread | None = None
        self._exited = threading.Condition(self._lock)  # state changes: started or exited

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        self.ctx.artifacts.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_path.open("a", encoding="utf-8", errors="replace")
        self._spawn()
        self._monitor = threading.Thread(
            target=self._supervise, name=f"supervise-{self.name}", daemon=True
        )
        self._monitor.start()

    def stop(self, grace: float = 10.0) -> None:
        with self._lock:
            self._stopping = True
            current = self._current
        self._wake.set()
        if current is not None:
            current.stop(grace)
        if self._monitor is not None:
            self._monitor.join(grace + 5)
        if self._log_file is not None:
            self._log_file.close()

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self.state.pid if self.state.running else None

    def kill(self, sig: signal.Signals) -> int:
        """Signal the server's main process, as a container's PID 1 would be. Returns its pid."""
        pid = self.pid
        if pid is None:
            raise ComponentUnreachable(f"{self.name} is not running; nothing to signal")
        os.kill(pid, sig)
        return pid

    def wait_running(
        self, timeout: float, stop: threading.Event, *, not_pid: int | None = None
    ) -> None:
        """Block until a server process is running — another one than ``not_pid``, if
        given (a process we just killed may not have been reaped yet) — or raise."""
        deadline = time.monotonic() + timeout
        with self._exited:
            while not self.state.running or (not_pid is not None and self.state.pid == not_pid):
                remaining = deadline - time.monotonic()
                if stop.is_set():
                    raise Aborted("signal")
                if remaining <= 0:
                    raise ComponentUnreachable(f"{self.name} did not restart within {timeout:g}s")
                self._exited.wait(min(remaining, 0.5))

    def restart(self, before_start: Callable[[], None] | None = None, grace: float = 10.0) -> None:
        """Planned restart, as a rollout does: stop, run ``before_start``, start at once."""
        with self._lock:
            self._planned = _PlannedRestart(before_start)
            current = self._current
        if current is not None and current.popen.poll() is None:
            current.stop(grace)
        else:
            self._wake.set()  # in backoff: cut the wait short

    def restart_through(self, before_start: Callable[[], None], timeout: float = 60.0) -> None:
        """Planned restart; wait until ``before_start`` ran between the exit and the new
        start (on the supervisor's thread), and raise what it raised."""
        done = threading.Event()
        failures: list[Exception] = []

        def hook() -> None:
            try:
                before_start()
            except Exception as error:
                failures.append(error)
                raise
            finally:
                done.set()

        self.restart(before_start=hook)
        if not done.wait(timeout):
            raise ComponentUnreachable(f"{self.name} did not stop within {timeout:g}s")
        if failures:
            raise failures[0]

    def wait_ready(self, timeout: float, *, ignore_stop: bool = False) -> None:
        """Poll the health endpoint until it answers 200, the process dies, or ``timeout``.

        ``ignore_stop`` keeps waiting during an abort, to confirm a restore."""
        if self.health_url is None:
            return
        deadline = time.monotonic() + timeout
        last_problem = "no answer yet"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.ctx.stop.is_set() and not ignore_stop:
                    raise Aborted("signal")
                current = self._current
                gone = current is not None and current.popen.poll() is not None
                if self.restart_policy == "never" and gone:
                    raise ComponentUnreachable(self._died_message())
                try:
                    response = client.get(self.health_url)
                    if response.status_code == 200:
                        self.state.ready = True
                        return
                    last_problem = f"HTTP {response.status_code}"
                except httpx.HTTPError as error:
                    last_problem = type(error).__name__
                time.sleep(0.2)  # the probe period, as a readiness probe has one
        raise ComponentUnreachable(
            f"{self.name} did not become ready at {self.health_url} within {timeout:g}s "
            f"({last_problem}); {self._died_message()}"
        )

    def _died_message(self) -> str:
        tail = self.tail(5)
        return "last log lines: " + " | ".join(tail) if tail else f"see {self.log_path}"

    def tail(self, lines: int) -> list[str]:
        try:
            with self.log_path.open(encoding="utf-8", errors="replace") as handle:
                return [line.rstrip("\n") for line in handle.readlines()[-lines:]]
        except OSError:
            return []

    # -- internals -----------------------------------------------------------------

    def _spawn(self) -> None:
        self._attempt += 1
        spawned = spawn(
            self.command,
            name=self.name,
            changes=self.changes,
            env=self.env,
            cgroup_procs=self.cgroup.procs_file if self.cgroup else None,
            record=self._record,
        )
        self._record = (spawned.undo_id, spawned.token)
        with self._lock:
            self._current = spawned
            self.state.running = True
            self.state.ready = False
            self.state.waiting_reason = None
            self.state.pid = spawned.pid
            self._exited.notify_all()
        self._oom_before = self.cgroup.oom_kills() if self.cgroup else 0
        self._started_at = time.monotonic()
        if self._log_file is not None:
            self._log_file.write(f"--- {self.name} attempt {self._attempt} pid {spawned.pid} ---\n")
            self._log_file.flush()
        self.ctx.bus.emit(
            ProcessStarted(
                scenario=self.ctx.scenario,
                process=self.name,
                pid=spawned.pid,
                attempt=self._attempt,
                command=tuple(self.command),
            )
        )
        self._readers = [
            threading.Thread(target=self._pump, args=(stream, label), daemon=True)
            for stream, label in (
                (spawned.popen.stdout, "stdout"),
                (spawned.popen.stderr, "stderr"),
            )
            if stream is not None
        ]
        for reader in self._readers:
            reader.start()

    def _pump(self, stream: IO[bytes], label: str) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            with self._lock:
                if self._log_file is not None and not self._log_file.closed:
                    self._log_file.write(redact_text(line) + "\n")
                    self._log_file.flush()
                forward = self._log_events < LOG_EVENT_LIMIT
                self._log_events += 1
            if forward:
                self.ctx.bus.emit(
                    LogLine(scenario=self.ctx.scenario, source=self.name, stream=label, line=line)
                )
            elif self._log_events == LOG_EVENT_LIMIT + 1:
                self.ctx.bus.emit(
                    Note(
                        scenario=self.ctx.scenario,
                        level="info",
                        message=f"{self.name}: further log lines only in {self.log_path.name}",
                    )
                )
        stream.close()

    def _kill_container(self, current: Spawned) -> set[int]:
        """Kill what the main process left behind: its process group, then its cgroup."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(current.pid, signal.SIGKILL)  # no group left once all are gone
        return set(self.cgroup.kill_members()) if self.cgroup is not None else set()

    def _classify(self, returncode: int) -> tuple[int, str | None, str]:
        """(exit code as a runtime reports it, signal name, kubelet-style reason)."""
        oom = self.cgroup is not None and self.cgroup.oom_kills() > self._oom_before
        if returncode < 0:
            sig = signal.Signals(-returncode)
            code, sig_name = 128 + sig.value, sig.name
        else:
            code, sig_name = returncode, None
        if oom:
            return code, sig_name, "OOMKilled"
        return code, sig_name, "Completed" if code == 0 else "Error"

    def _supervise(self) -> None:
        consecutive = 0
        while True:
            current = self._current
            assert current is not None
            returncode = current.popen.wait()
            exited_at = time.time()
            leftovers = self._kill_container(current)
            for reader in self._readers:
                reader.join(2)  # the pipes close once the last holder is dead
            ran_for = time.monotonic() - self._started_at
            code, sig_name, reason = self._classify(returncode)
            with self._lock:
                planned, self._planned = self._planned, None
                stopping = self._stopping
                self.state.running = False
                self.state.ready = False
                self.state.pid = None
                self.state.last_terminated_reason = reason
                self.state.last_exit_code = code
                if reason == "OOMKilled":
                    self.state.oom_kills += 1
                self._exited.notify_all()
            if leftovers:
                self.ctx.bus.emit(
                    Note(
                        scenario=self.ctx.scenario,
                        level="info",
                        message=f"{self.name}: main process {current.pid} exited; killed "
                        f"{len(leftovers)} process(es) left in its container "
                        f"{sorted(leftovers)}, as a container runtime does",
                    )
                )
            self.ctx.bus.emit(
                ProcessExited(
                    ts=exited_at,
                    scenario=self.ctx.scenario,
                    process=self.name,
                    pid=current.pid,
                    exit_code=code,
                    signal=sig_name,
                    reason=reason,
                    restarts=self.state.restarts,
                    expected=stopping or planned is not None,
                )
            )
            if stopping:
                return
            if planned is not None:
                if planned.before_start is not None:
                    try:
                        planned.before_start()
                    except Exception as error:  # the restart itself must still happen
                        self.ctx.bus.emit(
                            Note(
                                scenario=self.ctx.scenario,
                                level="error",
                                message=f"{self.name}: before restart: {error}",
                            )
                        )
            else:
                if self.restart_policy == "never" or (
                    self.restart_policy == "on-failure" and code == 0
                ):
                    with self._lock:
                        self.state.waiting_reason = None
                    return
                consecutive = 1 if ran_for >= self.backoff.reset_after else consecutive + 1
                delay = self.backoff.delay(consecutive)
                with self._lock:
                    self.state.waiting_reason = "CrashLoopBackOff"
                self.ctx.bus.emit(
                    ProcessBackoff(
                        scenario=self.ctx.scenario,
                        process=self.name,
                        delay=delay,
                        restarts=self.state.restarts,
                    )
                )
                self._wake.clear()
                self._wake.wait(delay)
                with self._lock:
                    if self._stopping:
                        return
                    late: _PlannedRestart | None = self._planned
                    self._planned = None
                if late is not None and late.before_start is not None:
                    late.before_start()  # a planned restart asked for during the backoff
            with self._lock:
                if self._stopping:
                    return
                self.state.restarts += 1
            try:
                self._spawn()
            except OSError as error:
                self.ctx.bus.emit(
                    Note(
                        scenario=self.ctx.scenario,
                        level="error",
                        message=f"{self.name}: cannot start {self.command[0]}: {error}",
                    )
                )
                return
