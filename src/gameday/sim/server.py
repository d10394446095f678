"""``gameday sim serve``: bind first, then serve while the model loads, like vLLM.

vLLM binds its listening socket before it initialises the engine, so a busy port fails in
a second with ``OSError: [Errno 98] Address already in use`` instead of after a long model
load. The simulator does the same, then runs uvicorn on that socket (``/health`` answers
503 until the model is loaded) and shuts down gracefully on SIGTERM or SIGINT (exit 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import sys
from collections.abc import Callable, Generator

from gameday import __version__
from gameday.sim.logs import exception_line, logger, server_logger, setup_logging
from gameday.sim.options import SimOptions

__all__ = ["bind_socket", "serve"]

_GRACEFUL_SHUTDOWN_S = 5


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; raises the OS's error (e.g. Errno 98)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR only: a port another process listens on must stay refused.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    return sock


def _runner() -> asyncio.Runner:
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return asyncio.Runner(loop_factory=factory)


def serve(opts: SimOptions) -> int:
    """Run the simulator until a signal or a fatal error; the process exit code."""
    setup_logging()
    logger.info(
        "gameday sim %s: vLLM-compatible inference simulator (flavor %s)", __version__, opts.flavor
    )
    logger.info("non-default args: %s", opts.non_default())
    try:
        sock = bind_socket(opts.host, opts.port)
    except OSError as exc:
        logger.error("Cannot bind the API server to %s:%d", opts.host, opts.port)
        print(exception_line(exc), file=sys.stderr, flush=True)
        return 1
    try:
        with _runner() as runner:
            return runner.run(_serve(opts, sock))
    finally:
        sock.close()


async def _serve(opts: SimOptions, sock: socket.socket) -> int:
    import uvicorn

    from gameday.sim.api import SimApp
    from gameday.sim.runtime import SimRuntime

    class _Server(uvicorn.Server):
        # uvicorn would re-raise the signal after shutdown, so the exit code would be the
        # signal's; we handle SIGTERM/SIGINT ourselves and exit 0.
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            yield

    runtime = SimRuntime(opts)
    app = SimApp(runtime)
    # Every request allocates a few container objects (task, future, dicts); with the
    # default thresholds the cyclic GC ran often and, at full collections, walked every
    # module object. Freeze what startup created and collect less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    config = uvicorn.Config(
        app,
        lifespan="off",
        # No proxy in front of the simulator; the header rewriting would cost per request.
        proxy_headers=False,
        log_config=None,
        access_log=False,
        ws="none",
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
    )
    server = _Server(config)
    loop = asyncio.get_running_loop()

    def stop(signum: int) -> None:
        if server.should_exit:
            server.force_exit = True
            return
        server_logger.info("Shutting down (%s)", signal.Signals(signum).name)
        runtime.begin_shutdown()
        server.should_exit = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)

    def fatal() -> None:
        server.should_exit = True

    runtime.on_fatal = fatal
    host, port = sock.getsockname()[:2]
    pid = os.getpid()
    server_logger.info("Started server process [%d]", pid)
    server_logger.info("Waiting for application startup.")
    init = loop.create_task(runtime.initialise((host, port)))
    try:
        await server.serve(sockets=[sock])
    finally:
        server_logger.info("Waiting for application shutdown.")
        await runtime.close(init)
        server_logger.info("Application shutdown complete.")
        server_logger.info("Finished server process [%d]", pid)
    return runtime.exit_code
