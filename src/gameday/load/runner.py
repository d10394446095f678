"""The Locust process: ``python -m gameday.load.runner [--config FILE]``.

Runs the users of :mod:`gameday.load.locustfile` headless through Locust's library
API (no CLI, no web UI) and speaks the protocol of :mod:`gameday.load.protocol`:
the config as the first line of stdin (unless ``--config``), commands on the
following lines, one :class:`~gameday.load.protocol.LoadSample` JSON line per
second on stdout and nothing else there. It stops cleanly, flushing a last
(partial) window, on ``{"op": "stop"}``, on stdin EOF (so it never outlives a
harness that died) and on SIGTERM/SIGINT.

Exit codes: 0 stopped, 2 invalid config, 3 locust not importable, 1 a crash.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from gameday.core.redact import MaskingFormatter, remember_secret
from gameday.load.protocol import (
    API_KEY_VARIABLE,
    EXIT_BAD_CONFIG,
    EXIT_LOCUST_MISSING,
    READY_LINE,
    LoadConfig,
    parse_command,
)
from gameday.load.window import RequestError, Window, failure_message

__all__ = ["main"]

log = logging.getLogger("gameday.load.runner")


class _Output:
    """The protocol channel: the process's original stdout, kept private.

    fd 1 itself is pointed at stderr, so that a stray ``print`` in a library (or a C
    extension writing to fd 1) lands in the log instead of corrupting the samples.
    """

    def __init__(self) -> None:
        sys.stdout.flush()
        self._fd = os.dup(1)
        os.dup2(2, 1)

    def write_line(self, line: str) -> None:
        data = (line + "\n").encode()
        while data:
            data = data[os.write(self._fd, data) :]


class _Collector:
    """Turns ``events.request`` into one :class:`Window` per interval."""

    def __init__(self) -> None:
        self.window = Window(time.monotonic())

    def on_request(
        self,
        response_time: float,
        exception: BaseException | None = None,
        ttft_ms: float | None = None,
        output_tokens: int = 0,
        **_: Any,
    ) -> None:
        error = None
        if exception is not None:
            error = (
                str(exception)
                if isinstance(exception, RequestError)
                else failure_message(exception)
            )
        self.window.record(
            response_time, error=error, ttft_ms=ttft_ms, output_tokens=output_tokens or 0
        )

    def roll(self, users: int) -> str:
        now = time.monotonic()
        closing, self.window = self.window, Window(now)
        return closing.close(end=now, t=time.time(), users=users).to_json()


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m gameday.load.runner",
        description="Run llm-gameday's Locust users headless; JSON lines in and out.",
    )
    parser.add_argument(
        "--config", type=Path, help="load config JSON file (default: first line of stdin)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    output = _Output()
    remember_secret(os.environ.get(API_KEY_VARIABLE))  # the key the users send
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        # the monkey-patching happens here, in this process only
        import gevent
        import gevent.event
        from gevent.fileobject import FileObjectPosix
        from locust.env import Environment

        from gameday.load import locustfile
    except ImportError as e:
        print(f"locust is not importable by {sys.executable}: {e}", file=sys.stderr)
        return EXIT_LOCUST_MISSING

    # cooperative reads: a plain blocking read of stdin would freeze every greenlet
    stdin = FileObjectPosix(0, "rb", close=False)
    try:
        text = args.config.read_text() if args.config else stdin.readline().decode()
        if not text.strip():
            raise ValueError("no load config given (expected one JSON line on stdin)")
        config = LoadConfig.from_json(text)
    except (OSError, ValueError) as e:
        print(f"invalid load config: {e}", file=sys.stderr)
        return EXIT_BAD_CONFIG

    user_class = locustfile.configure(config)
    environment = Environment(user_classes=[user_class], host=config.host)
    collector = _Collector()
    environment.events.request.add_listener(collector.on_request)  # type: ignore[no-untyped-call]
    runner = environment.create_local_runner()
    stopping = gevent.event.Event()
    spawn_rate = config.spawn_rate

    def request_stop(reason: str) -> None:
        if not stopping.is_set():
            log.info("stopping: %s", reason)
            stopping.set()

    def read_commands() -> None:
        nonlocal spawn_rate
        while not stopping.is_set():
            line = stdin.readline()
            if not line:
                request_stop("stdin closed")
                return
            if not line.strip():
                continue
            try:
                op, fields = parse_command(line.decode())
            except ValueError as e:
                log.warning("ignored command %r: %s", line.strip()[:200], e)
                continue
            if op == "stop":
                request_stop("stop command")
            elif op == "set_users":
                spawn_rate = fields.get("spawn_rate", spawn_rate)
                log.info("users -> %d at %s/s", fields["users"], spawn_rate)
                runner.start(fields["users"], spawn_rate)
            elif op == "set_shape":
                log.info("shape -> %s", fields)
                locustfile.set_shape(fields["prompt_tokens"], fields["max_tokens"])

    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, request_stop, signal.Signals(signum).name)
    commands = gevent.spawn(read_commands)

    log.info(
        "%d %s users against %s (stream=%s), ramping at %s/s",
        config.users,
        config.profile,
        config.host,
        config.stream,
        config.spawn_rate,
    )
    runner.start(config.users, config.spawn_rate)
    print(READY_LINE, file=sys.stderr, flush=True)

    # one sample per second on a fixed monotonic schedule, so windows do not drift
    tick = time.monotonic() + 1.0
    while not stopping.wait(timeout=max(0.0, tick - time.monotonic())):
        output.write_line(collector.roll(runner.user_count))
        tick += 1.0
        if tick < time.monotonic():  # the hub was blocked for a while: skip, do not burst
            tick = time.monotonic() + 1.0

    users = runner.user_count
    runner.quit()
    commands.kill(block=False)
    output.write_line(collector.roll(users))
    return 0


if __name__ == "__main__":
    sys.exit(main())
