"""Drive the Locust runner process from the harness.

Locust lives in its own process: importing it monkey-patches the interpreter with
gevent, so this module (which the harness imports) never imports locust or gevent.
:class:`LoadDriver` starts ``python -m gameday.load.runner`` in its own process
group, feeds it commands on stdin and turns each stdout line into a
:class:`~gameday.load.protocol.LoadSample` handed to ``on_sample`` from a reader
thread.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import IO, Self

from gameday.core.errors import ComponentMissing, ComponentUnreachable
from gameday.load.protocol import (
    EXIT_BAD_CONFIG,
    EXIT_LOCUST_MISSING,
    READY_LINE,
    LoadConfig,
    LoadSample,
    set_shape_command,
    set_users_command,
    stop_command,
)

__all__ = ["LoadDriver"]

log = logging.getLogger(__name__)
runner_log = logging.getLogger("gameday.load.runner")

STDERR_TAIL_LINES = 40
STDERR_HEAD_LINES = 40
"""The run log (locust.log) keeps the runner's first lines (Locust's start-up warnings,
such as the spawn-rate one) as well as its last."""


class LoadDriver:
    """One Locust runner process generating load against ``config.host``.

    ``on_sample`` is called from a reader thread, about once a second, with the
    window that just ended; an exception it raises is logged, not propagated. It
    should return quickly: while it runs, the runner's next lines wait in the pipe.
    ``env`` adds to (or overrides) the harness's environment for the runner.
    Usable as a context manager: ``with LoadDriver(config, on_sample) as load: ...``.
    """

    def __init__(
        self,
        config: LoadConfig,
        on_sample: Callable[[LoadSample], None],
        *,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.on_sample = on_sample
        self.python = python
        self.env = dict(env) if env is not None else None
        self.last_sample: LoadSample | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._stdin_lock = threading.Lock()
        self._ready = threading.Event()
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._stderr_head: list[str] = []
        self._stderr_lines = 0
        self._threads: list[threading.Thread] = []

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """Process id of the runner, which also leads its process group; None before start."""
        return self._process.pid if self._process else None

    @property
    def returncode(self) -> int | None:
        """Exit code of the runner once it has exited (``-signal`` if killed), else None."""
        return _exit_status(self._process, 0) if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and _exit_status(self._process, 0) is None

    def start(self, timeout: float = 30.0) -> None:
        """Start the runner and wait until its users are started.

        Raises :class:`ComponentMissing` if locust cannot be imported by ``python``,
        :class:`ComponentUnreachable` if the runner dies or is not ready in ``timeout``
        seconds (with the tail of its stderr either way).
        """
        if self._process is not None:
            raise RuntimeError("LoadDriver.start() called twice")
        env = {**os.environ, **(self.env or {})}
        env.setdefault("PYTHONUNBUFFERED", "1")
        command = [self.python, "-m", "gameday.load.runner"]
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                # its own group, so that stop() can reach whatever it spawned
                process_group=0,
            )
        except OSError as e:
            raise ComponentMissing(f"cannot start the load runner with {self.python}: {e}") from e
        log.debug("load runner started, pid %d", self._process.pid)
        for target, name in ((self._read_stdout, "stdout"), (self._read_stderr, "stderr")):
            thread = threading.Thread(
                target=target, name=f"load-runner-{self._process.pid}-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        try:
            # a runner that died at once is reported by _wait_ready, from its exit code
            with contextlib.suppress(ComponentUnreachable):
                self._send(self.config.to_json())
            self._wait_ready(timeout)
        except BaseException:
            self.stop(timeout=2.0)
            raise

    def _wait_ready(self, timeout: float) -> None:
        process = self._process
        assert process is not None
        deadline = time.monotonic() + timeout
        while not self._ready.wait(timeout=0.05):
            code = _exit_status(process, 0)
            if code is not None:
                self._join_readers(timeout=2.0)  # collect the last words of its stderr
                tail = self.stderr_tail()
                if code == EXIT_LOCUST_MISSING:
                    raise ComponentMissing(
                        f"locust is not importable by {self.python}; install it in that "
                        f"environment (pip install locust)\n{tail}"
                    )
                reason = "rejected its config" if code == EXIT_BAD_CONFIG else "exited"
                raise ComponentUnreachable(
                    f"the load runner {reason} (exit code {code}) before it started:\n{tail}"
                )
            if time.monotonic() > deadline:
                raise ComponentUnreachable(
                    f"the load runner did not start within {timeout:g}s:\n{self.stderr_tail()}"
                )

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the runner: the stop command, then SIGTERM, then SIGKILL to its process
        group; always reaps it. Returns its exit code (None if it was never started)."""
        process = self._process
        if process is None:
            return None
        if process.returncode is not None:
            return process.returncode  # stopped and reaped before
        if _exit_status(process, 0) is None:
            with contextlib.suppress(ComponentUnreachable):
                self._send(stop_command())
        self._close_stdin()  # EOF is a stop request too
        if _exit_status(process, timeout) is None:
            log.warning(
                "load runner %d ignored stop for %gs; sending SIGTERM", process.pid, timeout
            )
            _signal_group(process.pid, signal.SIGTERM)
            if _exit_status(process, 3.0) is None:
                log.warning("load runner %d ignored SIGTERM; sending SIGKILL", process.pid)
                _signal_group(process.pid, signal.SIGKILL)
        # The leader is a zombie now, not reaped yet, so its group id cannot have been
        # reused: sweep anything it left in the group, then reap.
        _exit_status(process, None)
        _signal_group(process.pid, signal.SIGKILL)
        code = process.wait()
        self._join_readers(timeout=5.0)
        if code != 0:
            log.warning("load runner exited with code %s:\n%s", code, self.stderr_tail())
        return code

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- commands -----------------------------------------------------------------------

    def set_users(self, users: int, spawn_rate: float | None = None) -> None:
        """Ramp to ``users`` users at ``spawn_rate`` per second (default: the config's)."""
        rate = self.config.spawn_rate if spawn_rate is None else spawn_rate
        self._send(set_users_command(users, rate))

    def set_shape(self, prompt_tokens: int, max_tokens: int) -> None:
        """Change the prompt length and ``max_tokens`` of every request from now on."""
        self._send(set_shape_command(prompt_tokens, max_tokens))

    def _send(self, line: str) -> None:
        process = self._process
        if process is None or process.stdin is None:
            raise ComponentUnreachable("the load runner is not started")
        with self._stdin_lock:
            try:
                process.stdin.write(line.encode() + b"\n")
                process.stdin.flush()
            except (BrokenPipeError, ValueError, OSError) as e:
                raise ComponentUnreachable(
                    f"the load runner is gone (exit code {self.returncode}):\n{self.stderr_tail()}"
                ) from e

    def _close_stdin(self) -> None:
        process = self._process
        if process is not None and process.stdin is not None:
            with self._stdin_lock, contextlib.suppress(OSError, ValueError):
                process.stdin.close()

    # -- readers ------------------------------------------------------------------------

    def stderr_tail(self) -> str:
        """The last lines the runner wrote to stderr (its log)."""
        return "\n".join(self._stderr_tail) or "(nothing on stderr)"

    def stderr_log(self) -> str:
        """The runner's log for the run's artifacts: its first and its last lines."""
        skipped = self._stderr_lines - len(self._stderr_head) - len(self._stderr_tail)
        if skipped < 0:  # the head and the tail overlap: every line is in the head
            return "\n".join(self._stderr_head) or "(nothing on stderr)"
        gap = [f"... ({skipped} lines left out)"] if skipped else []
        return "\n".join([*self._stderr_head, *gap, *self._stderr_tail])

    def _read_stdout(self) -> None:
        stream = self._stream("stdout")
        for raw in stream:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            try:
                sample = LoadSample.from_json(line)
            except ValueError as e:
                log.warning("load runner wrote a line that is not a sample (%s): %.200s", e, line)
                continue
            self.last_sample = sample
            try:
                self.on_sample(sample)
            except Exception:
                log.exception("on_sample failed on %s", sample)

    def _read_stderr(self) -> None:
        stream = self._stream("stderr")
        for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            if line == READY_LINE:
                self._ready.set()
                continue
            self._stderr_lines += 1
            if len(self._stderr_head) < STDERR_HEAD_LINES:
                self._stderr_head.append(line)
            self._stderr_tail.append(line)
            # the runner logs "<date> <time> LEVEL name: message"; its warnings (Locust's
            # spawn-rate advice) belong in the run log, not on the user's terminal, which
            # sees only its errors
            fields = line.split(" ", 3)
            level = logging.getLevelName(fields[2]) if len(fields) > 3 else None
            runner_log.log(
                level if isinstance(level, int) and level >= logging.ERROR else logging.DEBUG,
                "%s",
                line,
            )

    def _stream(self, name: str) -> IO[bytes]:
        assert self._process is not None
        stream = getattr(self._process, name)
        assert stream is not None
        return stream  # type: ignore[no-any-return]

    def _join_readers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))


def _exit_status(process: subprocess.Popen[bytes], timeout: float | None) -> int | None:
    """Wait up to ``timeout`` seconds (forever if None) for ``process`` to exit, without
    reaping it (``WNOWAIT``), and return its exit code (``-signal`` if killed), or None
    if it is still running."""
    if process.returncode is not None:
        return process.returncode
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            # WNOHANG polling: a blocking waitid cannot be given a timeout
            info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
        except ChildProcessError:  # reaped behind our back
            return process.wait()
        if info is not None:
            if info.si_code == os.CLD_EXITED:
                return info.si_status
            return -info.si_status
        if deadline is not None and time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
