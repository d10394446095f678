"""``gameday sim serve``: bind first, then serve while the model loads, like vLLM.

vLLM binds its listening socket before it initialises the engine, so a busy port fails in
a second with ``OSError: [Errno 98] Address already in use`` instead of after a long model
load. The simulator does the same, then serves HTTP on that socket (its own lean server,
:mod:`gameday.sim.protocol`; ``/health`` answers 503 until the model is loaded) and shuts
down gracefully on SIGTERM or SIGINT (exit 0): new connections are refused, the requests
in flight are ended (aborted, as vLLM does) and their responses written, for at most
5 s; a second signal drops them at once.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import sys
from collections.abc import Callable

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
    from gameday.sim.api import SimApi
    from gameday.sim.protocol import HttpServer
    from gameday.sim.runtime import SimRuntime

    runtime = SimRuntime(opts)
    api = SimApi(runtime)
    server = HttpServer(api.router, runtime.metrics.http)
    # Every request allocates a few container objects; with the default thresholds the
    # cyclic GC ran often and, at full collections, walked every module object. Freeze
    # what startup created and collect less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def stop(signum: int) -> None:
        if stopping.is_set():
            # A second signal: do not wait for the responses in flight.
            server.abort_all()
            return
        server_logger.info("Shutting down (%s)", signal.Signals(signum).name)
        runtime.begin_shutdown()
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)

    runtime.on_fatal = stopping.set
    host, port = sock.getsockname()[:2]
    pid = os.getpid()
    await server.start(sock)
    server_logger.info("Started server process [%d]", pid)
    server_logger.info("Waiting for application startup.")
    init = loop.create_task(runtime.initialise((host, port)))
    try:
        await stopping.wait()
    finally:
        await server.shutdown(_GRACEFUL_SHUTDOWN_S)
        server_logger.info("Waiting for application shutdown.")
        await runtime.close(init)
        server_logger.info("Application shutdown complete.")
        server_logger.info("Finished server process [%d]", pid)
    return runtime.exit_code
